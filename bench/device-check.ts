/**
 * `npm run bench -- device-check`: what a machine with a GPU can do for us, in a few minutes. Which execution
 * providers load; per model and GPU EP: greedy agreement with the CPU EP on short and on long (RAG) prompts, the
 * forward-size sweep against the CPU EP (prompts of 1 to 2048 tokens in one forward and in chunks, draft trees over
 * pasts up to 1000), ms per forward for k = 1…64, decode tokens/s with lookahead off vs hier, and the bytes a decode
 * step moves between host and device (device-resident K/V + in-graph argmax vs the host-owned K/V with logits).
 * With `--execution-providers cpu` it runs anywhere.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { toEngineOptions } from '../src/config/engine-options.js';
import { loadConfig } from '../src/config/load.js';
import { collectJob, GREEDY } from '../src/engine/collect.js';
import { createEngine } from '../src/engine/index.js';
import type { Engine, JobResult, LookaheadOptions } from '../src/engine/types.js';
import { ensureBuilt } from '../src/model/builder/cache.js';
import type { BuildOptions } from '../src/model/builder/options.js';
import { loadModel, resolveModel, treeBuildOptions, weightSource } from '../src/model/load.js';
import { openBuiltModel } from '../src/model/runtime/built-model.js';
import { measureForwardCost, type ForwardCost } from '../src/model/runtime/forward-cost.js';
import { promptAgreement, treeAgreement, type PromptAgreement, type TreeAgreement } from '../src/model/runtime/ep-agreement.js';
import { offProvider, profilePlacement } from '../src/model/runtime/placement.js';
import { probe, type ExecutionProvider } from '../src/model/runtime/session.js';
import type { ChatMessage } from './workload.js';

export interface DeviceCheckOptions {
  models: string[];
  /** EPs to check against the CPU EP; those that do not load are reported and skipped. */
  executionProviders: ExecutionProvider[];
  prompts: string[];
  /** Chats whose rendered prompt is long (RAG contexts): greedy answers off and hier against the CPU EP's off. */
  longPrompts: ChatMessage[][];
  maxTokens: number;
  ks: number[];
  rounds: number;
  threads: number;
  log: (message: string) => void;
}

export interface ProviderStatus {
  ep: ExecutionProvider;
  available: boolean;
  error: string | null;
}

/** Greedy tokens equal to the CPU EP's (lookahead off), over all prompts of a set. */
export interface GreedyAgreement {
  tokens: number;
  identical: number;
  /** Per prompt: the first differing token, -1 = none. */
  firstDiff: number[];
}

export interface TransferPerStep {
  hostToDevice: number;
  deviceToHost: number;
}

export interface ModelCheck {
  model: string;
  ep: ExecutionProvider;
  kvPlacement: string;
  /** Greedy tokens (lookahead off) equal to the CPU EP's, over all prompts. */
  agreement: GreedyAgreement;
  /**
   * The long prompts: this EP with lookahead off and with hier, each against the CPU EP with it off, and hier against
   * off on this EP (lossless wherever a kernel's rows do not depend on the forward's size).
   */
  longAgreement: { off: GreedyAgreement; hier: GreedyAgreement; hierVsOff: GreedyAgreement };
  /** GPU EPs: every forward size against the CPU EP (fp32 graphs). */
  sweep: { prompts: PromptAgreement[]; trees: TreeAgreement[] } | null;
  forwardMs: ForwardCost[];
  decode: { offTokensPerSecond: number; hierTokensPerSecond: number; speedup: number; hierTokensPerStep: number };
  /** Mean bytes per greedy decode step: this build vs the host-K/V graph fetching logits (the path before). */
  transfers: { device: TransferPerStep; hostKvLogits: TransferPerStep } | null;
  /** Op types ORT ran off this EP in one profiled forward (GPU EPs). */
  offProvider: string[] | null;
}

export interface DeviceCheckResult {
  providers: ProviderStatus[];
  checks: ModelCheck[];
  seconds: number;
}

const HIER: LookaheadOptions = { enabled: true, layout: 'hier', decodingLength: 16, branchLength: 8 };
const OFF: LookaheadOptions = { enabled: false, layout: 'hier', decodingLength: 1, branchLength: 1 };

export async function runDeviceCheck(o: DeviceCheckOptions): Promise<DeviceCheckResult> {
  const t0 = performance.now();
  const providers: ProviderStatus[] = [];
  for (const ep of ['cpu', 'webgpu', 'cuda'] as const) {
    const failure = ep === 'cpu' ? null : await probe(ep);
    providers.push({ ep, available: failure === null, error: failure ? failure.message.split('\n')[0] : null });
    o.log(`${ep}: ${failure ? `unavailable (${failure.message.split('\n')[0]})` : 'loads'}`);
  }
  const usable = o.executionProviders.filter((ep) => providers.find((p) => p.ep === ep)?.available);
  const cacheDir = mkdtempSync(join(tmpdir(), 'device-check-'));
  const checks: ModelCheck[] = [];
  try {
    for (const model of o.models) {
      const reference = await withEngine(model, 'cpu', o, cacheDir, async (e) => ({
        short: ids(await greedy(e, o, chats(o.prompts), OFF)),
        long: ids(await greedy(e, o, o.longPrompts, OFF)),
      }));
      for (const ep of usable) {
        o.log(`${basename(model)} on ${ep}`);
        checks.push(await checkModel(model, ep, reference, o, cacheDir));
      }
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  return { providers, checks, seconds: (performance.now() - t0) / 1000 };
}

async function checkModel(model: string, ep: ExecutionProvider, reference: { short: number[][]; long: number[][] }, o: DeviceCheckOptions, cacheDir: string): Promise<ModelCheck> {
  const { agreement, longAgreement, decode } = await withEngine(model, ep, o, cacheDir, async (engine) => {
    const off = await greedy(engine, o, chats(o.prompts), OFF);
    // hier twice: the first pass fills the global trie with the answers, the second drafts from it.
    await greedy(engine, o, chats(o.prompts), HIER);
    const hier = await greedy(engine, o, chats(o.prompts), HIER);
    const [longOff, longHier] = [ids(await greedy(engine, o, o.longPrompts, OFF)), ids(await greedy(engine, o, o.longPrompts, HIER))];
    const longAgreement = { off: agreeing(longOff, reference.long), hier: agreeing(longHier, reference.long), hierVsOff: agreeing(longHier, longOff) };
    const rate = (rs: Run[]) => rs.reduce((n, r) => n + r.result.completionTokens - 1, 0) / rs.reduce((s, r) => s + r.result.lookahead.decodeSeconds, 0);
    const steps = hier.reduce((n, r) => n + r.result.lookahead.steps, 0);
    const decode = {
      offTokensPerSecond: rate(off),
      hierTokensPerSecond: rate(hier),
      speedup: rate(hier) / rate(off),
      hierTokensPerStep: hier.reduce((n, r) => n + r.result.completionTokens - 1, 0) / Math.max(1, steps),
    };
    return { agreement: agreeing(ids(off), reference.short), longAgreement, decode };
  });
  const loaded = await loadModel({ ...engineOptions(model, ep, o, cacheDir) }, () => {});
  let forwardMs: ForwardCost[];
  const kvPlacement = loaded.info.kvPlacement;
  try {
    const ks = o.ks.filter((k) => k < loaded.info.contextLength);
    forwardMs = await measureForwardCost(loaded, ks, Math.min(256, loaded.info.contextLength - Math.max(...ks)), o.rounds);
  } finally {
    await loaded.dispose();
  }
  const gpu = ep !== 'cpu';
  const built = (options: BuildOptions) => ensureBuilt(weightSource(resolveModel(model), undefined), options, join(cacheDir, 'models'), () => {});
  const transfers = gpu
    ? {
        device: await transfersPerStep(await built(treeBuildOptions(ep, 'fp32')), ep, o, 'ids'),
        hostKvLogits: await transfersPerStep(await built({ ...treeBuildOptions(ep, 'fp32'), kv: 'host' }), ep, o, 'logits'),
      }
    : null;
  const placed = gpu ? offProvider(await profilePlacement(await built(treeBuildOptions(ep, 'fp32')), ep), ep === 'webgpu' ? 'WebGpuExecutionProvider' : 'CUDAExecutionProvider') : null;
  const sweep = gpu ? await sweepAgainstCpu(await built(treeBuildOptions(ep, 'fp32')), await built(treeBuildOptions('cpu', 'fp32')), ep, o) : null;
  return { model: basename(model), ep, kvPlacement, agreement, longAgreement, sweep, forwardMs, decode, transfers, offProvider: placed };
}

async function sweepAgainstCpu(dir: string, cpuDir: string, ep: ExecutionProvider, o: DeviceCheckOptions): Promise<ModelCheck['sweep']> {
  const model = await openBuiltModel(dir, { executionProvider: ep, threads: o.threads });
  const cpu = await openBuiltModel(cpuDir, { executionProvider: 'cpu', threads: o.threads });
  try {
    return { prompts: await promptAgreement(model, cpu), trees: await treeAgreement(model, cpu) };
  } finally {
    await model.dispose();
    await cpu.dispose();
  }
}

function agreeing(actual: number[][], reference: number[][]): GreedyAgreement {
  const firstDiff = actual.map((r, p) => {
    const i = r.findIndex((t, j) => t !== reference[p][j]);
    return i < 0 && r.length !== reference[p].length ? Math.min(r.length, reference[p].length) : i;
  });
  return {
    tokens: reference.reduce((n, r) => n + r.length, 0),
    identical: actual.reduce((n, r, p) => n + (firstDiff[p] < 0 ? r.length : firstDiff[p]), 0),
    firstDiff,
  };
}

/** Mean bytes moved per plain greedy step over `maxTokens` steps after a 64-token prefill. */
async function transfersPerStep(dir: string, ep: ExecutionProvider, o: DeviceCheckOptions, output: 'ids' | 'logits'): Promise<TransferPerStep> {
  const model = await openBuiltModel(dir, { executionProvider: ep, threads: o.threads });
  const seq = model.newSequence();
  try {
    const prompt = Int32Array.from({ length: 64 }, (_, i) => (i * 31 + 7) % model.info.vocabSize);
    await seq.forwardIds({ tokens: prompt, positions: Int32Array.from(prompt, (_, i) => i), mask: null });
    const start = { ...seq.transfers };
    const token = new Int32Array(1);
    const position = new Int32Array(1);
    for (let i = 0; i < o.maxTokens; i++) {
      token[0] = (i * 13 + 5) % model.info.vocabSize;
      position[0] = seq.length;
      if (output === 'ids') await seq.forwardIds({ tokens: token, positions: position, mask: null });
      else await seq.forward({ tokens: token, positions: position, mask: null });
    }
    return {
      hostToDevice: (seq.transfers.hostToDevice - start.hostToDevice) / o.maxTokens,
      deviceToHost: (seq.transfers.deviceToHost - start.deviceToHost) / o.maxTokens,
    };
  } finally {
    seq.dispose();
    await model.dispose();
  }
}

interface Run {
  ids: number[];
  result: JobResult;
}

const chats = (prompts: string[]): ChatMessage[][] => prompts.map((content) => [{ role: 'user', content }]);
const ids = (runs: Run[]) => runs.map((r) => r.ids);

/** Greedy answers to the prompts that fit the model's context with their answer (the same ones on every EP). */
async function greedy(engine: Engine, o: DeviceCheckOptions, prompts: ChatMessage[][], lookahead: LookaheadOptions): Promise<Run[]> {
  const { id, contextLength } = engine.models[0];
  const tok = engine.tokenizer(id);
  const runs: Run[] = [];
  for (const messages of prompts) {
    const promptIds = tok.encode(tok.renderChat(messages), { addSpecialTokens: !tok.chatTemplateAddsBos });
    if (promptIds.length + o.maxTokens > contextLength) continue;
    const job = engine.submit(id, {
      promptIds,
      maxTokens: o.maxTokens,
      sampling: GREEDY,
      stop: [],
      logprobs: null,
      lookahead,
    });
    const { ids, result } = await collectJob(job);
    runs.push({ ids, result });
  }
  return runs;
}

function engineOptions(model: string, ep: ExecutionProvider, o: DeviceCheckOptions, cacheDir: string) {
  return toEngineOptions(loadConfig(['--model', model, '--execution-provider', ep, '--threads', String(o.threads), '--cache-dir', cacheDir, '--log-level', 'silent'], {}));
}

async function withEngine<T>(model: string, ep: ExecutionProvider, o: DeviceCheckOptions, cacheDir: string, use: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = await createEngine({ ...engineOptions(model, ep, o, cacheDir), maxRunning: 1 }, () => {});
  try {
    return await use(engine);
  } finally {
    await engine.close(1000);
  }
}

/** The result as markdown, for the terminal and the report. */
export function renderDeviceCheck(r: DeviceCheckResult): string {
  const out: string[] = ['## Execution providers', '', '| EP | loads | why not |', '|---|---|---|'];
  for (const p of r.providers) out.push(`| ${p.ep} | ${p.available ? 'yes' : 'no'} | ${p.error ?? ''} |`);
  for (const c of r.checks) {
    out.push('', `## ${c.model} on ${c.ep} (K/V ${c.kvPlacement})`, '');
    const agreed = (a: GreedyAgreement) => `${a.identical}/${a.tokens} tokens (first difference per prompt: ${a.firstDiff.join(', ')}; -1 = none)`;
    out.push(`- greedy agreement with the CPU EP: ${agreed(c.agreement)}`);
    if (c.longAgreement.off.firstDiff.length > 0) {
      out.push(`- long prompts, lookahead off vs the CPU EP's off: ${agreed(c.longAgreement.off)}`);
      out.push(`- long prompts, lookahead hier vs the CPU EP's off: ${agreed(c.longAgreement.hier)}`);
      const differing = c.longAgreement.hierVsOff.firstDiff.filter((d) => d >= 0).length;
      out.push(`- long prompts, lookahead hier vs off on ${c.ep}: ${differing} of ${c.longAgreement.hierVsOff.firstDiff.length} answers differ (${agreed(c.longAgreement.hierVsOff)})`);
    }
    if (c.sweep) {
      const worst = (rows: { maxLogprobDelta: number }[]) => Math.max(0, ...rows.map((r) => r.maxLogprobDelta)).toExponential(1);
      const prompt = (chunked: boolean) => c.sweep!.prompts.filter((r) => (r.chunk !== null) === chunked);
      const cells = (rows: PromptAgreement[]) => rows.map((r) => `${r.length}: ${r.maxLogprobDelta.toExponential(1)}${r.top1Equal ? '' : ' (top-1 differs)'}`).join(', ');
      out.push(`- prompts in one forward, max |Δ logprob| vs the CPU EP by length: ${cells(prompt(false))} (worst ${worst(prompt(false))})`);
      out.push(`- prompts in chunks of ${prompt(true)[0]?.chunk ?? '-'}: ${cells(prompt(true))}`);
      out.push(`- draft trees: ${c.sweep.trees.map((r) => `${r.nodes} nodes at past ${r.past}: ${r.maxLogprobDelta.toExponential(1)}`).join(', ')} (worst ${worst(c.sweep.trees)})`);
    }
    out.push(`- decode: lookahead off ${c.decode.offTokensPerSecond.toFixed(1)} tok/s, hier ${c.decode.hierTokensPerSecond.toFixed(1)} tok/s (×${c.decode.speedup.toFixed(2)}, ${c.decode.hierTokensPerStep.toFixed(2)} tokens/step)`);
    if (c.transfers) {
      const kb = (n: number) => (n < 1024 ? `${n.toFixed(0)} B` : `${(n / 1024).toFixed(1)} KiB`);
      out.push(`- bytes per greedy step: device K/V + ids ${kb(c.transfers.device.hostToDevice)} up, ${kb(c.transfers.device.deviceToHost)} down; host K/V + logits ${kb(c.transfers.hostKvLogits.hostToDevice)} up, ${kb(c.transfers.hostKvLogits.deviceToHost)} down`);
    }
    if (c.offProvider) out.push(`- ops off the ${c.ep} EP: ${c.offProvider.join(', ') || 'none'}`);
    out.push('', '| k | ms per forward | × k=1 |', '|---:|---:|---:|');
    for (const p of c.forwardMs) out.push(`| ${p.k} | ${p.ms.toFixed(3)} | ${(p.ms / c.forwardMs[0].ms).toFixed(2)} |`);
  }
  out.push('', `took ${r.seconds.toFixed(0)} s`);
  return `${out.join('\n')}\n`;
}

import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { META_FILE, MODEL_FILE, type BuildMeta } from '../builder/build.js';
import { io } from '../builder/llama-graph.js';
import { deviceOutputLocations } from './device-sequence.js';
import type { ExecutionProvider } from './session.js';

/** Which execution providers ran each op type in one profiled forward: op type → provider → kernel runs. */
export type Placement = Record<string, Record<string, number>>;

interface ProfileEvent {
  cat?: string;
  name?: string;
  args?: { op_name?: string; provider?: string };
}

/**
 * Profiles one forward of a built tree graph (S new tokens over `past` cached rows) on `ep` and reads ORT's
 * profile: node events name the provider that ran each kernel. That is how a node ORT silently placed on the CPU
 * (with memcpy nodes around it) shows up.
 */
export async function profilePlacement(dir: string, ep: ExecutionProvider, s = 4, past = 8): Promise<Placement> {
  const meta = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as BuildMeta;
  const c = meta.config;
  const device = meta.options.kv === 'device';
  const out = mkdtempSync(join(tmpdir(), 'placement-'));
  try {
    const session = await ort.InferenceSession.create(join(dir, MODEL_FILE), {
      executionProviders: [ep],
      enableProfiling: true,
      profileFilePrefix: join(out, 'profile'),
      ...(device && { preferredOutputLocation: deviceOutputLocations(c.numLayers) }),
    });
    const kvD = c.numKvHeads * c.headDim;
    const t = past + s;
    const feeds: Record<string, ort.Tensor> = {
      [io.inputIds]: new ort.Tensor('int64', BigInt64Array.from({ length: s }, (_, i) => BigInt(i + 1)), [1, s]),
      [io.positionIds]: new ort.Tensor('int64', BigInt64Array.from({ length: s }, (_, i) => BigInt(past + i)), [1, s]),
      [io.bias]: new ort.Tensor('float32', new Float32Array(s * t), [1, 1, s, t]),
      [io.headRows]: new ort.Tensor('int64', BigInt64Array.from({ length: s }, (_, i) => BigInt(i)), [s]),
    };
    for (let l = 0; l < c.numLayers; l++) {
      feeds[io.pastKey(l)] = new ort.Tensor('float32', new Float32Array(past * kvD), [1, past, kvD]);
      feeds[io.pastValue(l)] = new ort.Tensor('float32', new Float32Array(past * kvD), [1, past, kvD]);
    }
    if (device) {
      feeds[io.kvKeep] = new ort.Tensor('int64', BigInt64Array.from({ length: past }, (_, i) => BigInt(i)), [past]);
      feeds[io.logitsRows] = new ort.Tensor('int64', BigInt64Array.of(0n), [1]);
    }
    const result = await session.run(feeds, session.outputNames);
    for (const v of Object.values(result)) if (v.location === 'gpu-buffer') v.dispose();
    session.endProfiling();
    await session.release();
    const file = readdirSync(out).find((f) => f.endsWith('.json'));
    if (!file) throw new Error(`ORT wrote no profile in ${out}`);
    const events = JSON.parse(readFileSync(join(out, file), 'utf8')) as ProfileEvent[];
    const placement: Placement = {};
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.op_name || !e.args.provider) continue;
      const byProvider = (placement[e.args.op_name] ??= {});
      byProvider[e.args.provider] = (byProvider[e.args.provider] ?? 0) + 1;
    }
    return placement;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Op types that ran (at least partly) on a provider other than `provider`. */
export function offProvider(placement: Placement, provider: string): string[] {
  return Object.entries(placement)
    .filter(([, byProvider]) => Object.keys(byProvider).some((p) => p !== provider))
    .map(([op, byProvider]) => `${op} (${Object.entries(byProvider).map(([p, n]) => `${p} ×${n}`).join(', ')})`);
}

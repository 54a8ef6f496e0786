import type { OnnxGraph } from './onnx/graph.js';
import type { KvPlacement } from './options.js';

/**
 * The tree graph's edges that do not depend on the model family: where each layer's K/V comes from and goes to,
 * and the greedy ids appended after the logits. Kept apart from the decoder body so families can change inside
 * without touching how the runtime drives the graph.
 */
export const boundary = {
  nextIds: 'next_ids',
  nextTop: 'next_top',
  kvKeep: 'kv_keep',
  logitsRows: 'logits_rows',
  headRows: 'head_rows',
  pastKey: (i: number) => `past.${i}.key`,
  pastValue: (i: number) => `past.${i}.value`,
  newKey: (i: number) => `new.${i}.key`,
  newValue: (i: number) => `new.${i}.value`,
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
  /** The batched layout: past rows of the sequence in slot s (slot 0: the rows after its old ones). */
  slotPastKey: (i: number, s: number) => `past.${i}.key.${s}`,
  slotPastValue: (i: number, s: number) => `past.${i}.value.${s}`,
  /** The batched layout, slot 0: its first past rows, attended to in place (see attention.ts oldPastRows). */
  oldPastKey: (i: number) => `past.${i}.key.old`,
  oldPastValue: (i: number) => `past.${i}.value.old`,
};

/**
 * Per layer: given the new k/v rows [1,S,kvD], returns the past [1,P,kvD] attention should see (one per slot in the
 * batched layout, where slot 0's past also has its old rows apart: `old`), and wires the outputs.
 */
export type KvBoundary = (layer: number, kNew: string, vNew: string) => [pastK: string[], pastV: string[], old?: [key: string, value: string]];

/**
 * 'host': the runtime owns the cache; past rows come in as views of its buffers and only the S new rows go out.
 * 'batch': the same for a batched forward of `slots` sequences: each slot's past comes in on its own, and the N
 * new rows of all sequences go out ragged.
 * 'device': the cache is the graph's own output fed back next step ('present' = kept past + new rows). The rows
 * to keep from the fed-back past come in as `kv_keep` (int64 row indices), so trimming a rejected draft is a
 * Gather on the device rather than a round trip through host memory.
 */
export function kvBoundary(g: OnnxGraph, placement: KvPlacement | 'batch', numLayers: number, kvD: number, slots = 1): KvBoundary {
  const past: [string[], string[], [string, string]?][] = [];
  const input = (name: string, rows: string) => g.input(name, 'float32', [1, rows, kvD]);
  for (let i = 0; i < numLayers; i++) {
    if (placement !== 'batch') past.push([[input(boundary.pastKey(i), 'P')], [input(boundary.pastValue(i), 'P')]]);
    else {
      const each = (name: (i: number, s: number) => string) => Array.from({ length: slots }, (_, s) => input(name(i, s), `P${s}`));
      past.push([each(boundary.slotPastKey), each(boundary.slotPastValue), [input(boundary.oldPastKey(i), 'A'), input(boundary.oldPastValue(i), 'A')]]);
    }
  }
  if (placement !== 'device') {
    return (i, k, v) => {
      g.node('Identity', [k], [boundary.newKey(i)]);
      g.node('Identity', [v], [boundary.newValue(i)]);
      g.output(boundary.newKey(i), 'float32', [1, 'S', kvD]);
      g.output(boundary.newValue(i), 'float32', [1, 'S', kvD]);
      return past[i];
    };
  }
  const keep = g.input(boundary.kvKeep, 'int64', ['R']);
  return (i, k, v) => {
    const kept = (x: string[]) => g.op('Gather', [x[0], keep], { axis: { i: 1 } });
    const [pk, pv] = [kept(past[i][0]), kept(past[i][1])];
    g.node('Concat', [pk, k], [boundary.presentKey(i)], { axis: { i: 1 } });
    g.node('Concat', [pv, v], [boundary.presentValue(i)], { axis: { i: 1 } });
    g.output(boundary.presentKey(i), 'float32', [1, 'T', kvD]);
    g.output(boundary.presentValue(i), 'float32', [1, 'T', kvD]);
    return [[pk], [pv]];
  };
}

/**
 * Ids per row of `next_top`: what the model ranks highest after each token, for drafting (lookahead's recycled
 * table), without S × vocab logits leaving the device.
 */
export const TOP_IDS = 8;

/** `next_top`'s ids per row for a vocabulary of `vocab` tokens. */
export function topIdsFor(vocab: number): number {
  return Math.min(TOP_IDS, vocab);
}

/** The graph's outputs after the LM head: what lmHead writes into, and `finish` to declare them once it has. */
export interface HeadOutputs {
  /** The final hidden rows the head computes: `head_rows` (int64 [H], indices into the forward's S rows) of `h`. */
  select(h: string): string;
  logits: string;
  finish(): void;
}

/**
 * The head runs on the rows named by `head_rows` only, H of the S, and every output below has H rows: a prompt
 * chunk needs none but its last (the first token), and on a 150k vocabulary the head of a 256-row chunk is a quarter
 * of the chunk's work, plus its S × vocab logits and their TopK. Decode steps name every row.
 * Both layouts add `next_ids` int64 [1,H], the argmax of every logits row: greedy verification then reads H ids
 * instead of H × vocab floats (and skips a JS scan of them); and `next_top` int64 [1,H,TOP_IDS], each row's best
 * ids (TopK), which drafting learns from. A run computes only the outputs it fetches, so steps that do not draft
 * pay nothing for it.
 * 'device' also takes `logits_rows` (int64 [1]) and returns only that many logits rows. onnxruntime-node 1.30
 * binds device outputs through one IO binding per session that keeps every output bound from run to run, so each
 * run must fetch every output: a step that needs no logits asks for 0 rows, and nothing of them moves.
 */
export function headOutputs(g: OnnxGraph, placement: KvPlacement, logitsName: string, vocab: number): HeadOutputs {
  const full = placement === 'host' ? logitsName : g.fresh('full_logits');
  return {
    select: (h) => g.op('Gather', [h, g.input(boundary.headRows, 'int64', ['H'])], { axis: { i: 1 } }),
    logits: full,
    finish() {
      if (placement === 'device') {
        const rows = g.input(boundary.logitsRows, 'int64', [1]);
        g.node('Slice', [full, g.constInt64('zero_rows', [0]), rows, g.constInt64('row_axis', [1])], [logitsName]);
      }
      g.output(logitsName, 'float32', [1, placement === 'host' ? 'H' : 'L', vocab]);
      // int64 as ArgMax makes it: a Cast to int32 has no WebGPU kernel and would run on the CPU.
      g.node('ArgMax', [full], [boundary.nextIds], { axis: { i: -1 }, keepdims: { i: 0 } });
      g.output(boundary.nextIds, 'int64', [1, 'H']);
      const k = topIdsFor(vocab);
      g.node('TopK', [full, g.constInt64('top_k', [k])], [g.fresh('top_values'), boundary.nextTop], { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } });
      g.output(boundary.nextTop, 'int64', [1, 'H', k]);
    },
  };
}

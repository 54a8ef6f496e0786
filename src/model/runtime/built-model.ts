import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ModelLoadError } from '../../errors.js';
import { layerWeights, LONE_FILE, META_FILE, MODEL_FILE, type BuildMeta } from '../builder/build.js';
import type { LlamaConfig, LoadedModel, ModelInfo } from '../types.js';
import { DeviceSequence, deviceOutputLocations } from './device-sequence.js';
import { HostSequence, SequenceBuffers } from './host-sequence.js';
import { KvCache } from './kv-cache.js';
import { forwardEach } from './forward-each.js';
import { createSession, type RuntimeOptions } from './session.js';
import { openSlabModel } from './slab-model.js';
import { BATCH_SLOTS, io, isBatched } from '../builder/llama-graph.js';
import { topIdsFor } from '../builder/graph-boundary.js';

/** Opens a tree-layout model written by the builder (model.onnx + lookahead-model.json). */
export async function openBuiltModel(dir: string, options: RuntimeOptions = {}): Promise<LoadedModel> {
  const metaPath = join(dir, META_FILE);
  if (!existsSync(metaPath)) throw new ModelLoadError(`${dir} has no ${META_FILE}: not a model built by lookahead-proxy`);
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as BuildMeta;
  if (meta.options.layout !== 'tree') throw new ModelLoadError(`${dir} holds a ${meta.options.layout} export; open it with openForeignModel`);
  if (meta.builderVersion < FIRST_WITH_NEXT_IDS) throw new ModelLoadError(`${dir} was built by an older builder (no next_ids output); rebuild it with \`npm run cli -- build-model\``);
  const c = meta.config;
  const kvPlacement = meta.options.kv ?? 'host';
  const { session, ep } = await createSession(join(dir, MODEL_FILE), options, kvPlacement === 'device' ? { preferredOutputLocation: deviceOutputLocations(c.numLayers) } : {});
  if (kvPlacement === 'device' && ep === 'cpu') {
    throw new ModelLoadError(`${dir} keeps its K/V on the device: open it with a GPU execution provider, or build it with kv 'host' for the CPU`);
  }
  const info: ModelInfo = {
    id: options.id ?? basename(dir),
    contextLength: Math.min(options.contextLength ?? c.maxPositions, c.maxPositions),
    vocabSize: c.vocabSize,
    bosTokenId: c.bosTokenId,
    eosTokenIds: c.eosTokenIds,
    treeMask: true,
    executionProvider: ep,
    kvPlacement,
    kvBytesPerToken: 2 * c.numLayers * c.numKvHeads * c.headDim * 4,
    headShare: headShare(c),
    maxBatch: 1,
    // Graphs built before the top-k output serve without it (drafting then learns nothing from the model).
    ...(session.outputNames.includes(io.nextTop) ? { topIds: topIdsFor(c.vocabSize) } : {}),
  };
  // Graphs with device K/V or a fused attention op carry one sequence per forward.
  if (session.inputNames.includes(io.slotSizes)) {
    const lonePath = join(dir, LONE_FILE);
    let lone = null;
    try {
      if (existsSync(lonePath)) lone = (await createSession(lonePath, options)).session;
    } catch (err) {
      await session.release();
      throw err;
    }
    return openSlabModel(session, lone, { ...info, maxBatch: BATCH_SLOTS }, c);
  }
  if (isBatched(meta.options)) {
    await session.release();
    throw new ModelLoadError(`${dir} holds an older batched layout; rebuild it with \`npm run cli -- build-model\``);
  }
  const rowSize = c.numKvHeads * c.headDim;
  if (kvPlacement === 'device') {
    return { info, newSequence: () => new DeviceSequence(session, info, c.numLayers, rowSize), forwardBatch: forwardEach, dispose: () => session.release() };
  }
  const pool: SequenceBuffers[] = [];
  const take = () => pool.pop() ?? new SequenceBuffers(new KvCache(c.numLayers, rowSize, info.contextLength), info.vocabSize);
  const give = (b: SequenceBuffers) => {
    if (pool.length < POOLED_SEQUENCES) pool.push(b);
  };
  return {
    info,
    newSequence: () => new HostSequence(session, info, c.numLayers, rowSize, take(), give),
    forwardBatch: forwardEach,
    dispose: () => session.release(),
  };
}

/** LlamaConfig's head multiply-adds per token over the whole forward's (projections, MLP and head; attention left out). */
function headShare(c: LlamaConfig): number {
  const head = c.vocabSize * c.hiddenSize;
  return head / (head + c.numLayers * layerWeights(c));
}

/**
 * Buffers of ended sequences kept for the next ones. Every request opens a sequence: fresh KV caches and logits
 * (megabytes of external memory each) made V8 run a full mark-compact every few requests.
 */
const POOLED_SEQUENCES = 2;

/** The builder version that added the in-graph argmax the runtime relies on. */
const FIRST_WITH_NEXT_IDS = 2;

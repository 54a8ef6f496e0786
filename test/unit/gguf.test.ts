import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelLoadError, UnsupportedArchitectureError } from '../../src/errors.js';
import { hfTensorShapes } from '../../src/model/builder/sources/hf-config.js';
import { dequantize } from '../../src/model/builder/sources/gguf/ggml-types.js';
import { readGgufFile } from '../../src/model/builder/sources/gguf/gguf-file.js';
import { openGguf } from '../../src/model/builder/sources/gguf/open-gguf.js';
import { GgufValueType, encodeGguf, kv, writeGguf, type GgufSpec, type GgufTensorSpec } from './gguf-writer.js';
import { withContextLength } from '../../src/model/builder/source.js';

const dir = mkdtempSync(join(tmpdir(), 'gguf-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q5_K: 13, BF16: 30 };
const H = 32;
const FFN = 64;
const TOKENS = ['<unk>', '<s>', '</s>', '▁a', 'a', 'b'];

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const f32Tensor = (name: string, dims: number[], seed: number): GgufTensorSpec => {
  const n = dims.reduce((a, b) => a * b, 1);
  return { name, dims, type: T.F32, data: bytesOf(Float32Array.from({ length: n }, (_, i) => seed + i / 1000)) };
};

function q8Blocks(blocks: number): Uint8Array {
  const out = Buffer.alloc(blocks * 34);
  for (let b = 0; b < blocks; b++) {
    out.writeUInt16LE(0x3800, b * 34); // 0.5
    for (let j = 0; j < 32; j++) out.writeInt8(((b * 32 + j) % 256) - 128, b * 34 + 2 + j);
  }
  return out;
}

function q4Blocks(blocks: number): Uint8Array {
  const out = Buffer.alloc(blocks * 18);
  for (let b = 0; b < blocks; b++) {
    out.writeUInt16LE(0x4000, b * 18); // 2.0
    for (let j = 0; j < 16; j++) out.writeUInt8((j & 0xf) | ((15 - j) << 4), b * 18 + 2 + j);
  }
  return out;
}

function tinySpec(overrides: { metadata?: GgufSpec['metadata']; tensors?: GgufTensorSpec[]; version?: number; alignment?: number } = {}): GgufSpec {
  const blk = (s: string): string => `blk.0.${s}`;
  return {
    version: overrides.version,
    alignment: overrides.alignment,
    metadata: {
      'general.architecture': kv.str('llama'),
      'llama.context_length': kv.u32(64),
      'llama.embedding_length': kv.u32(H),
      'llama.block_count': kv.u32(1),
      'llama.feed_forward_length': kv.u32(FFN),
      'llama.attention.head_count': kv.u32(4),
      'llama.attention.head_count_kv': kv.u32(2),
      'llama.attention.layer_norm_rms_epsilon': kv.f32(1e-6),
      'llama.rope.freq_base': kv.f32(500000),
      'tokenizer.ggml.model': kv.str('llama'),
      'tokenizer.ggml.tokens': kv.strs(TOKENS),
      'tokenizer.ggml.bos_token_id': kv.u32(1),
      'tokenizer.ggml.eos_token_id': kv.u32(2),
      ...(overrides.alignment !== undefined ? { 'general.alignment': kv.u32(overrides.alignment) } : {}),
      ...overrides.metadata,
    },
    tensors: overrides.tensors ?? [
      { name: 'token_embd.weight', dims: [H, TOKENS.length], type: T.F16, data: bytesOf(Uint16Array.from({ length: H * TOKENS.length }, (_, i) => 0x3c00 + i)) },
      { name: 'output_norm.weight', dims: [H], type: T.BF16, data: bytesOf(Uint16Array.from({ length: H }, (_, i) => 0x3f80 + i)) },
      f32Tensor(blk('attn_norm.weight'), [H], 1),
      { name: blk('attn_q.weight'), dims: [H, H], type: T.Q8_0, data: q8Blocks(H) },
      { name: blk('attn_k.weight'), dims: [H, 16], type: T.Q4_0, data: q4Blocks(16) },
      f32Tensor(blk('attn_v.weight'), [H, 16], 2),
      f32Tensor(blk('attn_output.weight'), [H, H], 3),
      f32Tensor(blk('ffn_norm.weight'), [H], 4),
      f32Tensor(blk('ffn_gate.weight'), [H, FFN], 5),
      f32Tensor(blk('ffn_up.weight'), [H, FFN], 6),
      f32Tensor(blk('ffn_down.weight'), [FFN, H], 7),
    ],
  };
}

describe('GGUF reader on a hand-made file', () => {
  const path = join(dir, 'tiny.gguf');
  writeGguf(path, tinySpec());

  it('derives the llama config, tied when output.weight is absent', () => {
    const src = openGguf(path);
    expect(src.config).toEqual({
      vocabSize: 6, hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 64,
      rmsNormEps: Math.fround(1e-6), ropeTheta: 500000, ropeStyle: 'interleaved', tiedEmbeddings: true, attentionBias: false,
      maxPositions: 64, bosTokenId: 1, eosTokenIds: [2],
    });
    expect(src.has('lm_head.weight')).toBe(false);
    expect(withContextLength(src, 512).config.maxPositions).toBe(512);
    expect(withContextLength(src, 512).cacheKey).not.toBe(src.cacheKey);
  });

  it('maps every tensor to its HF name with the HF element count', () => {
    const src = openGguf(path);
    for (const [name, shape] of hfTensorShapes(src.config)) {
      expect(src.tensor(name).length, name).toBe(shape.reduce((a, b) => a * b, 1));
    }
  });

  it('dequantises F32, F16, BF16, Q8_0 and Q4_0', () => {
    const src = openGguf(path);
    const emb = src.tensor('model.embed_tokens.weight');
    expect(emb[0]).toBe(1);
    expect(emb[191]).toBe(1 + 191 / 1024);
    const norm = src.tensor('model.norm.weight');
    expect(norm[5]).toBe(1 + 5 / 128);
    const q = src.tensor('model.layers.0.self_attn.q_proj.weight');
    for (const i of [0, 1, 127, 128, 255, 256, 1023]) expect(q[i]).toBe(((i % 256) - 128) * 0.5);
    const k = src.tensor('model.layers.0.self_attn.k_proj.weight');
    expect(Array.from(k.subarray(0, 32))).toEqual([
      ...Array.from({ length: 16 }, (_, j) => (j - 8) * 2),
      ...Array.from({ length: 16 }, (_, j) => (15 - j - 8) * 2),
    ]);
    expect(src.tensor('model.layers.0.mlp.down_proj.weight')[5]).toBeCloseTo(7.005, 6);
  });

  it('reads every metadata value type, including nested arrays, and honours general.alignment', () => {
    const p = join(dir, 'meta.gguf');
    writeGguf(p, tinySpec({
      version: 2,
      alignment: 64,
      metadata: {
        u8: { type: GgufValueType.U8, value: 200 },
        i8: { type: GgufValueType.I8, value: -100 },
        u16: { type: GgufValueType.U16, value: 60000 },
        i16: { type: GgufValueType.I16, value: -30000 },
        i32: kv.i32(-5),
        f64: { type: GgufValueType.F64, value: 0.1 },
        u64: { type: GgufValueType.U64, value: 2n ** 40n },
        big: { type: GgufValueType.U64, value: 2n ** 63n },
        i64: { type: GgufValueType.I64, value: -7n },
        yes: { type: GgufValueType.BOOL, value: true },
        utf8: kv.str('héllo ▁ 世界'),
        scores: kv.f32s([0.5, -1.25]),
        types: kv.i32s([1, 6]),
        nested: { type: GgufValueType.ARRAY, elementType: GgufValueType.ARRAY, items: [kv.strs(['x']), kv.i32s([3])] },
      },
    }));
    const file = readGgufFile(p);
    expect(file.version).toBe(2);
    expect(file.alignment).toBe(64);
    expect(file.dataOffset % 64).toBe(0);
    const m = file.metadata;
    expect([m.get('u8'), m.get('i8'), m.get('u16'), m.get('i16'), m.get('i32'), m.get('f64'), m.get('u64'), m.get('big'), m.get('i64'), m.get('yes')])
      .toEqual([200, -100, 60000, -30000, -5, 0.1, 2 ** 40, 2n ** 63n, -7, true]);
    expect(m.get('utf8')).toBe('héllo ▁ 世界');
    expect(m.get('scores')).toEqual(new Float32Array([0.5, -1.25]));
    expect(m.get('types')).toEqual(new Int32Array([1, 6]));
    expect(m.get('nested')).toEqual([['x'], new Int32Array([3])]);
    expect(openGguf(p).tensor('model.norm.weight')[5]).toBe(1 + 5 / 128);
  });

  it('reports an untied output and q/k/v biases', () => {
    const spec = tinySpec();
    spec.tensors.push(f32Tensor('output.weight', [H, TOKENS.length], 9));
    for (const [n, rows] of [['q', H], ['k', 16], ['v', 16]] as const) spec.tensors.push(f32Tensor(`blk.0.attn_${n}.bias`, [rows], 0));
    const p = join(dir, 'untied.gguf');
    writeGguf(p, spec);
    const src = openGguf(p);
    expect(src.config.tiedEmbeddings).toBe(false);
    expect(src.config.attentionBias).toBe(true);
    expect(src.tensor('lm_head.weight')[0]).toBe(9);
    expect(src.tensor('model.layers.0.self_attn.k_proj.bias').length).toBe(16);
  });
});

describe('GGUF errors', () => {
  const good = encodeGguf(tinySpec());
  const write = (name: string, bytes: Uint8Array): string => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };

  it('rejects a bad magic and an unknown version', () => {
    const bad = Buffer.from(good);
    bad.write('GGML', 0, 'ascii');
    expect(() => openGguf(write('magic.gguf', bad))).toThrow(/magic\.gguf is not a GGUF file \(bad magic\)/);
    const v1 = Buffer.from(good);
    v1.writeUInt32LE(1, 4);
    expect(() => openGguf(write('v1.gguf', v1))).toThrow(/GGUF version 1 is not supported/);
  });

  it('rejects files cut anywhere: in the metadata, the tensor infos or the data', () => {
    const dataOffset = readGgufFile(write('whole.gguf', good)).dataOffset;
    for (const cut of [2, 20, 200, dataOffset - 10, dataOffset + 100, good.length - 1]) {
      const p = write(`cut-${cut}.gguf`, good);
      truncateSync(p, cut);
      expect(() => openGguf(p), `cut at ${cut}`).toThrow(ModelLoadError);
      expect(() => openGguf(p), `cut at ${cut}`).toThrow(/is (truncated|not a GGUF file)/);
    }
  });

  it('reports data that vanished after opening', () => {
    const p = write('shrink.gguf', good);
    const src = openGguf(p);
    truncateSync(p, readGgufFile(p).dataOffset + 8);
    expect(() => src.tensor('model.layers.0.mlp.down_proj.weight')).toThrow(/shrink\.gguf is truncated/);
  });

  it('names an unsupported tensor type and an unsupported architecture', () => {
    const spec = tinySpec();
    spec.tensors[2] = { name: 'blk.0.attn_norm.weight', dims: [H], type: T.Q5_K, data: new Uint8Array(176) };
    expect(() => openGguf(write('q5k.gguf', encodeGguf(spec)))).toThrow(/type Q5_K, which is not supported/);
    const gpt = tinySpec({ metadata: { 'general.architecture': kv.str('gpt2') } });
    expect(() => openGguf(write('gpt2.gguf', encodeGguf(gpt)))).toThrow(UnsupportedArchitectureError);
    expect(() => openGguf(write('gpt2.gguf', encodeGguf(gpt)))).toThrow(/architecture "gpt2" is not supported/);
    const longrope = tinySpec({ metadata: { 'llama.rope.scaling.type': kv.str('longrope'), 'llama.rope.scaling.factor': kv.f32(4) } });
    expect(() => openGguf(write('longrope.gguf', encodeGguf(longrope)))).toThrow(/llama\.rope\.scaling\.type "longrope" is not supported/);
    const deepseekYarn = tinySpec({ metadata: { 'llama.rope.scaling.type': kv.str('yarn'), 'llama.rope.scaling.factor': kv.f32(4), 'llama.rope.scaling.yarn_log_multiplier': kv.f32(0.1) } });
    expect(() => openGguf(write('yarn.gguf', encodeGguf(deepseekYarn)))).toThrow(/yarn_log_multiplier/);
    const partial = tinySpec({ metadata: { 'llama.rope.dimension_count': kv.u32(4) } });
    expect(() => openGguf(write('partial.gguf', encodeGguf(partial)))).toThrow(/partial RoPE is read for phi3 only/);
  });

  it('reads linear RoPE scaling as frequency divisors and a llama window for the graph', () => {
    const src = openGguf(write('linear.gguf', encodeGguf(tinySpec({
      metadata: { 'llama.rope.scaling.type': kv.str('linear'), 'llama.rope.scaling.factor': kv.f32(4), 'llama.attention.sliding_window': kv.u32(16) },
    }))));
    expect(src.config.ropeFreqDivisors).toEqual([4, 4, 4, 4]);
    expect(src.config.slidingWindow).toBe(16);
  });

  it('names missing tensors and metadata, and shape mismatches', () => {
    const spec = tinySpec();
    spec.tensors = spec.tensors.filter((t) => t.name !== 'blk.0.ffn_up.weight');
    expect(() => openGguf(write('missing.gguf', encodeGguf(spec)))).toThrow(/missing tensors model\.layers\.0\.mlp\.up_proj\.weight/);
    const meta = tinySpec();
    delete meta.metadata['llama.block_count'];
    expect(() => openGguf(write('nometa.gguf', encodeGguf(meta)))).toThrow(/missing metadata llama\.block_count/);
    const shape = tinySpec({ metadata: { 'llama.feed_forward_length': kv.u32(96) } });
    expect(() => openGguf(write('shape.gguf', encodeGguf(shape)))).toThrow(/gate_proj\.weight has shape \[64, 32\], the config implies \[96, 32\]/);
  });

  it('rejects a corrupt string length', () => {
    const bad = Buffer.from(good);
    bad.writeBigUInt64LE(2n ** 50n, 24); // length of the first metadata key
    expect(() => openGguf(write('strlen.gguf', bad))).toThrow(/is corrupt: metadata key claims/);
  });
});

describe('K-quant dequantisation', () => {
  it('decodes Q4_K: 6-bit packed scales and mins over eight 32-element sub-blocks', () => {
    const sc = [1, 2, 63, 17, 40, 5, 33, 62];
    const mn = [0, 3, 20, 63, 1, 48, 7, 16];
    const block = Buffer.alloc(144);
    block.writeUInt16LE(0x3c00, 0); // d = 1
    block.writeUInt16LE(0x3800, 2); // dmin = 0.5
    for (let j = 0; j < 4; j++) {
      block[4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
      block[4 + j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
      block[4 + j + 8] = (sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4);
    }
    const nib = (s: number, e: number): number => (s * 7 + e * 3) % 16;
    for (let pair = 0; pair < 4; pair++) {
      for (let e = 0; e < 32; e++) block[16 + pair * 32 + e] = nib(2 * pair, e) | (nib(2 * pair + 1, e) << 4);
    }
    const out = dequantize(12, new Uint8Array(block), 256);
    for (let s = 0; s < 8; s++) {
      for (let e = 0; e < 32; e++) expect(out[s * 32 + e]).toBe(sc[s] * nib(s, e) - 0.5 * mn[s]);
    }
  });

  it('decodes Q6_K: 4 low bits + 2 high bits, signed 8-bit scales per 16 elements', () => {
    const block = Buffer.alloc(210);
    const scales = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? i + 1 : -(i + 1)));
    scales.forEach((s, i) => block.writeInt8(s, 192 + i));
    block.writeUInt16LE(0x3400, 208); // d = 0.25
    const q6 = (i: number): number => (i * 37) % 64;
    for (let i = 0; i < 256; i++) {
      const half = i >> 7;
      const p = i & 127;
      const r = p >> 5;
      const l = p & 31;
      const lo = half * 64 + l + (r & 1) * 32;
      block[lo] |= r < 2 ? q6(i) & 0xf : (q6(i) & 0xf) << 4;
      block[128 + half * 32 + l] |= (q6(i) >> 4) << (2 * r);
    }
    const out = dequantize(14, new Uint8Array(block), 256);
    for (let i = 0; i < 256; i++) {
      const half = i >> 7;
      const p = i & 127;
      const scale = scales[half * 8 + ((p & 31) >> 4) + 2 * (p >> 5)];
      expect(out[i], `element ${i}`).toBe(0.25 * scale * (q6(i) - 32));
    }
  });
});

it('keeps the test writer honest: the file starts with the GGUF magic', () => {
  const p = join(dir, 'magic-check.gguf');
  writeGguf(p, tinySpec());
  expect(readFileSync(p).subarray(0, 4).toString('ascii')).toBe('GGUF');
});

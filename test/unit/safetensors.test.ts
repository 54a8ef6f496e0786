import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../src/errors.js';
import { openSafetensors, openSafetensorsIndex } from '../../src/model/builder/sources/safetensors.js';
import { writeSafetensors } from './safetensors-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const u16 = (...bits: number[]): Uint8Array => new Uint8Array(new Uint16Array(bits).buffer);
const f32 = (...values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);

describe('safetensors reader', () => {
  const path = join(dir, 'model.safetensors');
  writeSafetensors(path, {
    a: { dtype: 'F32', shape: [2, 2], data: f32(1, -2.5, 3e-8, 1e30) },
    // 1, -0, smallest subnormal, largest subnormal, max normal, -inf, inf, 0.333...
    h: { dtype: 'F16', shape: [8], data: u16(0x3c00, 0x8000, 0x0001, 0x03ff, 0x7bff, 0xfc00, 0x7c00, 0x3555) },
    b: { dtype: 'BF16', shape: [1, 3], data: u16(0x3f80, 0xc040, 0x4049) },
  });

  it('reads the header and converts every dtype to fp32', () => {
    const st = openSafetensors(path);
    expect([...st.tensors.keys()].sort()).toEqual(['a', 'b', 'h']);
    expect(st.tensors.get('a')!.shape).toEqual([2, 2]);
    expect(Array.from(st.read('a'))).toEqual(Array.from(new Float32Array([1, -2.5, 3e-8, 1e30])));
    const h = st.read('h');
    expect(h[0]).toBe(1);
    expect(Object.is(h[1], -0)).toBe(true);
    expect(h[2]).toBe(2 ** -24);
    expect(h[3]).toBe(1023 * 2 ** -24);
    expect(h[4]).toBe(65504);
    expect(h[5]).toBe(-Infinity);
    expect(h[6]).toBe(Infinity);
    expect(h[7]).toBeCloseTo(1 / 3, 3);
    expect(Array.from(st.read('b'))).toEqual([1, -3, 3.140625]);
  });

  it('names the file when a tensor is missing', () => {
    expect(() => openSafetensors(path).read('nope')).toThrow(/nope.*model\.safetensors/);
  });

  it('rejects a file cut inside the data, naming the path', () => {
    const cut = join(dir, 'cut.safetensors');
    writeSafetensors(cut, { a: { dtype: 'F32', shape: [4], data: f32(1, 2, 3, 4) } });
    truncateSync(cut, 8 + 60);
    expect(() => openSafetensors(cut)).toThrow(ModelLoadError);
    expect(() => openSafetensors(cut)).toThrow(/cut\.safetensors/);
  });

  it('reports a file that shrank after opening', () => {
    const shrink = join(dir, 'shrink.safetensors');
    writeSafetensors(shrink, { a: { dtype: 'F32', shape: [4], data: f32(1, 2, 3, 4) } });
    const st = openSafetensors(shrink);
    truncateSync(shrink, 20);
    expect(() => st.read('a')).toThrow(/shrink\.safetensors is truncated/);
  });

  it('rejects a header length beyond the file, unknown dtypes and inconsistent offsets', () => {
    const short = join(dir, 'short.safetensors');
    writeFileSync(short, Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x7b]));
    expect(() => openSafetensors(short)).toThrow(/short\.safetensors is truncated or not safetensors/);

    const i8 = join(dir, 'i8.safetensors');
    writeSafetensors(i8, { q: { dtype: 'I8', shape: [4], data: new Uint8Array(4) } });
    expect(() => openSafetensors(i8)).toThrow(/tensor q: dtype "I8" is not supported/);

    const wrong = join(dir, 'wrong.safetensors');
    writeSafetensors(wrong, { a: { dtype: 'F32', shape: [3], data: f32(1, 2, 3, 4) } });
    expect(() => openSafetensors(wrong)).toThrow(/hold 16 bytes, shape needs 12/);
  });

  it('follows a sharded index', () => {
    const shardDir = mkdtempSync(join(dir, 'sharded-'));
    writeSafetensors(join(shardDir, 'model-00001-of-00002.safetensors'), { x: { dtype: 'F32', shape: [1], data: f32(7) } });
    writeSafetensors(join(shardDir, 'model-00002-of-00002.safetensors'), { y: { dtype: 'BF16', shape: [1], data: u16(0x4000) } });
    const index = join(shardDir, 'model.safetensors.index.json');
    writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } }));
    const st = openSafetensorsIndex(index);
    expect(st.files).toHaveLength(2);
    expect(Array.from(st.read('x'))).toEqual([7]);
    expect(Array.from(st.read('y'))).toEqual([2]);

    writeFileSync(index, JSON.stringify({ weight_map: { x: 'model-00002-of-00002.safetensors' } }));
    expect(() => openSafetensorsIndex(index)).toThrow(/does not hold it/);
  });
});

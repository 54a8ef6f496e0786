import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildWideModel, isBuilt, resolveBenchModel, WIDEN_SOURCE, WIDEN_TOOL } from '../../bench/bench-model.js';
import { BenchError } from '../../bench/errors.js';

const root = mkdtempSync(join(tmpdir(), 'bench-model-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const shared = existsSync(WIDEN_TOOL) && existsSync(WIDEN_SOURCE);
if (!shared) console.warn(`skipping the widen-model build test: ${WIDEN_TOOL} or ${WIDEN_SOURCE} is absent`);

describe('the benchmark model', () => {
  it('says clearly what is missing when the shared tool is absent', () => {
    const out = join(root, 'missing');
    expect(() => buildWideModel(out, () => {}, { tool: join(root, 'no-tool.mjs'), source: WIDEN_SOURCE })).toThrow(BenchError);
    expect(() => buildWideModel(out, () => {}, { tool: join(root, 'no-tool.mjs'), source: WIDEN_SOURCE })).toThrow(/needs the shared tool at .*no-tool\.mjs/);
    expect(existsSync(out)).toBe(false);
  });

  it('passes any other --model through as given', () => {
    expect(resolveBenchModel('some/dir', () => {})).toBe('some/dir');
    expect(resolveBenchModel(null, () => {})).toBeNull();
  });

  it.skipIf(!shared)('builds the 150M-cost model from chat-llama-5m once, then keeps it', () => {
    const out = join(root, 'wide');
    const lines: string[] = [];
    expect(buildWideModel(out, (l) => lines.push(l))).toBe(true);
    expect(isBuilt(out)).toBe(true);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, number>;
    expect(config).toMatchObject({ hidden_size: 1024, num_hidden_layers: 12, intermediate_size: 2816 });
    for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(lines.join('\n')).toMatch(/150\.0M parameters/);
    expect(buildWideModel(out, (l) => lines.push(l))).toBe(false);
    expect(lines.at(-1)).toMatch(/already built/);
  });
});

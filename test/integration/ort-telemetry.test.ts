import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../helpers/engine.js';

/**
 * onnxruntime 1.30 writes telemetry files (a debug log per process in the temp folder, a device id and a database
 * under ~/.cache) unless ORT_DISABLE_TELEMETRY is set; the engine sets it before its worker opens a session, so a
 * server writes nothing outside its cache folder.
 */
let engine: TestEngine | undefined;
afterAll(async () => engine?.close());

describe('onnxruntime telemetry', () => {
  it('is off: an engine that loaded a model and decoded leaves no telemetry log for its process', async () => {
    engine = await startEngine(['--model', 'builtin:synthetic']);
    expect((await engine.run([1, 2, 3], { maxTokens: 4 })).ids.length).toBeGreaterThan(0);
    expect(existsSync(join(tmpdir(), `mat-debug-${process.pid}.log`))).toBe(false);
    expect(process.env.ORT_DISABLE_TELEMETRY).toBe('1');
  });
});

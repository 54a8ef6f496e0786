import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { downloadModel, ensureModelLocal, looksLikeHubId } from '../../src/model/download.js';

const REPO = 'acme/tiny-llama';
const WEIGHTS = randomBytes(512 * 1024);
const FILES: Record<string, Buffer> = {
  'config.json': Buffer.from('{"model_type":"llama"}'),
  'tokenizer.json': Buffer.from('{"model":{}}'),
  'model.safetensors': WEIGHTS,
  'README.md': Buffer.from('not needed'),
};
const LFS = new Set(['model.safetensors']);

const gitBlobId = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

interface Behaviour {
  /** The first transfer of the weights stops after this many bytes (connection destroyed). */
  cutAt?: number;
  /** The first transfer of the weights has one byte flipped. */
  corruptOnce?: boolean;
}

/** Serves FILES under the hub's URL layout: the listing API and /{repo}/resolve/{rev}/{file}, with Range. */
function hub(behaviour: Behaviour) {
  const log: { path: string; range: string | null; bytes: number }[] = [];
  let weightsServed = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === `/api/models/${REPO}`) {
      const siblings = Object.entries(FILES).map(([name, b]) =>
        LFS.has(name) ? { rfilename: name, size: b.length, lfs: { sha256: createHash('sha256').update(b).digest('hex'), size: b.length } } : { rfilename: name, size: b.length, blobId: gitBlobId(b) },
      );
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: REPO, sha: 'abc', siblings }));
      return;
    }
    const m = new RegExp(`^/${REPO}/resolve/main/(.+)$`).exec(url.pathname);
    const file = m ? FILES[decodeURIComponent(m[1])] : undefined;
    if (!m || !file) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const range = req.headers.range ?? null;
    const from = range ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : 0;
    let body = file.subarray(from);
    const first = m[1] === 'model.safetensors' && weightsServed++ === 0;
    if (first && behaviour.corruptOnce) {
      body = Buffer.from(body);
      body[100] ^= 0xff;
    }
    log.push({ path: m[1], range, bytes: body.length });
    res.writeHead(range ? 206 : 200, { 'content-length': body.length, ...(range && { 'content-range': `bytes ${from}-${file.length - 1}/${file.length}` }) });
    if (first && behaviour.cutAt !== undefined) {
      res.write(body.subarray(0, behaviour.cutAt), () => setTimeout(() => res.socket?.destroy(), 20));
      log[log.length - 1].bytes = behaviour.cutAt;
      return;
    }
    res.end(body);
  });
  return {
    log,
    start: () => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    server: server as Server,
  };
}

const dirs: string[] = [];
function cacheDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'lookahead-dl-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const quiet = { log: () => {}, progress: () => {} };

describe('model download from a hub-compatible endpoint', () => {
  it('tells hub ids from paths', () => {
    expect(looksLikeHubId('acme/tiny-llama')).toBe(true);
    expect(looksLikeHubId('./models/x')).toBe(false);
    expect(looksLikeHubId('/abs/path')).toBe(false);
    expect(looksLikeHubId('model.gguf')).toBe(false);
  });

  it('fetches config, tokenizer and weights (not the rest), verified, and skips the network once complete', async () => {
    const h = hub({});
    const endpoint = await h.start();
    const cache = cacheDir();
    const progress: number[] = [];
    const dir = await downloadModel(REPO, { endpoint, token: null, cacheDir: cache, log: () => {}, progress: (f, done) => f === 'model.safetensors' && progress.push(done) });
    expect(readFileSync(join(dir, 'model.safetensors')).equals(WEIGHTS)).toBe(true);
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe('{"model_type":"llama"}');
    expect(existsSync(join(dir, 'README.md'))).toBe(false);
    expect(existsSync(join(dir, 'model.safetensors.part'))).toBe(false);
    expect(progress.at(-1)).toBe(WEIGHTS.length);
    await h.stop();
    // Offline now: a complete download is served from the cache without asking the hub.
    expect(await ensureModelLocal(REPO, cache, { endpoint, token: null }, () => {})).toBe(dir);
  });

  it('resumes an interrupted transfer with a Range request', async () => {
    const h = hub({ cutAt: 200 * 1024 });
    const endpoint = await h.start();
    const messages: string[] = [];
    const dir = await downloadModel(REPO, { endpoint, token: null, cacheDir: cacheDir(), log: (m) => messages.push(m), progress: () => {} });
    await h.stop();
    expect(readFileSync(join(dir, 'model.safetensors')).equals(WEIGHTS)).toBe(true);
    const weights = h.log.filter((r) => r.path === 'model.safetensors');
    expect(weights).toHaveLength(2);
    // It resumes from what reached the disk: the cut's bytes, or fewer where the socket's reset overtook the last
    // chunks (a timing that made this test flaky when it demanded exactly the cut).
    const from = Number(/^bytes=(\d+)-$/.exec(weights[1].range ?? '')?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(200 * 1024);
    // Only the missing tail travelled the second time.
    expect(weights[1].bytes).toBe(WEIGHTS.length - from);
    expect(messages.some((m) => /retrying/.test(m))).toBe(true);
  });

  it('detects a corrupted file by its checksum and fetches it again', async () => {
    const h = hub({ corruptOnce: true });
    const endpoint = await h.start();
    const messages: string[] = [];
    const dir = await downloadModel(REPO, { endpoint, token: null, cacheDir: cacheDir(), log: (m) => messages.push(m), progress: () => {} });
    await h.stop();
    expect(readFileSync(join(dir, 'model.safetensors')).equals(WEIGHTS)).toBe(true);
    expect(h.log.filter((r) => r.path === 'model.safetensors')).toHaveLength(2);
    expect(messages.some((m) => /checksum mismatch/.test(m))).toBe(true);
  });

  it('offline: a clear error naming the model and the endpoint', async () => {
    const h = hub({});
    const endpoint = await h.start();
    await h.stop(); // nothing listens there any more
    await expect(downloadModel(REPO, { endpoint, token: null, cacheDir: cacheDir(), ...quiet })).rejects.toThrow(
      new RegExp(`cannot download model ${REPO}: the hub at ${endpoint.replace(/[.]/g, '\\.')} could not be reached \\(ECONNREFUSED\\)`),
    );
  });

  it('an unknown repository is a 404 that says so', async () => {
    const h = hub({});
    const endpoint = await h.start();
    await expect(downloadModel('acme/nope', { endpoint, token: null, cacheDir: cacheDir(), ...quiet })).rejects.toThrow(/model acme\/nope was not found at .* \(HTTP 404\); if it is private or gated, set HF_TOKEN/);
    await h.stop();
  });
});

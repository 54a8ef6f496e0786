/**
 * `--model org/name`: fetches what a model needs from the Hugging Face hub (or a mirror with the same URL layout)
 * into the cache, once. Files land as `<file>.part`, resume with a Range request after an interruption, are
 * checked against the size and hash the hub lists for them, and are renamed into place only when they match; a
 * marker written last makes later starts skip the network entirely.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, fetch, type Response } from 'undici';
import { ModelLoadError } from '../errors.js';

export interface HubOptions {
  endpoint: string;
  token: string | null;
}

export interface DownloadOptions extends HubOptions {
  cacheDir: string;
  revision?: string;
  log: (message: string) => void;
  /** Progress of the file being fetched; default: a bar on stderr when it is a terminal. */
  progress?: (file: string, done: number, total: number | null) => void;
  /** Attempts per file (interrupted transfers resume; a corrupt file is fetched anew). */
  attempts?: number;
}

/** One entry of the hub's listing (`/api/models/{id}?blobs=true`). */
interface Sibling {
  rfilename: string;
  size?: number;
  /** Git blob id (SHA-1 over "blob <size>\0" + bytes): the check for small files stored in git. */
  blobId?: string;
  lfs?: { sha256: string; size: number };
}

interface Wanted {
  remote: string;
  /** Where it goes in the local directory: ONNX exports are flattened so model.onnx sits beside the tokenizer. */
  local: string;
  sibling: Sibling;
}

const MARKER = '.download-complete.json';
const METADATA = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model'];
const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** True for `org/name` that is not an existing path: the one form that means "download this". */
export function looksLikeHubId(spec: string): boolean {
  return HUB_ID.test(spec) && !existsSync(spec) && !spec.includes('..');
}

/**
 * Resolves a model spec to something on disk: a hub id is downloaded (or found already downloaded) and its
 * directory returned; anything else is returned unchanged for the local resolution to judge.
 */
export async function ensureModelLocal(spec: string | null, cacheDir: string, hub: HubOptions, log: (message: string) => void): Promise<string | null> {
  if (spec === null || !looksLikeHubId(spec)) return spec;
  return downloadModel(spec, { ...hub, cacheDir, log });
}

export async function downloadModel(repo: string, opts: DownloadOptions): Promise<string> {
  const revision = opts.revision ?? 'main';
  const dir = join(opts.cacheDir, 'hub', `models--${repo.replace('/', '--')}`, revision);
  const done = readMarker(dir);
  if (done && done.every((f) => existsSync(join(dir, f.local)) && statSync(join(dir, f.local)).size === f.size)) return dir;

  const endpoint = opts.endpoint.replace(/\/+$/, '');
  const client = new HubClient(repo, endpoint, opts.token);
  const wanted = chooseFiles(repo, await client.listing(revision));
  const progress = opts.progress ?? stderrBar();
  const total = wanted.reduce((n, w) => n + (w.sibling.lfs?.size ?? w.sibling.size ?? 0), 0);
  opts.log(`downloading ${repo} (${wanted.length} files, ${mb(total)}) from ${endpoint} into ${dir}`);
  for (const w of wanted) await fetchFile(client, revision, w, join(dir, w.local), opts.attempts ?? 4, progress, opts.log);
  writeFileSync(
    join(dir, MARKER),
    JSON.stringify(wanted.map((w) => ({ local: w.local, size: statSync(join(dir, w.local)).size }))),
  );
  opts.log(`downloaded ${repo} into ${dir}`);
  return dir;
}

/** Metadata and tokenizer files, then safetensors (index + shards) or else an ONNX export. */
function chooseFiles(repo: string, siblings: Sibling[]): Wanted[] {
  const byName = new Map(siblings.map((s) => [s.rfilename, s]));
  const pick = (remote: string, local = remote): Wanted => ({ remote, local, sibling: byName.get(remote)! });
  const out = METADATA.filter((f) => byName.has(f)).map((f) => pick(f));
  if (!byName.has('config.json')) throw new ModelLoadError(`${repo}: the repository has no config.json; is it a model repository?`);
  const index = byName.get('model.safetensors.index.json');
  const rootSafetensors = siblings.filter((s) => /^[^/]+\.safetensors$/.test(s.rfilename));
  if (index || rootSafetensors.length > 0) {
    // The index names the shards; the listing holds them too, so take every root .safetensors.
    if (index) out.push(pick(index.rfilename));
    for (const s of rootSafetensors) out.push(pick(s.rfilename));
    return out;
  }
  const onnxDir = ['onnx/model.onnx', 'model.onnx'].find((f) => byName.has(f));
  if (onnxDir) {
    const prefix = onnxDir.slice(0, -'model.onnx'.length);
    for (const s of siblings) {
      const m = s.rfilename.startsWith(prefix) ? /^model\.onnx(_data(_\d+)?)?$/.exec(s.rfilename.slice(prefix.length)) : null;
      if (m) out.push(pick(s.rfilename, s.rfilename.slice(prefix.length)));
    }
    return out;
  }
  throw new ModelLoadError(`${repo}: no *.safetensors weights and no ONNX export (onnx/model.onnx) in the repository`);
}

async function fetchFile(
  client: HubClient,
  revision: string,
  w: Wanted,
  target: string,
  attempts: number,
  progress: NonNullable<DownloadOptions['progress']>,
  log: (message: string) => void,
): Promise<void> {
  const expectedSize = w.sibling.lfs?.size ?? w.sibling.size ?? null;
  if (existsSync(target) && (expectedSize === null || statSync(target).size === expectedSize) && (await matches(target, w.sibling))) return;
  mkdirSync(dirname(target), { recursive: true });
  const part = `${target}.part`;
  let lastError: Error | null = null;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const have = existsSync(part) ? statSync(part).size : 0;
      if (expectedSize === null || have < expectedSize) await client.download(revision, w.remote, part, have, expectedSize, progress);
      const size = statSync(part).size;
      if (expectedSize !== null && size !== expectedSize) throw new Error(`${w.remote}: got ${size} bytes, the hub lists ${expectedSize}`);
      if (!(await matches(part, w.sibling))) {
        rmSync(part, { force: true });
        throw new Error(`${w.remote}: checksum mismatch (corrupt download); fetching it again`);
      }
      renameSync(part, target);
      return;
    } catch (err) {
      if (err instanceof ModelLoadError) throw err;
      lastError = err as Error;
      if (attempt < attempts) log(`${w.remote}: ${lastError.message}; retrying (${attempt}/${attempts - 1})`);
    }
  }
  throw new ModelLoadError(`downloading ${client.repo} from ${client.endpoint} failed: ${lastError?.message}`);
}

/** SHA-256 for LFS files, the git blob SHA-1 for the rest; a file the hub lists no hash for passes. */
async function matches(path: string, sibling: Sibling): Promise<boolean> {
  if (sibling.lfs) return (await hashFile(path, 'sha256')) === sibling.lfs.sha256;
  if (sibling.blobId) return (await hashFile(path, 'sha1', `blob ${statSync(path).size}\0`)) === sibling.blobId;
  return true;
}

async function hashFile(path: string, algorithm: 'sha256' | 'sha1', prefix = ''): Promise<string> {
  const hash = createHash(algorithm).update(prefix);
  await pipeline(createReadStream(path), new Writable({ write: (chunk: Buffer, _e, cb) => (hash.update(chunk), cb()) }));
  return hash.digest('hex');
}

class HubClient {
  private readonly dispatcher = new Agent({ connectTimeout: 15_000, headersTimeout: 60_000, bodyTimeout: 60_000 });

  constructor(
    readonly repo: string,
    readonly endpoint: string,
    private readonly token: string | null,
  ) {}

  async listing(revision: string): Promise<Sibling[]> {
    const url = `${this.endpoint}/api/models/${this.repo}${revision === 'main' ? '' : `/revision/${encodeURIComponent(revision)}`}?blobs=true`;
    const res = await this.get(url, {});
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      await res.body?.cancel();
      throw new ModelLoadError(
        `model ${this.repo} was not found at ${this.endpoint} (HTTP ${res.status})` +
          (this.token ? '' : '; if it is private or gated, set HF_TOKEN'),
      );
    }
    if (!res.ok) throw new ModelLoadError(`model ${this.repo}: ${this.endpoint} answered HTTP ${res.status} to the file listing`);
    const body = (await res.json()) as { siblings?: Sibling[] };
    if (!Array.isArray(body.siblings)) throw new ModelLoadError(`model ${this.repo}: ${this.endpoint} sent a listing without files`);
    return body.siblings.filter((s) => typeof s?.rfilename === 'string');
  }

  /** Appends to `part` from byte `from` on (a server that ignores Range restarts it from zero). */
  async download(revision: string, file: string, part: string, from: number, total: number | null, progress: NonNullable<DownloadOptions['progress']>): Promise<void> {
    const url = `${this.endpoint}/${this.repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
    const res = await this.get(url, from > 0 ? { range: `bytes=${from}-` } : {});
    if (res.status === 416) return; // already complete
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw new ModelLoadError(`model ${this.repo}: ${url} answered HTTP ${res.status}`);
    }
    const resumed = res.status === 206;
    let done = resumed ? from : 0;
    const out = createWriteStream(part, { flags: resumed ? 'a' : 'w' });
    const reader = res.body!;
    await pipeline(
      reader,
      async function* (source: AsyncIterable<Uint8Array>) {
        for await (const chunk of source) {
          done += chunk.length;
          progress(file, done, total);
          yield chunk;
        }
      },
      out,
    );
  }

  private async get(url: string, headers: Record<string, string>): Promise<Response> {
    try {
      return await fetch(url, {
        dispatcher: this.dispatcher,
        headers: { 'user-agent': 'lookahead-proxy', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...headers },
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ModelLoadError(
        `cannot download model ${this.repo}: the hub at ${this.endpoint} could not be reached (${cause?.code ?? cause?.message ?? (err as Error).message}). ` +
          'Check the network, point LOOKAHEAD_HF_ENDPOINT at a reachable mirror, or pass a local model directory.',
      );
    }
  }
}

function readMarker(dir: string): { local: string; size: number }[] | null {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as { local: string; size: number }[];
  } catch {
    return null;
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A one-line bar on a terminal, redrawn at most 10 times a second; nothing when stderr is a log file. */
function stderrBar(): NonNullable<DownloadOptions['progress']> {
  if (!process.stderr.isTTY) return () => {};
  let last = 0;
  return (file, done, total) => {
    const now = Date.now();
    const finished = total !== null && done >= total;
    if (now - last < 100 && !finished) return;
    last = now;
    const width = 30;
    const filled = total ? Math.round((width * done) / total) : 0;
    const pct = total ? `${Math.floor((100 * done) / total)}%`.padStart(4) : '';
    process.stderr.write(`\r${file.slice(-40).padEnd(40)} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${pct} ${mb(done)}${total ? ` / ${mb(total)}` : ''}${finished ? '\n' : ''}`);
  };
}

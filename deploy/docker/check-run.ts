// The run checks of deploy/docker/check.sh: the image's own Cmd, run under chroot in a mounted container tree with
// the image's Env, WorkingDir and User, probed from the host. Prints one line per check; exits 1 if any failed.
//   node --import tsx deploy/docker/check-run.ts <mounted tree> <podman image inspect JSON>
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

interface ImageConfig {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
  Healthcheck?: { Test?: string[] };
}

const [root, inspectPath] = process.argv.slice(2);
if (!root || !inspectPath) throw new Error('usage: check-run.ts <mounted tree> <image inspect JSON>');
type Healthcheck = { Test?: string[] };
const inspected = JSON.parse(readFileSync(inspectPath, 'utf8'))[0] as { Config: ImageConfig; Healthcheck?: Healthcheck; HealthCheck?: Healthcheck };
const config = inspected.Config;
const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
// podman reports a docker-format image's HEALTHCHECK beside Config, docker inside it.
const healthTest = inspected.Healthcheck?.Test ?? inspected.HealthCheck?.Test ?? config.Healthcheck?.Test ?? [];
if (healthTest.length < 2) throw new Error('the image has no HEALTHCHECK command (built without --format docker?)');
const healthCommand = healthTest[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', healthTest[1]] : healthTest.slice(1);

let failed = false;
function report(ok: boolean, what: string, detail: string): void {
  if (!ok) failed = true;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}: ${detail}`);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The image's User as uid/gid, from the image's own /etc/passwd, as a runtime resolves it. */
function imageUser(): { uid: number; gid: number; name: string; home: string } {
  const [user = 'root', group] = (config.User ?? '').split(':');
  const passwd = readFileSync(`${root}/etc/passwd`, 'utf8').split('\n').map((l) => l.split(':'));
  const entry = passwd.find((f) => f[0] === user || f[2] === user);
  if (!entry) throw new Error(`user ${user} is not in the image's /etc/passwd`);
  const gid = group === undefined ? Number(entry[3]) : Number(group);
  return { uid: Number(entry[2]), gid, name: entry[0], home: entry[5] };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise((r) => server.close(r));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Every entry of the tree with what a write changes; the kernel's mounts (/dev, /proc, /sys) are other file systems. */
function snapshot(): Map<string, string> {
  const out = execFileSync('find', [root, '-xdev', '-printf', '%P\t%y %s %T@ %m %U:%G\n'], { maxBuffer: 256 << 20 }).toString();
  const entries = new Map<string, string>();
  for (const line of out.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) entries.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return entries;
}

const user = imageUser();
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
// The image's Env; a runtime adds HOME. Host and port: this machine's host network is shared, so loopback and a free port.
const env = [...(config.Env ?? []), `HOME=${user.home}`, 'LOOKAHEAD_HOST=127.0.0.1', `LOOKAHEAD_PORT=${port}`];

/** A process of the image: chroot into the tree as the image's user, in its WorkingDir, with exactly its Env. */
function inImage(args: string[]): ChildProcess {
  const chrootArgs = [`--userspec=${user.uid}:${user.gid}`, root, '/usr/bin/env', '-i', '-C', config.WorkingDir || '/', ...env, ...args];
  return spawn('chroot', chrootArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
}
function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
}
const healthcheck = () => exitOf(inImage(healthCommand));

async function get(path: string): Promise<{ status: number; body: { status?: string } } | null> {
  try {
    const res = await fetch(base + path, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: (await res.json()) as { status?: string } };
  } catch {
    return null;
  }
}

/** The image's Cmd, started now: its process, its exit code once known, and its output. */
function startCmd() {
  const child = inImage(command);
  const run = { child, started: Date.now(), exitCode: null as number | null, log: '', exited: exitOf(child) };
  child.stdout?.on('data', (d: Buffer) => (run.log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (run.log += d.toString()));
  void run.exited.then((code) => (run.exitCode = code));
  return run;
}
type Run = ReturnType<typeof startCmd>;

/** Polls /ready until 200 or the process exits; the time it took from the Cmd's start, or null. */
async function untilReady(run: Run, limitMs: number): Promise<number | null> {
  while (run.exitCode === null && Date.now() - run.started < limitMs) {
    if ((await get('/ready'))?.status === 200) return Date.now() - run.started;
    await sleep(100);
  }
  return null;
}

const before = snapshot();
let run = startCmd();
const started = run.started;

try {
  const hcBeforeListen = await healthcheck();
  // Alive before ready: the first /health answer, and what /ready and the HEALTHCHECK say at that moment.
  let health = null;
  while (run.exitCode === null && Date.now() - started < 300_000 && !(health = await get('/health'))) await sleep(100);
  if (!health) throw new Error(`the server never answered /health (exit ${run.exitCode})`);
  const healthAt = Date.now() - started;
  const readyThen = await get('/ready');
  const hcLoading = await healthcheck();
  const readyAfterHc = await get('/ready');
  const loading = readyThen?.status !== 200 && readyAfterHc?.status !== 200;
  report(
    health.status === 200 && loading && hcLoading !== 0 && hcBeforeListen !== 0,
    'health before ready',
    `/health ${health.status} at ${seconds(healthAt)} while /ready said ${readyThen?.status} "${readyThen?.body.status}"; ` +
      `HEALTHCHECK exited ${hcBeforeListen} before the port opened, ${hcLoading} while loading`,
  );

  const readyAt = await untilReady(run, 600_000);
  const hcReady = await healthcheck();
  report(readyAt !== null && hcReady === 0, 'health when ready', `/ready 200 at ${seconds(readyAt ?? 0)} after the Cmd started (the model's graph built into /cache first); HEALTHCHECK exited ${hcReady}`);

  const status = readFileSync(`/proc/${run.child.pid}/status`, 'utf8');
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  report(uid === user.uid && uid !== 0, 'user', `the Cmd (${command.join(' ')}) runs as uid ${uid} (${user.name}), image User "${config.User}"`);

  const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] };
  const model = models.data[0]?.id ?? '';
  const messages = [{ role: 'user' as const, content: 'Tell me a story about a cat.' }];
  const request = { model, messages, max_tokens: 24, temperature: 0 };
  const res = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
  const plain = (await res.json()) as { choices?: { message: { content: string } }[]; usage?: { completion_tokens: number } };
  const text = plain.choices?.[0]?.message.content ?? '';
  report(res.status === 200 && text.length > 0, 'chat completion', `${res.status} from ${model}, ${plain.usage?.completion_tokens} tokens: ${JSON.stringify(text.slice(0, 60))}`);

  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-local', maxRetries: 0 });
  const sdk = await client.chat.completions.create(request);
  const sdkText = sdk.choices[0]?.message.content ?? '';
  report(sdkText === text, 'openai SDK', `chat.completions.create from the host: ${sdkText === text ? 'the same text' : `another text: ${JSON.stringify(sdkText.slice(0, 60))}`}`);

  // The sidecar example's app (deploy/sidecar/app), run from the host with the proxy as its OpenAI base URL.
  const app = spawn(process.execPath, [fileURLToPath(new URL('../sidecar/app/app.mjs', import.meta.url))], {
    env: { ...process.env, OPENAI_BASE_URL: `${base}/v1`, OPENAI_API_KEY: 'sk-local' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let appOut = '';
  app.stdout?.on('data', (d: Buffer) => (appOut += d.toString()));
  const appExit = await exitOf(app);
  report(appExit === 0 && appOut.startsWith(`${model}: `), 'sidecar app', `deploy/sidecar/app/app.mjs exited ${appExit}: ${JSON.stringify(appOut.trim().slice(0, 70))}`);

  // Drain: SIGTERM once a long stream is under way; it must finish its answer and the process exit 0 in the grace.
  const grace = Number(env.findLast((e) => e.startsWith('LOOKAHEAD_SHUTDOWN_GRACE_MS='))?.split('=')[1] ?? 10_000);
  const stream = await client.chat.completions.create({ ...request, max_tokens: 1500, temperature: 1, seed: 7, stream: true });
  let afterSignal = 0;
  let finish: string | null = null;
  let signalledAt = 0;
  for await (const chunk of stream) {
    if (!signalledAt && chunk.choices[0]?.delta.content) {
      signalledAt = Date.now();
      run.child.kill('SIGTERM');
    } else if (signalledAt && chunk.choices[0]?.delta.content) afterSignal++;
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  const refused = await fetch(`${base}/v1/models`).then((r) => r.status, () => 'closed');
  const code = await Promise.race([run.exited, sleep(grace + 25_000).then(() => null)]);
  const took = Date.now() - signalledAt;
  report(
    afterSignal > 0 && finish !== null && code === 0 && took <= grace + 2000,
    'drain',
    `SIGTERM mid-stream: ${afterSignal} more chunks, finish_reason ${finish}; new requests then: ${refused}; exit ${code} after ${seconds(took)} (grace ${seconds(grace)})`,
  );

  // A restart on the same /cache: the graph is built once; this is the start time a restarted container sees.
  run = startCmd();
  const warmAt = await untilReady(run, 300_000);
  run.child.kill('SIGTERM');
  const warmExit = await run.exited;
  report(warmAt !== null && warmExit === 0, 'restart', `/ready 200 at ${seconds(warmAt ?? 0)} with the /cache of the first start (first: ${seconds(readyAt ?? 0)}); exit ${warmExit} on SIGTERM`);
} catch (err) {
  report(false, 'run', (err as Error).message);
} finally {
  if (run.exitCode === null) {
    run.child.kill('SIGKILL');
    await run.exited;
  }
}

const after = snapshot();
const changed: string[] = [];
for (const [path, meta] of after) if (before.get(path) !== meta) changed.push(path);
for (const path of before.keys()) if (!after.has(path)) changed.push(`${path} (removed)`);
const outside = changed.filter((p) => p !== 'cache' && !p.startsWith('cache/'));
report(
  outside.length === 0,
  'writes',
  outside.length === 0
    ? `nothing outside /cache changed; under /cache: ${changed.filter((p) => p.startsWith('cache/') && !p.slice(6).includes('/')).join(', ') || 'nothing'}`
    : `changed outside /cache: ${outside.slice(0, 8).join(', ')}${outside.length > 8 ? ` and ${outside.length - 8} more` : ''}`,
);
if (failed) console.log(run.log.slice(-3000));
process.exit(failed ? 1 : 0);

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from './load.js';
import { tokensPerStep, type RequestSample } from './metrics.js';
import { startRedis } from './redis-process.js';
import { spawnServer, type SpawnedServer } from './server-process.js';
import type { Redis } from 'ioredis';
import { call, resolveTarget } from './target.js';
import { loadWorkload, splitWarmup, type WorkloadItem } from './workload.js';

export interface ReplicasOptions {
  modelPath: string | null;
  workload: string;
  /** Items replica A answers (the warm-up), under load. */
  warmup: number;
  /** Items measured on replica B, alone and after A's warm-up. */
  measured: number;
  concurrency: number;
  maxTokens: number;
  startupTimeoutMs: number;
}

export interface ReplicasResult {
  /** From an answer's end on A to its n-grams in B's trie, while both replicas decode at `concurrency`. */
  lagSeconds: { p50: number | null; p99: number | null; count: number };
  tokensPerStepOnB: { alone: number | null; withAnswersOfA: number | null };
  /** Tokens = prompt tails + answers in the streams; the snapshot holds the tries all of them (and nothing else) built. */
  redis: { streamTokens: number; streamBytes: number; bytesPerMillionTokens: number | null; snapshotBytes: number; snapshotBytesPerMillionTokens: number | null };
}

const TENANTS = ['alone', 'warm', 'busy'] as const;

/**
 * Two replicas of our server sharing tries through a real redis-server this command starts (Debian's package):
 * the paper's warm-up protocol split across them. B answers the measured items alone; A answers the warm-up items
 * under load while B serves a background load of its own; then B answers the measured items again for the tenant
 * A warmed. Reports the sync lag (B's lookahead_sync_lag_seconds), tokens per step on B, and Redis memory.
 */
export async function runReplicas(o: ReplicasOptions): Promise<ReplicasResult> {
  const items = loadWorkload(o.workload, { shape: 'plain', categories: [], repeat: 1 });
  const { warmup, measured } = splitWarmup(items, o.warmup);
  const slice = measured.slice(0, o.measured);
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'lookahead-bench-replicas-'));
  const servers: SpawnedServer[] = [];
  try {
    const config = join(dir, 'config.yaml');
    writeFileSync(config, `auth:\n  apiKeys:\n${TENANTS.map((t) => `    - { key: sk-${t}, tenant: ${t} }`).join('\n')}\n`);
    const args = ['--config', config, '--threads', '1', '--redis-url', redis.url, '--sync-snapshot-ms', '5000'];
    for (let i = 0; i < 2; i++) servers.push(await spawnServer({ model: o.modelPath, extraArgs: args, startupTimeoutMs: o.startupTimeoutMs }));
    const [a, b] = servers;
    const model = JSON.parse((await call(target(b, 'alone', 1), `${target(b, 'alone', 1).apiBase}/models`)).text).data[0].id as string;
    const drive = async (server: SpawnedServer, tenant: string, work: readonly WorkloadItem[], concurrency: number): Promise<RequestSample[]> =>
      (
        await runLoad({
          target: target(server, tenant, concurrency),
          model,
          items: work,
          arrival: { kind: 'concurrency', concurrency },
          requests: work.length,
          durationS: null,
          maxTokens: o.maxTokens,
          extraBody: { temperature: 0 },
        })
      ).samples;
    const perStep = (samples: RequestSample[]) => tokensPerStep(samples.flatMap((s) => (s.lookahead ? [s.lookahead] : [])));

    const alone = perStep(await drive(b, 'alone', slice, 1));
    await Promise.all([drive(a, 'warm', warmup, o.concurrency), drive(b, 'busy', measured.slice(o.measured), o.concurrency)]);
    await new Promise((r) => setTimeout(r, 1000));
    const lagSeconds = lagPercentiles((await call(target(b, 'busy', 1), `${target(b, 'busy', 1).origin}/metrics`)).text);
    const withAnswersOfA = perStep(await drive(b, 'warm', slice, 1));
    return { lagSeconds, tokensPerStepOnB: { alone, withAnswersOfA }, redis: await redisMemory(redis.client) };
  } finally {
    for (const s of servers) await s.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function target(server: SpawnedServer, tenant: string, concurrency: number) {
  return resolveTarget(server.baseUrl, { allowRemote: false, apiKey: `sk-${tenant}`, requestTimeoutMs: 120_000, connections: concurrency + 2 });
}

/** p50/p99 of the answers' lag from the histogram buckets, interpolated within a bucket as histogram_quantile does. */
export function lagPercentiles(metrics: string): ReplicasResult['lagSeconds'] {
  const buckets: { le: number; count: number }[] = [];
  for (const m of metrics.matchAll(/^lookahead_sync_lag_seconds_bucket\{([^}]*)\} (\S+)$/gm)) {
    if (!m[1].includes('kind="answer"')) continue;
    const le = /le="([^"]+)"/.exec(m[1])![1];
    buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: Number(m[2]) });
  }
  buckets.sort((x, y) => x.le - y.le);
  const total = buckets.at(-1)?.count ?? 0;
  const quantile = (q: number): number | null => {
    if (total === 0) return null;
    const rank = q * total;
    let lower = 0;
    let below = 0;
    for (const bucket of buckets) {
      if (bucket.count >= rank) {
        if (!Number.isFinite(bucket.le)) return lower;
        return lower + ((bucket.le - lower) * (rank - below)) / Math.max(1, bucket.count - below);
      }
      lower = bucket.le;
      below = bucket.count;
    }
    return lower;
  };
  return { p50: quantile(0.5), p99: quantile(0.99), count: total };
}

/** Tokens the streams hold (prompt tails + answers) against the streams' memory, and the snapshot's size. */
async function redisMemory(client: Redis): Promise<ReplicasResult['redis']> {
  let streamTokens = 0;
  let streamBytes = 0;
  for (const key of await client.keys('lookahead:t:*:stream')) {
    streamBytes += (await client.memory('USAGE', key, 'SAMPLES', '0')) ?? 0;
    for (const [, fields] of await client.xrangeBuffer(key, '-', '+')) {
      for (let i = 0; i < fields.length; i += 2) {
        const name = fields[i].toString();
        if (name === 'p' || name === 'a') streamTokens += fields[i + 1].length / 4;
      }
    }
  }
  const snapshotBytes = await client.strlen('lookahead:snapshot');
  const perMillion = (bytes: number) => (streamTokens > 0 ? Math.round((bytes / streamTokens) * 1e6) : null);
  return { streamTokens, streamBytes, bytesPerMillionTokens: perMillion(streamBytes), snapshotBytes, snapshotBytesPerMillionTokens: perMillion(snapshotBytes) };
}

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the replication layer reports at scrape time. */
export interface SyncGauges {
  connected: boolean;
  /** Own entries waiting to be written to Redis (kept while it is unreachable). */
  outbox: number;
}

export type SyncEntryResult = 'published' | 'applied' | 'skipped_own' | 'skipped_invalid' | 'skipped_duplicate' | 'dropped';

const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Replication metrics, on the server's registry (Metrics.registry) so /metrics shows them beside the rest. */
export class SyncMetrics {
  private readonly entries: Counter<'result'>;
  private readonly lag: Histogram<'kind'>;

  constructor(registry: Registry, read: () => SyncGauges) {
    const registers = [registry];
    new Gauge({ name: 'lookahead_sync_connected', help: '1 while this replica is connected to Redis', registers, collect() { this.set(read().connected ? 1 : 0); } });
    new Gauge({ name: 'lookahead_sync_outbox', help: 'own trie inputs waiting to be written to Redis', registers, collect() { this.set(read().outbox); } });
    this.entries = new Counter({ name: 'lookahead_sync_entries_total', help: 'stream entries by what this replica did with them', labelNames: ['result'], registers });
    this.lag = new Histogram({
      name: 'lookahead_sync_lag_seconds',
      help: "from an input learnt on another replica (answer end, document post) to it being in this replica's trie",
      labelNames: ['kind'],
      buckets: LAG_BUCKETS,
      registers,
    });
  }

  count(result: SyncEntryResult, n = 1): void {
    this.entries.inc({ result }, n);
  }

  observeLag(kind: string, seconds: number): void {
    this.lag.observe({ kind }, Math.max(0, seconds));
  }
}

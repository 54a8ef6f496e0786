import { readFile } from 'node:fs/promises';
import type { Target } from './client.js';
import { call } from './target.js';

export interface RssPoint {
  /** Seconds since sampling started. */
  t: number;
  bytes: number;
}

/**
 * Samples the server's resident memory once per interval: from Prometheus `process_resident_memory_bytes` on
 * /metrics, or from /proc when the harness started the server itself. Gives up quietly when neither exists.
 */
export class RssSampler {
  readonly points: RssPoint[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly start = performance.now();
  private busy = false;
  private source: 'metrics' | 'proc' | 'none' | null = null;

  constructor(
    private readonly target: Target,
    private readonly pid: number | null,
    private readonly intervalMs = 1000,
    private readonly maxPoints = 3600,
  ) {}

  begin(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  async end(): Promise<RssPoint[] | null> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.sample();
    return this.points.length > 0 ? this.points : null;
  }

  private async sample(): Promise<void> {
    if (this.busy || this.source === 'none' || this.points.length >= this.maxPoints) return;
    this.busy = true;
    try {
      const bytes = await this.read();
      if (bytes !== null) this.points.push({ t: (performance.now() - this.start) / 1000, bytes });
    } finally {
      this.busy = false;
    }
  }

  private async read(): Promise<number | null> {
    if (this.source === null || this.source === 'metrics') {
      const bytes = await this.fromMetrics();
      if (bytes !== null) {
        this.source = 'metrics';
        return bytes;
      }
    }
    if (this.pid !== null) {
      const bytes = await fromProc(this.pid);
      if (bytes !== null) {
        this.source = 'proc';
        return bytes;
      }
    }
    if (this.source === null) this.source = 'none';
    return null;
  }

  private async fromMetrics(): Promise<number | null> {
    try {
      const res = await call(this.target, `${this.target.origin}/metrics`, { timeoutMs: 2000 });
      return res.status === 200 ? parseRss(res.text) : null;
    } catch {
      return null;
    }
  }
}

export function parseRss(prometheusText: string): number | null {
  const m = /^process_resident_memory_bytes(?:\{[^}]*\})?\s+([0-9.eE+]+)/m.exec(prometheusText);
  return m ? Number(m[1]) : null;
}

async function fromProc(pid: number): Promise<number | null> {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

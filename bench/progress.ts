/**
 * A progress line on stderr: redrawn in place on a terminal, one line per 10% otherwise (CI logs stay short).
 * Nothing at all when quiet, so tests and pipelines see only the result.
 */
export class Progress {
  private done = 0;
  private failed = 0;
  private lastDecile = -1;
  private readonly start = performance.now();
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly quiet: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  tick(ok: boolean): void {
    this.done++;
    if (!ok) this.failed++;
    if (this.quiet) return;
    // With a duration instead of a count the total is unknown (0): show the count, and a line per 10 requests.
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : (this.done % 10) / 10;
    if (this.tty) {
      const width = 24;
      const filled = Math.round(frac * width);
      this.stream.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total || '?'}${this.failed ? ` (${this.failed} failed)` : ''} ${this.elapsed()}s  `);
    } else {
      const decile = this.total > 0 ? Math.floor(frac * 10) : Math.floor(this.done / 10);
      if (decile > this.lastDecile) {
        this.lastDecile = decile;
        this.stream.write(`${this.label}: ${this.done}/${this.total || '?'}${this.failed ? ` (${this.failed} failed)` : ''} ${this.elapsed()}s\n`);
      }
    }
  }

  finish(): void {
    if (!this.quiet && this.tty) this.stream.write('\n');
  }

  private elapsed(): string {
    return ((performance.now() - this.start) / 1000).toFixed(1);
  }
}

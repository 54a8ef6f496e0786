/**
 * Stop strings over streamed text. Text that could still turn out to be the start of a stop string is held back,
 * so a stop split across deltas (or arriving inside one multi-token delta) is cut cleanly and never leaks.
 */
export interface StopStep {
  /** Text that may be emitted now; when `stopped`, everything before the stop string. */
  text: string;
  stopped: boolean;
}

export class StopMatcher {
  private readonly stops: string[];
  private held = '';
  private stoppedAt = false;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  get stopped(): boolean {
    return this.stoppedAt;
  }

  push(delta: string): StopStep {
    if (this.stoppedAt) return { text: '', stopped: true };
    if (this.stops.length === 0) return { text: delta, stopped: false };
    const buffer = this.held + delta;

    // The earliest completed stop wins; what precedes it is the rest of the output.
    let cut = -1;
    for (const stop of this.stops) {
      const at = buffer.indexOf(stop);
      if (at !== -1 && (cut === -1 || at < cut)) cut = at;
    }
    if (cut !== -1) {
      this.stoppedAt = true;
      this.held = '';
      return { text: buffer.slice(0, cut), stopped: true };
    }

    // Any stop that completes later must start inside the longest suffix that is a proper prefix of some stop.
    const keep = this.longestPendingSuffix(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** End of generation: the held tail was not a stop after all. */
  flush(): string {
    const text = this.held;
    this.held = '';
    return text;
  }

  private longestPendingSuffix(buffer: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let len = Math.min(stop.length - 1, buffer.length); len > best; len--) {
        if (buffer.endsWith(stop.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}

/** A failure the harness explains in one line and exits non-zero for: bad flags, unreachable server, broken workload. */
export class BenchError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'BenchError';
  }
}

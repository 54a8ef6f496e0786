import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stderr, so stdout stays free for whatever a wrapper pipes (and the CLI's own output). */
export function createLogger(level: string, name = 'lookahead-proxy'): Logger {
  return pino({ name, level }, pino.destination({ fd: 2, sync: false }));
}

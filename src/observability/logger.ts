import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stderr (stdout stays free for the CLI), written synchronously so nothing is lost on exit. */
export function createLogger(level: string, name = 'lookahead-proxy'): Logger {
  return pino({ name, level }, pino.destination({ fd: 2, sync: true }));
}

import { pino, type Logger } from 'pino';

/**
 * One logger for the process, JSON lines on stderr so that stdout stays free for reports and
 * `--json` output. Level from RACKEMU_LOG (trace..fatal, silent); the CLI lowers it with --verbose.
 */
let root: Logger | undefined;

export function logger(): Logger {
  root ??= pino({ name: 'rackemu', level: process.env.RACKEMU_LOG ?? 'warn' }, pino.destination(2));
  return root;
}

export function setLogLevel(level: string): void {
  logger().level = level;
}

import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * One logger for the process, JSON lines on stderr so that stdout stays free for reports and
 * `--json` output (docs/metrics.md, "Logs"). Level from RACKEMU_LOG_LEVEL (trace, debug, info, warn,
 * error, fatal, silent; RACKEMU_LOG is the older name, read when RACKEMU_LOG_LEVEL is unset); default
 * warn; the CLI lowers it with --verbose. Events name their entities with the fields `host`
 * (`r<rack>.n<node>`), `chip` (`r<rack>.n<node>.c<chip>`) and `request` (the request id): childLogger
 * binds them. Nothing logs per frame.
 */
let root: Logger | undefined;

export const LOG_LEVEL_ENV = 'RACKEMU_LOG_LEVEL';
export const DEFAULT_LOG_LEVEL = 'warn';
const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/**
 * The level the environment asks for: RACKEMU_LOG_LEVEL, else RACKEMU_LOG, else warn. Case and
 * spaces are ignored; an unknown name gives warn (and `invalid` says what was asked).
 */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): { level: string; invalid?: string } {
  const raw = env[LOG_LEVEL_ENV] ?? env.RACKEMU_LOG;
  if (raw === undefined || raw.trim() === '') return { level: DEFAULT_LOG_LEVEL };
  const level = raw.trim().toLowerCase();
  return LEVELS.has(level) ? { level } : { level: DEFAULT_LOG_LEVEL, invalid: raw };
}

/** A rackemu logger at `level` writing JSON lines to `destination` (stderr by default). */
export function createLogger(level: string, destination: DestinationStream = pino.destination(2)): Logger {
  return pino({ name: 'rackemu', level }, destination);
}

export function logger(): Logger {
  if (root === undefined) {
    const { level, invalid } = logLevelFromEnv();
    root = createLogger(level);
    if (invalid !== undefined) {
      root.warn({ [LOG_LEVEL_ENV]: invalid }, `unknown log level "${invalid}": using ${level}`);
    }
  }
  return root;
}

export function setLogLevel(level: string): void {
  logger().level = level;
}

/** The ids a log line names its entities by. */
export interface LogBindings {
  readonly host?: string;
  readonly chip?: string;
  readonly request?: string;
}

/** A child of the process logger whose every line carries these fields. */
export function childLogger(bindings: LogBindings): Logger {
  return logger().child({ ...bindings });
}

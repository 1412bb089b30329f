import { pino } from 'pino';
/**
 * One logger for the process, JSON lines on stderr so that stdout stays free for reports and
 * `--json` output. Level from RACKEMU_LOG (trace..fatal, silent); the CLI lowers it with --verbose.
 */
let root;
export function logger() {
    root ??= pino({ name: 'rackemu', level: process.env.RACKEMU_LOG ?? 'warn' }, pino.destination(2));
    return root;
}
export function setLogLevel(level) {
    logger().level = level;
}
//# sourceMappingURL=log.js.map
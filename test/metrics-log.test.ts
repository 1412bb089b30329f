import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, logLevelFromEnv } from '../src/util/log.js';

describe('metrics', () => {
  const saved = { level: process.env.RACKEMU_LOG_LEVEL, old: process.env.RACKEMU_LOG };
  afterEach(() => {
    for (const [k, v] of [
      ['RACKEMU_LOG_LEVEL', saved.level],
      ['RACKEMU_LOG', saved.old],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    vi.resetModules();
  });

  it('metrics - the log level comes from RACKEMU_LOG_LEVEL, then RACKEMU_LOG, else warn', () => {
    expect(logLevelFromEnv({})).toEqual({ level: 'warn' });
    expect(logLevelFromEnv({ RACKEMU_LOG_LEVEL: 'debug' })).toEqual({ level: 'debug' });
    expect(logLevelFromEnv({ RACKEMU_LOG_LEVEL: ' Info ' })).toEqual({ level: 'info' });
    expect(logLevelFromEnv({ RACKEMU_LOG: 'error' })).toEqual({ level: 'error' });
    expect(logLevelFromEnv({ RACKEMU_LOG_LEVEL: 'trace', RACKEMU_LOG: 'error' })).toEqual({ level: 'trace' });
    expect(logLevelFromEnv({ RACKEMU_LOG_LEVEL: 'loud' })).toEqual({ level: 'warn', invalid: 'loud' });
  });

  it("metrics - the process logger takes its level from the environment when it's first used", async () => {
    process.env.RACKEMU_LOG_LEVEL = 'error';
    vi.resetModules();
    const log = await import('../src/util/log.js');
    expect(log.logger().level).toBe('error');
    log.setLogLevel('info');
    expect(log.logger().level).toBe('info');
    expect(log.childLogger({ host: 'r0.n1' }).level).toBe('info');
  });

  it('metrics - logs are JSON lines that name hosts, chips and requests by their ids', () => {
    const lines: string[] = [];
    const root = createLogger('info', { write: (s: string) => void lines.push(s) });
    root.child({ host: 'r2.n4', chip: 'r2.n4.c7' }).warn({ step: 12, tick: 4096 }, 'late frame');
    root.child({ request: 'cmpl-1' }).info({ ttft_ms: 41.2, tokens: 16 }, 'request finished');
    root.debug('not at info');
    expect(lines).toHaveLength(2);
    const [late, done] = lines.map((l) => {
      expect(l.endsWith('\n')).toBe(true);
      expect(l.trimEnd()).not.toContain('\n');
      return JSON.parse(l) as Record<string, unknown>;
    });
    expect(late).toMatchObject({ name: 'rackemu', level: 40, host: 'r2.n4', chip: 'r2.n4.c7', msg: 'late frame' });
    expect(done).toMatchObject({ level: 30, request: 'cmpl-1', tokens: 16, msg: 'request finished' });
    expect(typeof done.time).toBe('number');
  });
});

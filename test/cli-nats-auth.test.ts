import { nkeys } from '@nats-io/transport-node';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnNatsServer } from '../src/transport/internal.js';
import { ROOT, run, topo } from './helpers/cli.js';
import { post, startServe, waitReady } from './serve-fixtures.js';

const PASSWORD = 'pw-5e1b9a-cli';
const TOKEN = 'tok-c0ffee-cli';
const SEED = new TextDecoder().decode(nkeys.createUser().getSeed());
const SECRETS = [PASSWORD, TOKEN, SEED, 'pw-wrong-cli', 'tok-wrong-cli'];

const dir = mkdtempSync(join(tmpdir(), 'rackemu-cli-auth-'));
const seedFile = join(dir, 'user.nk');
writeFileSync(seedFile, `${SEED}\n`, { mode: 0o600 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** mixtral-tiny numeric on mini-2rack, a 5-token prompt and 3 new tokens. */
const TINY = [
  '--topology',
  topo('mini-2rack'),
  '--model',
  'mixtral-tiny',
  '--context',
  '64',
  '--set',
  'chip.sram_mib=0.5',
  '--prompt-ids',
  '3,1,4,1,5',
  '--max-new-tokens',
  '3',
  '--no-progress',
  '--json',
];

/** bin/rackemu.js in a child process with only `env`'s NATS variables, logging at debug (to catch leaks). */
function cli(args: string[], env: Record<string, string> = {}): { code: number; out: string; err: string } {
  const base: NodeJS.ProcessEnv = { ...process.env, RACKEMU_LOG: 'debug' };
  delete base.RACKEMU_NATS_PASSWORD;
  delete base.RACKEMU_NATS_TOKEN;
  const r = spawnSync(process.execPath, [`${ROOT}bin/rackemu.js`, 'generate', ...args], {
    encoding: 'utf8',
    env: { ...base, ...env },
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function expectNoSecret(text: string): void {
  for (const s of SECRETS) expect(text).not.toContain(s);
}

let baseline: number[] | undefined;
async function baselineTokens(): Promise<number[]> {
  if (!baseline) {
    const r = await run('generate', ...TINY);
    expect(r.code, r.err).toBe(0);
    baseline = JSON.parse(r.out).tokens as number[];
    expect(baseline).toHaveLength(3);
  }
  return baseline;
}

describe('cli nats auth', () => {
  it('cli - generate --nats spawn with user/password, token or nkey gives the embedded tokens (threads and processes)', async () => {
    const expected = await baselineTokens();
    const cases: [string, string[], Record<string, string>][] = [
      ['user, threads', ['--nats-user', 'rackemu'], { RACKEMU_NATS_PASSWORD: PASSWORD }],
      ['token, processes', ['--isolation', 'process'], { RACKEMU_NATS_TOKEN: TOKEN }],
      ['nkey, processes', ['--isolation', 'process', '--nats-nkey', seedFile], {}],
    ];
    for (const [name, flags, env] of cases) {
      const r = cli([...TINY, '--transport', 'nats', '--nats', 'spawn', ...flags], env);
      expect(r.code, `${name}: ${r.err.slice(-2000)}`).toBe(0);
      const j = JSON.parse(r.out);
      expect(j.tokens, name).toEqual(expected);
      expect(j.transport).toBe('nats');
      expect(j.violations).toEqual([]);
      expectNoSecret(r.out + r.err);
    }
  });

  it('cli - generate against a server that requires credentials: missing or wrong ones exit 77 with RACKEMU_ERR_NATS_AUTH, no secret printed', async () => {
    const server = await spawnNatsServer({ auth: { kind: 'user', user: 'rackemu', pass: PASSWORD } });
    try {
      const small = [
        '--topology',
        topo('mini-node'),
        '--model',
        'mixtral-tiny',
        '--context',
        '16',
        '--prompt-ids',
        '1,2',
        '--max-new-tokens',
        '2',
        '--no-progress',
        '--json',
        '--transport',
        'nats',
        '--nats-url',
        server.url,
      ];
      const ok = cli([...small, '--nats-user', 'rackemu'], { RACKEMU_NATS_PASSWORD: PASSWORD });
      expect(ok.code, ok.err.slice(-2000)).toBe(0);
      expectNoSecret(ok.out + ok.err);
      const refused: [string, string[], Record<string, string>][] = [
        ['none', [], {}],
        ['wrong password', ['--nats-user', 'rackemu'], { RACKEMU_NATS_PASSWORD: 'pw-wrong-cli' }],
        ['token, processes', ['--isolation', 'process'], { RACKEMU_NATS_TOKEN: 'tok-wrong-cli' }],
      ];
      for (const [name, flags, env] of refused) {
        const t0 = Date.now();
        const r = cli([...small, ...flags], env);
        expect(r.code, `${name}: ${r.err.slice(-2000)}`).toBe(77);
        expect(r.err).toContain('rackemu: RACKEMU_ERR_NATS_AUTH: NATS server at');
        expect(r.err).toContain('authorization violation');
        expect(r.out).toBe('');
        expect(Date.now() - t0).toBeLessThan(60_000); // not the 120 s connect timeout
        expectNoSecret(r.err);
      }
    } finally {
      await server.stop();
    }
  });

  it('cli - NATS credential flags: a user without RACKEMU_NATS_PASSWORD, two kinds, a file without a seed are usage errors', async () => {
    const noSeed = join(dir, 'empty.nk');
    writeFileSync(noSeed, 'not a seed\n');
    const nats = [...TINY, '--transport', 'nats', '--nats', 'spawn'];
    const cases: [string[], Record<string, string>, string][] = [
      [['--nats-user', 'rackemu'], {}, 'RACKEMU_NATS_PASSWORD'],
      [
        ['--nats-user', 'rackemu'],
        { RACKEMU_NATS_PASSWORD: PASSWORD, RACKEMU_NATS_TOKEN: TOKEN },
        'not user and token',
      ],
      [['--nats-nkey', noSeed], {}, 'holds no nkey user seed'],
      [['--nats-nkey', join(dir, 'missing.nk')], {}, 'cannot read'],
    ];
    for (const [flags, env, text] of cases) {
      const saved = { ...process.env };
      Object.assign(process.env, env);
      try {
        const r = await run('generate', ...nats, ...flags);
        expect(r.code, r.err).toBe(64);
        expect(r.err).toContain('RACKEMU_ERR_GENERATE_OPTION');
        expect(r.err).toContain(text);
        expectNoSecret(r.err);
      } finally {
        for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
      }
    }
  });

  it('cli - serve --nats spawn with credentials and host-agent processes answers with the tokens of generate', async () => {
    const expected = await baselineTokens();
    const args = TINY.slice(0, TINY.indexOf('--prompt-ids'));
    const s = await startServe(
      [...args, '--batch', '2', '--transport', 'nats', '--nats', 'spawn', '--isolation', 'process', '--nats-user', 'u'],
      { RACKEMU_NATS_PASSWORD: PASSWORD, RACKEMU_LOG: 'debug' },
    );
    try {
      await waitReady(s.url);
      const r = await post(`${s.url}/v1/completions`, { prompt: [3, 1, 4, 1, 5], max_tokens: 3 });
      expect(r.status).toBe(200);
      expect((r.json.choices as { token_ids: number[] }[])[0].token_ids).toEqual(expected);
    } finally {
      expect((await s.stop()).code).toBe(0);
    }
    expectNoSecret(s.stderr());
  });
});

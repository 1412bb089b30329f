import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployedChips } from '../src/control/chip-inits.js';
import { referenceGenerate } from '../src/runtime/reference.js';
import { spawnNatsServer, type SpawnedNatsServer } from '../src/transport/index.js';
import { ROOT, topo } from './helpers/cli.js';
import { setup } from './helpers/deploy.js';
import { startProcess } from './helpers/process.js';

/**
 * Host agents that join over NATS (`rackemu host`), the coordinator running `generate --isolation
 * remote`: the same control protocol as process isolation, with the host agents started by hand, as on
 * other machines. Each is its own OS process here.
 */

const SETS = ['chip.sram_mib=0.5'];
const PROMPT = [5, 4, 3, 2, 1];

/** `rackemu <args>` as its own process. */
const cli = (args: readonly string[]) => startProcess([process.execPath, `${ROOT}bin/rackemu.js`, ...args]);

describe('remote host agents', () => {
  let nats: SpawnedNatsServer;
  beforeAll(async () => {
    nats = await spawnNatsServer();
  });
  afterAll(() => nats?.stop());

  /** `rackemu generate` of mixtral-tiny on mini-2rack whose host agents join deployment `name`. */
  const remoteGenerate = (name: string, ...more: string[]) =>
    cli([
      'generate',
      ...['--topology', topo('mini-2rack'), '--model', 'mixtral-tiny', '--context', '64', '--set', SETS[0]],
      ...['--transport', 'nats', '--nats-url', nats.url, '--isolation', 'remote', '--deployment', name],
      ...more,
    ]);

  it('cli - host agents started by hand join a generate --isolation remote and give the reference tokens', async () => {
    const s = setup('mini-2rack', 'mixtral-tiny', SETS, { context: 64, promptTokens: PROMPT.length });
    const hostIds = [...new Set(deployedChips(s.plan, s.fabric).map((c) => s.fabric.hostId(c)))];
    expect(hostIds.length).toBeGreaterThan(1);
    const gen = remoteGenerate('remote-test', '--prompt-ids', PROMPT.join(','), '--max-new-tokens', '5', '--json');
    // half by host id, half by ordinal (as a StatefulSet's pods join)
    const hosts = hostIds.map((id, i) =>
      cli([
        'host',
        '--nats',
        nats.url,
        '--deployment',
        'remote-test',
        ...(i % 2 === 0 ? ['--host-id', id] : ['--ordinal', String(i)]),
      ]),
    );
    const r = await gen.done;
    expect(r.err).not.toContain('RACKEMU_ERR');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { tokens: number[] };
    expect(j.tokens).toEqual(referenceGenerate(s.plan.model, s.weights!, PROMPT, 5).tokens);
    // the coordinator stopped the deployment: every host agent exits 0
    for (const h of hosts) expect((await h.done).code).toBe(0);
  }, 120_000);

  it('cli - a coordinator whose host agents do not join names the missing ones', async () => {
    const r = await remoteGenerate('nobody-comes', '--prompt-ids', '1,2', '--join-timeout-s', '2').done;
    expect(r.code).toBe(69);
    expect(r.err).toMatch(
      /RACKEMU_ERR_HOSTS_MISSING: \d+ of \d+ host agent\(s\) did not join deployment nobody-comes within 2 s: r0\.n0/,
    );
  }, 60_000);
});

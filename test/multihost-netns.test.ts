import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployedChips } from '../src/control/chip-inits.js';
import { referenceGenerate } from '../src/runtime/reference.js';
import { ROOT, topo } from './helpers/cli.js';
import { setup } from './helpers/deploy.js';
import { createNetnsLab, type NetnsLab } from './helpers/netns.js';
import { startProcess, type Proc } from './helpers/process.js';

/**
 * A real multi-host run on this machine: Linux network namespaces as hosts (veth pairs on a bridge,
 * each its own address), a 3-server NATS cluster (nats-server with cluster routes, requiring a user
 * and password) spread over three of them, the host agents (`rackemu host`) in those three and the
 * coordinator (`rackemu generate --isolation remote`) in a fourth. It needs root (network namespaces),
 * as CI has: without it, making the namespaces fails and says why.
 */

const SETS = ['chip.sram_mib=0.5'];
const PROMPT = [9, 8, 7, 6];
const NATS_NODES = 3;
/** No anonymous access: the cluster requires this user (its password reaches rackemu in the environment). */
const NATS_USER = 'multihost';
const NATS_PASS = 'mh-pw-7f3a19';

/** A process of the run, with the cluster's password in its environment (never on a command line). */
const start = (argv: readonly string[]): Proc => startProcess(argv, { RACKEMU_NATS_PASSWORD: NATS_PASS });

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('multi-host run in network namespaces', () => {
  let lab: NetnsLab;
  const procs: Proc[] = [];
  /** The NATS cluster's servers, in the first NATS_NODES namespaces. */
  const servers: Proc[] = [];
  beforeAll(async () => {
    lab = createNetnsLab(NATS_NODES + 1);
    const routes = lab.hosts.slice(0, NATS_NODES).map((h) => `nats://${h.address}:6222`);
    for (let i = 0; i < NATS_NODES; i++) {
      const a = lab.hosts[i].address;
      const others = routes.filter((_, j) => j !== i).join(',');
      servers.push(
        start([
          ...lab.exec(i),
          'nats-server',
          ...['-a', a, '-p', '4222', '--cluster_name', 'rackemu', '--cluster', `nats://${a}:6222`, '--routes', others],
          ...['--user', NATS_USER, '--pass', NATS_PASS],
        ]),
      );
    }
    // each server listens, and has its routes to the other two (nats-server logs both)
    for (const [i, srv] of servers.entries()) {
      await until(`nats-server ${i} ready`, () => srv.stderr().includes('Server is ready'));
      await until(`nats-server ${i} routes`, () => (srv.stderr().match(/Route connection created/g) ?? []).length >= 2);
    }
  }, 60_000);
  afterAll(async () => {
    for (const p of [...procs, ...servers]) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.all([...procs, ...servers].map((p) => p.done));
    lab?.destroy();
  });

  it('multihost - host agents in three namespaces over a 3-server NATS cluster give the reference tokens', async () => {
    const s = setup('mini-2rack', 'mixtral-tiny', SETS, { context: 64, promptTokens: PROMPT.length });
    const hostIds = [...new Set(deployedChips(s.plan, s.fabric).map((c) => s.fabric.hostId(c)))];
    expect(hostIds.length).toBeGreaterThanOrEqual(NATS_NODES);
    const node = process.execPath;
    const rackemu = `${ROOT}bin/rackemu.js`;
    // each host agent in a namespace with a NATS server, talking to the server next to it
    hostIds.forEach((id, k) => {
      const i = k % NATS_NODES;
      const url = `nats://${lab.hosts[i].address}:4222`;
      procs.push(
        start([
          ...lab.exec(i),
          node,
          rackemu,
          'host',
          '--nats',
          url,
          '--deployment',
          'multi',
          '--host-id',
          id,
          '--nats-user',
          NATS_USER,
        ]),
      );
    });
    // the coordinator in a namespace of its own, reaching the cluster through its first server
    const coordinatorNs = NATS_NODES;
    const gen = start([
      ...lab.exec(coordinatorNs),
      node,
      rackemu,
      'generate',
      ...['--topology', topo('mini-2rack'), '--model', 'mixtral-tiny', '--context', '64', '--set', SETS[0]],
      ...['--prompt-ids', PROMPT.join(','), '--max-new-tokens', '5', '--transport', 'nats'],
      ...['--nats-url', `nats://${lab.hosts[0].address}:4222`, '--isolation', 'remote', '--deployment', 'multi'],
      ...['--nats-user', NATS_USER],
      '--json',
    ]);
    procs.push(gen);
    const r = await gen.done;
    expect(r.err).not.toContain('RACKEMU_ERR');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { tokens: number[] };
    expect(j.tokens).toEqual(referenceGenerate(s.plan.model, s.weights!, PROMPT, 5).tokens);
    for (const p of procs.splice(0)) expect((await p.done).code).toBe(0);
  }, 180_000);

  it('multihost - killing one NATS server mid-run: clients reconnect to the others and the replayed run gives the same tokens', async () => {
    const TOKENS = 300;
    const CONTEXT = 512;
    const s = setup('mini-2rack', 'mixtral-tiny', SETS, { context: CONTEXT, promptTokens: PROMPT.length });
    const hostIds = [...new Set(deployedChips(s.plan, s.fabric).map((c) => s.fabric.hostId(c)))];
    // every client knows the whole cluster, so it can fail over
    const cluster = lab.hosts
      .slice(0, NATS_NODES)
      .map((h) => `nats://${h.address}:4222`)
      .join(',');
    const node = process.execPath;
    const rackemu = `${ROOT}bin/rackemu.js`;
    const hosts = hostIds.map((id, k) =>
      start([
        ...lab.exec(k % NATS_NODES),
        node,
        rackemu,
        'host',
        '--nats',
        cluster,
        '--deployment',
        'multi2',
        '--host-id',
        id,
        '--nats-user',
        NATS_USER,
      ]),
    );
    procs.push(...hosts);
    const gen = start([
      ...lab.exec(NATS_NODES),
      node,
      rackemu,
      '--verbose',
      'generate',
      ...['--topology', topo('mini-2rack'), '--model', 'mixtral-tiny', '--context', String(CONTEXT), '--set', SETS[0]],
      ...['--prompt-ids', PROMPT.join(','), '--max-new-tokens', String(TOKENS), '--transport', 'nats'],
      ...['--nats-url', cluster, '--isolation', 'remote', '--deployment', 'multi2', '--nats-user', NATS_USER],
      ...['--watchdog-ms', '5000', '--retries', '3', '--no-progress', '--json'],
    ]);
    procs.push(gen);
    // once the chips are loaded and the run is under way, the third server dies
    let err = '';
    gen.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    for (let i = 0; i < 600 && !err.includes('deployment ready'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(err).toContain('deployment ready');
    await new Promise((r) => setTimeout(r, 300));
    servers[NATS_NODES - 1].child.kill('SIGKILL');
    const r = await gen.done;
    expect(r.err).toContain('replaying it from the prompt');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { tokens: number[] };
    expect(j.tokens).toEqual(referenceGenerate(s.plan.model, s.weights!, PROMPT, TOKENS).tokens);
    for (const h of hosts) expect((await h.done).code).toBe(0);
  }, 240_000);
});

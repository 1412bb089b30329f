/**
 * The multi-host run against one process (issue 13's figures; needs root for network namespaces):
 * mixtral-tiny numeric on mini-2rack, `generate --json` with every host agent as a `rackemu host`
 * process in one of three namespaces over a 3-server NATS cluster (the coordinator in a fourth), and
 * the same in one process (thread isolation, embedded transport). Prints one JSON line: start-up,
 * wall time per token and the peak RSS of each host-agent process.
 *
 * Usage: node dist/bench/multihost-once.js [tokens]
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CHIP_V8_FLAGS } from '../src/control/v8-flags.js';
import { compile } from '../src/compiler/compile.js';
import { deployedChips } from '../src/control/chip-inits.js';
import { loadModel } from '../src/model/load.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology, parseSetArg } from '../src/topology/load.js';
import { createNetnsLab } from '../test/helpers/netns.js';

const TOKENS = Number(process.argv[2] ?? 64);
const root = fileURLToPath(new URL('../../', import.meta.url));
const rackemu = `${root}bin/rackemu.js`;
const topology = `${root}topologies/mini-2rack.yaml`;
const SETS = ['chip.sram_mib=0.5'];
const common = ['--topology', topology, '--model', 'mixtral-tiny', '--context', '128', '--set', SETS[0]];
const gen = ['generate', ...common, '--prompt-ids', '1,2,3,4', '--max-new-tokens', String(TOKENS), '--json'];

interface GenJson {
  wall: { startup_s: number; per_token_ms: number };
  tokens: number[];
}

const rss = (pid: number): number => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
};

const single = spawnSync(process.execPath, [...CHIP_V8_FLAGS, rackemu, ...gen], { encoding: 'utf8' });
const one = JSON.parse(single.stdout) as GenJson;

const t = loadTopology(topology, SETS.map(parseSetArg));
const fabric = new Fabric(t);
const plan = compile(
  t,
  loadModel('mixtral-tiny', { dtype: 'bf16', withWeights: false }).config,
  { context: 128, promptTokens: 4 },
  fabric,
);
const hostIds = [...new Set(deployedChips(plan, fabric).map((c) => fabric.hostId(c)))];
const lab = createNetnsLab(4);
const procs: ReturnType<typeof spawn>[] = [];
try {
  const routes = lab.hosts.slice(0, 3).map((h) => `nats://${h.address}:6222`);
  const serverLogs = ['', '', ''];
  for (let i = 0; i < 3; i++) {
    const a = lab.hosts[i].address;
    const p = spawn(
      lab.exec(i)[0],
      [
        ...lab.exec(i).slice(1),
        'nats-server',
        '-a',
        a,
        '-p',
        '4222',
        '--cluster_name',
        'rackemu',
        '--cluster',
        `nats://${a}:6222`,
        '--routes',
        routes.filter((_, j) => j !== i).join(','),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    p.stderr!.on('data', (d: Buffer) => (serverLogs[i] += d.toString()));
    procs.push(p);
  }
  const ready = () => serverLogs.every((l) => (l.match(/Route connection created/g) ?? []).length >= 2);
  for (let i = 0; i < 300 && !ready(); i++) await new Promise((r) => setTimeout(r, 50));
  const cluster = lab.hosts
    .slice(0, 3)
    .map((h) => `nats://${h.address}:4222`)
    .join(',');
  const hosts = hostIds.map((id, k) =>
    spawn(
      lab.exec(k % 3)[0],
      [
        ...lab.exec(k % 3).slice(1),
        process.execPath,
        ...CHIP_V8_FLAGS,
        rackemu,
        'host',
        '--nats',
        cluster,
        '--deployment',
        'bench',
        '--host-id',
        id,
      ],
      {
        stdio: 'ignore',
      },
    ),
  );
  procs.push(...hosts);
  const coordinator = spawn(
    lab.exec(3)[0],
    [
      ...lab.exec(3).slice(1),
      process.execPath,
      ...CHIP_V8_FLAGS,
      rackemu,
      ...gen,
      '--transport',
      'nats',
      '--nats-url',
      cluster,
      '--isolation',
      'remote',
      '--deployment',
      'bench',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  procs.push(coordinator);
  let out = '';
  coordinator.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  // peak RSS of each host agent: the `node` process under `ip netns exec` (or that process itself)
  const hostPeaks = hosts.map(() => 0);
  const sampler = setInterval(() => {
    hosts.forEach((h, i) => {
      const kids = spawnSync('pgrep', ['-P', String(h.pid)], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean)
        .map(Number);
      for (const pid of [h.pid!, ...kids]) hostPeaks[i] = Math.max(hostPeaks[i], rss(pid));
    });
  }, 100);
  await new Promise((r) => coordinator.once('exit', r));
  clearInterval(sampler);
  const many = JSON.parse(out) as GenJson;
  console.log(
    JSON.stringify({
      tokens: TOKENS,
      hosts: hostIds.length,
      same_tokens: JSON.stringify(many.tokens) === JSON.stringify(one.tokens),
      one_process: { startup_s: one.wall.startup_s, per_token_ms: one.wall.per_token_ms },
      multi_host: { startup_s: many.wall.startup_s, per_token_ms: many.wall.per_token_ms },
      host_agent_peak_rss_mb: hostPeaks,
      chips_per_host: fabric.chipsPerNode,
    }),
  );
} finally {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  lab.destroy();
}

/**
 * `npm run bench`: the emulator's own speed, each figure next to a baseline measured in the same run on
 * the same machine. Every case runs in a fresh child process (clean timing, and peak RSS from
 * process.resourceUsage().maxRSS); results go to stdout, to bench/results.json and to the generated
 * section of BENCHMARKS.md.
 *
 *   compile        compile-once.js     the compiler alone
 *   start-up       deploy-once.js      Deployment.start of mixtral-8x7b on groq-576 vs bare-spawn.js (576 idle workers)
 *   decode         deploy-once.js      wall ms per emulated token, timing fidelity, embedded and NATS, vs the
 *                                      transport floor (raw-rate-once.js: measureRawRate at the schedule's frame
 *                                      size) and the critical-path latency floor (latency-once.js: one hop)
 *   numeric        deploy-once.js      mixtral-tiny tokens per wall second on groq-72 and groq-576 (shrunk SRAM)
 *   scaling        deploy-once.js      mixtral-tiny numeric on 1, 2, 4, 8 racks of groq-576.yaml
 *   memory         (from the above)    peak RSS of the 576-chip run vs the bare spawn
 *   serving        serve-once.js       rackemu serve under the load generator (serving.ts, load.ts)
 *   view           view-once.js        the rack view of a 576-chip serve in chromium: update cost, frame rate (view.ts)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { CHIP_V8_FLAGS } from '../src/control/v8-flags.js';
import { DEFAULT_LOOKAHEAD_STEPS } from '../src/runtime/run-spec.js';
import type { DeployCase, WarmRun } from './deploy-once.js';
import { rawFrameBytesFor, type FrameSizes } from './frames.js';
import { runServing, servingSection } from './serving.js';
import { runView, viewSection } from './view.js';

const here = new URL('.', import.meta.url).pathname;
const root = ((): string => {
  let d = here;
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d);
  return d.endsWith('/') ? d : `${d}/`;
})();
const topo = (name: string) => `${root}topologies/${name}.yaml`;
const benchStart = performance.now();

// ---------------------------------------------------------------------------------------------------
// Children

interface Failed {
  error: string;
}
const failed = (x: unknown): x is Failed => typeof x === 'object' && x !== null && 'error' in x;

/** Runs `script` (a sibling .js) in a fresh node process and parses the last line it prints as JSON. */
function child<T>(label: string, script: string, args: string[], timeoutS: number): T | Failed {
  const t0 = performance.now();
  process.stderr.write(`bench: ${label} ...`);
  try {
    // children start node with the flags the CLI runs chips with (src/control/v8-flags.ts)
    const out = execFileSync(process.execPath, [...CHIP_V8_FLAGS, `${here}${script}`, ...args], {
      encoding: 'utf8',
      timeout: timeoutS * 1000,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 2 ** 20,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const last = out.trim().split('\n').pop() ?? '';
    const r = JSON.parse(last) as T;
    process.stderr.write(` ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    return r;
  } catch (e) {
    const err = e as { stderr?: string; message: string; signal?: string };
    const tail = (err.stderr ?? '')
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '');
    const why =
      err.signal === 'SIGKILL'
        ? `timed out after ${timeoutS} s`
        : (tail.find((l) => /RACKEMU_ERR_|Error:/.test(l)) ?? tail.pop() ?? err.message).trim().slice(0, 300);
    process.stderr.write(` FAILED after ${((performance.now() - t0) / 1000).toFixed(1)} s: ${why}\n`);
    if (err.stderr) process.stderr.write(err.stderr.split('\n').slice(-15).join('\n') + '\n');
    return { error: why };
  }
}

interface CompileResult {
  topology: string;
  model: string;
  seconds: number;
  peak_rss_mb: number;
  chips: number;
  links: number;
  decode_ops: number;
  decode_transfers: number;
}

interface BareResult {
  workers: number;
  loaded: boolean;
  seconds: number;
  rss_before_mb: number;
  rss_all_up_mb: number;
  peak_rss_mb: number;
}

interface DeployResult {
  topology: string;
  sets: string[];
  model: string;
  fidelity: string;
  transport: string;
  chips: number;
  active_chips: number;
  used_chips: number;
  workers: number;
  hosts: number;
  compile_s: number;
  startup_s: number;
  run_s: number;
  stop_s: number;
  generated: number;
  per_token_ms: number;
  warm_runs: (WarmRun | Failed)[];
  warm_per_token_ms: number | null;
  marginal_ms_per_token: number | null;
  marginal_ms_per_token_all: number[];
  run_overhead_ms: number | null;
  marginal_sleeps_per_token: number | null;
  marginal_cpu_ms_per_token: number | null;
  marginal_messages_per_token: number | null;
  peak_rss_after_warm_mb: number;
  virtual_tpot_ms: number;
  virtual_ttft_ms: number;
  messages: {
    count: number;
    bytes: number;
    transport_messages: number;
    transport_bytes: number;
    credit_stalls: number;
    sleeps: number;
  };
  violations: number;
  tokens: number[] | null;
  decode_frames: FrameSizes;
  prefill_frames: FrameSizes;
  prefill_steps: number;
  critical_hops: number;
  cpu_start: { user_s: number; system_s: number };
  cpu_run: { user_s: number; system_s: number };
  rss_start_mb: number;
  rss_after_start_mb: number;
  peak_rss_after_start_mb: number;
  peak_rss_mb: number;
}

interface RawResult {
  transport: string;
  frame_bytes: number;
  encoded_frame_bytes: number;
  frames: number;
  frames_per_s: number;
  payload_bytes_per_s: number;
  wire_bytes_per_s: number;
}

interface LatencyResult {
  transport: string;
  frame_bytes: number;
  encoded_frame_bytes: number;
  rounds: number;
  one_hop_us: number;
}

const compileCase = (topology: string, model: string) =>
  child<CompileResult>(`compile ${model} on ${topology}`, 'compile-once.js', [topo(topology), model], 120);

/** Earlier failed attempts of deploy cases that then succeeded on a retry, by label. */
const retried: Record<string, string> = {};
/** A deployment case; retried once if it fails (a 2-core machine starting hundreds of workers is a tight fit). */
function deploy(label: string, c: DeployCase, timeoutS: number): DeployResult | Failed {
  const first = child<DeployResult>(label, 'deploy-once.js', [JSON.stringify(c)], timeoutS);
  if (!failed(first)) return first;
  const second = child<DeployResult>(`${label} (retry)`, 'deploy-once.js', [JSON.stringify(c)], timeoutS);
  if (failed(second)) return { error: `${second.error} (twice; first: ${first.error})` };
  retried[label] = first.error;
  return second;
}

/** Transport floors, measured once per (transport, raw frame size). */
const rawCache = new Map<string, RawResult | Failed>();
const latCache = new Map<string, LatencyResult | Failed>();
function rawRate(kind: 'embedded' | 'nats', encodedBytes: number): RawResult | Failed {
  const { frameBytes } = rawFrameBytesFor(encodedBytes);
  const key = `${kind}:${frameBytes}`;
  if (!rawCache.has(key)) {
    const frames = kind === 'embedded' ? 400_000 : 200_000;
    rawCache.set(
      key,
      child<RawResult>(
        `raw rate ${kind}, ${frameBytes} B payload`,
        'raw-rate-once.js',
        [kind, String(frameBytes), String(frames)],
        60,
      ),
    );
  }
  return rawCache.get(key)!;
}
function latency(kind: 'embedded' | 'nats', encodedBytes: number): LatencyResult | Failed {
  const { frameBytes } = rawFrameBytesFor(encodedBytes);
  const key = `${kind}:${frameBytes}`;
  if (!latCache.has(key)) {
    const rounds = kind === 'embedded' ? 20_000 : 5_000;
    latCache.set(
      key,
      child<LatencyResult>(
        `one-hop latency ${kind}, ${frameBytes} B payload`,
        'latency-once.js',
        [kind, String(frameBytes), String(rounds)],
        60,
      ),
    );
  }
  return latCache.get(key)!;
}

interface Floors {
  raw: RawResult | Failed;
  latency: LatencyResult | Failed;
  /** Decode frames per token / raw frames per second. */
  frames_ms: number | null;
  /** Decode on-wire bytes per token / raw on-wire bytes per second. */
  bytes_ms: number | null;
  /** The larger of the two: the transport floor. */
  floor_ms: number | null;
  /** Critical-path frames x one-hop latency. */
  latency_ms: number | null;
}

function floors(kind: 'embedded' | 'nats', d: DeployResult): Floors {
  const raw = rawRate(kind, d.decode_frames.meanBytes);
  const lat = latency(kind, d.decode_frames.meanBytes);
  const framesMs = failed(raw) ? null : (d.decode_frames.frames / raw.frames_per_s) * 1000;
  const bytesMs = failed(raw) ? null : (d.decode_frames.wireBytes / raw.wire_bytes_per_s) * 1000;
  return {
    raw,
    latency: lat,
    frames_ms: framesMs,
    bytes_ms: bytesMs,
    floor_ms: framesMs === null || bytesMs === null ? null : Math.max(framesMs, bytesMs),
    latency_ms: failed(lat) ? null : (d.critical_hops * lat.one_hop_us) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------------
// Cases

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
let commit = 'uncommitted';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bench'], {
    cwd: root,
    encoding: 'utf8',
  }).trim();
  if (dirty) commit += ' + uncommitted changes';
} catch {
  // not a git checkout
}
const date = new Date().toISOString().slice(0, 10);
const loadBefore = loadavg()[0];

const compileRuns = [compileCase('groq-576', 'mixtral-8x7b'), compileCase('groq-10440', 'mixtral-8x7b')];

const N = 576;
const bare = child<BareResult>(`bare spawn of ${N} workers`, 'bare-spawn.js', [String(N)], 300);
const bareLoaded = child<BareResult>(
  `spawn of ${N} chip workers without chips`,
  'bare-spawn.js',
  [String(N), 'loaded'],
  300,
);

/** Further runs on each deployment after the measured one, for the warm figures (see deploy-once.ts). */
const WARM_RUNS = 2;
const BIG_PROMPT = [1, 2, 3, 4];
const BIG_TOKENS = 16;
/** (long run, short run) pairs after the warm runs, for the marginal fit (deploy-once.ts pairs). */
const PAIRS = 3;
/**
 * Length of the long runs, for the marginal wall time of a token (deploy-once.ts longTokens): four
 * default look-ahead windows long, so the figure includes what each window costs the chips.
 */
const BIG_LONG_TOKENS = 4 * (DEFAULT_LOOKAHEAD_STEPS + 1);
/**
 * Warm-up pairs before the measured ones (deploy-once.ts warmPairs), 576-chip cases only: each of 576
 * isolates optimises its hot code only after running it a while, on two cores shared with the chips.
 */
const WARM_PAIRS = 2;
const bigCase = (transport: 'embedded' | 'nats'): DeployCase => ({
  topology: topo('groq-576'),
  sets: [],
  model: 'mixtral-8x7b',
  fidelity: 'timing',
  transport,
  promptIds: BIG_PROMPT,
  newTokens: BIG_TOKENS,
  warmRuns: WARM_RUNS,
  warmPairs: WARM_PAIRS,
  longTokens: BIG_LONG_TOKENS,
  pairs: PAIRS,
});
const decodeRuns = (['embedded', 'nats'] as const).map((transport) => {
  const d = deploy(`mixtral-8x7b on groq-576, timing, ${transport}`, bigCase(transport), 420);
  return { transport, d, f: failed(d) ? null : floors(transport, d) };
});

const TINY_PROMPT = [1, 2, 3, 4, 5];
const TINY_TOKENS = 16;
const TINY_CONTEXT = 64;
const TINY_LONG_TOKENS = 48;
const tinyCase = (topology: string, sets: string[]): DeployCase => ({
  topology: topo(topology),
  sets,
  model: 'mixtral-tiny',
  fidelity: 'numeric',
  transport: 'embedded',
  context: TINY_CONTEXT,
  // the layout that spreads the toy model over every active chip: these cases measure the emulator per chip
  layoutSearch: 'classic',
  promptIds: TINY_PROMPT,
  newTokens: TINY_TOKENS,
  warmRuns: WARM_RUNS,
  longTokens: TINY_LONG_TOKENS,
  pairs: PAIRS,
});
// SRAM shrunk so the toy model spreads: 0.1 MiB puts it on all 64 active chips of one rack; 0.03 MiB
// is the groq-576 setting of the tests (344 of 512 active chips).
const numericSpecs = [
  { topology: 'groq-72', sets: ['chip.sram_mib=0.1'] },
  { topology: 'groq-576', sets: ['chip.sram_mib=0.03'] },
];
const numericRuns = numericSpecs.map((s) => {
  const d = deploy(`mixtral-tiny numeric on ${s.topology} (${s.sets.join(' ')})`, tinyCase(s.topology, s.sets), 300);
  return { ...s, d, f: failed(d) ? null : floors('embedded', d) };
});

// groq-576.yaml cut to N racks, SRAM chosen so the model lands on every active chip (checked by compiling).
const scalingSpecs = [
  { racks: 1, sram: 0.1 },
  { racks: 2, sram: 0.05 },
  { racks: 4, sram: 0.032 },
  { racks: 8, sram: 0.026 },
];
const scalingRuns = scalingSpecs.map((s) => {
  const sets = [`racks=${s.racks}`, `chip.sram_mib=${s.sram}`];
  const d = deploy(`scaling: mixtral-tiny numeric on ${s.racks * 72} chips`, tinyCase('groq-576', sets), 300);
  return { ...s, sets, d, f: failed(d) ? null : floors('embedded', d) };
});
const servingRuns = runServing(child, topo);
const viewRun = runView(child, topo, `${root}docs/img`);
const benchSeconds = (performance.now() - benchStart) / 1000;

// ---------------------------------------------------------------------------------------------------
// Tables

const x = (a: number | null | undefined, b: number | null | undefined, d = 1): string =>
  a == null || b == null || !Number.isFinite(a / b) ? '—' : `${(a / b).toFixed(a / b >= 10 ? 0 : d)}x`;
const n = (v: number | null | undefined, d = 1): string => (v == null || !Number.isFinite(v) ? '—' : v.toFixed(d));
/** The spread of a deployment's marginal figures, e.g. "(9.8–14.1)". */
const range = (d: DeployResult): string => {
  const all = d.marginal_ms_per_token_all ?? [];
  return all.length < 2 ? '' : `(${n(Math.min(...all), 1)}–${n(Math.max(...all), 1)})`;
};
const kb = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`);
const rate = (r: number) => (r >= 1e6 ? `${(r / 1e6).toFixed(2)} M` : `${(r / 1e3).toFixed(0)} k`);
const fail = (what: unknown) => `failed: ${(what as Failed).error.replace(/\|/g, '/')}`;

const lines: string[] = [
  `Machine: ${machine}. Date: ${date}. Commit: ${commit}. Whole bench: ${benchSeconds.toFixed(0)} s (1-min load average before: ${loadBefore.toFixed(1)}).`,
  '',
  '### Compile',
  '',
  '| case | chips | links | decode ops / transfers | compile time | peak RSS | aim |',
  '|---|---|---|---|---|---|---|',
];
const aims: Record<string, string> = { 'groq-576': 'under 10 s and 1 GB', 'groq-10440': 'under 60 s' };
const compileNames = ['groq-576', 'groq-10440'];
compileRuns.forEach((r, i) => {
  if (failed(r)) lines.push(`| mixtral-8x7b on ${compileNames[i]} | ${fail(r)} | | | | | |`);
  else
    lines.push(
      `| ${r.model} on ${r.topology} | ${r.chips} | ${r.links} | ${r.decode_ops} / ${r.decode_transfers} | ${r.seconds.toFixed(2)} s | ${r.peak_rss_mb.toFixed(0)} MB | ${aims[r.topology]} |`,
    );
});

// Start-up
lines.push(
  '',
  `### Start-up: ${N} chips`,
  '',
  `Deployment.start of mixtral-8x7b on groq-576 (timing fidelity, thread isolation) until every worker is up with its Program, against a bare spawn of ${N} node:worker_threads workers that only post 'ready', and against a spawn of ${N} chip workers (the bundled chip runtime) that answer once loaded, without a chip.`,
  '',
  '| case | workers | start-up | baseline: bare spawn | ratio | bare spawn of the chip worker | ratio | CPU during start-up |',
  '|---|---|---|---|---|---|---|---|',
);
for (const { transport, d } of decodeRuns) {
  if (failed(d)) lines.push(`| ${transport} transport | ${N} | ${fail(d)} | | | | | |`);
  else {
    const cpu = d.cpu_start.user_s + d.cpu_start.system_s;
    lines.push(
      `| ${transport} transport | ${d.workers} | ${n(d.startup_s, 1)} s | ${failed(bare) ? fail(bare) : `${n(bare.seconds, 1)} s`} | ${failed(bare) ? '—' : x(d.startup_s, bare.seconds)} | ${failed(bareLoaded) ? fail(bareLoaded) : `${n(bareLoaded.seconds, 1)} s`} | ${failed(bareLoaded) ? '—' : x(d.startup_s, bareLoaded.seconds)} | ${n(cpu, 0)} s (${n(cpu / d.startup_s, 2)} cores) |`,
    );
  }
}

// Decode
lines.push(
  '',
  `### Decode speed: mixtral-8x7b on groq-576, timing fidelity`,
  '',
  `A ${BIG_PROMPT.length}-id prompt. First run: ${BIG_TOKENS} new tokens on a fresh deployment, its whole wall time (prefill, starting and ending 576 chips' runs included) / ${BIG_TOKENS}; every chip is its own V8 isolate whose code is still unoptimised (cold). Warm-up: ${WARM_RUNS} more runs of ${BIG_TOKENS} tokens and ${WARM_PAIRS} pairs of a ${BIG_LONG_TOKENS}-token and a ${BIG_TOKENS}-token run on the same deployment, not fitted (their wall time in all is given: each of 576 isolates optimises its hot code only after running it a while, on two cores shared with the chips). Marginal: the wall time one more token costs, from ${PAIRS} more such pairs: the least-squares slope of wall time against tokens over the last warm-up run and the pairs (in brackets, the spread of the single pairs: a ${BIG_LONG_TOKENS}-token run against the ${BIG_TOKENS}-token run before it); run overhead, the fit's intercept, is what a run costs besides its tokens. Each link's frames of a look-ahead window travel as one bundle, built by the sender and checked by the receiver in one comparison with the bundle it expects (one transport message per link and window: messages per token in the last column). Chips run with the default look-ahead (timing fidelity: a chip sends up to ${DEFAULT_LOOKAHEAD_STEPS} steps ahead of checking its received frames). Transport floor: the decode step's frames (on-wire size, header included: timing frames carry no payload) at the raw rate measureRawRate gives for frames of that size on the same transport, by frame count and by bytes, the larger. Latency floor: the frames on the step's longest dependency chain x one hop of a frame bounced between two workers (what a token would cost if every chip waited for its inputs). Sleeps: times a chip thread blocked (embedded).`,
  '',
  '| transport | first run, per token | warm-up | marginal per token | transport floor | marginal / floor | latency floor | marginal / latency floor | virtual per token | real-time factor: first / marginal | run overhead | sleeps per token | frames per token: plan / counted | transport messages per token |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
);
for (const { transport, d, f } of decodeRuns) {
  if (failed(d) || !f) {
    lines.push(`| ${transport} | ${fail(d)} | | | | | | | | | | | | |`);
    continue;
  }
  const raw = f.raw;
  const lat = f.latency;
  const floorText = failed(raw)
    ? fail(raw)
    : `${n(f.floor_ms, 2)} ms (${d.decode_frames.frames} frames at ${rate(raw.frames_per_s)}/s = ${n(f.frames_ms, 2)} ms; ${kb(d.decode_frames.wireBytes)} at ${kb(raw.wire_bytes_per_s)}/s = ${n(f.bytes_ms, 2)} ms)`;
  const latText = failed(lat)
    ? fail(lat)
    : `${n(f.latency_ms, 2)} ms (${d.critical_hops} hops x ${n(lat.one_hop_us, 1)} µs)`;
  const m = d.marginal_ms_per_token;
  const warmUp = d.warm_runs.slice(0, WARM_RUNS + 2 * WARM_PAIRS);
  const warmUpText = warmUp.some(failed)
    ? '—'
    : `${n(
        (warmUp as { run_s: number }[]).reduce((a, w) => a + w.run_s, 0),
        1,
      )} s`;
  lines.push(
    `| ${transport} | ${n(d.per_token_ms, 1)} ms | ${warmUpText} | ${n(m, 1)} ms ${range(d)} | ${floorText} | ${x(m, f.floor_ms)} | ${latText} | ${x(m, f.latency_ms)} | ${n(d.virtual_tpot_ms, 3)} ms | ${x(d.per_token_ms, d.virtual_tpot_ms)} / ${x(m, d.virtual_tpot_ms)} | ${n(d.run_overhead_ms, 0)} ms | ${transport === 'embedded' ? n(d.marginal_sleeps_per_token, 0) : '—'} | ${d.decode_frames.frames} / ${n(d.messages.count / d.generated, 0)} | ${n(d.marginal_messages_per_token, 0)} |`,
  );
}
const cpuRunLine = decodeRuns
  .filter((r) => !failed(r.d))
  .map(({ transport, d }) => {
    const dd = d as DeployResult;
    const cpu = dd.cpu_run.user_s + dd.cpu_run.system_s;
    const marginal =
      dd.marginal_cpu_ms_per_token === null
        ? ''
        : `; marginal ${n(dd.marginal_cpu_ms_per_token, 1)} ms CPU per token = ${n((dd.marginal_cpu_ms_per_token * 1000) / dd.decode_frames.frames, 1)} µs per frame`;
    return `${transport}: first run ${n(cpu, 1)} s CPU (${n(dd.cpu_run.system_s, 1)} s of it in the kernel) in ${n(dd.run_s, 1)} s (${n(cpu / dd.run_s, 2)} of ${cpus().length} cores), ${n((cpu * 1e6) / dd.messages.count, 0)} µs CPU per frame${marginal}`;
  });
if (cpuRunLine.length) lines.push('', `CPU during the run (all threads): ${cpuRunLine.join('; ')}.`);

// Numeric
lines.push(
  '',
  `### Numeric speed: mixtral-tiny, embedded transport`,
  '',
  `Context ${TINY_CONTEXT}, a ${TINY_PROMPT.length}-id prompt, ${TINY_TOKENS} new tokens, SRAM shrunk so that the model spreads, \`--layout-search classic\` (the layout that spreads it widest). Tokens per wall second (1000 / wall ms per token): first run (whole run / tokens, cold) and marginal (the slope over runs of ${TINY_TOKENS} and ${TINY_LONG_TOKENS} tokens, warm; in brackets the spread of single pairs, which is wide: numeric runs wait on values, so one slow chip holds up the rest) as above; numeric fidelity has no look-ahead (every send waits for the values it carries); floors as above, at the numeric frames' size (f32 payloads).`,
  '',
  '| topology | chips used / workers | tokens per wall s, first run / marginal | wall per token, first run / marginal | transport floor | wall / floor | latency floor | wall / latency floor | virtual tokens/s | real-time factor |',
  '|---|---|---|---|---|---|---|---|---|---|',
);
for (const { topology, sets, d, f } of numericRuns) {
  const name = `${topology} (${sets.join(', ')})`;
  if (failed(d) || !f) {
    lines.push(`| ${name} | ${fail(d)} | | | | | | | | |`);
    continue;
  }
  lines.push(
    `| ${name} | ${d.used_chips} / ${d.workers} | ${n(1000 / d.per_token_ms, 1)} / ${n(d.marginal_ms_per_token ? 1000 / d.marginal_ms_per_token : null, 1)} | ${n(d.per_token_ms, 1)} / ${n(d.marginal_ms_per_token, 1)} ms ${range(d)} | ${n(f.floor_ms, 2)} ms (${d.decode_frames.frames} frames of ${n(d.decode_frames.meanBytes, 0)} B) | ${x(d.per_token_ms, f.floor_ms)} / ${x(d.marginal_ms_per_token, f.floor_ms)} | ${n(f.latency_ms, 2)} ms (${d.critical_hops} hops) | ${x(d.per_token_ms, f.latency_ms)} / ${x(d.marginal_ms_per_token, f.latency_ms)} | ${n(1000 / d.virtual_tpot_ms, 0)} | ${x(d.per_token_ms, d.virtual_tpot_ms)} / ${x(d.marginal_ms_per_token, d.virtual_tpot_ms)} |`,
  );
}

// Scaling
const base = scalingRuns[0];
const baseMs = failed(base.d) ? null : base.d.per_token_ms;
lines.push(
  '',
  `### Scaling: mixtral-tiny numeric on 1, 2, 4 and 8 racks`,
  '',
  `groq-576.yaml with \`--set racks=N\`, chip.sram_mib shrunk and \`--layout-search classic\` so the model lands on every active chip; same run settings as above. Baseline: the 1-rack (72-chip) figure.`,
  '',
  '| chips | sram_mib | chips used / workers | decode frames per token | critical hops | wall per token, first run / marginal | vs 72 chips, first run / marginal | frames vs 72 chips | wall per frame, first run / marginal | start-up | peak RSS |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
);
for (const { racks, sram, d } of scalingRuns) {
  if (failed(d)) {
    lines.push(`| ${racks * 72} | ${sram} | ${fail(d)} | | | | | | | | |`);
    continue;
  }
  const baseFrames = failed(base.d) ? null : base.d.decode_frames.frames;
  const baseWarm = failed(base.d) ? null : base.d.marginal_ms_per_token;
  const perFrame = (ms: number | null) => (ms == null ? null : (ms * 1000) / d.decode_frames.frames);
  lines.push(
    `| ${d.chips} | ${sram} | ${d.used_chips} / ${d.workers} | ${d.decode_frames.frames} | ${d.critical_hops} | ${n(d.per_token_ms, 1)} / ${n(d.marginal_ms_per_token, 1)} ms | ${x(d.per_token_ms, baseMs, 2)} / ${x(d.marginal_ms_per_token, baseWarm, 2)} | ${x(d.decode_frames.frames, baseFrames, 2)} | ${n(perFrame(d.per_token_ms), 0)} / ${n(perFrame(d.marginal_ms_per_token), 0)} µs | ${n(d.startup_s, 1)} s | ${n(d.peak_rss_mb, 0)} MB |`,
  );
}

// Memory
lines.push('', `### Memory: ${N} chips`, '', '| figure | value | baseline | ratio |', '|---|---|---|---|');
const bigEmb = decodeRuns[0].d;
const memory: Record<string, number | null> = {};
if (failed(bare)) lines.push(`| bare spawn | ${fail(bare)} | | |`);
else {
  memory.bare_peak_rss_mb = bare.peak_rss_mb;
  memory.bare_per_worker_mb = (bare.peak_rss_mb - bare.rss_before_mb) / bare.workers;
  if (!failed(bareLoaded)) {
    memory.bare_loaded_peak_rss_mb = bareLoaded.peak_rss_mb;
    memory.bare_loaded_per_worker_mb = (bareLoaded.peak_rss_mb - bareLoaded.rss_before_mb) / bareLoaded.workers;
    lines.push(
      `| chip worker without a chip: (peak - empty process) / ${bareLoaded.workers} | ${n(memory.bare_loaded_per_worker_mb, 2)} MB | bare worker: ${n(memory.bare_per_worker_mb, 2)} MB | ${x(memory.bare_loaded_per_worker_mb, memory.bare_per_worker_mb, 2)} |`,
    );
  }
}
for (const { transport, d } of decodeRuns) {
  if (failed(d)) {
    lines.push(`| peak RSS, ${transport} | ${fail(d)} | | |`);
    continue;
  }
  memory[`${transport}_peak_rss_mb`] = d.peak_rss_mb;
  if (failed(bare)) continue;
  lines.push(
    `| peak RSS of the ${d.workers}-chip timing run, ${transport} transport (start-up + run) | ${n(d.peak_rss_mb, 0)} MB | bare spawn of ${bare.workers} workers: ${n(bare.peak_rss_mb, 0)} MB | ${x(d.peak_rss_mb, bare.peak_rss_mb, 2)} |`,
  );
  // the long runs of the warm-up and the pairs hold more in flight than the first 16-token run
  memory[`${transport}_peak_rss_all_runs_mb`] = d.peak_rss_after_warm_mb;
  lines.push(
    `| peak RSS over all its runs (warm-up and ${BIG_LONG_TOKENS}-token pairs included), ${transport} transport | ${n(d.peak_rss_after_warm_mb, 0)} MB | bare spawn of ${bare.workers} workers: ${n(bare.peak_rss_mb, 0)} MB | ${x(d.peak_rss_after_warm_mb, bare.peak_rss_mb, 2)} |`,
  );
  const perChip = (d.peak_rss_mb - bare.peak_rss_mb) / d.workers;
  memory[`${transport}_per_chip_overhead_mb`] = perChip;
  lines.push(
    `| per chip beyond a bare worker, ${transport}: (peak RSS - bare peak) / ${d.workers} | ${n(perChip, 2)} MB | bare worker: (bare peak - empty process) / ${bare.workers} = ${n(memory.bare_per_worker_mb, 2)} MB | ${x(perChip, memory.bare_per_worker_mb, 2)} |`,
  );
}
if (!failed(bigEmb) && !failed(bare)) {
  lines.push(
    `| RSS once started, embedded (before the run) | ${n(bigEmb.rss_after_start_mb, 0)} MB | bare spawn, all up: ${n(bare.rss_all_up_mb, 0)} MB | ${x(bigEmb.rss_after_start_mb, bare.rss_all_up_mb, 2)} |`,
  );
}
lines.push('', "The NATS transport's nats-server is a separate process: its memory is not in these figures.");
const withViolations = [...decodeRuns, ...numericRuns, ...scalingRuns]
  .map((r) => r.d)
  .filter(
    (d): d is DeployResult =>
      !failed(d) && (d.violations > 0 || d.warm_runs.some((w) => !failed(w) && w.violations > 0)),
  );
for (const d of withViolations)
  lines.push(
    '',
    `Warning: ${d.model} on ${d.topology} (${d.sets.join(', ') || 'as is'}, ${d.transport}) reported schedule violations: the figures above include a shifted timeline.`,
  );
// Warm runs far slower than the cold one, or failed: worth a look (see deploy-once.ts).
for (const d of [...decodeRuns, ...numericRuns, ...scalingRuns].map((r) => r.d)) {
  if (failed(d)) continue;
  const name = `${d.model} on ${d.topology} (${d.sets.join(', ') || 'as is'}, ${d.fidelity}, ${d.transport})`;
  d.warm_runs.forEach((w, i) => {
    if (failed(w)) lines.push('', `Note: warm run ${i + 1} of ${name} failed: ${w.error.replace(/\|/g, '/')}.`);
    else if (w.per_token_ms > 3 * d.per_token_ms)
      lines.push(
        '',
        `Note: warm run ${i + 1} of ${name} took ${n(w.per_token_ms, 0)} ms per token (cold: ${n(d.per_token_ms, 0)} ms), ${n(w.run_s, 1)} s in all, ${n(w.system_s, 1)} of its ${n(w.cpu_s, 1)} CPU s in the kernel.`,
      );
  });
}
lines.push(...servingSection(servingRuns));
lines.push(...viewSection(viewRun));
for (const [label, error] of Object.entries(retried))
  lines.push('', `Note: ${label} failed on its first attempt (${error.replace(/\|/g, '/')}) and was run again.`);

const section = lines.join('\n');
console.log(section);

writeFileSync(
  `${root}bench/results.json`,
  JSON.stringify(
    {
      machine,
      date,
      commit,
      bench_seconds: benchSeconds,
      load_average_before: loadBefore,
      compile: compileRuns,
      startup: {
        bare,
        bare_loaded: bareLoaded,
        deployments: decodeRuns.map(({ transport, d }) => ({ transport, startup_s: failed(d) ? null : d.startup_s })),
      },
      decode: decodeRuns,
      numeric: numericRuns,
      scaling: scalingRuns,
      serving: servingRuns,
      view: viewRun,
      memory,
      retried,
    },
    null,
    2,
  ) + '\n',
);
const file = `${root}BENCHMARKS.md`;
const doc = readFileSync(file, 'utf8');
const [head, rest] = doc.split('<!-- bench:start -->');
const tail = rest?.split('<!-- bench:end -->')[1] ?? '\n';
writeFileSync(file, `${head}<!-- bench:start -->\n${section}\n<!-- bench:end -->${tail}`);

/**
 * One deployment in a fresh process, for clean wall times and peak RSS: compile, (spawn a private
 * nats-server,) Deployment.start, one generate, stop. Prints one JSON line.
 * Usage: node dist/bench/deploy-once.js '<DeployCase as JSON>'
 */
import type { LayoutSearch } from '../src/compiler/plan.js';
import { compile } from '../src/compiler/compile.js';
import { Deployment } from '../src/control/deployment.js';
import { loadModel } from '../src/model/load.js';
import type { Fidelity } from '../src/runtime/run-spec.js';
import { messagesJson } from '../src/cli/generate-report.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology, parseSetArg } from '../src/topology/load.js';
import { spawnNatsServer, type SpawnedNatsServer } from '../src/transport/nats-server.js';
import { criticalHops, stepFrameSizes } from './frames.js';

/** One warm run of a deployment case: its size, wall and CPU time, and what moved. */
export interface WarmRun {
  tokens: number;
  per_token_ms: number;
  run_s: number;
  cpu_s: number;
  system_s: number;
  violations: number;
  sleeps: number;
  frames: number;
  messages: number;
  decoded: number;
  window_us: [number, number];
}

export interface DeployCase {
  /** Topology file (absolute, or relative to the working directory). */
  topology: string;
  /** --set overrides, e.g. ['racks=2', 'chip.sram_mib=0.05']. */
  sets: string[];
  model: string;
  fidelity: Fidelity;
  transport: 'embedded' | 'nats';
  context?: number;
  /** Compiler layout search (default: the compiler's). */
  layoutSearch?: LayoutSearch;
  promptIds: number[];
  newTokens: number;
  watchdogMs?: number;
  /**
   * Further generate calls on the same deployment after the measured (cold) one: each chip is its own
   * V8 isolate, so its code is interpreted until that isolate has run it often enough to optimise it.
   * The last of these runs gives the warm per-token figure.
   */
  warmRuns?: number;
  /**
   * Warm-up pairs (longTokens run, newTokens run) after the warm runs, not fitted: each of hundreds of
   * isolates optimises its code only once it has run it for a while, and long runs reach code paths
   * short ones do not. Default 0.
   */
  warmPairs?: number;
  /**
   * After the warm runs, one more run of this many new tokens: the marginal wall time of a token is
   * (its run time - the last warm run's) / (longTokens - newTokens), free of what every run costs
   * once (starting 576 chips' runs, prefill, collecting their results).
   */
  longTokens?: number;
  /**
   * Repeats of (longTokens run, newTokens run) after the warm runs. The marginal figures are the
   * least-squares slope of wall time (CPU, sleeps) against tokens over the last warm run and the pairs, and
   * the per-run overhead its intercept: runs of hundreds of threads on two cores vary by 2x from run
   * to run, and a fit over all of them is steadier than any one pair. Each long run against the
   * short run just before it is also reported, for the spread. Default 1.
   */
  pairs?: number;
  /** RunSpec.lookaheadSteps (default: the runtime's). */
  lookaheadSteps?: number;
}

const c = JSON.parse(process.argv[2]) as DeployCase;
const mb = () => process.resourceUsage().maxRSS / 1024;
const rssStartMb = process.memoryUsage().rss / 2 ** 20;

const t0 = performance.now();
const topology = loadTopology(c.topology, c.sets.map(parseSetArg));
const { config, weights } = loadModel(c.model, { dtype: 'bf16', withWeights: c.fidelity === 'numeric' });
const fabric = new Fabric(topology);
const plan = compile(
  topology,
  config,
  { context: c.context, promptTokens: c.promptIds.length, layoutSearch: c.layoutSearch },
  fabric,
);
const compileSeconds = (performance.now() - t0) / 1000;
const rssCompiledMb = process.memoryUsage().rss / 2 ** 20;

let nats: SpawnedNatsServer | null = null;
let deployment: Deployment | null = null;
try {
  if (c.transport === 'nats') nats = await spawnNatsServer();
  const t1 = performance.now();
  const cpu0 = process.cpuUsage();
  deployment = await Deployment.start(plan, fabric, {
    fidelity: c.fidelity,
    transport: c.transport,
    natsUrl: nats?.url,
    isolation: 'thread',
    model: { spec: c.model, dtype: plan.options.dtype },
    weights,
    watchdogMs: c.watchdogMs ?? 30_000,
  });
  const startWallSeconds = (performance.now() - t1) / 1000;
  const cpu1 = process.cpuUsage();
  const peakAfterStartMb = mb();
  const rssAfterStartMb = process.memoryUsage().rss / 2 ** 20;
  const runFromUs = Number(process.hrtime.bigint() / 1000n);
  const r = await deployment.generate({
    promptIds: c.promptIds,
    maxNewTokens: c.newTokens,
    lookaheadSteps: c.lookaheadSteps,
  });
  const runToUs = Number(process.hrtime.bigint() / 1000n);
  const peakAfterRunMb = mb();
  const cpu2 = process.cpuUsage();
  const warm: (WarmRun | { error: string })[] = [];
  const pairs = c.longTokens ? (c.pairs ?? 1) : 0;
  const warmPairs = c.longTokens ? (c.warmPairs ?? 0) : 0;
  // the warm-up: short runs, then (long, short) pairs; the measured pairs follow
  const warmUp = [
    ...Array.from({ length: c.warmRuns ?? 0 }, () => c.newTokens),
    ...Array.from({ length: warmPairs }, () => [c.longTokens!, c.newTokens]).flat(),
  ];
  const runs = [
    ...warmUp,
    ...Array.from({ length: pairs }, (_, i) => (i < pairs - 1 ? [c.longTokens!, c.newTokens] : [c.longTokens!])).flat(),
  ];
  for (const tokens of runs) {
    const w0 = process.cpuUsage();
    const from = Number(process.hrtime.bigint() / 1000n);
    try {
      const w = await deployment.generate({
        promptIds: c.promptIds,
        maxNewTokens: tokens,
        lookaheadSteps: c.lookaheadSteps,
      });
      const wc = process.cpuUsage(w0);
      warm.push({
        tokens,
        per_token_ms: w.wall.perTokenMs,
        run_s: w.wall.runSeconds,
        cpu_s: (wc.user + wc.system) / 1e6,
        system_s: wc.system / 1e6,
        violations: w.violations.length,
        sleeps: w.messages.sleeps,
        frames: w.messages.frames,
        messages: w.messages.transportMessages,
        decoded: w.messages.decoded,
        window_us: [from, Number(process.hrtime.bigint() / 1000n)],
      });
    } catch (e) {
      // keep the cold figures; a deployment whose run failed is not reused
      warm.push({ error: `${(e as { code?: string }).code ?? ''} ${(e as Error).message}`.trim().slice(0, 300) });
      break;
    }
  }
  const ok = warm.filter((w): w is WarmRun => !('error' in w));
  // each long run against the short run just before it
  const measured: { short: WarmRun; long: WarmRun }[] = [];
  // the fit: the last warm-up run and the pairs (earlier warm-ups still carry code being optimised)
  const fitted = ok.slice(Math.max(0, warmUp.length - 1));
  for (let i = 1; i < fitted.length; i++)
    if (fitted[i].tokens === c.longTokens && fitted[i - 1].tokens === c.newTokens)
      measured.push({ short: fitted[i - 1], long: fitted[i] });
  const marginals = measured.map(
    ({ short, long }) => ((long.run_s - short.run_s) * 1000) / (long.tokens - short.tokens),
  );
  /** Least-squares fit of f(run) = intercept + slope x tokens over the runs; null without two lengths. */
  const fit = (f: (r: WarmRun) => number): { slope: number; intercept: number } | null => {
    if (measured.length === 0) return null;
    const mx = fitted.reduce((a, r) => a + r.tokens, 0) / fitted.length;
    const my = fitted.reduce((a, r) => a + f(r), 0) / fitted.length;
    const sxx = fitted.reduce((a, r) => a + (r.tokens - mx) ** 2, 0);
    const slope = fitted.reduce((a, r) => a + (r.tokens - mx) * (f(r) - my), 0) / sxx;
    return { slope, intercept: my - slope * mx };
  };
  const wallFit = fit((r) => r.run_s * 1000);
  const marginalMs = wallFit?.slope ?? null;
  const lastWarm = ok.filter((w) => w.tokens === c.newTokens).pop();
  const long = ok.filter((w) => w.tokens === c.longTokens).pop();
  const cpuS = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => ({
    user_s: (b.user - a.user) / 1e6,
    system_s: (b.system - a.system) / 1e6,
  });
  const t2 = performance.now();
  await deployment.stop();
  deployment = null;
  const stopSeconds = (performance.now() - t2) / 1000;
  const decode = stepFrameSizes(plan, fabric, c.fidelity, 'decode');
  const prefill = stepFrameSizes(plan, fabric, c.fidelity, 'prefill');
  console.log(
    JSON.stringify({
      topology: topology.name,
      sets: c.sets,
      model: c.model,
      fidelity: c.fidelity,
      transport: c.transport,
      chips: fabric.chipCount,
      active_chips: fabric.chipCount - topology.racks * topology.spare_nodes_per_rack * topology.chips_per_node,
      used_chips: r.chips.used,
      workers: r.chips.workers,
      hosts: r.chips.hosts,
      compile_s: compileSeconds,
      startup_s: r.wall.startupSeconds,
      start_wall_s: startWallSeconds,
      run_s: r.wall.runSeconds,
      stop_s: stopSeconds,
      generated: r.generated,
      per_token_ms: r.wall.perTokenMs,
      virtual_tpot_ms: r.virtual.tpotMs,
      virtual_ttft_ms: r.virtual.ttftMs,
      warm_runs: warm,
      warm_per_token_ms: lastWarm ? lastWarm.per_token_ms : null,
      long_run: long ?? null,
      // the marginal wall time of a token, and what a run costs besides its tokens
      marginal_ms_per_token: marginalMs,
      marginal_ms_per_token_all: marginals,
      run_overhead_ms: wallFit?.intercept ?? null,
      marginal_sleeps_per_token: fit((r) => r.sleeps)?.slope ?? null,
      marginal_cpu_ms_per_token: fit((r) => r.cpu_s * 1000)?.slope ?? null,
      marginal_messages_per_token: fit((r) => r.messages)?.slope ?? null,
      peak_rss_after_warm_mb: mb(),
      messages: messagesJson(r.messages),
      violations: r.violations.length,
      tokens: r.tokens,
      decode_frames: decode,
      prefill_frames: prefill,
      prefill_steps: Math.ceil(c.promptIds.length / plan.options.prefillChunk),
      critical_hops: criticalHops(plan, 'decode'),
      cpu_start: cpuS(cpu0, cpu1),
      // CLOCK_MONOTONIC microseconds, the clock of --cpu-prof samples: to cut profiles to the run
      run_window_us: [runFromUs, runToUs],
      cpu_run: cpuS(cpu1, cpu2),
      rss_start_mb: rssStartMb,
      rss_compiled_mb: rssCompiledMb,
      rss_after_start_mb: rssAfterStartMb,
      peak_rss_after_start_mb: peakAfterStartMb,
      peak_rss_mb: peakAfterRunMb,
    }),
  );
} finally {
  await deployment?.stop();
  await nats?.stop();
}

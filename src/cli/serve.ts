import { Option, type Command } from 'commander';
import type { Plan } from '../compiler/plan.js';
import type { Fabric } from '../topology/fabric.js';
import { Deployment } from '../control/deployment.js';
import type { CompletionEngine, EngineObserver, Pace } from '../control/engine-types.js';
import { Engine } from '../control/engine.js';
import { FaultCampaign } from '../control/fault-campaign.js';
import { ServingMetrics } from '../control/metrics.js';
import { fanOut } from '../control/observers.js';
import type { FaultControl } from '../serve/admin.js';
import { faultControl } from './serve-faults.js';
import { createServer, type RackemuServer } from '../serve/app.js';
import { FileSdFile, fileSdGroups } from '../serve/file-sd.js';
import { LateEngine } from '../serve/late-engine.js';
import { loadTextCodec } from '../serve/text.js';
import type { SpawnedNatsServer } from '../transport/index.js';
import { UsageError } from '../util/errors.js';
import { RackView } from '../view/index.js';
import { logger, setLogLevel } from '../util/log.js';
import { natsAuthFromFlags } from './nats-flags.js';
import {
  addRuntimeFlags,
  checkNumericMemory,
  checkRuntimeFlags,
  deployOptions,
  spawnNatsIfAsked,
  type RuntimeFlags,
} from './runtime-flags.js';
import { addPlanFlags, integerFlag, planFromFlags, type PlanFlags } from './plan-flags.js';

interface ServeFlags extends PlanFlags, RuntimeFlags {
  host: string;
  port: number;
  pace: Pace;
  maxWaiting: number;
  windowSteps?: number;
  metricsFileSd?: string;
}

/** Requests that may wait for a batch slot before new ones get 429. */
export const DEFAULT_MAX_WAITING = 128;

/** What the engine is built from; one function, so that the rest of serve depends on the interface only. */
export interface EngineSetup {
  readonly deployment: Deployment;
  readonly plan: Plan;
  readonly pace: Pace;
  readonly maxWaiting: number;
  readonly lookaheadSteps: number;
  /** Steps per window sent to the chips (EngineOptions.windowSteps; default by fidelity). */
  readonly windowSteps?: number;
  /** Sees what the engine does: the metrics and the rack view (fanOut). */
  readonly observer: EngineObserver;
  /** Fault injection and recovery (POST /admin/faults); without it a failed window fails its requests. */
  readonly faults?: FaultCampaign;
}

export function createEngine(setup: EngineSetup): CompletionEngine {
  const { deployment, plan, pace, maxWaiting, lookaheadSteps, windowSteps, observer, faults } = setup;
  return new Engine(deployment, plan, { pace, maxWaiting, lookaheadSteps, windowSteps, observer, faults });
}

function checkFlags(flags: ServeFlags): void {
  const fail = (message: string, path: string, expected: string, got: string) => {
    throw new UsageError('RACKEMU_ERR_SERVE_OPTION', message, { details: { path, expected, got } });
  };
  if (flags.port > 65535)
    fail(`--port: expected 0..65535, got ${flags.port}`, '--port', '0..65535', String(flags.port));
  checkRuntimeFlags(flags, 'RACKEMU_ERR_SERVE_OPTION');
}

export function serveCommand(program: Command, out: (s: string) => void): void {
  const cmd = addPlanFlags(
    program
      .command('serve')
      .description('serve the deployment over an OpenAI-compatible HTTP API (docs/serving.md); SIGTERM drains'),
  )
    .option('--host <addr>', 'address to listen on (127.0.0.1: this machine only)', '127.0.0.1')
    .option('--port <n>', 'TCP port (0: any free port)', integerFlag('--port', 0), 8080)
    .addOption(
      new Option('--pace <p>', 'max: as fast as possible; realtime: hold the wall clock to the virtual clock')
        .choices(['max', 'realtime'])
        .default('max'),
    )
    .option(
      '--window-steps <n>',
      'steps the coordinator sends the chips at a time (default: 64 timing, 8 numeric; docs/serving.md)',
      integerFlag('--window-steps', 1),
    )
    .option(
      '--max-waiting <n>',
      'requests that may wait for a batch slot (more get 429)',
      integerFlag('--max-waiting', 0),
      DEFAULT_MAX_WAITING,
    )
    .option(
      '--metrics-file-sd <file>',
      'write a Prometheus file_sd JSON file listing every /metrics target (coordinator, host agents); removed at exit',
    );
  addRuntimeFlags(cmd).action((flags: ServeFlags) => serve(flags, out));
}

async function serve(flags: ServeFlags, out: (s: string) => void): Promise<void> {
  if (process.env.RACKEMU_LOG === undefined) setLogLevel('info'); // a server logs its events by default
  const log = logger().child({ component: 'serve' });
  checkFlags(flags);
  const natsAuth = flags.transport === 'nats' ? natsAuthFromFlags(flags, 'RACKEMU_ERR_SERVE_OPTION') : undefined;
  const { plan, fabric, weights } = planFromFlags(flags, { withWeights: flags.fidelity === 'numeric' });
  checkNumericMemory(plan, flags.fidelity, 'RACKEMU_ERR_SERVE_OPTION');
  const codec = loadTextCodec(flags.model);
  if (codec.source) log.info({ tokenizer: codec.source, chat: codec.chat !== null }, 'tokenizer loaded');
  const metrics = servingMetrics(plan, flags.fidelity);
  const view = rackView(plan, fabric, flags.fidelity);
  const engine = new LateEngine(plan.model.name, flags.fidelity, plan.model.vocab, plan.options.context);
  let faults: FaultControl | null = null;
  let campaign: FaultCampaign | null = null;
  const server = createServer({
    faults: () => faults,
    engine,
    codec,
    metrics: metrics.registry,
    adminToken: process.env.RACKEMU_ADMIN_TOKEN || undefined,
    log,
    rejected: (reason) => metrics.requestRejected(reason),
    view,
  });
  const signals = onSignals(server, log);
  const fileSd = flags.metricsFileSd ? new FileSdFile(flags.metricsFileSd) : null;
  let nats: SpawnedNatsServer | null = null;
  let deployment: Deployment | null = null;
  try {
    const url = await listen(server, flags);
    out(`rackemu serve: ${plan.model.name} on ${url} (GET /ready says when the chips are loaded)\n`);
    const coordinator = { host: flags.host, port: new URL(url).port };
    await writeTargets(fileSd, coordinator, [], log); // the coordinator's start-up progress is scrapable
    nats = await spawnNatsIfAsked(flags, natsAuth);
    const options = {
      ...deployOptions(flags, plan, weights, { url: nats?.url ?? flags.natsUrl, auth: natsAuth }),
      onProgress: (ready: number, total: number) => metrics.setStartup(ready, total),
      hostMetricsHost: flags.isolation === 'process' ? flags.host : undefined,
    };
    deployment = await Deployment.start(plan, fabric, options);
    await writeTargets(fileSd, coordinator, deployment.hostMetrics, log);
    if (server.draining) {
      log.info('stopping: a drain began while the chips were loading');
    } else {
      const wallT0 = performance.now();
      // faults come from POST /admin/faults; recovery re-plans onto spares and starts the new Plan the same way
      const start = async (p: Plan, f: Fabric) => {
        view.setPlan(p, f); // the spare's chips show as recovering while they load
        const next = await Deployment.start(p, f, options);
        metrics.setPlan(p, f);
        await writeTargets(fileSd, coordinator, next.hostMetrics, log);
        return next;
      };
      const observer = fanOut(metrics.faults, view);
      campaign = new FaultCampaign(deployment, plan, { faults: [], start, observer, wallT0, ...LIVE_REQUESTS });
      faults = faultControl(campaign, wallT0);
      const setup = { deployment, plan, pace: flags.pace, maxWaiting: flags.maxWaiting, faults: campaign };
      metrics.setPlan(plan, fabric);
      const engineOptions = {
        observer: fanOut(metrics, view),
        lookaheadSteps: flags.lookahead,
        windowSteps: flags.windowSteps,
      };
      engine.attach(createEngine({ ...setup, ...engineOptions }));
      log.info({ model: plan.model.name, topology: plan.topology.name, fidelity: flags.fidelity }, 'ready');
    }
    await server.closed;
  } finally {
    signals.remove();
    await fileSd?.remove(); // first: Prometheus stops scraping targets that are about to go
    if (!server.draining) await server.close();
    await (campaign?.current ?? deployment)?.stop();
    await nats?.stop();
    log.info('stopped');
  }
}

function servingMetrics(plan: Plan, fidelity: 'numeric' | 'timing'): ServingMetrics {
  const [modelName, topology, context] = [plan.model.name, plan.topology.name, plan.options.context];
  return new ServingMetrics({ modelName, topology, fidelity, context, processMetrics: true });
}

/** A live server's faults name no workload request (POST /admin/faults takes ticks and wall times). */
const LIVE_REQUESTS = { requestId: String, tokensOf: () => 0 };

/** The rack view at /: the Plan's chips from the start (while they load), then what the engine and faults report. */
function rackView(plan: Plan, fabric: Fabric, fidelity: string): RackView {
  const view = new RackView(fidelity);
  view.setPlan(plan, fabric);
  return view;
}

/** Writes the --metrics-file-sd file (if asked): the coordinator's /metrics and each host agent's. */
async function writeTargets(
  file: FileSdFile | null,
  coordinator: { host: string; port: string },
  hosts: readonly { hostId: string; url: string }[],
  log: ReturnType<typeof logger>,
): Promise<void> {
  if (file === null) return;
  try {
    await file.write(fileSdGroups(coordinator, hosts));
  } catch (e) {
    throw new UsageError('RACKEMU_ERR_SERVE_OPTION', `--metrics-file-sd: cannot write ${file.path}: ${String(e)}`, {
      details: { path: '--metrics-file-sd', got: file.path },
      cause: e,
    });
  }
  log.info({ file: file.path, targets: 1 + hosts.length }, 'metrics targets written');
}

async function listen(server: RackemuServer, flags: ServeFlags): Promise<string> {
  try {
    return await server.listen(flags.host, flags.port);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError('RACKEMU_ERR_SERVE_OPTION', `cannot listen on ${flags.host}:${flags.port}: ${err.message}`, {
      details: { path: '--port', got: `${flags.host}:${flags.port}` },
      cause: e,
    });
  }
}

/**
 * SIGTERM (and SIGINT) drains: new requests get 503, those in flight finish, then the server closes
 * and the command returns (exit 0). A second signal exits at once.
 */
function onSignals(server: RackemuServer, log: ReturnType<typeof logger>): { remove(): void } {
  let seen = 0;
  const handler = (signal: NodeJS.Signals) => {
    if (++seen > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    void server.drain(signal).catch(() => {}); // a failed drain rejects server.closed, which serve() awaits
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return {
    remove() {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
    },
  };
}

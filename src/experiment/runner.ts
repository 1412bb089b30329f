import { compile } from '../compiler/compile.js';
import type { Plan } from '../compiler/plan.js';
import { Deployment, type DeployOptions } from '../control/deployment.js';
import { Engine } from '../control/engine.js';
import { FaultCampaign, type CampaignFault, type FaultRecord } from '../control/fault-campaign.js';
import { drawFaults } from '../faults/random.js';
import { resolveTarget } from '../faults/targets.js';
import { isRandomFaults, type FaultSpec } from '../faults/types.js';
import { loadModel } from '../model/load.js';
import { Fabric } from '../topology/fabric.js';
import { loadTopology, parseSetArg } from '../topology/load.js';
import { spawnNatsCluster, type SpawnedNatsCluster } from '../transport/index.js';
import { logger } from '../util/log.js';
import { buildReport, type ExperimentReport } from './report.js';
import type { ExperimentRunOptions, ExperimentSpec } from './types.js';

export type { ExperimentRunOptions };
import { requestId, serveWorkload, type RequestOutcome } from './workload.js';

/**
 * Steps per window in numeric fidelity (the engine's default is 8): a campaign fires one fault per window
 * and waits for a clean window after each recovery, so shorter windows leave room for more faults.
 */
const WINDOW_STEPS_NUMERIC = 4;

/** The system of an experiment: its Plan and its faults, resolved before anything runs. */
export interface PreparedExperiment {
  readonly plan: Plan;
  readonly fabric: Fabric;
  readonly faults: CampaignFault[];
}

/** Compiles the experiment's system and checks every fault's target against it (nothing runs yet). */
export function prepareExperiment(spec: ExperimentSpec, natsServers: number): PreparedExperiment {
  const topology = loadTopology(spec.topology, spec.set.map(parseSetArg));
  const { config } = loadModel(spec.model, { dtype: spec.plan.dtype ?? 'bf16', withWeights: false });
  const fabric = new Fabric(topology);
  const plan = compile(
    topology,
    config,
    {
      dtype: spec.plan.dtype,
      batch: spec.plan.batch,
      context: spec.plan.context,
      prefillChunk: spec.plan.prefillChunk,
      layoutSearch: spec.plan.layoutSearch,
      promptTokens: spec.workload.promptTokens,
    },
    fabric,
  );
  const faults: CampaignFault[] = [];
  spec.faults.forEach((f, i) => {
    const specs: { spec: FaultSpec; where: string }[] = isRandomFaults(f)
      ? drawFaults(f.random, plan, fabric, spec.workload, natsServers).map((s, j) => ({
          spec: s,
          where: `faults[${i}].random[${j}]`,
        }))
      : [{ spec: f, where: `faults[${i}]` }];
    for (const s of specs) {
      faults.push({ ...s, target: resolveTarget(s.spec, plan, fabric, natsServers, `${spec.file}: ${s.where}`) });
    }
  });
  return { plan, fabric, faults };
}

/**
 * Runs an experiment: the workload served fault-free (the baseline), then again with the faults
 * injected on a fresh timeline of the same deployment, and the report comparing the two.
 */
export async function runExperiment(spec: ExperimentSpec, o: ExperimentRunOptions): Promise<ExperimentReport> {
  return (await runExperimentWithRecords(spec, o)).report;
}

/** runExperiment, with what the campaign recorded of each fault and the Plan it started on (for traces). */
export async function runExperimentWithRecords(
  spec: ExperimentSpec,
  o: ExperimentRunOptions,
): Promise<{ report: ExperimentReport; records: readonly FaultRecord[]; plan: Plan }> {
  const say = o.progress ?? (() => undefined);
  const spawnCluster = o.transport === 'nats' && o.natsUrl === undefined;
  const natsServers = spawnCluster ? (o.natsServers ?? 3) : 0;
  const { plan, fabric, faults } = prepareExperiment(spec, natsServers);
  const numeric = spec.fidelity === 'numeric';
  const { weights } = loadModel(spec.model, {
    dtype: plan.options.dtype,
    withWeights: numeric && o.isolation === 'thread',
  });
  let cluster: SpawnedNatsCluster | null = null;
  let deployment: Deployment | null = null;
  let campaign: FaultCampaign | null = null;
  try {
    if (spawnCluster) cluster = await spawnNatsCluster(natsServers);
    const opts: DeployOptions = {
      fidelity: spec.fidelity,
      transport: o.transport,
      natsUrl: o.natsUrl ?? cluster?.url,
      isolation: o.isolation,
      model: { spec: spec.model, dtype: plan.options.dtype },
      weights,
      watchdogMs: o.watchdogMs,
    };
    say(`starting ${plan.topology.name}: ${plan.programs.size} chips with work`);
    // a watcher (the rack view) sees each Plan before its chips load, a recovery's included
    const start = (p: Plan, f: Fabric) => {
      o.watcher?.setPlan(p, f);
      return Deployment.start(p, f, opts);
    };
    deployment = await start(plan, fabric);
    say('baseline: serving the workload without faults');
    const t0 = performance.now();
    const windowSteps = numeric ? WINDOW_STEPS_NUMERIC : undefined;
    const engineOptions = { pace: 'max' as const, windowSteps, observer: o.watcher };
    const baseline = await serveWorkload(new Engine(deployment, plan, engineOptions), spec.workload);
    const baselineSeconds = (performance.now() - t0) / 1000;
    say(`faulted run: ${faults.length} fault(s)`);
    const tokens = new Map<string, number>();
    const wallT0 = performance.now();
    campaign = new FaultCampaign(deployment, plan, {
      faults,
      start,
      observer: o.watcher,
      killNatsServer: async (i) => {
        if (cluster === null) return;
        logger().warn({ server: cluster.servers[i].url }, 'nats-server-kill: stopping a server of the cluster');
        await cluster.servers[i].stop();
      },
      natsServers: cluster?.servers.map((x) => `127.0.0.1:${x.port}`),
      wallT0,
      requestId,
      tokensOf: (id) => tokens.get(id) ?? 0,
    });
    const engine = new Engine(deployment, plan, { ...engineOptions, faults: campaign });
    let faulted: RequestOutcome[];
    try {
      faulted = await serveWorkload(engine, spec.workload, (id) => tokens.set(id, (tokens.get(id) ?? 0) + 1));
      // the last tokens may come before a fault's window has failed (timing fidelity does not wait on values)
      await engine.idle();
    } finally {
      campaign.finish();
    }
    const faultedSeconds = (performance.now() - wallT0) / 1000;
    const report = buildReport({
      spec,
      plan,
      options: o,
      baseline,
      faulted,
      records: campaign.records,
      wall: { baselineSeconds, faultedSeconds },
    });
    return { report, records: campaign.records, plan };
  } finally {
    await (campaign?.current ?? deployment)?.stop();
    await cluster?.stop();
  }
}

import { compile } from '../../src/compiler/compile.js';
import type { CompileOptions } from '../../src/compiler/options.js';
import type { Plan } from '../../src/compiler/plan.js';
import { Deployment, type DeployOptions } from '../../src/control/deployment.js';
import { loadModel } from '../../src/model/load.js';
import type { WeightStore } from '../../src/model/weights.js';
import { Fabric } from '../../src/topology/fabric.js';
import { loadTopology, parseSetArg } from '../../src/topology/load.js';
import { topo } from './cli.js';

export interface Setup {
  plan: Plan;
  fabric: Fabric;
  weights: WeightStore | null;
  model: string;
}

export function setup(
  topology: string,
  model: string,
  sets: string[],
  options: CompileOptions & { numeric?: boolean } = {},
): Setup {
  const t = loadTopology(topology.includes('/') ? topology : topo(topology), sets.map(parseSetArg));
  const dtype = options.dtype ?? 'bf16';
  const { config, weights } = loadModel(model, { dtype, withWeights: options.numeric ?? true });
  const fabric = new Fabric(t);
  return { plan: compile(t, config, options, fabric), fabric, weights, model };
}

export function deploy(s: Setup, opts: Partial<DeployOptions> = {}): Promise<Deployment> {
  return Deployment.start(s.plan, s.fabric, {
    fidelity: 'numeric',
    transport: 'embedded',
    isolation: 'thread',
    model: { spec: s.model, dtype: s.plan.options.dtype },
    weights: s.weights,
    watchdogMs: 20000,
    ...opts,
  });
}

/** Largest |a - b| over the largest |b|. */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

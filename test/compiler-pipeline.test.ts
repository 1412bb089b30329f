import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/compiler/compile.js';
import type { Plan } from '../src/compiler/plan.js';
import { predict, report } from '../src/compiler/report.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology } from '../src/topology/load.js';
import { type RackemuError } from '../src/util/errors.js';
import { topo } from './helpers/cli.js';
import { checkStepInvariants, maxMemoryOverTicks } from './helpers/plan-checks.js';

const mixtral = BUILTIN_MODELS['mixtral-8x7b'];
const CONTEXT = 4096;

describe('compiler pipeline', () => {
  const plans = new Map<number, Plan>();
  let fabric: Fabric;
  beforeAll(() => {
    const t = loadTopology(topo('groq-576'));
    fabric = new Fabric(t);
    for (const m of [1, 2, 4, 8, 16])
      plans.set(m, compile(t, mixtral, { batch: 1, context: CONTEXT, microBatches: m }, fabric));
  });

  it('compiler pipeline - micro-batches share chips and links without oversubscribing either, within SRAM', () => {
    for (const [m, plan] of plans) {
      expect(plan.steps.decode.microBatches).toBe(m);
      expect(plan.layout.groups.length).toBeGreaterThanOrEqual(m);
      checkStepInvariants(plan, fabric, plan.steps.decode);
      checkStepInvariants(plan, fabric, plan.steps.prefill);
      for (const step of [plan.steps.decode, plan.steps.prefill])
        expect(maxMemoryOverTicks(plan, step).bytes).toBeLessThanOrEqual(plan.capacityBytes);
      // one token id tensor in and one out per micro-batch
      const names = plan.steps.decode.tensors.map((t) => t.name);
      expect(names.filter((n) => /^next(\.mb\d+)?$/.test(n))).toHaveLength(m);
      expect(names.filter((n) => /^tok(\.mb\d+)?$/.test(n))).toHaveLength(m);
    }
  });

  it('compiler pipeline - more micro-batches raise total tokens/s, and a step of m is shorter than m steps of one', () => {
    let total = 0;
    const one = plans.get(1)!;
    for (const [m, plan] of plans) {
      const p = predict(plan);
      expect(p.tokens_per_s_total).toBeGreaterThan(total);
      total = p.tokens_per_s_total;
      expect(p.tokens_per_s_total).toBeCloseTo(m * p.tokens_per_s_per_user, 6);
      // groups overlap their work: a step of m micro-batches is shorter than m steps of one
      if (m > 1) expect(plan.steps.decode.lengthTicks).toBeLessThan(m * one.steps.decode.lengthTicks);
      // the bubble: with m micro-batches over G groups, each group computes a larger share of the step
      const r = report(plan, fabric);
      expect(r.micro_batches).toBe(m);
      expect(r.pipeline.groups).toBe(plan.layout.groups.length);
      expect(r.pipeline.group_busy).toBeGreaterThan(0);
      expect(r.pipeline.group_busy + r.pipeline.fill + r.pipeline.drain).toBeLessThanOrEqual(1 + 1e-9);
      // micro-batches leave the sampler in order; the last one ends the step
      expect(r.pipeline.ids_ready_ms).toHaveLength(m);
      expect([...r.pipeline.ids_ready_ms].sort((a, b) => a - b)).toEqual(r.pipeline.ids_ready_ms);
      expect(r.pipeline.ids_ready_ms.at(-1)).toBeCloseTo(r.predicted.tpot_ms, 9);
    }
    expect(report(plans.get(16)!, fabric).pipeline.group_busy).toBeGreaterThan(
      report(plans.get(1)!, fabric).pipeline.group_busy,
    );
  });

  it('compiler pipeline - each micro-batch keeps its own KV cache', () => {
    const kv = (p: Plan) => p.placement.reduce((s, c) => s + c.memory.kvBytes, 0);
    expect(kv(plans.get(4)!)).toBeCloseTo(4 * kv(plans.get(1)!), -3);
  });

  it('compiler pipeline - a count above the layers is named', () => {
    const t = loadTopology(topo('groq-576'));
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return [(e as RackemuError).code, (e as Error).message];
      }
      return null;
    };
    expect(code(() => compile(t, mixtral, { microBatches: 33 }))).toEqual([
      'RACKEMU_ERR_COMPILE_OPTION',
      expect.stringContaining('--micro-batches 33'),
    ]);
  });
});

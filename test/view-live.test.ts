import { describe, expect, it } from 'vitest';
import { compile } from '../src/compiler/compile.js';
import { criticalPath } from '../src/compiler/critical-path.js';
import type { Plan } from '../src/compiler/plan.js';
import { replan } from '../src/compiler/replan.js';
import { predict } from '../src/compiler/report.js';
import type { CompletionResult } from '../src/control/engine-types.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology, parseSetArg } from '../src/topology/load.js';
import { ACTIVITY_MS, CHIP_STATE_CODES, PROFILE_BINS, RackView, type ViewUpdate } from '../src/view/index.js';
import { topo } from './helpers/cli.js';

// The rack view's state fed by hand: mixtral-tiny on groq-576 with 0.05 MiB chips (layers on r0..r3,
// n8 of each rack spare), as the engine and the fault campaign would report it.
const topology = loadTopology(topo('groq-576'), [parseSetArg('chip.sram_mib=0.05')]);
const fabric = new Fabric(topology);
const plan: Plan = compile(
  topology,
  BUILTIN_MODELS['mixtral-tiny'],
  { context: 64, batch: 4, promptTokens: 3, layoutSearch: 'classic' },
  fabric,
);
const hz = topology.chip.clock_mhz * 1e6;
const decodeSeconds = plan.steps.decode.lengthTicks / hz;

function decodeStep(view: RackView, step: number): void {
  const tick = step * plan.steps.decode.lengthTicks;
  view.stepRan({ kind: 'decode', activeRows: 2, rows: 4, virtualSeconds: decodeSeconds, step, tick });
}

function finished(tokens: number, ttftMs: number, tpotMs: number, wallMsPerToken: number): CompletionResult {
  return {
    id: `cmpl-${tokens}`,
    tokenIds: new Array<number>(tokens).fill(0),
    finishReason: 'length',
    fidelity: 'timing',
    promptTokens: 3,
    virtual: { ttftMs, tpotMs, e2eMs: ttftMs + tpotMs * (tokens - 1), queueMs: 0, arrivalMs: 0 },
    wall: { ttftMs: 5, e2eMs: 5 + wallMsPerToken * (tokens - 1) },
  };
}

const stateOf = (u: ViewUpdate, chipId: string) =>
  CHIP_STATE_CODES[u.states[fabric.chipIndex(chipId)] as keyof typeof CHIP_STATE_CODES];

describe('view', () => {
  it('view - one state per chip: spares spare, chips with work computing or sending while steps run, idle when none ran', () => {
    let now = 0;
    const view = new RackView('timing', () => now);
    expect(view.update()).toBeNull();
    view.setPlan(plan, fabric);
    const layout = view.layout!;
    expect(layout.chips.map((c) => c.id)).toEqual(Array.from({ length: fabric.chipCount }, (_, i) => fabric.chipId(i)));
    const idle = view.update()!;
    expect(idle.states).toHaveLength(576);
    expect(stateOf(idle, 'r0.n8.c0')).toBe('spare');
    expect([...idle.states].filter((s) => s === 'p')).toHaveLength(64);
    expect(stateOf(idle, 'r0.n1.c3')).toBe('idle'); // no step ran
    for (let s = 0; s < 3; s++) decodeStep(view, s);
    const busy = view.update()!;
    expect(busy.steps.map((s) => [s.step, s.kind, s.tick])).toEqual([
      [0, 'decode', 0],
      [1, 'decode', plan.steps.decode.lengthTicks],
      [2, 'decode', 2 * plan.steps.decode.lengthTicks],
    ]);
    for (const chip of plan.programs.keys()) {
      const c = layout.chips[chip];
      const want = c.decode.compute === 0 && c.decode.send === 0 ? 'i' : c.decode.compute >= c.decode.send ? 'c' : 's';
      expect(busy.states[chip], c.id).toBe(want);
      expect(Number(busy.busy[chip])).toBe(Math.min(9, Math.ceil(9 * Math.min(1, c.decode.compute + c.decode.send))));
    }
    expect([...busy.states].filter((s) => s === 'c').length).toBeGreaterThan(0);
    // no step since: the steps were handed out once, and the chips stay busy for the activity window
    now += ACTIVITY_MS - 1;
    const within = view.update()!;
    expect(within.steps).toEqual([]);
    expect(within.states).toBe(busy.states);
    now += 2;
    const after = view.update()!;
    expect([...after.states].filter((s) => s === 'c' || s === 's')).toEqual([]);
  });

  it('view - a chip found dead turns failed; the chips the re-plan gives its work recover, then compute', () => {
    const view = new RackView('timing');
    view.setPlan(plan, fabric);
    view.faultInjected('chip-crash', { target: 'r0.n1.c3', tick: 1234 });
    view.faultDetected('chip-crash', { mechanism: 'worker-exit', part: { kind: 'chip', id: 'r0.n1.c3' }, tick: null });
    const detected = view.update()!;
    expect(stateOf(detected, 'r0.n1.c3')).toBe('failed');
    expect(detected.faults.map((f) => [f.what, f.target, f.tick])).toEqual([
      ['injected', 'r0.n1.c3', 1234],
      ['detected', 'r0.n1.c3', null],
    ]);
    const r = replan(plan, { nodes: [fabric.globalNodeOf(fabric.chipIndex('r0.n1.c3'))] });
    view.setPlan(r.plan, r.fabric);
    const loading = view.update()!;
    expect(loading.planId).toBe(2);
    expect(stateOf(loading, 'r0.n1.c3')).toBe('failed');
    expect(stateOf(loading, 'r0.n8.c3')).toBe('recovering'); // the rack's spare node takes r0.n1's place
    expect(view.layout!.chips[fabric.chipIndex('r0.n1.c0')].retired).toBe(true);
    expect(stateOf(loading, 'r0.n1.c0')).toBe('idle'); // retired beside the dead chip, not failed itself
    view.faultRecovered('chip-crash', 0.5, { action: 'replan', spare: 'r0.n8', virtualMs: 500 });
    decodeStep(view, 10);
    const recovered = view.update()!;
    // the stand-in now runs the retired node's work: its share of the decode step says computing or sending
    const standIn = view.layout!.chips[fabric.chipIndex('r0.n8.c3')];
    expect(standIn.role).not.toBe('spare');
    expect(stateOf(recovered, 'r0.n8.c3')).toBe(
      standIn.decode.compute >= standIn.decode.send ? 'computing' : 'sending',
    );
    expect(recovered.summary.faults).toEqual({ injected: 1, detected: 1, recovered: 1 });
    expect(recovered.faults[0]).toMatchObject({ what: 'recovered', target: 'r0.n8' });
    expect(recovered.faults[0].detail).toMatch(/^replan onto r0\.n8: 500\.0 ms virtual, 500 ms wall$/);
  });

  it('view - the summary: predicted from the Plan, measured as means of the last finished requests', () => {
    const view = new RackView('timing');
    view.setPlan(plan, fabric);
    expect(view.update()!.summary.measured).toBeNull();
    const p = predict(plan);
    expect(view.layout!.predicted).toEqual({
      ttftMs: p.ttft_ms,
      tpotMs: p.tpot_ms,
      tokensPerSPerUser: p.tokens_per_s_per_user,
    });
    view.setRequests(3, 1);
    view.requestFinished(finished(1, 2, 0, 0)); // one token: no TPOT
    expect(view.update()!.summary.measured).toEqual({
      requests: 1,
      ttftMs: 2,
      tpotMs: null,
      tokensPerSPerUser: null,
      wallMsPerToken: null,
    });
    view.requestFinished(finished(5, 4, 0.5, 3));
    view.requestFinished(finished(9, 6, 0.25, 1));
    const s = view.update()!.summary;
    expect(s.measured).toEqual({
      requests: 3,
      ttftMs: 4,
      tpotMs: 0.375,
      tokensPerSPerUser: 1000 / 0.375,
      wallMsPerToken: 2,
    });
    expect([s.running, s.waiting, s.finished]).toEqual([3, 1, 3]);
  });

  it('view - step profiles: per-rack activity from the schedule, the critical path ending with the step', () => {
    const view = new RackView('timing');
    view.setPlan(plan, fabric);
    const d = view.layout!.steps.decode;
    expect(d.lengthTicks).toBe(plan.steps.decode.lengthTicks);
    expect(d.rackActivity).toHaveLength(8);
    for (const row of d.rackActivity) expect(row).toMatch(new RegExp(`^[0-9]{${PROFILE_BINS}}$`));
    // layers sit on r0..r3: those racks work, r4..r7 hold nothing
    expect(d.rackActivity.slice(0, 4).every((row) => /[1-9]/.test(row))).toBe(true);
    expect(d.rackActivity.slice(4).every((row) => /^0+$/.test(row))).toBe(true);
    const path = criticalPath(plan.steps.decode);
    expect(d.criticalPath).toHaveLength(path.length);
    // in time order, each stretch starting no earlier than the one before ends, the last op ending the schedule
    for (let i = 1; i < path.length; i++) expect(path[i].start).toBeGreaterThanOrEqual(path[i - 1].end);
    const lastOp = plan.steps.decode.ops[plan.steps.decode.ops.length - 1];
    expect(path[path.length - 1]).toMatchObject({ kind: 'op', op: lastOp.id, end: lastOp.end });
    expect(d.criticalPath[d.criticalPath.length - 1].label).toBe(`sample on ${fabric.chipId(lastOp.chip)}`);
  });
});

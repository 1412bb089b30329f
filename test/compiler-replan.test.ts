import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/compiler/compile.js';
import type { Plan, Step } from '../src/compiler/plan.js';
import { replan, type Replan } from '../src/compiler/replan.js';
import { predict } from '../src/compiler/report.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology, parseSetArg } from '../src/topology/load.js';
import type { Topology } from '../src/topology/types.js';
import type { RackemuError } from '../src/util/errors.js';
import { topo } from './helpers/cli.js';

const TINY_OPTIONS = { context: 64, batch: 4, promptTokens: 3 };
const tinyTopology = (...sets: string[]): Topology =>
  loadTopology(topo('groq-576'), ['chip.sram_mib=0.05', ...sets].map(parseSetArg));
const tinyPlan = (t: Topology): Plan => compile(t, BUILTIN_MODELS['mixtral-tiny'], TINY_OPTIONS, new Fabric(t));

/** Global nodes of groq-576 used below: r0.n1, its rack's spare r0.n8, r1.n1 and r1's spare r1.n8. */
const R0N1 = 1;
const R0N8 = 8;
const R1N1 = 10;
const R1N8 = 17;
const chipsOf = (node: number) => Array.from({ length: 8 }, (_, c) => node * 8 + c);

function thrown(f: () => unknown): RackemuError | undefined {
  try {
    f();
  } catch (e) {
    return e as RackemuError;
  }
  return undefined;
}

/** Every transfer keeps off failed chips and links, and no link carries two transfers in the same tick. */
function checkLinks(fabric: Fabric, step: Step): void {
  const windows = new Map<number, [number, number][]>();
  for (const tr of step.transfers) {
    expect(fabric.failedChips.has(tr.src) || fabric.failedChips.has(tr.dst)).toBe(false);
    let offset = 0;
    for (const id of tr.links) {
      const l = fabric.links[id];
      expect(fabric.isLinkFailed(id), l.name).toBe(false);
      expect(fabric.failedChips.has(l.from) || fabric.failedChips.has(l.to), l.name).toBe(false);
      windows.set(id, [...(windows.get(id) ?? []), [tr.depart + offset, tr.depart + offset + tr.busyTicks]]);
      offset += l.latencyTicks;
    }
  }
  for (const [id, w] of windows) {
    w.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < w.length; i++) expect(w[i][0], fabric.links[id].name).toBeGreaterThanOrEqual(w[i - 1][1]);
  }
}

function usedNodes(plan: Plan): Set<number> {
  return new Set(plan.placement.filter((p) => p.role !== 'spare' && p.role !== 'idle').map((p) => p.chip >> 3));
}

describe('compiler replan', () => {
  let t: Topology;
  let plan: Plan;
  let r: Replan;
  beforeAll(() => {
    t = tinyTopology();
    plan = tinyPlan(t);
    r = replan(plan, { nodes: [R0N1] });
  });

  it('replan - mixtral-tiny on shrunk groq-576 uses r0.n1 and r1.n1, not their racks spares', () => {
    const used = usedNodes(plan);
    expect([R0N1, R1N1].every((n) => used.has(n))).toBe(true);
    expect([R0N8, R1N8].some((n) => used.has(n))).toBe(false);
  });

  it('replan - retiring a used node puts the rack spare node in its place, holding what the node held', () => {
    const next = r.plan;
    expect(r.substitutions).toEqual([{ retired: R0N1, spare: R0N8 }]);
    expect(next.retired).toEqual([R0N1]);
    expect(next.layout.groups.length).toBe(plan.layout.groups.length);
    expect(next.layout.chipsPerGroup).toBe(plan.layout.chipsPerGroup);
    expect(next.layout.attentionChips).toBe(plan.layout.attentionChips);
    const retired = new Set(chipsOf(R0N1));
    for (const chip of retired) {
      expect(next.programs.has(chip)).toBe(false);
      expect(['spare', 'idle']).toContain(next.placement[chip].role);
      expect(next.placement[chip].memory.weightBytes).toBe(0);
      // position for position: chip c of the retired node hands its share to chip c of the spare
      const stand = next.placement[chip - R0N1 * 8 + R0N8 * 8];
      expect(stand.holds).toEqual(plan.placement[chip].holds);
      expect(stand.role).toBe(plan.placement[chip].role);
      expect(stand.memory.weightBytes).toBe(plan.placement[chip].memory.weightBytes);
    }
    for (const step of [next.steps.decode, next.steps.prefill]) {
      for (const op of step.ops) expect(retired.has(op.chip)).toBe(false);
      checkLinks(r.fabric, step);
    }
    // everything else keeps its weights
    for (const p of next.placement) {
      if (retired.has(p.chip) || p.chip >> 3 === R0N8) continue;
      expect(p.holds, r.fabric.chipId(p.chip)).toEqual(plan.placement[p.chip].holds);
    }
  });

  it('replan - reload lists the spare chips with their weight bytes and no other weights', () => {
    const weighted = r.reload.chips.filter((c) => c.weightBytes > 0);
    expect(weighted.map((c) => c.chip)).toEqual(chipsOf(R0N8));
    for (const c of weighted) {
      expect(c.weightBytes).toBe(r.plan.placement[c.chip].memory.weightBytes);
      expect(c.bytes).toBe(c.weightBytes + c.programBytes);
      expect(c.programBytes).toBeGreaterThan(0);
    }
    // other chips reload only a changed program, a small fraction of the whole
    for (const c of r.reload.chips) if (c.weightBytes === 0) expect(c.programBytes).toBe(c.bytes);
    expect(r.reload.chips.length).toBeLessThan(usedNodes(plan).size * 8);
    expect(r.reload.bytes).toBe(r.reload.chips.reduce((a, c) => a + c.bytes, 0));
    // each card has its own 32 GB/s link and the root carries all 8: the fullest card sets the time
    const spareHost = weighted.reduce((a, c) => a + c.bytes, 0);
    expect(r.reload.seconds).toBeGreaterThan(0);
    expect(r.reload.seconds).toBeCloseTo(Math.max(...weighted.map((c) => c.bytes)) / 32e9, 15);
    // with a 32 GB/s root shared by the node's cards, the one host reloading weights takes its bytes / 32 GB/s
    const narrow = tinyTopology('host.pcie_root_gbps=32');
    const rn = replan(tinyPlan(narrow), { nodes: [R0N1] });
    expect(rn.reload.seconds).toBeCloseTo(spareHost / 32e9, 15);
    console.log(
      `reload after retiring r0.n1: ${r.reload.chips.length} chips, ${r.reload.bytes} bytes, ${r.reload.seconds * 1e6} us`,
    );
  });

  it('replan - retiring the spare that stood in fails closed with RACKEMU_ERR_NO_SPARE naming the rack', () => {
    const err = thrown(() => replan(r.plan, { nodes: [R0N8] }));
    expect(err?.code).toBe('RACKEMU_ERR_NO_SPARE');
    expect(err?.exitCode).toBe(69);
    expect(err?.message).toContain('rack 0');
    expect(err?.message).toContain('r0.n1');
    expect(err?.message).toContain('r0.n8');
    expect(err?.message).toContain('fails closed');
    // a retired spare is never picked later, and no other rack's spare is borrowed
    const spareGone = replan(plan, { nodes: [R0N8] });
    expect(spareGone.substitutions).toEqual([]);
    expect(thrown(() => replan(spareGone.plan, { nodes: [R0N1] }))?.code).toBe('RACKEMU_ERR_NO_SPARE');
  });

  it('replan - nodes of two racks retire at once or in turn, each taking its own rack spare', () => {
    const both = replan(plan, { nodes: [R0N1, R1N1] });
    expect(both.substitutions).toEqual([
      { retired: R0N1, spare: R0N8 },
      { retired: R1N1, spare: R1N8 },
    ]);
    const chained = replan(r.plan, { nodes: [R1N1] });
    expect(chained.plan.retired).toEqual([R0N1, R1N1]);
    expect(chained.substitutions).toEqual(both.substitutions);
    expect(chained.plan.placement.map((p) => p.holds)).toEqual(both.plan.placement.map((p) => p.holds));
    // only the newly substituted spare reloads weights
    expect(chained.reload.chips.filter((c) => c.weightBytes > 0).map((c) => c.chip)).toEqual(chipsOf(R1N8));
    checkLinks(chained.fabric, chained.plan.steps.decode);
  });

  it('replan - retiring an idle node or an unused spare marks it retired and moves no weights', () => {
    const idle = 36; // r4.n0: mixtral-tiny ends in rack 3
    for (const node of [idle, R1N8]) {
      const q = replan(plan, { nodes: [node] });
      expect(q.plan.retired).toEqual([node]);
      expect(q.substitutions).toEqual([]);
      expect(q.plan.placement.map((p) => p.holds)).toEqual(plan.placement.map((p) => p.holds));
      expect(q.reload.chips.filter((c) => c.weightBytes > 0)).toEqual([]);
      for (const chip of chipsOf(node)) expect(q.plan.placement[chip].role).toBe('idle');
    }
  });

  it('replan - a failed link inside a node in service is routed around in two hops', () => {
    const fabric = new Fabric(t);
    const direct = plan.steps.decode.transfers.find(
      (tr) => tr.links.length === 1 && fabric.globalNodeOf(tr.src) === fabric.globalNodeOf(tr.dst),
    );
    expect(direct).toBeDefined();
    const { src, dst } = direct!;
    const q = replan(plan, { nodes: [], links: [[src, dst]] });
    expect(q.substitutions).toEqual([]);
    expect(q.plan.failedLinks).toEqual([[src, dst]]);
    expect(q.plan.placement.map((p) => p.holds)).toEqual(plan.placement.map((p) => p.holds));
    const around = q.plan.steps.decode.transfers.filter((tr) => tr.src === src && tr.dst === dst);
    expect(around.length).toBeGreaterThan(0);
    for (const tr of around) expect(tr.links.length).toBe(2);
    checkLinks(q.fabric, q.plan.steps.decode);
    checkLinks(q.fabric, q.plan.steps.prefill);
  });
});

describe('compiler replan mixtral-8x7b', () => {
  it('replan - mixtral-8x7b on groq-576 after r0.n0 retires decodes within 10% of the original', () => {
    const t = loadTopology(topo('groq-576'));
    const plan = compile(t, BUILTIN_MODELS['mixtral-8x7b'], {}, new Fabric(t));
    const r = replan(plan, { nodes: [0] });
    expect(r.substitutions).toEqual([{ retired: 0, spare: 8 }]);
    const before = predict(plan).tpot_ms;
    const after = predict(r.plan).tpot_ms;
    console.log(
      `mixtral-8x7b decode step: ${before.toFixed(4)} ms before, ${after.toFixed(4)} ms after retiring r0.n0; ` +
        `reload ${r.reload.chips.length} chips, ${(r.reload.bytes / 1e9).toFixed(3)} GB, ${(r.reload.seconds * 1e3).toFixed(2)} ms`,
    );
    expect(Math.abs(after - before) / before).toBeLessThan(0.1);
    checkLinks(r.fabric, r.plan.steps.decode);
  });
});

describe('fabric failures', () => {
  const t = loadTopology(topo('groq-576'));

  it('fabric - failed chips and links are absent from neighbours and routes', () => {
    const plain = new Fabric(t);
    expect(plain.failedChips.size).toBe(0);
    expect(plain.links.some((l) => plain.isLinkFailed(l.id))).toBe(false);
    const f = new Fabric(t, { failedChips: [3], failedLinks: [[0, 1]] });
    expect(f.links.length).toBe(plain.links.length);
    for (const l of f.links) {
      const pair = (l.from === 0 && l.to === 1) || (l.from === 1 && l.to === 0);
      expect(f.isLinkFailed(l.id), l.name).toBe(pair || l.from === 3 || l.to === 3);
    }
    expect(f.neighbours(0).map((n) => n.to)).not.toContain(1);
    expect(f.neighbours(0).map((n) => n.to)).not.toContain(3);
    expect(f.neighbours(3)).toEqual([]);
    const around = f.route(0, 1);
    expect(around.traversals).toBe(2);
    for (let src = 0; src < f.chipCount; src += 37) {
      for (const dst of [1, 2, 100, 575]) {
        if (src === 3) continue;
        for (const id of f.route(src, dst).links) {
          expect(f.isLinkFailed(id)).toBe(false);
          expect([f.links[id].from, f.links[id].to]).not.toContain(3);
        }
      }
    }
    expect(f.route(5, 6)).toEqual(plain.route(5, 6));
  });

  it('fabric - with no route left, RACKEMU_ERR_NO_ROUTE names the chips and the failures that cut them off', () => {
    const f = new Fabric(t, { failedChips: [3] });
    const dead = thrown(() => f.route(2, 3));
    expect(dead?.code).toBe('RACKEMU_ERR_NO_ROUTE');
    expect(dead?.message).toContain('r0.n0.c2 to r0.n0.c3: r0.n0.c3 failed');
    const isolated = new Fabric(t, { failedLinks: new Fabric(t).neighbours(0).map((n) => [0, n.to] as const) });
    const cut = thrown(() => isolated.route(0, 5));
    expect(cut?.code).toBe('RACKEMU_ERR_NO_ROUTE');
    expect(cut?.message).toMatch(/no route from r0\.n0\.c0 to r0\.n0\.c5: the failed links .* cut them off/);
    expect(thrown(() => new Fabric(t, { failedLinks: [[0, 500]] }))?.code).toBe('RACKEMU_ERR_COMPILE_OPTION');
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/compiler/compile.js';
import type { Plan } from '../src/compiler/plan.js';
import type { ChipOutcome } from '../src/control/host-agent.js';
import { rootCause } from '../src/control/root-cause.js';
import { arm, framesOnLink } from '../src/faults/arm.js';
import { detectError, detectViolations } from '../src/faults/detect.js';
import { drawFaults } from '../src/faults/random.js';
import { resolveTarget } from '../src/faults/targets.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { faultTrace } from '../src/experiment/trace.js';
import { ChipFaults } from '../src/runtime/chip-faults.js';
import { ViolationLog } from '../src/runtime/violation-log.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology, parseSetArg } from '../src/topology/load.js';
import { RunError, type RackemuError } from '../src/util/errors.js';
import { topo } from './helpers/cli.js';

let plan: Plan;
let fabric: Fabric;

beforeAll(() => {
  const t = loadTopology(topo('groq-576'), [parseSetArg('chip.sram_mib=0.05')]);
  fabric = new Fabric(t);
  // the classic layout spreads the toy model over racks 0-3 like the experiment files
  plan = compile(
    t,
    BUILTIN_MODELS['mixtral-tiny'],
    { batch: 4, context: 64, promptTokens: 6, layoutSearch: 'classic' },
    fabric,
  );
});

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as RackemuError).code;
  }
  return null;
};

describe('faults', () => {
  it('faults - targets must exist and carry traffic; a NATS kill needs a cluster', () => {
    const r = (kind: string, target: string, nats = 0) =>
      codeOf(() => resolveTarget({ kind: kind as 'chip-crash', target }, plan, fabric, nats, 'faults[0]'));
    expect(r('chip-crash', 'r0.n1.c3')).toBeNull();
    expect(r('chip-crash', 'r9.n1.c3')).toBe('RACKEMU_ERR_FAULT_TARGET');
    expect(r('chip-crash', 'r7.n1.c3')).toBe('RACKEMU_ERR_FAULT_TARGET'); // holds nothing
    expect(r('link-down', 'r1.n5.c1-r1.n5.c4')).toBeNull();
    expect(r('link-down', 'r1.n5.c1-r1.n5.c2')).toBe('RACKEMU_ERR_FAULT_TARGET'); // wired, no traffic
    expect(r('link-down', 'r1.n5.c1-r2.n5.c2')).toBe('RACKEMU_ERR_FAULT_TARGET'); // not wired
    expect(r('host-crash', 'r2.n2')).toBeNull();
    expect(r('host-crash', 'r6.n2')).toBe('RACKEMU_ERR_FAULT_TARGET');
    expect(r('nats-server-kill', 'nats-1')).toBe('RACKEMU_ERR_FAULT_TARGET');
    expect(r('nats-server-kill', 'nats-1', 3)).toBeNull();
    expect(r('nats-server-kill', 'nats-3', 3)).toBe('RACKEMU_ERR_FAULT_TARGET');
  });

  it('faults - a link fault hits every frame whose route crosses the link, from its step on', () => {
    const target = resolveTarget({ kind: 'link-down', target: 'r1.n5.c1-r1.n5.c4' }, plan, fabric, 0, 'f');
    const a = arm({ kind: 'link-down', target: 'r1.n5.c1-r1.n5.c4', at: { tick: 0 } }, target, 40, plan, fabric);
    const pairs = new Set(
      framesOnLink(plan, fabric, [fabric.chipIndex('r1.n5.c1'), fabric.chipIndex('r1.n5.c4')]).map(
        (t) => `${fabric.chipId(t.src)}>${fabric.chipId(t.dst)}`,
      ),
    );
    expect(a.frameFaults.length).toBe(pairs.size);
    for (const f of a.frameFaults) {
      expect(f.kind).toBe('drop');
      expect(f.step).toBe(40);
      expect(f.lastStep).toBeGreaterThan(1e9);
      expect(pairs.has(`${f.src}>${f.dst}`)).toBe(true);
    }
    const degraded = arm(
      { kind: 'link-degraded', target: 'r1.n5.c1-r1.n5.c4', at: { tick: 0 }, loss: 0.1 },
      target,
      7,
      plan,
      fabric,
    );
    expect(degraded.frameFaults.map((f) => f.kind)).toEqual(
      pairs.size > 0 ? Array.from({ length: pairs.size }, () => ['drop', 'delay']).flat() : [],
    );
    expect(degraded.frameFaults[0].rate).toBe(0.1);
  });

  it('faults - a random campaign is the same for the same seed, hits parts with traffic, and never outnumbers the spares', () => {
    const r = {
      count: 20,
      kinds: ['chip-crash', 'chip-hang', 'host-crash', 'link-down', 'frame-delay', 'clock-skew'] as const,
      seed: 7,
    };
    const w = { requests: 50, maxNewTokens: 8 };
    const a = drawFaults({ ...r, kinds: [...r.kinds] }, plan, fabric, w, 0);
    const b = drawFaults({ ...r, kinds: [...r.kinds] }, plan, fabric, w, 0);
    expect(a).toEqual(b);
    expect(a.length).toBeGreaterThan(10);
    const c = drawFaults({ ...r, kinds: [...r.kinds], seed: 8 }, plan, fabric, w, 0);
    expect(c).not.toEqual(a);
    for (const f of a) expect(() => resolveTarget(f, plan, fabric, 0, 'f')).not.toThrow();
    // one spare per rack: at most one fault per rack that retires a node
    const racks = a
      .filter((f) => ['chip-crash', 'chip-hang', 'host-crash', 'link-down'].includes(f.kind))
      .map((f) => f.target.slice(0, 2));
    expect(new Set(racks).size).toBe(racks.length);
  });

  it('faults - detection names a dead chip, a host whose chips all died, and the link of a corrupt frame', () => {
    const worker = (chips: string[]) =>
      new RunError('RACKEMU_ERR_WORKER', 'worker exited', { details: { chip: chips[0], failedChips: chips } });
    expect(detectError(worker(['r0.n1.c3']), plan, fabric).part).toEqual({ kind: 'chip', id: 'r0.n1.c3' });
    const host = Array.from({ length: 8 }, (_, i) => `r2.n2.c${i}`);
    expect(detectError(worker(host), plan, fabric)).toMatchObject({
      mechanism: 'host-exit',
      part: { kind: 'host', id: 'r2.n2' },
    });
    const hang = new RunError('RACKEMU_ERR_CHIP_HANG', 'silent', { details: { chip: 'r1.n2.c0' } });
    expect(detectError(hang, plan, fabric)).toMatchObject({
      mechanism: 'heartbeat',
      part: { kind: 'chip', id: 'r1.n2.c0' },
    });
    // a frame that crosses the link r1.n5.c1-r1.n5.c4
    const t = framesOnLink(plan, fabric, [fabric.chipIndex('r1.n5.c1'), fabric.chipIndex('r1.n5.c4')])[0];
    const v = {
      kind: 'corrupt' as const,
      step: 3,
      tensor: plan.steps.decode.tensors[t.tensor].name,
      src: fabric.chipId(t.src),
      dst: fabric.chipId(t.dst),
      tick: 100,
      message: 'bad',
    };
    const d = detectError(
      new RunError('RACKEMU_ERR_SCHEDULE_VIOLATION', 'bad', { details: { violation: v } }),
      plan,
      fabric,
    );
    expect(d.mechanism).toBe('checksum');
    expect(d.part.candidates).toContain('r1.n5.c1-r1.n5.c4');
    const skew = detectViolations([{ ...v, kind: 'skew', src: 'r1.n7.c4', dst: 'r1.n7.c4' }], plan, fabric);
    expect(skew).toMatchObject({ mechanism: 'epoch-check', part: { kind: 'chip', id: 'r1.n7.c4' } });
  });

  it('faults - the root cause of a failed run is the gone worker, then the lost connection, by details not wording', () => {
    const failed = (chipId: string, code: string, details: Record<string, unknown>): ChipOutcome => ({
      chipId,
      result: null,
      transport: null,
      error: { code, message: 'failed', details },
    });
    const publish = failed('r0.n0.c1', 'RACKEMU_ERR_TRANSPORT', { dst: 'r0.n0.c2' });
    const lost = failed('r0.n0.c2', 'RACKEMU_ERR_TRANSPORT', { server: 'nats://127.0.0.1:4223' });
    const stalled = failed('r0.n0.c3', 'RACKEMU_ERR_WATCHDOG', {});
    const uncoded = failed('r0.n0.c4', 'RACKEMU_ERR_WORKER', {});
    const gone = failed('r0.n1.c3', 'RACKEMU_ERR_WORKER', { worker: { state: 'exited', code: 70 } });
    const byLost = rootCause([publish, stalled, lost], [publish, stalled, lost]);
    expect(byLost.details).toMatchObject({ chip: 'r0.n0.c2', server: 'nats://127.0.0.1:4223' });
    // the server is named as host:port, as the cluster's list names it
    expect(detectError(byLost, plan, fabric)).toMatchObject({
      mechanism: 'transport',
      part: { kind: 'nats', id: '127.0.0.1:4223' },
    });
    const byGone = rootCause([publish, lost, uncoded, gone], [publish, lost, uncoded, gone]);
    expect(byGone.details).toMatchObject({ chip: 'r0.n1.c3', failedChips: ['r0.n1.c3'] });
    expect(detectError(byGone, plan, fabric)).toMatchObject({
      mechanism: 'worker-exit',
      part: { kind: 'chip', id: 'r0.n1.c3' },
    });
    // a chip failing with an uncoded error is its own cause, but its worker is not gone
    expect(rootCause([uncoded, lost], [uncoded, lost]).details).toMatchObject({ chip: 'r0.n0.c4', failedChips: [] });
  });

  it('faults - SECDED: one flipped bit is corrected and counted, two halt the chip, none without ECC changes the weight', () => {
    const weights = { 'L0.q': new Float32Array([1, 2, 3, 4]) };
    const log = new ViolationLog('r0.n0.c0');
    const flip = (bits: 1 | 2, ecc: boolean) =>
      new ChipFaults('r0.n0.c0', [{ kind: 'bitflip', chip: 'r0.n0.c0', step: 5, bits, ecc, seed: 3 }], weights, log);
    const on = flip(1, true);
    on.atStep(5, 1000);
    expect(Array.from(weights['L0.q'])).toEqual([1, 2, 3, 4]);
    expect(on.ecc).toMatchObject([{ corrected: true, tensor: 'L0.q', bits: [expect.any(Number)] }]);
    expect(codeOf(() => flip(2, true).atStep(5, 1000))).toBe('RACKEMU_ERR_ECC_UNCORRECTABLE');
    const off = flip(1, false);
    off.atStep(4, 900); // not its step
    expect(Array.from(weights['L0.q'])).toEqual([1, 2, 3, 4]);
    off.atStep(5, 1000);
    expect(Array.from(weights['L0.q'])).not.toEqual([1, 2, 3, 4]);
    expect(off.ecc[0]).toMatchObject({ ecc: false, corrected: false });
  });

  it('faults - the campaign trace puts each fault, its detection and the failed steps on the virtual timeline', () => {
    const hz = plan.topology.chip.clock_mhz; // ticks per microsecond
    const trace = faultTrace(
      [
        {
          kind: 'chip-crash',
          target: 'r0.n1.c3',
          where: 'faults[0]',
          injected: { step: 40, tick: 9000 * hz, wallMs: 1 },
          detected: {
            mechanism: 'worker-exit',
            part: { kind: 'chip', id: 'r0.n1.c3' },
            tick: 9010 * hz,
            message: 'worker exited',
            wallMs: 2,
            attributed: true,
            window: { firstStep: 40, baseTick: 8990 * hz, steps: 4 },
          },
          recovered: { action: 'replan', wallMs: 3, virtualMs: 500, spare: 'r0.n8', reloadBytes: 10, replanMs: 1 },
          note: null,
        },
        {
          kind: 'frame-delay',
          target: 'a-b',
          where: 'faults[1]',
          injected: null,
          detected: null,
          recovered: null,
          note: 'x',
        },
      ],
      plan,
    );
    const span = trace.traceEvents.find((e) => e.ph === 'X' && e.pid === 1)!;
    expect(span).toMatchObject({ ts: 9000, dur: 500_000, name: expect.stringContaining('replan') });
    expect(trace.traceEvents.find((e) => e.ph === 'i')).toMatchObject({
      ts: 9010,
      name: expect.stringContaining('worker-exit'),
    });
    expect(trace.traceEvents.find((e) => e.pid === 2 && e.ph === 'X')).toMatchObject({
      ts: 8990,
      name: 'steps 40-43: chip-crash',
    });
    // a fault that never fired has no track
    expect(trace.traceEvents.filter((e) => e.ph === 'M' && e.pid === 1 && e.tid > 0)).toHaveLength(1);
  });
});

import { describe, expect, it } from 'vitest';
import { HOST_WORK_KINDS, HostCpus, readbackSeconds, stageSeconds, type PcieShare } from '../src/control/host-cpu.js';
import { loadTopology } from '../src/topology/load.js';
import { topo } from './helpers/cli.js';

const GB = 1e9;
/** A GroqNode's PCIe: each card its own 32 GB/s link, 256 GB/s on the host side (no contention). */
const ownLanes: PcieShare = { perChipBytesPerS: 32 * GB, sharedBytesPerS: 256 * GB };
/** The same cards behind a 64 GB/s uplink. */
const shared64: PcieShare = { perChipBytesPerS: 32 * GB, sharedBytesPerS: 64 * GB };

describe('host cpu', () => {
  it('host cpu - two CPUs take overlapping work in parallel', () => {
    const h = new HostCpus(2, ownLanes);
    expect(h.place('stage', 0, 1)).toEqual({ cpu: 0, start: 0, finish: 1 });
    expect(h.place('readback', 0.5, 1)).toEqual({ cpu: 1, start: 0.5, finish: 1.5 });
  });

  it('host cpu - a third piece queues for the CPU that frees first', () => {
    const h = new HostCpus(2, ownLanes);
    h.charge('stage', 0, 1);
    h.charge('readback', 0.5, 1);
    expect(h.place('tokenise', 0.2, 1)).toEqual({ cpu: 0, start: 1, finish: 2 });
    expect(h.place('detokenise', 0.2, 1)).toEqual({ cpu: 1, start: 1.5, finish: 2.5 });
    // work ready after both CPUs are free starts when it is ready
    expect(h.charge('health_poll', 10, 0.25)).toBe(10.25);
  });

  it('host cpu - work charged out of order fills an idle gap on the calendar', () => {
    const h = new HostCpus(1, ownLanes);
    expect(h.charge('stage', 5, 1)).toBe(6);
    expect(h.charge('stage', 0, 2)).toBe(2);
    // too long for the gap [2, 5): it waits for the end of the piece at 5-6
    expect(h.place('tokenise', 2, 3.5)).toEqual({ cpu: 0, start: 6, finish: 9.5 });
    // exactly fills the gap [2, 5)
    expect(h.place('tokenise', 1, 3)).toEqual({ cpu: 0, start: 2, finish: 5 });
    // coalesced into one busy interval [0, 9.5)
    expect(h.calendarSizes()).toEqual([1]);
  });

  it('host cpu - busy seconds add up per CPU and per kind', () => {
    const h = new HostCpus(2, ownLanes);
    h.charge('stage', 0, 1);
    h.charge('readback', 0, 0.5);
    h.charge('stage', 0, 0.25); // CPU 1 frees first (0.5)
    h.charge('health_poll', 3, 0.125);
    h.charge('load', 4, 0); // nothing to do
    expect(h.busySecondsPerCpu()).toEqual([1.125, 0.75]);
    expect(h.busySecondsPerKind()).toEqual({
      load: 0,
      stage: 1.25,
      readback: 0.5,
      tokenise: 0,
      detokenise: 0,
      health_poll: 0.125,
    });
    expect(Object.keys(h.busySecondsPerKind()).sort()).toEqual([...HOST_WORK_KINDS].sort());
    expect(h.busySeconds()).toBe(1.875);
    expect(h.utilisation(4)).toBeCloseTo(1.875 / 8, 12);
  });

  it('host cpu - load time scales with bytes and with how the chips share the host lanes', () => {
    const h = new HostCpus(2, ownLanes);
    const eight = (bytes: number) => new Array<number>(8).fill(bytes);
    // own lanes: each chip at 32 GB/s, all at once
    expect(h.loadTimeSeconds(eight(1 * GB))).toBeCloseTo(1 / 32, 12);
    expect(h.loadTimeSeconds(eight(2 * GB))).toBeCloseTo(2 / 32, 12);
    // behind 64 GB/s: 8 GB at 64 GB/s
    expect(h.loadTimeSeconds(eight(1 * GB), shared64)).toBeCloseTo(8 / 64, 12);
    // uneven chips share evenly until the small one is done, then the big one runs at its own link's rate
    const uneven = [1 * GB, 3 * GB];
    const narrow: PcieShare = { perChipBytesPerS: 32 * GB, sharedBytesPerS: 32 * GB };
    expect(h.loadFinishSeconds(uneven, narrow).map((s) => s * 1000)).toEqual([62.5, 125]);
    expect(h.loadTimeSeconds([], ownLanes)).toBe(0);
    expect(() => h.loadTimeSeconds([-1])).toThrow(RangeError);
  });

  it('host cpu - a reload of some chips has the lanes to itself', () => {
    const h = new HostCpus(2, shared64);
    const bytes = new Array<number>(8).fill(1 * GB);
    expect(h.loadTimeSeconds(bytes)).toBeCloseTo(8 / 64, 12);
    expect(h.reloadTimeSeconds(bytes, [3])).toBeCloseTo(1 / 32, 12);
    expect(h.reloadTimeSeconds(bytes, [0, 1, 2, 3])).toBeCloseTo(4 / 64, 12);
    expect(h.reloadTimeSeconds(bytes, [])).toBe(0);
    expect(() => h.reloadTimeSeconds(bytes, [8])).toThrow(RangeError);
  });

  it('host cpu - retire forgets the calendar before a time, keeps the totals and refuses earlier work', () => {
    const h = new HostCpus(2, ownLanes);
    for (let i = 0; i < 1000; i++) h.charge('readback', i * 0.002, 0.0001);
    expect(h.calendarSizes().reduce((a, b) => a + b, 0)).toBe(1000);
    h.retire(1.5);
    expect(h.calendarSizes().reduce((a, b) => a + b, 0)).toBe(250);
    expect(h.busySeconds()).toBeCloseTo(0.1, 12);
    expect(() => h.charge('stage', 1, 0.1)).toThrow(/retired horizon/);
    expect(h.charge('stage', 2, 0.1)).toBeCloseTo(2.1, 12);
  });

  it('host cpu - bad arguments are range errors', () => {
    expect(() => new HostCpus(0, ownLanes)).toThrow(RangeError);
    const h = new HostCpus(1, ownLanes);
    expect(() => h.charge('stage', 0, -1)).toThrow(RangeError);
    expect(() => h.charge('stage', Number.NaN, 1)).toThrow(RangeError);
    expect(() => h.charge('stage', 0, Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it('host cpu - a GroqNode host from the topology: 2 CPUs, its PCIe and its per-operation costs', () => {
    const t = loadTopology(topo('groq-576'));
    const h = HostCpus.forTopology(t);
    expect(h.cpuCount).toBe(2);
    expect(h.pcie).toEqual({ perChipBytesPerS: 32 * GB, sharedBytesPerS: 256 * GB });
    const c = h.costs!;
    expect(c.healthPollIntervalS).toBe(0.5);
    expect(stageSeconds(c, 4)).toBeCloseTo((t.host.cpu_us.stage_per_step + 4 * t.host.cpu_us.stage_per_row) * 1e-6, 15);
    expect(readbackSeconds(c, 4)).toBeCloseTo(
      (t.host.cpu_us.readback_per_step + 4 * t.host.cpu_us.readback_per_row) * 1e-6,
      15,
    );
    // 8 cards of 200 MB load in parallel on their own Gen4 x16 links
    expect(h.loadTimeSeconds(new Array<number>(8).fill(200e6))).toBeCloseTo(200e6 / 32e9, 12);
  });
});

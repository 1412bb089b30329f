import { describe, expect, it } from 'vitest';
import { loadExperiment } from '../src/experiment/file.js';
import { prepareExperiment, runExperiment } from '../src/experiment/runner.js';
import type { ExperimentSpec } from '../src/experiment/types.js';
import { isRandomFaults } from '../src/faults/types.js';

/**
 * Fault campaigns run for real: mixtral-tiny numeric on groq-576 (SRAM shrunk so the model spreads over
 * 256 chips in four racks), chips as worker threads, faults injected while the workload is served.
 */
describe('experiment', () => {
  it('experiment - one fault of each kind is detected, attributed and recovered from: nothing lost, tokens identical', async () => {
    const shipped = loadExperiment('experiments/each-kind.yaml');
    // nats-server-kill needs the NATS cluster: the process-isolation test below covers it
    const spec: ExperimentSpec = {
      ...shipped,
      faults: shipped.faults.filter((f) => isRandomFaults(f) || f.kind !== 'nats-server-kill'),
    };
    const r = await runExperiment(spec, { isolation: 'thread', transport: 'embedded', watchdogMs: 3000 });
    expect(r.requests).toEqual({ total: 50, completed: 50, lost: 0 });
    expect(r.tokens_identical).toBe(true);
    expect(r.expect).toEqual({ passed: true, failures: [] });
    const byKind = new Map(r.faults.map((f) => [`${f.kind}${f.kind === 'sram-bitflip' ? f.target : ''}`, f]));
    for (const f of r.faults) {
      expect(f.injected, f.kind).toBe(true);
      if (f.kind === 'sram-bitflip' && f.target === 'r2.n5.c3') continue; // ECC off: silent by design
      expect([f.kind, f.detected, f.attributed_correctly, f.recovered]).toEqual([f.kind, true, true, true]);
      expect(f.recovery_virtual_ms).toBeGreaterThanOrEqual(0);
    }
    // dead hardware, and a link its status register shows down or erring, go to the rack's spare node
    expect(byKind.get('chip-crash')).toMatchObject({ mechanism: 'worker-exit', action: 'replan', spare: 'r0.n8' });
    expect(byKind.get('chip-hang')).toMatchObject({ mechanism: 'heartbeat', action: 'replan', spare: 'r1.n8' });
    expect(byKind.get('host-crash')).toMatchObject({ mechanism: 'host-exit', action: 'replan', spare: 'r2.n8' });
    expect(byKind.get('link-down')).toMatchObject({ mechanism: 'link-status', action: 'replan', spare: 'r3.n8' });
    // rack 0's spare went to the crashed chip: the degraded link is routed around
    expect(byKind.get('link-degraded')).toMatchObject({ mechanism: 'link-status', action: 'replan', spare: null });
    expect(byKind.get('frame-corrupt')).toMatchObject({ mechanism: 'checksum', action: 'resync' });
    expect(byKind.get('frame-delay')).toMatchObject({ mechanism: 'late-frame', action: 'resync' });
    expect(byKind.get('clock-skew')).toMatchObject({ mechanism: 'epoch-check', action: 'resync' });
    expect(byKind.get('sram-bitflipr1.n6.c2')).toMatchObject({ mechanism: 'ecc', action: 'corrected' });
    expect(byKind.get('sram-bitflipr2.n5.c3')).toMatchObject({ detected: false });
    expect(r.silent_corruption.faults).toBe(1);
  }, 600_000);

  it('experiment - a seeded random campaign of 20 faults is drawn the same every time, and passes: nothing lost, tokens identical, every fault detected and attributed', async () => {
    const spec = loadExperiment('experiments/random-20.yaml');
    const a = prepareExperiment(spec, 0).faults.map((f) => [f.spec, f.target.id]);
    const b = prepareExperiment(spec, 0).faults.map((f) => [f.spec, f.target.id]);
    expect(a.length).toBe(20);
    expect(a).toEqual(b);
    const r = await runExperiment(spec, { isolation: 'thread', transport: 'embedded', watchdogMs: 3000 });
    expect(r.requests).toEqual({ total: 50, completed: 50, lost: 0 });
    expect(r.tokens_identical).toBe(true);
    expect(r.expect).toEqual({ passed: true, failures: [] });
    // the report lists the drawn faults in the drawn order
    expect(r.faults.map((f) => [f.kind, f.target])).toEqual(a.map(([s, t]) => [(s as { kind: string }).kind, t]));
    const fired = r.faults.filter((f) => f.injected);
    expect(fired.length).toBe(20);
    for (const f of fired)
      expect([f.kind, f.target, f.detected, f.attributed_correctly]).toEqual([f.kind, f.target, true, true]);
  }, 900_000);

  it('experiment - host agents as processes over a 3-server NATS cluster: a killed host process and a stopped server lose nothing', async () => {
    const base = loadExperiment('experiments/each-kind.yaml');
    const spec: ExperimentSpec = {
      ...base,
      workload: { ...base.workload, requests: 16 },
      faults: [
        { kind: 'host-crash', target: 'r2.n2', at: { request: 2, token: 2 } },
        { kind: 'nats-server-kill', target: 'nats-1', at: { request: 8, token: 2 } },
      ],
    };
    const r = await runExperiment(spec, { isolation: 'process', transport: 'nats', watchdogMs: 4000 });
    expect(r.requests).toEqual({ total: 16, completed: 16, lost: 0 });
    expect(r.tokens_identical).toBe(true);
    const [host, nats] = r.faults;
    // SIGKILL to the host agent's process: its exit names the host, and its node goes to the spare
    expect(host).toMatchObject({ detected: true, attributed_correctly: true, mechanism: 'host-exit', spare: 'r2.n8' });
    // chips connected to the stopped server lose their connection: the transport names the server; the
    // control plane sends again what the failover lost (control-link.ts), so the hosts resynchronise in place
    expect(nats).toMatchObject({
      injected: true,
      detected: true,
      attributed_correctly: true,
      mechanism: 'transport',
      action: 'resync',
      recovered: true,
    });
  }, 600_000);
});

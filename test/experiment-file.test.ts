import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSetArg } from '../src/topology/load.js';
import { loadExperiment, parseExperiment } from '../src/experiment/file.js';
import { FAULT_KINDS, isRandomFaults, type FaultSpec } from '../src/experiment/types.js';
import { ExperimentError, type RackemuError } from '../src/util/errors.js';
import { ROOT } from './helpers/cli.js';

const FILE = '/tmp/exp/x.yaml';
const HEAD = `topology: t.yaml
model: mixtral-tiny
workload:
  requests: 2
  prompt_tokens: 3
  max_new_tokens: 4
`;

function expectError(fn: () => unknown, code: string, ...mentions: string[]): RackemuError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ExperimentError);
    const err = e as RackemuError;
    expect(err.code).toBe(code);
    for (const m of mentions) expect(err.message).toContain(m);
    return err;
  }
  throw new Error(`expected ${code}`);
}

/** Parses HEAD + `faults:` with one fault and expects one KEY error at `path` on `line`. */
function expectKeyError(text: string, path: string, line: number, ...mentions: string[]): RackemuError {
  const err = expectError(() => parseExperiment(text, FILE), 'RACKEMU_ERR_EXPERIMENT_KEY', `${FILE}:${line}:`, path);
  for (const m of mentions) expect(err.message).toContain(m);
  expect(err.details).toMatchObject({ file: FILE, path, line });
  expect(err.details.expected).toBeTruthy();
  expect(err.details.got).toBeTruthy();
  return err;
}

const withFault = (fault: string) => `${HEAD}faults:\n  - kind: chip-crash\n    target: r0.n1.c3\n${fault}`;
// In withFault(...), line 7 is `faults:`, line 8 `- kind`, 9 `target`, 10 is the first line of `fault`.

describe('experiment file', () => {
  it('experiment file - the three examples parse', () => {
    const each = loadExperiment(`${ROOT}experiments/each-kind.yaml`);
    expect(each.name).toBe('each-kind');
    expect(each.topology).toBe(`${ROOT}topologies/groq-576.yaml`);
    expect(each.model).toBe('mixtral-tiny');
    expect(each.set).toEqual(['chip.sram_mib=0.05']);
    expect(each.plan).toEqual({ batch: 4, context: 64, layoutSearch: 'classic' });
    expect(each.workload).toEqual({ requests: 50, promptTokens: 6, maxNewTokens: 8, concurrency: 8, seed: 1 });
    const kinds = each.faults.map((f) => (f as FaultSpec).kind);
    expect(new Set(kinds)).toEqual(new Set(FAULT_KINDS));
    const flips = each.faults.filter((f) => (f as FaultSpec).kind === 'sram-bitflip') as FaultSpec[];
    expect(flips.map((f) => f.ecc)).toEqual([true, false]);
    expect(each.expect).toEqual({ lostRequests: 0, tokensIdentical: true, allDetected: true });

    const random = loadExperiment(`${ROOT}experiments/random-20.yaml`);
    expect(random.faults).toEqual([
      { random: { count: 20, kinds: FAULT_KINDS.filter((k) => k !== 'nats-server-kill'), seed: 7 } },
    ]);

    const big = loadExperiment(`${ROOT}experiments/mixtral-8x7b-timing.yaml`);
    expect(big).toMatchObject({ model: 'mixtral-8x7b', fidelity: 'timing', expect: { lostRequests: 0 } });
    expect(big.workload).toMatchObject({ requests: 6, promptTokens: 64, maxNewTokens: 64, concurrency: 4 });
    expect(big.faults.map((f) => (f as FaultSpec).target)).toEqual(['r2.n3.c5', 'r4.n1.c0-r4.n1.c1']);
    // The example's `set` strings are what --set takes.
    for (const s of each.set) expect(parseSetArg(s)).toMatchObject({ path: ['chip', 'sram_mib'], value: 0.05 });
  });

  it('experiment file - defaults: fidelity numeric, concurrency 1, seed 1, no faults, no expectations', () => {
    const spec = parseExperiment(HEAD, FILE);
    expect(spec).toEqual({
      file: FILE,
      name: 'x',
      topology: '/tmp/exp/t.yaml',
      model: 'mixtral-tiny',
      fidelity: 'numeric',
      set: [],
      plan: {},
      workload: { requests: 2, promptTokens: 3, maxNewTokens: 4, concurrency: 1, seed: 1 },
      faults: [],
      expect: {},
    });
  });

  it('experiment file - snake_case keys map to camelCase fields and params take per-kind defaults', () => {
    const text = `${HEAD.replace('workload:', 'plan: { dtype: int8, batch: 2, context: 32, prefill_chunk: 8 }\nworkload:')}
  concurrency: 2
  seed: 9
faults:
  - { kind: frame-delay, target: r0.n0.c0-r0.n0.c1, at: { wall_ms: 12.5 } }
  - { kind: clock-skew, target: r0.n0.c0, at: { tick: 0 } }
  - { kind: link-degraded, target: r0.n0.c0-r0.n0.c1, at: { request: 1, token: 0 }, loss: 0.5 }
  - { kind: sram-bitflip, target: r0.n0.c2, at: { tick: 7 }, tensor: layers.0.wq, bits: 2 }
  - { kind: frame-corrupt, target: r0.n0.c2, at: { tick: 7 } }
expect:
  lost_requests: 1
  tokens_identical: false
  all_detected: true
  all_recovered: true
  max_recovery_virtual_ms: 3.5
name: renamed
description: all keys
`;
    const spec = parseExperiment(text, FILE);
    expect(spec.name).toBe('renamed');
    expect(spec.description).toBe('all keys');
    expect(spec.plan).toEqual({ dtype: 'int8', batch: 2, context: 32, prefillChunk: 8 });
    expect(spec.workload).toEqual({ requests: 2, promptTokens: 3, maxNewTokens: 4, concurrency: 2, seed: 9 });
    expect(spec.faults).toEqual([
      { kind: 'frame-delay', target: 'r0.n0.c0-r0.n0.c1', at: { wallMs: 12.5 }, ticks: 20000 },
      { kind: 'clock-skew', target: 'r0.n0.c0', at: { tick: 0 }, ticks: 5000 },
      { kind: 'link-degraded', target: 'r0.n0.c0-r0.n0.c1', at: { request: 1, token: 0 }, ticks: 2000, loss: 0.5 },
      { kind: 'sram-bitflip', target: 'r0.n0.c2', at: { tick: 7 }, tensor: 'layers.0.wq', bits: 2, ecc: true, seed: 1 },
      { kind: 'frame-corrupt', target: 'r0.n0.c2', at: { tick: 7 }, count: 1 },
    ]);
    expect(spec.expect).toEqual({
      lostRequests: 1,
      tokensIdentical: false,
      allDetected: true,
      allRecovered: true,
      maxRecoveryVirtualMs: 3.5,
    });
  });

  it('experiment file - relative topology and model paths resolve against the file; built-in names stay names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rackemu-exp-'));
    mkdirSync(join(dir, 'sub', 'my-model'), { recursive: true });
    const file = join(dir, 'sub', 'e.yaml');
    writeFileSync(file, HEAD.replace('t.yaml', '../topos/a.yaml').replace('mixtral-tiny', 'my-model'));
    const spec = loadExperiment(file);
    expect(spec.file).toBe(file);
    expect(spec.name).toBe('e');
    expect(spec.topology).toBe(join(dir, 'topos', 'a.yaml')); // not read here
    expect(spec.model).toBe(join(dir, 'sub', 'my-model'));
    expect(parseExperiment(HEAD.replace('t.yaml', '/abs/t.yaml'), 'rel/x.yaml').topology).toBe('/abs/t.yaml');
    expect(parseExperiment(HEAD, 'rel/x.yaml').file).toBe(join(process.cwd(), 'rel/x.yaml'));
    expectKeyError(HEAD.replace('mixtral-tiny', 'mixtral-huge'), 'model', 2, 'mixtral-8x7b', '"mixtral-huge"');
  });

  it('experiment file - a random block keeps count, kinds and seed; kinds and seed default to all kinds and 1', () => {
    const text = `${HEAD}faults:
  - random: { count: 3, kinds: [chip-crash, link-down], seed: 4 }
  - random: { count: 2 }
  - { kind: host-crash, target: r1.n2, at: { request: 0, token: 1 } }
`;
    const spec = parseExperiment(text, FILE);
    expect(spec.faults[0]).toEqual({ random: { count: 3, kinds: ['chip-crash', 'link-down'], seed: 4 } });
    expect(spec.faults[1]).toEqual({ random: { count: 2, kinds: [...FAULT_KINDS], seed: 1 } });
    expect(spec.faults.map(isRandomFaults)).toEqual([true, true, false]);
  });

  it('experiment file - an unknown random kind lists the known kinds', () => {
    const text = `${HEAD}faults:\n  - random:\n      count: 3\n      kinds: [chip-crash, chip-melt]\n`;
    expectKeyError(text, 'faults[0].random.kinds[1]', 10, '"chip-melt"', FAULT_KINDS.join(', '));
    expectKeyError(`${HEAD}faults:\n  - random:\n      count: 0\n`, 'faults[0].random.count', 9, '>= 1', 'got 0');
    expectKeyError(`${HEAD}faults:\n  - random:\n      kinds: []\n`, 'faults[0].random.count', 8, 'missing');
  });

  it('experiment file - set: dot-path keys and nested maps flatten to --set strings', () => {
    const text = `${HEAD}set:
  chip.sram_mib: 0.05
  links:
    local: { lanes: 2, wiring: switch }
  sync.epoch_ticks: 512
  name: "1e3"
`;
    const spec = parseExperiment(text, FILE);
    expect(spec.set).toEqual([
      'chip.sram_mib=0.05',
      'links.local.lanes=2',
      'links.local.wiring=switch',
      'sync.epoch_ticks=512',
      'name="1e3"',
    ]);
    expect(parseSetArg(spec.set[4]).value).toBe('1e3');
  });

  it('experiment file - set keys must be topology value keys and values scalars', () => {
    expectKeyError(`${HEAD}set:\n  chip.sram_mb: 1\n`, 'set.chip.sram_mb', 8, 'sram_mib', 'not a topology');
    expectKeyError(`${HEAD}set:\n  chip: 1\n`, 'set.chip', 8, 'chip.<kind|clock_mhz');
    expectKeyError(`${HEAD}set:\n  chip.sram_mib: [1]\n`, 'set.chip.sram_mib', 8, 'a number, string or boolean');
    expectKeyError(`${HEAD}set: 5\n`, 'set', 7, 'expected a mapping', 'got 5 (number)');
  });

  it('experiment file - unreadable file is RACKEMU_ERR_EXPERIMENT_FILE naming the file', () => {
    const err = expectError(
      () => loadExperiment('/no/such/exp.yaml'),
      'RACKEMU_ERR_EXPERIMENT_FILE',
      '/no/such/exp.yaml',
    );
    expect(err.exitCode).toBe(66);
    expect(err.details.file).toBe('/no/such/exp.yaml');
    if (process.getuid?.() !== 0) {
      const dir = mkdtempSync(join(tmpdir(), 'rackemu-exp-'));
      writeFileSync(join(dir, 'e.yaml'), HEAD);
      chmodSync(join(dir, 'e.yaml'), 0o000);
      expectError(() => loadExperiment(join(dir, 'e.yaml')), 'RACKEMU_ERR_EXPERIMENT_FILE', 'e.yaml');
    }
  });

  it('experiment file - malformed YAML is RACKEMU_ERR_EXPERIMENT_YAML naming file and line', () => {
    const err = expectError(
      () => parseExperiment(`${HEAD}faults: [1, 2\n`, FILE),
      'RACKEMU_ERR_EXPERIMENT_YAML',
      `${FILE}:`,
      'invalid YAML',
    );
    expect(err.exitCode).toBe(65);
    expect(err.details).toMatchObject({ file: FILE });
    expect(err.details.line).toBeGreaterThanOrEqual(7);
    const dup = expectError(() => parseExperiment(`${HEAD}model: x\n`, FILE), 'RACKEMU_ERR_EXPERIMENT_YAML', FILE);
    expect(dup.details.line).toBe(7);
  });

  it('experiment file - a document that is not a mapping is a key error at the top level', () => {
    expectKeyError('', '(top level)', 1, 'a mapping', 'an empty document');
    expectKeyError('- 1\n', '(top level)', 1, 'a mapping', 'a list');
  });

  it('experiment file - unknown keys name the path, the line and the known keys', () => {
    const err = expectKeyError(`${HEAD}fidelty: timing\n`, 'fidelty', 7, 'unknown key', 'fidelity', 'workload');
    expect(err.exitCode).toBe(65);
    expectKeyError(
      HEAD.replace('  seed', '  seed').replace('max_new_tokens: 4', 'max_new_tokens: 4\n  sede: 3'),
      'workload.sede',
      7,
      'concurrency, seed',
    );
    expectKeyError(
      withFault('    at: { tick: 1 }\n    colour: red\n'),
      'faults[0].colour',
      11,
      'unknown key',
      'ticks, loss',
    );
    expectKeyError(
      withFault('    at: { tick: 1, tock: 2 }\n'),
      'faults[0].at.tock',
      10,
      'tick, request, token, wall_ms',
    );
    expectKeyError(`${HEAD}expect: { lost: 0 }\n`, 'expect.lost', 7, 'lost_requests');
    expectKeyError(`${HEAD}plan:\n  prefillChunk: 4\n`, 'plan.prefillChunk', 8, 'prefill_chunk');
  });

  it('experiment file - missing keys name the path and the line of the mapping that lacks them', () => {
    expectKeyError(HEAD.replace('model: mixtral-tiny\n', ''), 'model', 1, 'missing key', 'got nothing');
    expectKeyError(HEAD.replace('  prompt_tokens: 3\n', ''), 'workload.prompt_tokens', 3, 'prompt tokens per request');
    expectKeyError(`${HEAD}faults:\n  - kind: chip-crash\n    at: { tick: 1 }\n`, 'faults[0].target', 8, 'missing key');
    expectKeyError(`${HEAD}faults:\n  - kind: chip-crash\n    target: r0.n0.c0\n`, 'faults[0].at', 8, 'missing key');
  });

  it('experiment file - wrong types name expected and got', () => {
    expectKeyError(HEAD.replace('requests: 2', 'requests: two'), 'workload.requests', 4, 'integer', '"two" (string)');
    expectKeyError(HEAD.replace('requests: 2', 'requests: 2.5'), 'workload.requests', 4, 'integer', '2.5');
    expectKeyError(`${HEAD}expect: { tokens_identical: yes }\n`, 'expect.tokens_identical', 7, 'boolean', '"yes"');
    expectKeyError(`${HEAD}faults: { kind: chip-crash }\n`, 'faults', 7, 'a list', 'a mapping');
    expectKeyError(`${HEAD}faults:\n  - chip-crash\n`, 'faults[0]', 8, 'a mapping', '"chip-crash"');
    expectKeyError(withFault('    at: 5\n'), 'faults[0].at', 10, 'a mapping', '5 (number)');
    expectKeyError(`${HEAD}fidelity: exact\n`, 'fidelity', 7, 'numeric, timing', '"exact"');
    expectKeyError(`${HEAD}plan: { dtype: fp4 }\n`, 'plan.dtype', 7, 'bf16, fp16, int8, fp8', '"fp4"');
    expectKeyError(
      `${HEAD}faults:\n  - { kind: chip-melt, target: r0.n0.c0, at: { tick: 1 } }\n`,
      'faults[0].kind',
      8,
      FAULT_KINDS.join(', '),
      '"chip-melt"',
    );
  });

  it('experiment file - values out of range name the bound and the value', () => {
    expectKeyError(HEAD.replace('requests: 2', 'requests: 0'), 'workload.requests', 4, 'integer >= 1', 'got 0');
    expectKeyError(HEAD.replace('max_new_tokens: 4', 'max_new_tokens: -1'), 'workload.max_new_tokens', 6, '>= 1');
    expectKeyError(`${HEAD}plan: { batch: 0 }\n`, 'plan.batch', 7, '>= 1');
    expectKeyError(
      `${HEAD}expect: { max_recovery_virtual_ms: -1 }\n`,
      'expect.max_recovery_virtual_ms',
      7,
      'number >= 0',
    );
    expectKeyError(withFault('    at: { request: 1, token: -2 }\n'), 'faults[0].at.token', 10, 'integer >= 0', '-2');
    expectKeyError(withFault('    at: { tick: 1.5 }\n'), 'faults[0].at.tick', 10, 'integer', '1.5');
    expectKeyError(withFault('    at: { wall_ms: -3 }\n'), 'faults[0].at.wall_ms', 10, 'number >= 0', '-3');
    const ld = `${HEAD}faults:\n  - kind: link-degraded\n    target: r0.n0.c0-r0.n0.c1\n    at: { tick: 1 }\n`;
    expectKeyError(`${ld}    loss: 1.5\n`, 'faults[0].loss', 11, 'number <= 1', '1.5');
    expectKeyError(`${ld}    ticks: -1\n`, 'faults[0].ticks', 11, 'integer >= 0');
    const fc = `${HEAD}faults:\n  - kind: frame-corrupt\n    target: r0.n0.c0\n    at: { tick: 1 }\n    count: 0\n`;
    expectKeyError(fc, 'faults[0].count', 11, 'integer >= 1');
    const bf = `${HEAD}faults:\n  - kind: sram-bitflip\n    target: r0.n0.c0\n    at: { tick: 1 }\n    bits: 3\n`;
    expectKeyError(bf, 'faults[0].bits', 11, 'one of 1, 2', '3 (number)');
    expectKeyError(`${HEAD}name: ''\n`, 'name', 7, 'a non-empty string');
  });

  it('experiment file - at must have exactly one form', () => {
    expectKeyError(
      withFault('    at: {}\n'),
      'faults[0].at',
      10,
      'at says no time',
      '{ tick } | { request, token } | { wall_ms }',
    );
    expectKeyError(
      withFault('    at: { tick: 1, wall_ms: 2 }\n'),
      'faults[0].at',
      10,
      '2 forms (tick and wall_ms)',
      'got tick, wall_ms',
    );
    expectKeyError(
      withFault('    at:\n      tick: 1\n      request: 0\n      token: 2\n'),
      'faults[0].at',
      10,
      'tick and request/token',
    );
    expectKeyError(withFault('    at:\n      request: 3\n'), 'faults[0].at.token', 10, 'token beside request');
    expectKeyError(withFault('    at: { token: 3 }\n'), 'faults[0].at.request', 10, 'request beside token');
  });

  it('experiment file - targets are checked per kind', () => {
    const f = (kind: string, target: string) =>
      `${HEAD}faults:\n  - kind: ${kind}\n    target: ${target}\n    at: { tick: 0 }\n`;
    for (const kind of ['chip-crash', 'chip-hang', 'sram-bitflip', 'clock-skew']) {
      expect(() => parseExperiment(f(kind, 'r2.n4.c7'), FILE)).not.toThrow();
      expectKeyError(
        f(kind, 'r2.n4'),
        'faults[0].target',
        9,
        `bad target for ${kind}`,
        'r<rack>.n<node>.c<chip>',
        '"r2.n4"',
      );
    }
    for (const kind of ['link-down', 'link-degraded', 'frame-delay']) {
      expect(() => parseExperiment(f(kind, 'r0.n1.c3-r1.n0.c0'), FILE)).not.toThrow();
      expectKeyError(f(kind, 'r0.n1.c3'), 'faults[0].target', 9, `bad target for ${kind}`, '<chip id>-<chip id>');
    }
    expect(parseExperiment(f('frame-corrupt', 'r0.n1.c3'), FILE).faults).toHaveLength(1);
    expect(parseExperiment(f('frame-corrupt', 'r0.n1.c3-r0.n1.c4'), FILE).faults).toHaveLength(1);
    expectKeyError(f('frame-corrupt', 'nats-0'), 'faults[0].target', 9, 'or a chip id');
    expect(parseExperiment(f('host-crash', 'r1.n2'), FILE).faults).toHaveLength(1);
    expectKeyError(f('host-crash', 'r1.n2.c0'), 'faults[0].target', 9, 'a host id r<rack>.n<node>');
    expect(parseExperiment(f('nats-server-kill', 'nats-2'), FILE).faults).toHaveLength(1);
    expectKeyError(f('nats-server-kill', 'nats'), 'faults[0].target', 9, 'nats-<index>');
    expectKeyError(f('chip-crash', 'r01.n1.c3'), 'faults[0].target', 9, 'r<rack>');
    expectKeyError(f('link-down', 'r0.n1.c3-r0.n1.c3'), 'faults[0].target', 9, 'two different chips');
  });

  it('experiment file - a param that does not apply to the kind names the kind and the params it takes', () => {
    expectKeyError(
      withFault('    at: { tick: 1 }\n    loss: 0.1\n'),
      'faults[0].loss',
      11,
      'loss does not apply to chip-crash',
      'no params (chip-crash takes none)',
    );
    const text = `${HEAD}faults:\n  - kind: frame-delay\n    target: r0.n0.c0-r0.n0.c1\n    at: { tick: 1 }\n    ecc: false\n`;
    expectKeyError(text, 'faults[0].ecc', 11, 'only the params of frame-delay: ticks');
  });

  it('experiment file - every problem of a file is reported at once, the first in details', () => {
    const text = `${HEAD.replace('requests: 2', 'requests: 0')}faults:\n  - { kind: chip-crash, target: x, at: { tick: 1 } }\n`;
    const err = expectError(
      () => parseExperiment(text, FILE),
      'RACKEMU_ERR_EXPERIMENT_KEY',
      '2 problems',
      `${FILE}:4: workload.requests`,
      `${FILE}:8: faults[0].target`,
    );
    expect(err.details.path).toBe('workload.requests');
    expect(err.details.errors).toHaveLength(2);
  });
});

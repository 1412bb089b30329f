import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTopology, parseSetArg, parseTopology } from '../src/topology/load.js';
import { RackemuError } from '../src/util/errors.js';
import { ROOT, topo } from './helpers/cli.js';

const base = readFileSync(topo('groq-576'), 'utf8');

function expectError(fn: () => unknown, code: string, ...mentions: string[]): RackemuError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RackemuError);
    const err = e as RackemuError;
    expect(err.code).toBe(code);
    for (const m of mentions) expect(err.message).toContain(m);
    return err;
  }
  throw new Error(`expected ${code}`);
}

describe('topology', () => {
  it('topology - every shipped file loads and validates', () => {
    const files = readdirSync(`${ROOT}topologies`).filter((f) => f.endsWith('.yaml'));
    expect(files).toEqual(
      expect.arrayContaining(['groq-576.yaml', 'groq-72.yaml', 'groq-10440.yaml', 'h100-8x.yaml', 'a100-8x.yaml']),
    );
    for (const f of files) expect(loadTopology(`${ROOT}topologies/${f}`).name).toBe(f.replace('.yaml', ''));
  });

  it('topology - groq-576 is 8 racks x 9 nodes x 8 chips with one spare node per rack', () => {
    const t = loadTopology(topo('groq-576'));
    expect([t.racks, t.nodes_per_rack, t.chips_per_node, t.spare_nodes_per_rack, t.cpus_per_node]).toEqual([
      8, 9, 8, 1, 2,
    ]);
    expect(t.chip.clock_mhz).toBe(900);
    expect(t.chip.sram_mib * 2 ** 20).toBeCloseTo(230e6, -5);
    expect(t.calibrated?.map((c) => c.key)).toEqual(['chip.weight_load_bytes_per_tick']);
  });

  it('topology - malformed YAML names file and line', () => {
    const err = expectError(
      () => parseTopology('name: x\nracks: [1, 2\n', 'bad.yaml'),
      'RACKEMU_ERR_TOPOLOGY_YAML',
      'bad.yaml:',
    );
    expect(err.details.line).toBeGreaterThan(0);
  });

  it('topology - unknown key is an error naming the key path and the known keys', () => {
    const text = base.replace('  clock_mhz: 900', '  clock_mhz: 900\n  clok_mhz: 900');
    const err = expectError(
      () => parseTopology(text, 'x.yaml'),
      'RACKEMU_ERR_TOPOLOGY_UNKNOWN_KEY',
      'chip.clok_mhz',
      'clock_mhz',
    );
    expect(err.details.path).toBe('chip.clok_mhz');
  });

  it('topology - wrong type names path, expected and got', () => {
    const text = base.replace(/^racks: 8 .*$/m, 'racks: eight');
    const err = expectError(
      () => parseTopology(text, 'x.yaml'),
      'RACKEMU_ERR_TOPOLOGY_TYPE',
      'racks',
      'integer',
      '"eight"',
    );
    expect(err.details).toMatchObject({ path: 'racks', expected: 'integer' });
  });

  it('topology - zero and negative counts are range errors', () => {
    expectError(
      () => parseTopology(base.replace(/^racks: 8 .*$/m, 'racks: 0'), 'x.yaml'),
      'RACKEMU_ERR_TOPOLOGY_RANGE',
      'racks',
      'got 0',
    );
    expectError(
      () => parseTopology(base.replace(/^chips_per_node: 8 .*$/m, 'chips_per_node: -8'), 'x.yaml'),
      'RACKEMU_ERR_TOPOLOGY_RANGE',
      'chips_per_node',
    );
    expectError(
      () => parseTopology(base.replace(/sram_mib: 219.35/, 'sram_mib: 0'), 'x.yaml'),
      'RACKEMU_ERR_TOPOLOGY_RANGE',
      'chip.sram_mib',
    );
  });

  it('topology - a missing required key is named', () => {
    expectError(
      () => parseTopology(base.replace(/^cpus_per_node: .*$/m, ''), 'x.yaml'),
      'RACKEMU_ERR_TOPOLOGY_MISSING_KEY',
      'cpus_per_node',
    );
  });

  it('topology - contradictions between keys are reported', () => {
    expectError(
      () => parseTopology(base.replace(/^spare_nodes_per_rack: 1 .*$/m, 'spare_nodes_per_rack: 9'), 'x.yaml'),
      'RACKEMU_ERR_TOPOLOGY_INCONSISTENT',
      'spare_nodes_per_rack',
    );
    expectError(
      () => parseTopology(base, 'x.yaml', [parseSetArg('links.local.per_chip=3')]),
      'RACKEMU_ERR_TOPOLOGY_INCONSISTENT',
      'links.local.per_chip',
    );
  });

  it('topology - --set overrides any key, validated the same way', () => {
    expect(parseTopology(base, 'x.yaml', [parseSetArg('chip.sram_mib=0.05')]).chip.sram_mib).toBe(0.05);
    expect(parseTopology(base, 'x.yaml', [parseSetArg('racks=2'), parseSetArg('name=two')]).racks).toBe(2);
    expectError(
      () => parseTopology(base, 'x.yaml', [parseSetArg('chip.sram_mb=1')]),
      'RACKEMU_ERR_TOPOLOGY_UNKNOWN_KEY',
      'chip.sram_mb',
    );
    expectError(
      () => parseTopology(base, 'x.yaml', [parseSetArg('racks=-1')]),
      'RACKEMU_ERR_TOPOLOGY_RANGE',
      '--set racks=-1',
    );
    expectError(() => parseTopology(base, 'x.yaml', [parseSetArg('racks=abc')]), 'RACKEMU_ERR_TOPOLOGY_TYPE', 'racks');
    expectError(() => parseSetArg('chip.sram_mib'), 'RACKEMU_ERR_SET_SYNTAX', 'key.path=value');
    expectError(() => parseSetArg('chip..x=1'), 'RACKEMU_ERR_SET_SYNTAX');
  });

  it('topology - host keys: PCIe sharing, health polls and CPU costs are validated like the rest', () => {
    for (const f of readdirSync(`${ROOT}topologies`).filter((x) => x.endsWith('.yaml'))) {
      const t = loadTopology(`${ROOT}topologies/${f}`);
      expect(t.host.pcie_root_gbps, f).toBeGreaterThan(0);
      expect(t.host.health_poll_interval_s, f).toBeGreaterThan(0);
      expect(Object.keys(t.host.cpu_us).sort(), f).toEqual([
        'detokenise_per_token',
        'health_poll_per_chip',
        'readback_per_row',
        'readback_per_step',
        'stage_per_row',
        'stage_per_step',
        'tokenise_per_token',
      ]);
    }
    const t = loadTopology(topo('groq-576'));
    // each GroqCard on its own Gen4 x16: the host side carries all 8 at once
    expect(t.host.pcie_root_gbps).toBe(t.chips_per_node * t.host.pcie_gbps);
    expect(t.host.health_poll_interval_s).toBe(0.5);
    expectError(
      () => parseTopology(base.replace(/^ {2}pcie_root_gbps: .*$/m, ''), 'x.yaml'),
      'RACKEMU_ERR_TOPOLOGY_MISSING_KEY',
      'host.pcie_root_gbps',
    );
    expectError(
      () => parseTopology(base.replace(/^ {4}stage_per_step: .*$/m, '    stage_per_step: -5'), 'x.yaml'),
      'RACKEMU_ERR_TOPOLOGY_RANGE',
      'host.cpu_us.stage_per_step',
      'got -5',
    );
    expectError(
      () => parseTopology(base, 'x.yaml', [parseSetArg('host.health_poll_interval_s=0')]),
      'RACKEMU_ERR_TOPOLOGY_RANGE',
      '--set host.health_poll_interval_s=0',
    );
    expectError(
      () => parseTopology(base, 'x.yaml', [parseSetArg('host.cpu_us.tokenize_per_token=1')]),
      'RACKEMU_ERR_TOPOLOGY_UNKNOWN_KEY',
      'host.cpu_us.tokenize_per_token',
    );
    const set = parseTopology(base, 'x.yaml', [parseSetArg('host.cpu_us.tokenise_per_token=2.5')]);
    expect(set.host.cpu_us.tokenise_per_token).toBe(2.5);
  });

  it('topology - a file that cannot be read is named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rackemu-topo-'));
    expectError(() => loadTopology(join(dir, 'nope.yaml')), 'RACKEMU_ERR_TOPOLOGY_FILE', 'nope.yaml');
    writeFileSync(join(dir, 'list.yaml'), '- 1\n- 2\n');
    expectError(() => loadTopology(join(dir, 'list.yaml')), 'RACKEMU_ERR_TOPOLOGY_TYPE', 'mapping');
  });
});

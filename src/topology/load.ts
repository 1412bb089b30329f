import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, parse as parseYamlScalar, isMap, type Document } from 'yaml';
import { TopologyError, type ErrorCode } from '../util/errors.js';
import { CHIP_DEFAULTS, PRICE_DEFAULTS, TOPOLOGY_SCHEMA, schemaAt } from './schema.js';
import type { Topology } from './types.js';

export interface TopologyOverride {
  /** Key path, e.g. ['chip', 'sram_mib']. */
  path: string[];
  value: unknown;
  /** The text the user gave, for messages. */
  text: string;
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile<Topology>(TOPOLOGY_SCHEMA);

/** Parses one `--set key.path=value` argument. The value is read as a YAML scalar (numbers, booleans, strings). */
export function parseSetArg(arg: string): TopologyOverride {
  const eq = arg.indexOf('=');
  if (eq <= 0 || eq === arg.length - 1) {
    throw new TopologyError(
      'RACKEMU_ERR_SET_SYNTAX',
      `--set ${arg}: expected key.path=value (e.g. --set chip.sram_mib=0.05)`,
      {
        details: { got: arg, expected: 'key.path=value' },
      },
    );
  }
  const key = arg.slice(0, eq).trim();
  const path = key.split('.');
  if (path.some((p) => p.length === 0)) {
    throw new TopologyError('RACKEMU_ERR_SET_SYNTAX', `--set ${arg}: key path "${key}" has an empty segment`, {
      details: { got: key, expected: 'dot-separated keys' },
    });
  }
  let value: unknown;
  try {
    value = parseYamlScalar(arg.slice(eq + 1));
  } catch (cause) {
    throw new TopologyError('RACKEMU_ERR_SET_SYNTAX', `--set ${arg}: value is not a YAML scalar`, {
      cause,
      details: { got: arg },
    });
  }
  return { path, value, text: arg };
}

/** Reads, overrides and validates a topology file. Every failure is a TopologyError naming file, key and line. */
export function loadTopology(file: string, overrides: readonly TopologyOverride[] = []): Topology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new TopologyError(
      'RACKEMU_ERR_TOPOLOGY_FILE',
      `${file}: cannot read topology file (${(cause as Error).message})`,
      {
        cause,
        details: { file },
      },
    );
  }
  return parseTopology(text, file, overrides);
}

export function parseTopology(text: string, file: string, overrides: readonly TopologyOverride[] = []): Topology {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const at = lines.linePos(e.pos[0]);
    throw new TopologyError(
      'RACKEMU_ERR_TOPOLOGY_YAML',
      `${file}:${at.line}:${at.col}: invalid YAML: ${e.message.split('\n')[0]}`,
      {
        details: { file, line: at.line },
      },
    );
  }
  if (!isMap(doc.contents)) {
    throw new TopologyError(
      'RACKEMU_ERR_TOPOLOGY_TYPE',
      `${file}: expected a mapping of topology keys at the top level`,
      {
        details: { file, expected: 'mapping', got: doc.contents === null ? 'empty document' : typeof doc.toJS() },
      },
    );
  }
  for (const o of overrides) applyOverride(doc, o, file);
  const value = doc.toJS() as unknown;
  if (!validate(value)) {
    throw schemaError(validate.errors ?? [], file, doc, lines, overrides);
  }
  checkConsistency(value, file);
  return withDefaults(value);
}

/** The topology with the optional keys filled in (schema.ts CHIP_DEFAULTS, PRICE_DEFAULTS). */
function withDefaults(t: Topology): Topology {
  const chip = t.chip as Partial<Topology['chip']> & Topology['chip'];
  return {
    ...t,
    chip: {
      ...chip,
      memory_efficiency: chip.memory_efficiency ?? CHIP_DEFAULTS.memory_efficiency,
      kernels_per_op: chip.kernels_per_op ?? CHIP_DEFAULTS.kernels_per_op,
    },
    prices: { ...t.prices, utilisation: t.prices.utilisation ?? PRICE_DEFAULTS.utilisation },
  };
}

function applyOverride(doc: Document, o: TopologyOverride, file: string): void {
  if (!schemaAt(o.path)) {
    throw new TopologyError(
      'RACKEMU_ERR_TOPOLOGY_UNKNOWN_KEY',
      `--set ${o.text}: ${o.path.join('.')} is not a topology key`,
      {
        details: { file, path: o.path.join('.') },
      },
    );
  }
  doc.setIn(o.path, o.value);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v}" (string)`;
  return `${String(v)} (${typeof v})`;
}

function schemaError(
  errors: ErrorObject[],
  file: string,
  doc: Document,
  lines: LineCounter,
  overrides: readonly TopologyOverride[],
): TopologyError {
  const messages: string[] = [];
  let first: { code: ErrorCode; path: string; expected: string; got: string } | undefined;
  for (const e of errors) {
    const base = e.instancePath.split('/').slice(1);
    let code: ErrorCode;
    let path = base.join('.');
    let expected: string;
    let got: string;
    const at = base.length ? doc.getIn(base) : doc.toJS();
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        path = [...base, key].join('.');
        code = 'RACKEMU_ERR_TOPOLOGY_UNKNOWN_KEY';
        const known = Object.keys((schemaAt(base)?.properties as object | undefined) ?? {});
        expected = `one of ${known.join(', ')}`;
        got = key;
        break;
      }
      case 'required': {
        const key = (e.params as { missingProperty: string }).missingProperty;
        path = [...base, key].join('.');
        code = 'RACKEMU_ERR_TOPOLOGY_MISSING_KEY';
        const desc = schemaAt([...base, key])?.description;
        expected = desc ? `a value (${desc})` : 'a value';
        got = 'nothing';
        break;
      }
      case 'type':
        code = 'RACKEMU_ERR_TOPOLOGY_TYPE';
        expected = `${(e.params as { type: string }).type}`;
        got = describe(toJs(at));
        break;
      case 'enum':
        code = 'RACKEMU_ERR_TOPOLOGY_RANGE';
        expected = `one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
        got = describe(toJs(at));
        break;
      case 'minimum':
      case 'exclusiveMinimum':
      case 'minLength':
        code = 'RACKEMU_ERR_TOPOLOGY_RANGE';
        expected = e.message ?? 'a larger value';
        got = describe(toJs(at));
        break;
      default:
        code = 'RACKEMU_ERR_TOPOLOGY_TYPE';
        expected = e.message ?? 'a valid value';
        got = describe(toJs(at));
    }
    const fromSet = overrides.find((o) => path.startsWith(o.path.join('.')));
    const where = fromSet ? `--set ${fromSet.text}` : `${file}:${lineOf(doc, lines, path.split('.'))}`;
    messages.push(`${where}: ${path || '(top level)'}: expected ${expected}, got ${got} [${code}]`);
    first ??= { code, path, expected, got };
  }
  const f = first!;
  return new TopologyError(f.code, `invalid topology ${file}:\n  ${messages.join('\n  ')}`, {
    details: { file, path: f.path, expected: f.expected, got: f.got, errors: messages },
  });
}

function toJs(v: unknown): unknown {
  return v !== null && typeof v === 'object' && 'toJSON' in v ? (v as { toJSON(): unknown }).toJSON() : v;
}

/** Line of the deepest existing node on the path (the parent mapping for a missing key). */
function lineOf(doc: Document, lines: LineCounter, path: string[]): number {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) return lines.linePos(range[0]).line;
  }
  return 1;
}

function inconsistent(file: string, path: string, message: string, expected: string, got: string): TopologyError {
  return new TopologyError('RACKEMU_ERR_TOPOLOGY_INCONSISTENT', `${file}: ${path}: ${message}`, {
    details: { file, path, expected, got },
  });
}

/** Rules that involve more than one key. */
function checkConsistency(t: Topology, file: string): void {
  if (t.spare_nodes_per_rack >= t.nodes_per_rack) {
    throw inconsistent(
      file,
      'spare_nodes_per_rack',
      'every rack needs at least one active node',
      `< nodes_per_rack (${t.nodes_per_rack})`,
      String(t.spare_nodes_per_rack),
    );
  }
  const local = t.links.local;
  if (local.wiring !== 'full_mesh' && local.wiring !== 'switch') {
    throw inconsistent(
      file,
      'links.local.wiring',
      'in-node links are wired full_mesh or switch',
      'full_mesh | switch',
      local.wiring,
    );
  }
  if (t.chips_per_node > 1 && local.per_chip === 0) {
    throw inconsistent(file, 'links.local.per_chip', 'chips of one node need in-node links', '>= 1', '0');
  }
  if (local.wiring === 'full_mesh' && t.chips_per_node > 1 && local.per_chip < t.chips_per_node - 1) {
    throw inconsistent(
      file,
      'links.local.per_chip',
      `a full mesh of ${t.chips_per_node} chips needs ${t.chips_per_node - 1} links per chip`,
      `>= ${t.chips_per_node - 1}`,
      String(local.per_chip),
    );
  }
  const g = t.links.global;
  const nodes = t.racks * t.nodes_per_rack;
  if (g.wiring !== 'dragonfly' && g.wiring !== 'none') {
    throw inconsistent(
      file,
      'links.global.wiring',
      'cross-node links are wired dragonfly or none',
      'dragonfly | none',
      g.wiring,
    );
  }
  if (nodes > 1 && (g.wiring === 'none' || g.per_chip === 0)) {
    throw inconsistent(
      file,
      'links.global',
      `${nodes} nodes need cross-node links`,
      'wiring: dragonfly and per_chip >= 1',
      `${g.wiring}, ${g.per_chip}`,
    );
  }
  if (g.wiring === 'dragonfly') {
    const ports = t.chips_per_node * g.per_chip;
    const intra = t.nodes_per_rack - 1;
    if (ports < intra) {
      throw inconsistent(
        file,
        'links.global.per_chip',
        `a node needs ${intra} global ports to reach the other nodes of its rack`,
        `chips_per_node x per_chip >= ${intra}`,
        String(ports),
      );
    }
    const rackPorts = t.nodes_per_rack * (ports - intra);
    if (t.racks > 1 && rackPorts < t.racks - 1) {
      throw inconsistent(
        file,
        'racks',
        `a rack has ${rackPorts} free global ports but needs one link to each of ${t.racks - 1} other racks`,
        `racks <= ${rackPorts + 1}`,
        String(t.racks),
      );
    }
  }
  if (t.chip.hbm_gib > 0 && t.chip.hbm_bandwidth_tbps === 0) {
    throw inconsistent(file, 'chip.hbm_bandwidth_tbps', 'a chip with HBM needs its bandwidth', '> 0', '0');
  }
  for (const [i, c] of (t.calibrated ?? []).entries()) {
    if (!schemaAt(c.key.split('.')) || c.key.startsWith('calibrated')) {
      throw inconsistent(
        file,
        `calibrated[${i}].key`,
        'names no topology parameter',
        'a key path such as chip.weight_load_bytes_per_tick',
        c.key,
      );
    }
  }
}

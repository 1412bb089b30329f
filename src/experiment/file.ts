/**
 * Reads a fault-injection experiment file (YAML) into an ExperimentSpec. Keys, types and ranges are checked
 * by the JSON Schema in ./schema.ts, then the rules a schema says badly (the form of `at`, the target syntax
 * and the params of each fault kind, `set` keys). Every problem names the file, the key path (such as
 * `faults[2].at.token`), the line, what was expected and what was got; all problems of a file are reported
 * at once. Paths are resolved against the experiment file's folder; nothing else is read here (the topology
 * loader reads the topology, and checks `set` values and fault targets against it later).
 */
import type { LayoutSearch } from '../compiler/plan.js';
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, parse as parseYamlScalar, isMap, isScalar, isSeq, type Document } from 'yaml';
import { BUILTIN_MODELS } from '../model/builtin.js';
import { schemaAt } from '../topology/schema.js';
import { ExperimentError, type ErrorCode } from '../util/errors.js';
import {
  EXPERIMENT_SCHEMA,
  FAULT_DEFAULTS,
  FAULT_PARAMS,
  FAULT_SCHEMA,
  FAULT_TARGETS,
  RANDOM_DEFAULTS,
  RANDOM_SCHEMA,
  WORKLOAD_DEFAULTS,
} from './schema.js';
import type { ExperimentSpec, FaultAt, FaultKind, FaultParams, FaultSpec, RandomFaults } from './types.js';

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validateExperiment = ajv.compile(EXPERIMENT_SCHEMA);
const validateFault = ajv.compile(FAULT_SCHEMA);
const validateRandom = ajv.compile(RANDOM_SCHEMA);

/** The file as written (snake_case keys), once it has passed the schema. */
interface RawExperiment {
  name?: string;
  description?: string;
  topology: string;
  model: string;
  fidelity?: 'numeric' | 'timing';
  set?: Record<string, unknown>;
  plan?: {
    dtype?: ExperimentSpec['plan']['dtype'];
    batch?: number;
    context?: number;
    prefill_chunk?: number;
    layout_search?: LayoutSearch;
  };
  workload: { requests: number; prompt_tokens: number; max_new_tokens: number; concurrency?: number; seed?: number };
  faults?: Record<string, unknown>[];
  expect?: {
    lost_requests?: number;
    tokens_identical?: boolean;
    all_detected?: boolean;
    all_recovered?: boolean;
    max_recovery_virtual_ms?: number;
  };
}
interface RawFault extends FaultParams {
  kind: FaultKind;
  target: string;
  at: { tick?: number; request?: number; token?: number; wall_ms?: number };
}
interface RawRandom {
  random: { count: number; kinds?: FaultKind[]; seed?: number };
}

type Segment = string | number;

/** `['faults', 2, 'at', 'token']` -> `faults[2].at.token`. */
function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const s of path) out += typeof s === 'number' ? `[${s}]` : out ? `.${s}` : s;
  return out || '(top level)';
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v}" (string)`;
  return `${String(v)} (${typeof v})`;
}

interface Problem {
  readonly path: string;
  readonly line: number;
  readonly expected: string;
  readonly got: string;
  readonly message: string;
}

/** The problems found in one file, each located on its line. */
class Problems {
  readonly list: Problem[] = [];
  constructor(
    private readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  add(path: readonly Segment[], expected: string, got: string, why?: string): void {
    const p = formatPath(path);
    if (this.list.some((q) => q.path === p && q.expected === expected)) return;
    const line = lineOf(this.doc, this.lines, path);
    const message = `${this.file}:${line}: ${p}: ${why ? `${why}: ` : ''}expected ${expected}, got ${got}`;
    this.list.push({ path: p, line, expected, got, message });
  }

  throwIfAny(): void {
    if (this.list.length === 0) return;
    const [f] = this.list;
    const message =
      this.list.length === 1
        ? f.message
        : `invalid experiment ${this.file} (${this.list.length} problems):\n  ${this.list.map((p) => p.message).join('\n  ')}`;
    throw keyError(message, this.file, f, this.list);
  }
}

function keyError(message: string, file: string, f: Omit<Problem, 'message'>, all: Problem[] = []): ExperimentError {
  const code: ErrorCode = 'RACKEMU_ERR_EXPERIMENT_KEY';
  return new ExperimentError(code, message, {
    details: { file, path: f.path, line: f.line, expected: f.expected, got: f.got, errors: all.map((p) => p.message) },
  });
}

/** Line of the deepest node on the path that exists: a key's own line, a list item's first line. */
function lineOf(doc: Document, lines: LineCounter, path: readonly Segment[]): number {
  const lineAt = (n: unknown): number | undefined => {
    const range = (n as { range?: [number, number, number] } | null | undefined)?.range;
    return range ? lines.linePos(range[0]).line : undefined;
  };
  let node: unknown = doc.contents;
  let line = lineAt(node) ?? 1;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (!pair) break;
      line = lineAt(pair.key) ?? line;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
      line = lineAt(node) ?? line;
    } else break;
  }
  return line;
}

/** Reads and validates an experiment file. Every failure is an ExperimentError naming file, key path and line. */
export function loadExperiment(path: string): ExperimentSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ExperimentError(
      'RACKEMU_ERR_EXPERIMENT_FILE',
      `${path}: cannot read experiment file (${(cause as Error).message})`,
      { cause, details: { file: path } },
    );
  }
  return parseExperiment(text, path);
}

/** Parses and validates an experiment's text; `file` names it in messages and anchors its relative paths. */
export function parseExperiment(text: string, file: string): ExperimentSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const at = lines.linePos(e.pos[0]);
    throw new ExperimentError(
      'RACKEMU_ERR_EXPERIMENT_YAML',
      `${file}:${at.line}:${at.col}: invalid YAML: ${e.message.split('\n')[0]}`,
      { details: { file, line: at.line, expected: 'valid YAML', got: e.code } },
    );
  }
  const value = doc.toJS() as unknown;
  if (!isMap(doc.contents)) {
    const got = doc.contents === null ? 'an empty document' : describe(value);
    const f = { path: '(top level)', line: 1, expected: 'a mapping of experiment keys', got };
    throw keyError(`${file}:1: (top level): expected ${f.expected}, got ${got}`, file, f);
  }
  const problems = new Problems(file, doc, lines);
  check(validateExperiment, value, [], problems);
  const raw = value as RawExperiment;
  if (Array.isArray(raw.faults)) raw.faults.forEach((f, i) => checkFault(f, ['faults', i], problems));
  const dir = dirname(resolve(file));
  const model = typeof raw.model === 'string' && raw.model ? resolveModel(raw.model, dir, problems) : '';
  const set = raw.set && typeof raw.set === 'object' && !Array.isArray(raw.set) ? flattenSet(raw.set, problems) : [];
  problems.throwIfAny();
  return build(raw, resolve(file), model, set);
}

/**
 * One fault given as JSON (POST /admin/faults), checked by the rules of an experiment file's `faults`
 * entries; `where` names it in messages. A random block is not one fault.
 */
export function parseFault(json: string, where: string): FaultSpec {
  const lines = new LineCounter();
  const doc = parseDocument(json, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const value = doc.toJS() as unknown;
  const problems = new Problems(where, doc, lines);
  if (doc.errors.length > 0 || !isMap(doc.contents)) {
    problems.add([], 'a JSON object { kind, target, at, ...params }', describe(value));
  } else if ('random' in (value as Record<string, unknown>)) {
    problems.add(['random'], 'one fault { kind, target, at, ...params }', 'a random block');
  } else {
    checkFault(value as Record<string, unknown>, [], problems);
  }
  problems.throwIfAny();
  return toFault(value as Record<string, unknown>) as FaultSpec;
}

/** Runs a compiled schema over `data` (found at `base` in the file) and records its errors. */
function check(validate: ValidateFunction, data: unknown, base: Segment[], problems: Problems): boolean {
  if (validate(data)) return true;
  for (const e of validate.errors ?? []) fromAjv(e, base, data, problems);
  return false;
}

/** JSON pointer -> path segments, list indices as numbers. */
function segments(pointer: string, data: unknown): Segment[] {
  const out: Segment[] = [];
  let cur = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const seg: Segment = Array.isArray(cur) ? Number(key) : key;
    out.push(seg);
    cur = (cur as Record<string, unknown> | undefined)?.[seg];
  }
  return out;
}

function typeName(t: unknown): string {
  if (t === 'object') return 'a mapping';
  if (t === 'array') return 'a list';
  return String(t);
}

function fromAjv(e: ErrorObject, base: Segment[], data: unknown, problems: Problems): void {
  const path = [...base, ...segments(e.instancePath, data)];
  const schema = e.parentSchema as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(schema.properties as object);
      problems.add([...path, key], `one of ${known.join(', ')}`, key, 'unknown key');
      return;
    }
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty;
      const desc = ((schema.properties as Record<string, { description?: string }>)[key] ?? {}).description;
      problems.add([...path, key], desc ? `a value (${desc})` : 'a value', 'nothing', 'missing key');
      return;
    }
    case 'type':
      problems.add(path, typeName((e.params as { type: string }).type), describe(e.data), 'wrong type');
      return;
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      problems.add(path, `one of ${allowed.join(', ')}`, describe(e.data), 'unknown value');
      return;
    }
    case 'minimum':
    case 'maximum': {
      const { comparison, limit } = e.params as { comparison: string; limit: number };
      problems.add(path, `${typeName(schema.type)} ${comparison} ${limit}`, describe(e.data), 'out of range');
      return;
    }
    case 'minLength':
      problems.add(path, 'a non-empty string', describe(e.data), 'out of range');
      return;
    case 'minItems':
      problems.add(path, 'a non-empty list', 'an empty list', 'out of range');
      return;
    default:
      problems.add(path, e.message ?? 'a valid value', describe(e.data));
  }
}

const AT_FORMS = '{ tick } | { request, token } | { wall_ms }';

/** One entry of `faults`: a fault, or a random block. */
function checkFault(f: Record<string, unknown>, path: Segment[], problems: Problems): void {
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return; // the schema reported it
  if ('random' in f) {
    check(validateRandom, f, path, problems);
    return;
  }
  if (!check(validateFault, f, path, problems)) return;
  const fault = f as unknown as RawFault;
  const forms = [
    'tick' in fault.at && 'tick',
    ('request' in fault.at || 'token' in fault.at) && 'request/token',
    'wall_ms' in fault.at && 'wall_ms',
  ].filter((x): x is string => typeof x === 'string');
  if (forms.length === 0) {
    problems.add([...path, 'at'], `exactly one of ${AT_FORMS}`, 'an empty mapping', 'at says no time');
  } else if (forms.length > 1) {
    const why = `at has ${forms.length} forms (${forms.join(' and ')})`;
    problems.add([...path, 'at'], `exactly one of ${AT_FORMS}`, Object.keys(fault.at).join(', '), why);
  } else if (forms[0] === 'request/token') {
    for (const [key, other] of [
      ['request', 'token'],
      ['token', 'request'],
    ] as const) {
      if (!(key in fault.at)) {
        problems.add([...path, 'at', key], `${key} beside ${other} (${AT_FORMS})`, 'nothing', 'missing key');
      }
    }
  }
  const form = FAULT_TARGETS[fault.kind];
  if (!form.pattern.test(fault.target)) {
    problems.add([...path, 'target'], form.expected, describe(fault.target), `bad target for ${fault.kind}`);
  } else if (/^(.+)-\1$/.test(fault.target)) {
    problems.add([...path, 'target'], 'a link between two different chips', describe(fault.target), 'bad link');
  }
  const takes = FAULT_PARAMS[fault.kind];
  for (const key of Object.keys(f)) {
    if (key === 'kind' || key === 'target' || key === 'at' || (takes as readonly string[]).includes(key)) continue;
    const expected = takes.length
      ? `only the params of ${fault.kind}: ${takes.join(', ')}`
      : `no params (${fault.kind} takes none)`;
    problems.add([...path, key], expected, `${key}: ${String(f[key])}`, `${key} does not apply to ${fault.kind}`);
  }
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A built-in name stays a name (as with the CLI's --model); anything else is a folder beside the file. */
function resolveModel(model: string, dir: string, problems: Problems): string {
  if (Object.prototype.hasOwnProperty.call(BUILTIN_MODELS, model)) return model;
  const folder = resolve(dir, model);
  if (isDirectory(folder)) return folder;
  const names = Object.keys(BUILTIN_MODELS).join(', ');
  problems.add(['model'], `a built-in model (${names}) or a model folder`, `"${model}" (no folder ${folder})`);
  return model;
}

/** A YAML scalar text that parseSetArg reads back as `v`. */
function scalarText(v: string | number | boolean): string {
  const t = String(v);
  return parseYamlScalar(t) === v ? t : JSON.stringify(v);
}

/** `set` (dot-path keys, nested maps allowed) -> `key.path=value` strings, keys checked against the topology schema. */
function flattenSet(set: Record<string, unknown>, problems: Problems): string[] {
  const out: string[] = [];
  const walk = (map: Record<string, unknown>, keys: string[], path: Segment[]): void => {
    for (const [k, v] of Object.entries(map)) {
      const parts = [...keys, ...k.split('.')];
      const at = [...path, k];
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        walk(v as Record<string, unknown>, parts, at);
        continue;
      }
      const node = parts.every((p) => p.length > 0) ? schemaAt(parts) : undefined;
      if (!node || node.type === 'object' || node.type === 'array') {
        problems.add(at, topologyKeys(parts), parts.join('.'), 'not a topology value key');
      } else if (typeof v === 'boolean' || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) {
        out.push(`${parts.join('.')}=${scalarText(v)}`);
      } else {
        problems.add(at, 'a number, string or boolean', describe(v), 'wrong type');
      }
    }
  };
  walk(set, [], ['set']);
  return out;
}

/** What the longest valid prefix of `parts` admits next, for messages. */
function topologyKeys(parts: string[]): string {
  let n = 0;
  while (n < parts.length && schemaAt(parts.slice(0, n + 1))?.properties) n++;
  const prefix = parts.slice(0, n).join('.');
  const known = Object.keys((schemaAt(parts.slice(0, n))?.properties as object | undefined) ?? {});
  return `a topology key ${prefix ? `${prefix}.` : ''}<${known.join('|')}>`;
}

function toFault(f: Record<string, unknown>): FaultSpec | RandomFaults {
  if ('random' in f) {
    const r = (f as unknown as RawRandom).random;
    return {
      random: { count: r.count, kinds: r.kinds ?? [...RANDOM_DEFAULTS.kinds], seed: r.seed ?? RANDOM_DEFAULTS.seed },
    };
  }
  const raw = f as unknown as RawFault;
  const a = raw.at;
  const at: FaultAt =
    a.tick !== undefined
      ? { tick: a.tick }
      : a.wall_ms !== undefined
        ? { wallMs: a.wall_ms }
        : { request: a.request!, token: a.token! };
  const params: Record<string, unknown> = { ...FAULT_DEFAULTS[raw.kind] };
  for (const k of FAULT_PARAMS[raw.kind]) if (raw[k] !== undefined) params[k] = raw[k];
  return { kind: raw.kind, target: raw.target, at, ...(params as FaultParams) };
}

/** Drops keys whose value is undefined, so that specs compare and print cleanly. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function build(raw: RawExperiment, file: string, model: string, set: string[]): ExperimentSpec {
  const w = raw.workload;
  const p = raw.plan ?? {};
  const x = raw.expect ?? {};
  return defined({
    file,
    name: raw.name ?? basename(file, extname(file)),
    description: raw.description,
    topology: resolve(dirname(file), raw.topology),
    model,
    fidelity: raw.fidelity ?? 'numeric',
    set,
    plan: defined({
      dtype: p.dtype,
      batch: p.batch,
      context: p.context,
      prefillChunk: p.prefill_chunk,
      layoutSearch: p.layout_search,
    }),
    workload: {
      requests: w.requests,
      promptTokens: w.prompt_tokens,
      maxNewTokens: w.max_new_tokens,
      concurrency: w.concurrency ?? WORKLOAD_DEFAULTS.concurrency,
      seed: w.seed ?? WORKLOAD_DEFAULTS.seed,
    },
    faults: (raw.faults ?? []).map(toFault),
    expect: defined({
      lostRequests: x.lost_requests,
      tokensIdentical: x.tokens_identical,
      allDetected: x.all_detected,
      allRecovered: x.all_recovered,
      maxRecoveryVirtualMs: x.max_recovery_virtual_ms,
    }),
  });
}

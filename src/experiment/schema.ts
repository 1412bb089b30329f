/**
 * JSON Schema of an experiment file (keys, types, ranges), and the per-kind rules of a fault that a schema
 * says badly: which target syntax a kind takes, which params apply to it and their defaults.
 * Every object is closed (additionalProperties: false) so a misspelt key is an error, not a silent default.
 */
import { WEIGHT_DTYPES } from '../model/config.js';
import { LAYOUT_SEARCHES } from '../compiler/plan.js';
import { FAULT_KINDS, type FaultKind, type FaultParams } from './types.js';

export { FAULT_DEFAULTS } from '../faults/types.js';

type JsonSchema = Record<string, unknown>;

const int = (description: string, minimum = 1): JsonSchema => ({ type: 'integer', minimum, description });
const nonNegative = (description: string): JsonSchema => ({ type: 'number', minimum: 0, description });
const bool = (description: string): JsonSchema => ({ type: 'boolean', description });
const text = (description: string): JsonSchema => ({ type: 'string', minLength: 1, description });
const closed = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({
  type: 'object',
  additionalProperties: false,
  required,
  properties,
});

export const EXPERIMENT_SCHEMA: JsonSchema = closed(
  {
    name: text('experiment name'),
    description: { type: 'string', description: 'what the experiment shows' },
    topology: text('topology file, relative to the experiment file'),
    model: text('built-in model name or model folder, relative to the experiment file'),
    fidelity: { enum: ['numeric', 'timing'], description: 'numeric (real values) or timing (shapes only)' },
    set: { type: 'object', description: 'topology overrides, e.g. { chip.sram_mib: 0.05 }' },
    plan: closed({
      dtype: { enum: [...WEIGHT_DTYPES], description: 'weight storage dtype' },
      batch: int('rows per decode step'),
      context: int('context length the Plan serves'),
      prefill_chunk: int('prompt positions per prefill step'),
      layout_search: { enum: [...LAYOUT_SEARCHES], description: 'group shapes the compiler searches (default full)' },
    }),
    workload: closed(
      {
        requests: int('requests served'),
        prompt_tokens: int('prompt tokens per request'),
        max_new_tokens: int('tokens generated per request'),
        concurrency: int('requests in flight at once'),
        seed: int('seed of the prompts', 0),
      },
      ['requests', 'prompt_tokens', 'max_new_tokens'],
    ),
    faults: { type: 'array', items: { type: 'object' }, description: 'faults to inject' },
    expect: closed({
      lost_requests: int('requests that may fail', 0),
      tokens_identical: bool('tokens equal those of a run without faults'),
      all_detected: bool('every fault is detected'),
      all_recovered: bool('the system recovers from every fault'),
      max_recovery_virtual_ms: nonNegative('longest recovery, virtual ms'),
    }),
  },
  ['topology', 'model', 'workload'],
);

const kindEnum = { enum: [...FAULT_KINDS], description: 'fault kind' };

/** One fault: `{ kind, target, at, ...params }`. Per-kind rules are in FAULT_PARAMS and FAULT_TARGETS. */
export const FAULT_SCHEMA: JsonSchema = closed(
  {
    kind: kindEnum,
    target: text('chip, link, host or NATS server id'),
    at: closed({
      tick: int('virtual tick of the serving timeline', 0),
      request: int('0-based request index in workload order', 0),
      token: int('0-based token index of that request', 0),
      wall_ms: nonNegative('wall ms after the workload starts'),
    }),
    ticks: int('virtual ticks', 0),
    loss: { type: 'number', minimum: 0, maximum: 1, description: 'fraction of frames lost, 0..1' },
    count: int('frames corrupted'),
    tensor: text('weight tensor name on the chip'),
    bits: { enum: [1, 2], description: 'bits flipped in one word' },
    ecc: bool('ECC on'),
    seed: int('seed for drawing word and bit', 0),
  },
  ['kind', 'target', 'at'],
);

/** `{ random: { count, kinds, seed } }`: faults drawn later from the topology and Plan. */
export const RANDOM_SCHEMA: JsonSchema = closed(
  {
    random: closed(
      {
        count: int('faults drawn'),
        kinds: { type: 'array', minItems: 1, items: kindEnum, description: 'kinds drawn from' },
        seed: int('seed of the draw', 0),
      },
      ['count'],
    ),
  },
  ['random'],
);

/** Defaults of a random block's optional keys. */
export const RANDOM_DEFAULTS = { kinds: FAULT_KINDS, seed: 1 } as const;
/** Defaults of the workload's optional keys. */
export const WORKLOAD_DEFAULTS = { concurrency: 1, seed: 1 } as const;

/** Params each kind takes; any other param on a fault of that kind is an error. */
export const FAULT_PARAMS: Readonly<Record<FaultKind, readonly (keyof FaultParams)[]>> = {
  'chip-crash': [],
  'chip-hang': [],
  'link-down': [],
  'link-degraded': ['ticks', 'loss'],
  'frame-corrupt': ['count'],
  'frame-delay': ['ticks'],
  'sram-bitflip': ['tensor', 'bits', 'ecc', 'seed'],
  'host-crash': [],
  'nats-server-kill': [],
  'clock-skew': ['ticks'],
};

const N = '(?:0|[1-9][0-9]*)';
const CHIP = `r${N}\\.n${N}\\.c${N}`;

export interface TargetForm {
  readonly pattern: RegExp;
  /** What a valid target looks like, for messages. */
  readonly expected: string;
}

const chip: TargetForm = {
  pattern: new RegExp(`^${CHIP}$`),
  expected: 'a chip id r<rack>.n<node>.c<chip> (e.g. r0.n1.c3)',
};
const link: TargetForm = {
  pattern: new RegExp(`^${CHIP}-${CHIP}$`),
  expected: 'a link <chip id>-<chip id> (e.g. r0.n1.c3-r0.n1.c4)',
};
const chipOrLink: TargetForm = {
  pattern: new RegExp(`^${CHIP}(?:-${CHIP})?$`),
  expected:
    'a link <chip id>-<chip id> (e.g. r0.n1.c3-r0.n1.c4) or a chip id r<rack>.n<node>.c<chip> (all frames it sends)',
};
const host: TargetForm = { pattern: new RegExp(`^r${N}\\.n${N}$`), expected: 'a host id r<rack>.n<node> (e.g. r1.n2)' };
const nats: TargetForm = {
  pattern: new RegExp(`^nats-${N}$`),
  expected: 'nats-<index>, the 0-based index of a server of the NATS cluster (e.g. nats-1)',
};

/** Target syntax of each kind. Whether the target exists is checked against the topology later. */
export const FAULT_TARGETS: Readonly<Record<FaultKind, TargetForm>> = {
  'chip-crash': chip,
  'chip-hang': chip,
  'sram-bitflip': chip,
  'clock-skew': chip,
  'link-down': link,
  'link-degraded': link,
  'frame-delay': link,
  'frame-corrupt': chipOrLink,
  'host-crash': host,
  'nats-server-kill': nats,
};

/**
 * One registry of coded errors (in the manner of fastify's FST_ERR_*): users, scripts and tests match
 * on `code`, never on message text. Every error rackemu raises on purpose is a RackemuError with a code
 * from this table; the CLI maps `exitCode` to the process exit status.
 */

export interface ErrorSpec {
  /** Process exit status when this error ends a CLI command. */
  readonly exitCode: number;
  /** One line: what this code means. */
  readonly summary: string;
}

export const ERRORS = {
  // usage
  RACKEMU_ERR_USAGE: { exitCode: 64, summary: 'bad command-line usage (unknown flag, missing or invalid value)' },
  // topology
  RACKEMU_ERR_TOPOLOGY_FILE: { exitCode: 66, summary: 'topology file cannot be read' },
  RACKEMU_ERR_TOPOLOGY_YAML: { exitCode: 65, summary: 'topology file is not valid YAML' },
  RACKEMU_ERR_TOPOLOGY_UNKNOWN_KEY: { exitCode: 65, summary: 'topology has a key the schema does not define' },
  RACKEMU_ERR_TOPOLOGY_MISSING_KEY: { exitCode: 65, summary: 'topology lacks a required key' },
  RACKEMU_ERR_TOPOLOGY_TYPE: { exitCode: 65, summary: 'topology value has the wrong type' },
  RACKEMU_ERR_TOPOLOGY_RANGE: { exitCode: 65, summary: 'topology value is out of range (e.g. zero or negative count)' },
  RACKEMU_ERR_TOPOLOGY_INCONSISTENT: { exitCode: 65, summary: 'topology values contradict each other' },
  RACKEMU_ERR_SET_SYNTAX: { exitCode: 64, summary: '--set is not of the form key.path=value' },
  // experiments
  RACKEMU_ERR_EXPERIMENT_FILE: { exitCode: 66, summary: 'experiment file cannot be read' },
  RACKEMU_ERR_EXPERIMENT_YAML: { exitCode: 65, summary: 'experiment file is not valid YAML' },
  RACKEMU_ERR_EXPERIMENT_KEY: {
    exitCode: 65,
    summary: 'experiment file has an unknown or missing key, a value of the wrong type or out of range',
  },
  // model
  RACKEMU_ERR_MODEL_UNKNOWN: { exitCode: 66, summary: 'model is neither a built-in name nor a folder' },
  RACKEMU_ERR_MODEL_NO_CONFIG: { exitCode: 66, summary: 'model folder has no config.json' },
  RACKEMU_ERR_MODEL_CONFIG_JSON: { exitCode: 65, summary: 'config.json is not valid JSON' },
  RACKEMU_ERR_MODEL_CONFIG_KEY: { exitCode: 65, summary: 'config.json lacks a key or has a bad value' },
  RACKEMU_ERR_MODEL_TYPE_UNSUPPORTED: {
    exitCode: 65,
    summary: 'config.json model_type is not mixtral, llama, mistral, qwen2, qwen3 or qwen3_moe',
  },
  RACKEMU_ERR_MODEL_DTYPE: { exitCode: 64, summary: 'unsupported weight dtype' },
  RACKEMU_ERR_SAFETENSORS_HEADER: { exitCode: 65, summary: 'safetensors file header is malformed' },
  RACKEMU_ERR_SAFETENSORS_DTYPE: { exitCode: 65, summary: 'safetensors tensor has an unsupported dtype' },
  RACKEMU_ERR_SAFETENSORS_SHAPE: { exitCode: 65, summary: 'safetensors tensor shape disagrees with config.json' },
  RACKEMU_ERR_SAFETENSORS_MISSING: { exitCode: 65, summary: 'a tensor the model needs is in no safetensors file' },
  RACKEMU_ERR_SAFETENSORS_UNEXPECTED: { exitCode: 65, summary: 'a safetensors tensor name is not part of the model' },
  // compiler
  RACKEMU_ERR_DOES_NOT_FIT: { exitCode: 2, summary: 'the model does not fit in the topology memory' },
  RACKEMU_ERR_COMPILE_OPTION: { exitCode: 64, summary: 'a compile option is out of range' },
  RACKEMU_ERR_SCHEDULE_INVARIANT: { exitCode: 70, summary: 'internal: the compiled schedule broke an invariant' },
  RACKEMU_ERR_NO_ROUTE: { exitCode: 70, summary: 'internal: no route between two chips' },
  RACKEMU_ERR_NO_SPARE: {
    exitCode: 69,
    summary: 'a failed node has no spare node left in its rack to take its place (the system fails closed)',
  },
  // runtime and transport
  RACKEMU_ERR_TRANSPORT: { exitCode: 69, summary: 'transport failure (connection, publish, subscribe)' },
  RACKEMU_ERR_TRANSPORT_CONFIG: {
    exitCode: 78,
    summary: 'transport configuration is invalid (kind, chip id, run id, window, missing channel)',
  },
  RACKEMU_ERR_NATS_UNAVAILABLE: { exitCode: 69, summary: 'nats-server is not installed or not reachable' },
  RACKEMU_ERR_NATS_AUTH: {
    exitCode: 77,
    summary:
      'the NATS server refused the credentials (authorization violation: missing or wrong user/password, token or nkey)',
  },
  RACKEMU_ERR_FRAME: { exitCode: 70, summary: 'a frame could not be decoded' },
  RACKEMU_ERR_SCHEDULE_VIOLATION: {
    exitCode: 3,
    summary: 'a chip saw a late, missing, duplicate, corrupt or unexpected frame',
  },
  RACKEMU_ERR_WATCHDOG: { exitCode: 4, summary: 'the run made no progress within the wall-clock watchdog' },
  RACKEMU_ERR_HOSTS_MISSING: {
    exitCode: 69,
    summary: 'host agents the Plan needs did not join, or one stopped answering',
  },
  RACKEMU_ERR_WORKER: { exitCode: 70, summary: 'a chip worker or host process failed' },
  RACKEMU_ERR_CHIP_HANG: {
    exitCode: 70,
    summary: 'a chip stopped answering its host agent during a run (no heartbeat): it is declared hung',
  },
  RACKEMU_ERR_ECC_UNCORRECTABLE: {
    exitCode: 70,
    summary: "a chip's ECC found more flipped bits in one SRAM word than it can correct; the chip halts",
  },
  RACKEMU_ERR_FAULT_TARGET: {
    exitCode: 65,
    summary: 'a fault names a chip, host, link, tensor or server that does not exist or carries no traffic',
  },
  RACKEMU_ERR_FAULT: {
    exitCode: 64,
    summary: 'a fault cannot be injected in this set-up (kind, transport, isolation)',
  },
  RACKEMU_ERR_EXPECT: { exitCode: 1, summary: "an experiment's expect block failed (the report names each failure)" },
  RACKEMU_ERR_RECOVERY: { exitCode: 70, summary: 'recovery from a fault failed; requests in flight failed closed' },
  RACKEMU_ERR_GENERATE_OPTION: { exitCode: 64, summary: 'a generate option is invalid' },
  RACKEMU_ERR_FILE_WRITE: { exitCode: 73, summary: 'an output file could not be written' },
  // serving
  RACKEMU_ERR_REQUEST: { exitCode: 64, summary: 'a completion request the Plan cannot take (ids, length, fields)' },
  RACKEMU_ERR_QUEUE_FULL: { exitCode: 75, summary: 'more requests than the serving queue holds' },
  RACKEMU_ERR_DRAINING: { exitCode: 75, summary: 'the server is draining and takes no new requests' },
  RACKEMU_ERR_CANCELLED: { exitCode: 75, summary: 'the request was cancelled (its client went away)' },
  RACKEMU_ERR_SERVE_OPTION: { exitCode: 64, summary: 'a serve option is invalid' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Structured context that makes an error actionable: the file, key path, value and what was expected. */
export interface ErrorDetails {
  file?: string;
  path?: string;
  expected?: string;
  got?: string;
  [key: string]: unknown;
}

export class RackemuError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
  constructor(code: ErrorCode, message: string, opts: { details?: ErrorDetails; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RackemuError';
    this.code = code;
    this.details = opts.details ?? {};
  }
  get exitCode(): number {
    return ERRORS[this.code].exitCode;
  }
}

export class TopologyError extends RackemuError {
  override name = 'TopologyError';
}
export class ExperimentError extends RackemuError {
  override name = 'ExperimentError';
}
export class ModelError extends RackemuError {
  override name = 'ModelError';
}
export class CompileError extends RackemuError {
  override name = 'CompileError';
}
export class TransportError extends RackemuError {
  override name = 'TransportError';
}
export class RunError extends RackemuError {
  override name = 'RunError';
}
export class UsageError extends RackemuError {
  override name = 'UsageError';
}

export function isRackemuError(e: unknown): e is RackemuError {
  return e instanceof RackemuError;
}

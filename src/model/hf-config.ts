/**
 * Hugging Face config.json -> ModelConfig for the Llama / Mistral / Mixtral family.
 *
 * Absent optional keys take the default of the matching transformers config class (LlamaConfig,
 * MistralConfig, MixtralConfig), because that is what transformers would run with. Dimension keys
 * have no default here: every real checkpoint states them, and guessing a hidden size is never right.
 * Keys that would change the computation in ways the emulator does not implement (rope scaling,
 * biases, a non-SiLU activation) are rejected rather than silently ignored.
 */

import type { ModelConfig, ModelFamily } from './config.js';
import { ModelError } from '../util/errors.js';

const FAMILIES: readonly ModelFamily[] = ['mixtral', 'llama', 'mistral'];

/** Per-family defaults of transformers' config classes for keys that may be absent. */
const DEFAULTS: Readonly<Record<ModelFamily, { ropeTheta: number; rmsNormEps: number; slidingWindow: number | null }>> =
  {
    llama: { ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: null },
    mistral: { ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: 4096 },
    mixtral: { ropeTheta: 1e6, rmsNormEps: 1e-5, slidingWindow: null },
  };

function show(v: unknown): string {
  if (v === undefined) return 'nothing (key absent)';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

class Reader {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly file: string,
  ) {}

  fail(key: string, expected: string, got: unknown, why?: string): ModelError {
    const g = show(got);
    return new ModelError(
      'RACKEMU_ERR_MODEL_CONFIG_KEY',
      `${this.file}: ${key} ${why ?? `must be ${expected}`}, got ${g}`,
      { details: { file: this.file, path: key, expected, got: g } },
    );
  }

  /** null counts as absent: transformers writes None for "use the default". */
  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  positiveInt(key: string): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw this.fail(key, 'a positive integer', v);
    return v;
  }

  optionalPositiveInt(key: string, fallback: number): number {
    return this.has(key) ? this.positiveInt(key) : fallback;
  }

  positiveNumber(key: string, fallback: number): number {
    if (!this.has(key)) return fallback;
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw this.fail(key, 'a positive finite number', v);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const v = this.obj[key];
    if (typeof v !== 'boolean') throw this.fail(key, 'true or false', v);
    return v;
  }
}

/**
 * Map a parsed config.json to a ModelConfig. `file` is used in error messages; `name` becomes the
 * config's display name.
 */
export function parseHfConfig(json: unknown, file: string, name: string): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelError('RACKEMU_ERR_MODEL_CONFIG_KEY', `${file}: must be a JSON object, got ${show(json)}`, {
      details: { file, expected: 'a JSON object', got: show(json) },
    });
  }
  const r = new Reader(json as Record<string, unknown>, file);

  const modelType = r.raw('model_type');
  if (typeof modelType !== 'string') throw r.fail('model_type', `one of ${FAMILIES.join(', ')}`, modelType);
  if (!(FAMILIES as readonly string[]).includes(modelType)) {
    throw new ModelError(
      'RACKEMU_ERR_MODEL_TYPE_UNSUPPORTED',
      `${file}: model_type ${show(modelType)} is not supported; rackemu runs ${FAMILIES.join(', ')}`,
      { details: { file, path: 'model_type', expected: FAMILIES.join('|'), got: modelType } },
    );
  }
  const family = modelType as ModelFamily;
  const defaults = DEFAULTS[family];

  const hidden = r.positiveInt('hidden_size');
  const layers = r.positiveInt('num_hidden_layers');
  const heads = r.positiveInt('num_attention_heads');
  const kvHeads = r.optionalPositiveInt('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) {
    throw r.fail(
      'num_key_value_heads',
      `a divisor of num_attention_heads (${heads})`,
      kvHeads,
      `must divide num_attention_heads (${heads}) for grouped-query attention`,
    );
  }
  let headDim: number;
  if (r.has('head_dim')) {
    headDim = r.positiveInt('head_dim');
  } else {
    // transformers computes hidden_size // num_attention_heads; a remainder would silently drop dimensions.
    if (hidden % heads !== 0) {
      throw r.fail(
        'head_dim',
        `present, or hidden_size (${hidden}) divisible by num_attention_heads (${heads})`,
        r.raw('head_dim'),
        `is needed because hidden_size (${hidden}) is not divisible by num_attention_heads (${heads})`,
      );
    }
    headDim = hidden / heads;
  }
  const intermediate = r.positiveInt('intermediate_size');
  const vocab = r.positiveInt('vocab_size');
  const maxPositions = r.positiveInt('max_position_embeddings');

  let experts = 1;
  let expertsPerToken = 1;
  if (family === 'mixtral') {
    experts = r.positiveInt('num_local_experts');
    expertsPerToken = r.positiveInt('num_experts_per_tok');
    if (expertsPerToken > experts) {
      throw r.fail('num_experts_per_tok', `at most num_local_experts (${experts})`, expertsPerToken);
    }
  }

  const ropeTheta = r.positiveNumber('rope_theta', defaults.ropeTheta);
  const rmsNormEps = r.positiveNumber('rms_norm_eps', defaults.rmsNormEps);
  const tieEmbeddings = r.boolean('tie_word_embeddings', false);
  let slidingWindow: number | null = null;
  if (family !== 'llama') {
    // Present-and-null means full attention; absent means the class default (4096 for Mistral).
    if (r.raw('sliding_window') === null) slidingWindow = null;
    else if (r.has('sliding_window')) slidingWindow = r.positiveInt('sliding_window');
    else slidingWindow = defaults.slidingWindow;
  }

  // Features that would change the numbers without changing shapes: refuse instead of emulating the wrong model.
  if (r.has('rope_scaling')) {
    throw r.fail('rope_scaling', 'null', r.raw('rope_scaling'), 'is not supported (rackemu implements plain RoPE)');
  }
  const act = r.has('hidden_act') ? r.raw('hidden_act') : 'silu';
  if (act !== 'silu') throw r.fail('hidden_act', '"silu"', act, 'must be "silu" (rackemu implements SwiGLU)');
  for (const key of ['attention_bias', 'mlp_bias']) {
    if (r.boolean(key, false))
      throw r.fail(key, 'false', true, 'is not supported (rackemu models have no bias tensors)');
  }

  return {
    name,
    family,
    hidden,
    layers,
    heads,
    kvHeads,
    headDim,
    intermediate,
    experts,
    expertsPerToken,
    vocab,
    ropeTheta,
    rmsNormEps,
    maxPositions,
    tieEmbeddings,
    slidingWindow,
  };
}

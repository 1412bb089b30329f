/**
 * Hugging Face config.json -> ModelConfig for the Llama (2, 3.x) / Mistral / Mixtral / Qwen2 /
 * Qwen3 / Qwen3-MoE families.
 *
 * Absent optional keys take the default of the matching transformers config class (LlamaConfig,
 * MistralConfig, MixtralConfig, Qwen2Config, Qwen3Config, Qwen3MoeConfig), because that is what
 * transformers would run with. Dimension keys have no default here: every real checkpoint states
 * them, and guessing a hidden size is never right. Keys that would change the computation in ways
 * the emulator does not implement (rope scaling other than Llama 3's, biases outside Qwen2's q/k/v,
 * a non-SiLU activation, sliding windows per layer, dense layers between MoE layers) are rejected
 * rather than silently ignored.
 */

import type { ModelConfig, ModelFamily } from './config.js';
import { Reader, show } from './hf-reader.js';
import { parseRopeScaling } from './hf-rope-scaling.js';
import { ModelError } from '../util/errors.js';

const FAMILIES: readonly ModelFamily[] = ['mixtral', 'llama', 'mistral', 'qwen2', 'qwen3', 'qwen3_moe'];
const QWEN: readonly ModelFamily[] = ['qwen2', 'qwen3', 'qwen3_moe'];

/** Per-family defaults of transformers' config classes for keys that may be absent. */
const DEFAULTS: Readonly<Record<ModelFamily, { ropeTheta: number; rmsNormEps: number; slidingWindow: number | null }>> =
  {
    llama: { ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: null },
    mistral: { ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: 4096 },
    mixtral: { ropeTheta: 1e6, rmsNormEps: 1e-5, slidingWindow: null },
    qwen2: { ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: null },
    qwen3: { ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: null },
    qwen3_moe: { ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: null },
  };

/** The FFN's shape: dense (experts 1) or routed experts. */
interface Ffn {
  intermediate: number;
  experts: number;
  expertsPerToken: number;
  normTopK: boolean;
}

function parseFfn(r: Reader, family: ModelFamily): Ffn {
  if (family === 'mixtral') {
    const experts = r.positiveInt('num_local_experts');
    return {
      intermediate: r.positiveInt('intermediate_size'),
      experts,
      ...topK(r, 'num_local_experts', experts),
      normTopK: true,
    };
  }
  if (family !== 'qwen3_moe') {
    return { intermediate: r.positiveInt('intermediate_size'), experts: 1, expertsPerToken: 1, normTopK: false };
  }
  // Qwen3-MoE: intermediate_size only sizes the dense MLPs of mlp_only_layers, which are refused below.
  if (r.optionalPositiveInt('decoder_sparse_step', 1) !== 1) {
    throw r.fail(
      'decoder_sparse_step',
      '1',
      r.raw('decoder_sparse_step'),
      'must be 1 (every layer MoE): dense layers between MoE layers are not supported',
    );
  }
  const dense = r.raw('mlp_only_layers');
  if (dense !== undefined && dense !== null && !(Array.isArray(dense) && dense.length === 0)) {
    throw r.fail('mlp_only_layers', '[]', dense, 'must be empty: dense layers between MoE layers are not supported');
  }
  const shared = r.raw('shared_expert_intermediate_size');
  if (shared !== undefined && shared !== null && shared !== 0) {
    throw r.fail(
      'shared_expert_intermediate_size',
      '0 or absent',
      shared,
      'is not supported (rackemu has no shared expert)',
    );
  }
  const experts = r.positiveInt('num_experts');
  return {
    intermediate: r.positiveInt('moe_intermediate_size'),
    experts,
    ...topK(r, 'num_experts', experts),
    normTopK: r.boolean('norm_topk_prob', false),
  };
}

function topK(r: Reader, expertsKey: string, experts: number): { expertsPerToken: number } {
  const expertsPerToken = r.positiveInt('num_experts_per_tok');
  if (expertsPerToken > experts)
    throw r.fail('num_experts_per_tok', `at most ${expertsKey} (${experts})`, expertsPerToken);
  return { expertsPerToken };
}

function parseHeadDim(r: Reader, family: ModelFamily, hidden: number, heads: number): number {
  // Qwen3's head_dim is independent of hidden/heads (Qwen3-32B: 64 x 128 = 8192 != 5120): never derive it.
  if (family === 'qwen3' || family === 'qwen3_moe') {
    if (!r.has('head_dim')) {
      throw r.fail(
        'head_dim',
        'a positive integer',
        r.raw('head_dim'),
        `is required for ${family} (it is not hidden_size / num_attention_heads)`,
      );
    }
    return r.positiveInt('head_dim');
  }
  if (r.has('head_dim')) return r.positiveInt('head_dim');
  // transformers computes hidden_size // num_attention_heads; a remainder would silently drop dimensions.
  if (hidden % heads !== 0) {
    throw r.fail(
      'head_dim',
      `present, or hidden_size (${hidden}) divisible by num_attention_heads (${heads})`,
      r.raw('head_dim'),
      `is needed because hidden_size (${hidden}) is not divisible by num_attention_heads (${heads})`,
    );
  }
  return hidden / heads;
}

function parseSlidingWindow(r: Reader, family: ModelFamily): number | null {
  if (family === 'llama') return null;
  if (QWEN.includes(family)) {
    // Qwen's window applies to layers from max_window_layers on only, when use_sliding_window is set;
    // sliding_window itself is present in every Qwen config and unused otherwise.
    if (r.boolean('use_sliding_window', false)) {
      throw r.fail(
        'use_sliding_window',
        'false',
        true,
        'is not supported (Qwen sliding-window layers are not implemented)',
      );
    }
    return null;
  }
  // Present-and-null means full attention; absent means the class default (4096 for Mistral).
  if (r.raw('sliding_window') === null) return null;
  if (r.has('sliding_window')) return r.positiveInt('sliding_window');
  return DEFAULTS[family].slidingWindow;
}

/** Qwen2's q/k/v biases are part of the architecture; anywhere else a bias would include o_proj's. */
function parseAttentionBias(r: Reader, family: ModelFamily): boolean {
  if (family === 'qwen2') return true;
  if (r.boolean('attention_bias', false)) {
    throw r.fail('attention_bias', 'false', true, "is not supported (rackemu implements only Qwen2's q/k/v biases)");
  }
  return false;
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
  const headDim = parseHeadDim(r, family, hidden, heads);
  const ffn = parseFfn(r, family);
  const vocab = r.positiveInt('vocab_size');
  const maxPositions = r.positiveInt('max_position_embeddings');

  const ropeTheta = r.positiveNumber('rope_theta', defaults.ropeTheta);
  const rmsNormEps = r.positiveNumber('rms_norm_eps', defaults.rmsNormEps);
  const tieEmbeddings = r.boolean('tie_word_embeddings', false);
  const slidingWindow = parseSlidingWindow(r, family);

  // Features that would change the numbers without changing shapes: refuse instead of emulating the wrong model.
  const ropeScaling = parseRopeScaling(r);
  const act = r.has('hidden_act') ? r.raw('hidden_act') : 'silu';
  if (act !== 'silu') throw r.fail('hidden_act', '"silu"', act, 'must be "silu" (rackemu implements SwiGLU)');
  const attentionBias = parseAttentionBias(r, family);
  if (r.boolean('mlp_bias', false)) {
    throw r.fail('mlp_bias', 'false', true, 'is not supported (rackemu models have no MLP bias tensors)');
  }

  return {
    name,
    family,
    hidden,
    layers,
    heads,
    kvHeads,
    headDim,
    intermediate: ffn.intermediate,
    experts: ffn.experts,
    expertsPerToken: ffn.expertsPerToken,
    vocab,
    ropeTheta,
    rmsNormEps,
    maxPositions,
    tieEmbeddings,
    slidingWindow,
    ropeScaling,
    attentionBias,
    qkNorm: family === 'qwen3' || family === 'qwen3_moe',
    normTopK: ffn.normTopK,
  };
}

import { describe, expect, it } from 'vitest';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { paramCounts } from '../src/model/config.js';
import { parseHfConfig } from '../src/model/hf-config.js';
import { expectCode, tinyMixtralJson } from './model-fixtures.js';
import {
  LLAMA_3_1_405B,
  LLAMA_3_1_70B,
  LLAMA_3_1_8B,
  QWEN2_5_7B,
  QWEN3_235B_A22B,
  QWEN3_30B_A3B,
  QWEN3_32B,
} from './hf-family-configs.js';

const FILE = '/models/x/config.json';

// mistralai/Mixtral-8x7B-v0.1 config.json as published.
const MIXTRAL_8X7B = {
  architectures: ['MixtralForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: 'mixtral',
  num_attention_heads: 32,
  num_experts_per_tok: 2,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  num_local_experts: 8,
  output_router_logits: false,
  rms_norm_eps: 1e-5,
  rope_theta: 1e6,
  router_aux_loss_coef: 0.02,
  sliding_window: null,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.36.0.dev0',
  use_cache: true,
  vocab_size: 32000,
};
// meta-llama/Llama-2-70b-hf config.json as published (no rope_theta, no head_dim).
const LLAMA_2_70B = {
  architectures: ['LlamaForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 8192,
  initializer_range: 0.02,
  intermediate_size: 28672,
  max_position_embeddings: 4096,
  model_type: 'llama',
  num_attention_heads: 64,
  num_hidden_layers: 80,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  tie_word_embeddings: false,
  torch_dtype: 'float16',
  transformers_version: '4.32.0.dev0',
  use_cache: true,
  vocab_size: 32000,
};
// mistralai/Mistral-7B-v0.1 config.json as published.
const MISTRAL_7B = {
  architectures: ['MistralForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: 'mistral',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.34.0.dev0',
  use_cache: true,
  vocab_size: 32000,
};

/** The dimension keys of a small config.json, every optional key absent. */
const SMALL_DIMS = {
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 128,
  vocab_size: 100,
  max_position_embeddings: 256,
};

describe('hf-config - published configs', () => {
  it('maps the published Mixtral, Llama-2 and Mistral configs to the built-ins', () => {
    expect(parseHfConfig(MIXTRAL_8X7B, FILE, 'mixtral-8x7b')).toEqual(BUILTIN_MODELS['mixtral-8x7b']);
    expect(parseHfConfig(LLAMA_2_70B, FILE, 'llama-2-70b')).toEqual(BUILTIN_MODELS['llama-2-70b']);
    expect(parseHfConfig(MISTRAL_7B, FILE, 'mistral-7b')).toEqual(BUILTIN_MODELS['mistral-7b']);
    expect(paramCounts(parseHfConfig(MIXTRAL_8X7B, FILE, 'm')).total / 1e9).toBeCloseTo(46.7, 1);
  });

  it('applies transformers defaults for absent optional keys', () => {
    const base = { model_type: 'llama', ...SMALL_DIMS };
    const llama = parseHfConfig(base, FILE, 'l');
    expect(llama).toMatchObject({
      kvHeads: 4,
      headDim: 16,
      ropeTheta: 10000,
      rmsNormEps: 1e-6,
      tieEmbeddings: false,
      slidingWindow: null,
      experts: 1,
      expertsPerToken: 1,
    });
    expect(parseHfConfig({ ...base, model_type: 'mistral' }, FILE, 'm')).toMatchObject({
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      slidingWindow: 4096,
    });
    expect(parseHfConfig({ ...base, model_type: 'mistral', sliding_window: null }, FILE, 'm').slidingWindow).toBeNull();
    const mixtral = parseHfConfig(
      { ...base, model_type: 'mixtral', num_local_experts: 4, num_experts_per_tok: 2 },
      FILE,
      'x',
    );
    expect(mixtral).toMatchObject({
      rmsNormEps: 1e-5,
      ropeTheta: 1e6,
      slidingWindow: null,
      experts: 4,
      expertsPerToken: 2,
    });
    expect(
      parseHfConfig({ ...base, head_dim: 32, num_key_value_heads: null, tie_word_embeddings: true }, FILE, 'l'),
    ).toMatchObject({ headDim: 32, kvHeads: 4, tieEmbeddings: true });
  });
});

describe('hf-config - bad values are coded errors naming file and key', () => {
  const cases: [string, Record<string, unknown>, string, string][] = [
    ['zero hidden size', { hidden_size: 0 }, 'hidden_size', 'a positive integer'],
    ['fractional layers', { num_hidden_layers: 2.5 }, 'num_hidden_layers', 'a positive integer'],
    ['string heads', { num_attention_heads: '2' }, 'num_attention_heads', 'a positive integer'],
    ['missing vocab', { vocab_size: undefined }, 'vocab_size', 'a positive integer'],
    [
      'kv heads not dividing heads',
      { num_attention_heads: 4, num_key_value_heads: 3 },
      'num_key_value_heads',
      'a divisor of num_attention_heads (4)',
    ],
    [
      'hidden not divisible without head_dim',
      { num_attention_heads: 3, num_key_value_heads: 1 },
      'head_dim',
      'present, or hidden_size (8) divisible by num_attention_heads (3)',
    ],
    ['too many experts per token', { num_experts_per_tok: 3 }, 'num_experts_per_tok', 'at most num_local_experts (2)'],
    ['missing experts', { num_local_experts: undefined }, 'num_local_experts', 'a positive integer'],
    ['negative rope theta', { rope_theta: -1 }, 'rope_theta', 'a positive finite number'],
    ['string eps', { rms_norm_eps: '1e-5' }, 'rms_norm_eps', 'a positive finite number'],
    ['non-boolean tie', { tie_word_embeddings: 'yes' }, 'tie_word_embeddings', 'true or false'],
    ['zero sliding window', { sliding_window: 0 }, 'sliding_window', 'a positive integer'],
    [
      'linear rope scaling',
      { rope_scaling: { type: 'linear', factor: 2 } },
      'rope_scaling.type',
      '"llama3" (or "default", or rope_scaling null)',
    ],
    ['gelu', { hidden_act: 'gelu' }, 'hidden_act', '"silu"'],
    ['attention bias', { attention_bias: true }, 'attention_bias', 'false'],
    [
      'missing model_type',
      { model_type: undefined },
      'model_type',
      'one of mixtral, llama, mistral, qwen2, qwen3, qwen3_moe',
    ],
  ];
  for (const [what, over, key, expected] of cases) {
    it(`rejects ${what}`, () => {
      const e = expectCode(() => parseHfConfig(tinyMixtralJson(over), FILE, 'x'), 'RACKEMU_ERR_MODEL_CONFIG_KEY');
      expect(e.message).toContain(FILE);
      expect(e.message).toContain(key);
      expect(e.details).toMatchObject({ file: FILE, path: key, expected });
    });
  }

  it('rejects an unsupported model_type with its own code', () => {
    const e = expectCode(
      () => parseHfConfig(tinyMixtralJson({ model_type: 'gpt2' }), FILE, 'x'),
      'RACKEMU_ERR_MODEL_TYPE_UNSUPPORTED',
    );
    expect(e.message).toContain(FILE);
    expect(e.message).toContain('"gpt2"');
    expect(e.details).toMatchObject({ path: 'model_type', got: 'gpt2' });
  });

  it('rejects a config that is not an object', () => {
    const e = expectCode(() => parseHfConfig([1], FILE, 'x'), 'RACKEMU_ERR_MODEL_CONFIG_KEY');
    expect(e.message).toContain(FILE);
  });
});

describe('hf-config - model families', () => {
  it('hf-config - the published Llama 3.1, Qwen3 and Qwen3-MoE configs map to the built-ins', () => {
    const published: [string, Record<string, unknown>][] = [
      ['llama-3.1-8b', LLAMA_3_1_8B],
      ['llama-3.1-70b', LLAMA_3_1_70B],
      ['llama-3.1-405b', LLAMA_3_1_405B],
      ['qwen3-32b', QWEN3_32B],
      ['qwen3-30b-a3b', QWEN3_30B_A3B],
      ['qwen3-235b-a22b', QWEN3_235B_A22B],
    ];
    for (const [name, json] of published) expect(parseHfConfig(json, FILE, name)).toEqual(BUILTIN_MODELS[name]);
  });

  it('hf-config - parameter counts match the published model sizes', () => {
    const billions = (json: Record<string, unknown>) => {
      const p = paramCounts(parseHfConfig(json, FILE, 'm'));
      return { total: p.total / 1e9, active: p.active / 1e9 };
    };
    expect(billions(LLAMA_3_1_8B).total).toBeCloseTo(8.03, 2);
    expect(billions(LLAMA_3_1_70B).total).toBeCloseTo(70.55, 2);
    expect(billions(LLAMA_3_1_405B).total).toBeCloseTo(405.85, 2);
    // Qwen2.5-7B: 7.61B with its q/k/v biases
    expect(billions(QWEN2_5_7B).total).toBeCloseTo(7.62, 2);
    expect(billions(QWEN3_32B).total).toBeCloseTo(32.76, 2);
    expect(billions(QWEN3_30B_A3B)).toMatchObject({ total: expect.closeTo(30.53, 2), active: expect.closeTo(3.35, 2) });
    expect(billions(QWEN3_235B_A22B)).toMatchObject({
      total: expect.closeTo(235.09, 2),
      active: expect.closeTo(22.2, 1),
    });
  });

  it('hf-config - llama3 rope_scaling is read from rope_type or type', () => {
    const want = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };
    expect(parseHfConfig(LLAMA_3_1_8B, FILE, 'l').ropeScaling).toEqual(want);
    const { rope_type: _unused, ...older } = LLAMA_3_1_8B.rope_scaling;
    expect(
      parseHfConfig({ ...LLAMA_3_1_8B, rope_scaling: { ...older, type: 'llama3' } }, FILE, 'l').ropeScaling,
    ).toEqual(want);
    expect(
      parseHfConfig({ ...LLAMA_3_1_8B, rope_scaling: { rope_type: 'default' } }, FILE, 'l').ropeScaling,
    ).toBeNull();
  });

  it('hf-config - qwen2 has q/k/v biases, no q/k norm, no sliding window', () => {
    expect(parseHfConfig(QWEN2_5_7B, FILE, 'q')).toMatchObject({
      family: 'qwen2',
      hidden: 3584,
      heads: 28,
      kvHeads: 4,
      headDim: 128,
      intermediate: 18944,
      vocab: 152064,
      ropeTheta: 1e6,
      rmsNormEps: 1e-6,
      maxPositions: 32768,
      slidingWindow: null,
      attentionBias: true,
      qkNorm: false,
      experts: 1,
      ropeScaling: null,
    });
  });

  it('hf-config - qwen families take the transformers defaults for absent keys', () => {
    const base = SMALL_DIMS;
    const defaults = { ropeTheta: 10000, rmsNormEps: 1e-6, tieEmbeddings: false, slidingWindow: null };
    expect(parseHfConfig({ ...base, model_type: 'qwen2' }, FILE, 'q')).toMatchObject({ ...defaults, headDim: 16 });
    expect(parseHfConfig({ ...base, model_type: 'qwen3', head_dim: 32 }, FILE, 'q')).toMatchObject({
      ...defaults,
      headDim: 32,
      qkNorm: true,
      attentionBias: false,
    });
    const moe = { ...base, model_type: 'qwen3_moe', head_dim: 32, num_experts: 4, num_experts_per_tok: 2 };
    // norm_topk_prob defaults to false in Qwen3MoeConfig; intermediate_size is not read
    expect(parseHfConfig({ ...moe, moe_intermediate_size: 24 }, FILE, 'q')).toMatchObject({
      ...defaults,
      intermediate: 24,
      experts: 4,
      expertsPerToken: 2,
      normTopK: false,
    });
  });
});

describe('hf-config - unsupported family features are coded errors naming the key', () => {
  const cases: [string, Record<string, unknown>, string, string][] = [
    [
      'yarn rope scaling',
      { ...QWEN3_32B, rope_scaling: { rope_type: 'yarn', factor: 4 } },
      'rope_scaling.rope_type',
      'yarn',
    ],
    [
      'dynamic rope scaling',
      { ...LLAMA_3_1_8B, rope_scaling: { type: 'dynamic', factor: 2 } },
      'rope_scaling.type',
      'dynamic',
    ],
    [
      'llama3 scaling without high_freq_factor',
      { ...LLAMA_3_1_8B, rope_scaling: { ...LLAMA_3_1_8B.rope_scaling, high_freq_factor: undefined } },
      'rope_scaling.high_freq_factor',
      'nothing',
    ],
    ['qwen2 sliding window', { ...QWEN2_5_7B, use_sliding_window: true }, 'use_sliding_window', 'true'],
    ['qwen3 sliding window', { ...QWEN3_32B, use_sliding_window: true }, 'use_sliding_window', 'true'],
    ['qwen3 attention bias', { ...QWEN3_32B, attention_bias: true }, 'attention_bias', 'true'],
    ['qwen3 without head_dim', { ...QWEN3_32B, head_dim: undefined }, 'head_dim', 'nothing'],
    ['dense layers between MoE layers', { ...QWEN3_30B_A3B, mlp_only_layers: [0, 5] }, 'mlp_only_layers', '[0,5]'],
    ['MoE every other layer', { ...QWEN3_30B_A3B, decoder_sparse_step: 2 }, 'decoder_sparse_step', '2'],
    [
      'a shared expert',
      { ...QWEN3_30B_A3B, shared_expert_intermediate_size: 2048 },
      'shared_expert_intermediate_size',
      '2048',
    ],
    ['gelu', { ...QWEN3_32B, hidden_act: 'gelu' }, 'hidden_act', 'gelu'],
    ['llama mlp bias', { ...LLAMA_3_1_8B, mlp_bias: true }, 'mlp_bias', 'true'],
  ];
  for (const [what, json, key, got] of cases) {
    it(`hf-config - rejects ${what}`, () => {
      const e = expectCode(() => parseHfConfig(json, FILE, 'x'), 'RACKEMU_ERR_MODEL_CONFIG_KEY');
      expect(e.message).toContain(FILE);
      expect(e.message).toContain(key);
      expect(e.message).toContain(got);
      expect(e.details).toMatchObject({ file: FILE, path: key });
    });
  }
});

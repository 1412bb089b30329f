import { describe, expect, it } from 'vitest';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import type { ModelConfig } from '../src/model/config.js';
import { referenceGenerate } from '../src/runtime/reference.js';
import { deploy, maxRelError, setup } from './helpers/deploy.js';
import { modelTensors, tempDir, writeModelFolder } from './model-fixtures.js';

const PROMPT = [3, 1, 4, 1, 5, 9];
const NEW_TOKENS = 5;

/** config.json as the family's transformers config class writes it. */
function hfConfigJson(c: ModelConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    model_type: c.family,
    hidden_size: c.hidden,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocab,
    rope_theta: c.ropeTheta,
    rms_norm_eps: c.rmsNormEps,
    max_position_embeddings: c.maxPositions,
    tie_word_embeddings: c.tieEmbeddings,
    hidden_act: 'silu',
    torch_dtype: 'bfloat16',
  };
  if (c.ropeScaling !== null) {
    const s = c.ropeScaling;
    json.rope_scaling = {
      rope_type: s.type,
      factor: s.factor,
      low_freq_factor: s.lowFreqFactor,
      high_freq_factor: s.highFreqFactor,
      original_max_position_embeddings: s.originalMaxPositions,
    };
  }
  if (c.family === 'qwen2' || c.family === 'qwen3' || c.family === 'qwen3_moe') {
    Object.assign(json, { use_sliding_window: false, sliding_window: 4096, max_window_layers: c.layers });
  }
  if (c.family === 'qwen3_moe') {
    Object.assign(json, {
      intermediate_size: 4 * c.intermediate, // the dense width of mlp_only_layers: unused
      moe_intermediate_size: c.intermediate,
      num_experts: c.experts,
      num_experts_per_tok: c.expertsPerToken,
      norm_topk_prob: c.normTopK,
      decoder_sparse_step: 1,
      mlp_only_layers: [],
    });
  } else {
    json.intermediate_size = c.intermediate;
  }
  return json;
}

const CASES: { what: string; config: ModelConfig; sramMib: number }[] = [
  { what: 'Llama 3 (llama3 rope scaling)', config: BUILTIN_MODELS['llama3-tiny'], sramMib: 0.05 },
  {
    what: 'Qwen2 (q/k/v biases)',
    config: { ...BUILTIN_MODELS['qwen2-tiny'], tieEmbeddings: false },
    sramMib: 0.05,
  },
  // tied random embeddings echo the last token, so this case leans on the logits comparison
  { what: 'Qwen2 (q/k/v biases, tied embeddings)', config: BUILTIN_MODELS['qwen2-tiny'], sramMib: 0.05 },
  { what: 'Qwen3 (q/k norm, heads x head_dim != hidden)', config: BUILTIN_MODELS['qwen3-tiny'], sramMib: 0.05 },
  {
    what: 'Qwen3-MoE (top-k weights not renormalised)',
    config: { ...BUILTIN_MODELS['qwen3-moe-tiny'], normTopK: false },
    sramMib: 0.05,
  },
  { what: 'Qwen3-MoE (norm_topk_prob)', config: BUILTIN_MODELS['qwen3-moe-tiny'], sramMib: 0.05 },
];

describe('runtime families', () => {
  for (const { what, config, sramMib } of CASES) {
    it(`runtime - a Hugging Face ${what} folder runs distributed like the reference`, async () => {
      const c: ModelConfig = { ...config, name: `hf-${config.family}`, layers: 2, maxPositions: 64 };
      const dir = tempDir();
      writeModelFolder(dir, hfConfigJson(c), modelTensors(c, 'BF16'), 2);
      const s = setup('mini-2rack', dir, [`chip.sram_mib=${sramMib}`], {
        context: 32,
        promptTokens: PROMPT.length,
        dtype: 'bf16',
        // the classic layout splits each layer's attention over 2 chips: head and bias slices must line up
        layoutSearch: 'classic',
      });
      // the folder round-trips to the same architecture
      expect({ ...s.plan.model, name: c.name }).toEqual(c);
      const kernels = [...s.plan.programs.values()].flatMap((p) =>
        p.decode.instructions.flatMap((i) => (i.kind === 'compute' ? [i.kernel] : [])),
      );
      const attentionChips = kernels.filter((k) => k.kind === 'attention' && k.layer === 0).length;
      expect(attentionChips, 'layer 0 attention is split over chips').toBeGreaterThan(1);
      expect(s.plan.programs.size).toBeGreaterThanOrEqual(6);
      const d = await deploy(s);
      try {
        const r = await d.generate({ promptIds: PROMPT, maxNewTokens: NEW_TOKENS });
        const ref = referenceGenerate(s.plan.model, s.weights!, PROMPT, NEW_TOKENS);
        expect(r.violations).toEqual([]);
        expect(r.tokens).toEqual(ref.tokens);
        expect(r.finalLogits).not.toBeNull();
        expect(maxRelError(r.finalLogits!, ref.finalLogits)).toBeLessThan(1e-4);
      } finally {
        await d.stop();
      }
    });
  }
});

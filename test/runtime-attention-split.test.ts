import { describe, expect, it } from 'vitest';
import { compile } from '../src/compiler/compile.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import type { ModelConfig } from '../src/model/config.js';
import { referenceGenerate } from '../src/runtime/reference.js';
import { deploy, maxRelError, setup } from './helpers/deploy.js';
import { modelTensors, tempDir, tinyMixtralJson, writeModelFolder } from './model-fixtures.js';
import { checkStepInvariants, maxMemoryOverTicks } from './helpers/plan-checks.js';

const PROMPT = [3, 1, 4, 1, 5];

/** A Mixtral-architecture checkpoint with 8 query heads and `kvHeads` KV heads, a few MB in bf16. */
function checkpoint(kvHeads: number): string {
  const config: ModelConfig = {
    ...BUILTIN_MODELS['mixtral-tiny'],
    name: `kv${kvHeads}`,
    heads: 8,
    kvHeads,
    headDim: 8,
    maxPositions: 64,
  };
  const dir = tempDir();
  writeModelFolder(
    dir,
    tinyMixtralJson({
      hidden_size: config.hidden,
      num_hidden_layers: config.layers,
      num_attention_heads: config.heads,
      num_key_value_heads: kvHeads,
      head_dim: config.headDim,
      intermediate_size: config.intermediate,
      num_local_experts: config.experts,
      num_experts_per_tok: config.expertsPerToken,
      vocab_size: config.vocab,
      max_position_embeddings: config.maxPositions,
    }),
    modelTensors(config, 'BF16', 11 + kvHeads),
  );
  return dir;
}

describe('runtime attention split', () => {
  for (const kvHeads of [1, 2]) {
    it(`attention split - ${kvHeads} KV head(s): at half the active SRAM the query-head split spreads the model over hundreds of chips and matches the reference`, async () => {
      // 0.012 MiB chips: the weights and KV cache need ~53% of the 512 active chips' SRAM, and the
      // attention of one KV head with its 8 query heads does not fit a chip beside an FFN slice
      const s = setup('groq-576', checkpoint(kvHeads), ['chip.sram_mib=0.012'], {
        context: 32,
        promptTokens: PROMPT.length,
      });
      const layout = s.plan.layout;
      // the classic shapes (attention by KV heads, on FFN chips) do not fit
      const classic = compile(s.plan.topology, s.plan.model, { ...s.plan.options, layoutSearch: 'classic' });
      expect(classic.layout.why).toMatch(/since no classic split fits/);
      expect(layout.attentionChips).toBeGreaterThan(kvHeads);
      expect(layout.why).toMatch(/split by query-head groups/);
      const used = s.plan.placement.filter((p) => p.role !== 'spare' && p.role !== 'idle').length;
      expect(used).toBeGreaterThanOrEqual(256);
      checkStepInvariants(s.plan, s.fabric, s.plan.steps.decode);
      for (const step of [s.plan.steps.decode, s.plan.steps.prefill]) {
        expect(maxMemoryOverTicks(s.plan, step).bytes).toBeLessThanOrEqual(s.plan.capacityBytes);
      }
      const d = await deploy(s);
      try {
        const r = await d.generate({ promptIds: PROMPT, maxNewTokens: 5 });
        const ref = referenceGenerate(s.plan.model, s.weights!, PROMPT, 5);
        expect(r.violations).toEqual([]);
        expect(r.tokens).toEqual(ref.tokens);
        expect(maxRelError(r.finalLogits!, ref.finalLogits)).toBeLessThan(1e-4);
      } finally {
        await d.stop();
      }
    });
  }
});

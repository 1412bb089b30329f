import { usesMoe, type ModelConfig } from '../model/config.js';
import type { WeightStore } from '../model/weights.js';
import type { Kernel } from '../compiler/plan.js';
import { lmHeadName } from '../model/tensors.js';

/**
 * The weight slices one chip holds in its SRAM, derived from the kernels of its Program. Keys are
 * local names (`L3.q`, `L3.e5.w1`, `embed`, ...) that only this chip and its kernels use; values are
 * float32 exactly as the WeightStore serves them after dequantisation for the plan's dtype.
 */
export type ChipWeights = Record<string, Float32Array>;

export const weightKey = {
  embed: () => 'embed',
  lmHead: () => 'lm_head',
  finalNorm: () => 'final_norm',
  ln1: (l: number) => `L${l}.ln1`,
  ln2: (l: number) => `L${l}.ln2`,
  q: (l: number) => `L${l}.q`,
  k: (l: number) => `L${l}.k`,
  v: (l: number) => `L${l}.v`,
  o: (l: number) => `L${l}.o`,
  router: (l: number) => `L${l}.router`,
  w1: (l: number, e: number) => `L${l}.e${e}.w1`,
  w2: (l: number, e: number) => `L${l}.e${e}.w2`,
  w3: (l: number, e: number) => `L${l}.e${e}.w3`,
};

/** Kernels are the single source of what a chip holds: each kernel kind names its slices. */
export function chipWeights(model: ModelConfig, kernels: Iterable<Kernel>, store: WeightStore): ChipWeights {
  const w: ChipWeights = {};
  const hd = model.headDim;
  const moe = usesMoe(model);
  for (const k of kernels) {
    switch (k.kind) {
      case 'embed':
        w[weightKey.embed()] ??= store.rows('model.embed_tokens.weight', k.vocabStart, k.vocabEnd);
        break;
      case 'lm_head':
        w[weightKey.lmHead()] ??= store.rows(lmHeadName(model), k.vocabStart, k.vocabEnd);
        w[weightKey.finalNorm()] ??= store.full('model.norm.weight');
        break;
      case 'attention': {
        const p = `model.layers.${k.layer}.`;
        w[weightKey.ln1(k.layer)] ??= store.full(`${p}input_layernorm.weight`);
        w[weightKey.q(k.layer)] ??= store.rows(`${p}self_attn.q_proj.weight`, k.headStart * hd, k.headEnd * hd);
        w[weightKey.k(k.layer)] ??= store.rows(`${p}self_attn.k_proj.weight`, k.kvHeadStart * hd, k.kvHeadEnd * hd);
        w[weightKey.v(k.layer)] ??= store.rows(`${p}self_attn.v_proj.weight`, k.kvHeadStart * hd, k.kvHeadEnd * hd);
        w[weightKey.o(k.layer)] ??= store.cols(`${p}self_attn.o_proj.weight`, k.headStart * hd, k.headEnd * hd);
        break;
      }
      case 'ffn': {
        const p = `model.layers.${k.layer}.`;
        w[weightKey.ln2(k.layer)] ??= store.full(`${p}post_attention_layernorm.weight`);
        if (moe) w[weightKey.router(k.layer)] ??= store.full(`${p}block_sparse_moe.gate.weight`);
        for (const u of k.units) {
          const names = moe
            ? [
                `${p}block_sparse_moe.experts.${u.expert}.w1.weight`,
                `${p}block_sparse_moe.experts.${u.expert}.w3.weight`,
                `${p}block_sparse_moe.experts.${u.expert}.w2.weight`,
              ]
            : [`${p}mlp.gate_proj.weight`, `${p}mlp.up_proj.weight`, `${p}mlp.down_proj.weight`];
          w[weightKey.w1(k.layer, u.expert)] ??= store.rows(names[0], u.start, u.end);
          w[weightKey.w3(k.layer, u.expert)] ??= store.rows(names[1], u.start, u.end);
          w[weightKey.w2(k.layer, u.expert)] ??= store.cols(names[2], u.start, u.end);
        }
        break;
      }
      case 'sum':
      case 'sample':
        break;
    }
  }
  return w;
}

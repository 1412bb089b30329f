import { usesMoe, type ModelConfig } from '../model/config.js';
import type { WeightStore } from '../model/weights.js';
import type { Kernel } from '../compiler/plan.js';
import { attentionTensorName, expertTensorNames, lmHeadName, routerTensorName } from '../model/tensors.js';

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
  qBias: (l: number) => `L${l}.q_bias`,
  kBias: (l: number) => `L${l}.k_bias`,
  vBias: (l: number) => `L${l}.v_bias`,
  qNorm: (l: number) => `L${l}.q_norm`,
  kNorm: (l: number) => `L${l}.k_norm`,
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
        const l = k.layer;
        const a = attentionTensorName;
        const [q0, q1, kv0, kv1] = [k.headStart * hd, k.headEnd * hd, k.kvHeadStart * hd, k.kvHeadEnd * hd];
        w[weightKey.ln1(l)] ??= store.full(`model.layers.${l}.input_layernorm.weight`);
        w[weightKey.q(l)] ??= store.rows(a.q(l), q0, q1);
        w[weightKey.k(l)] ??= store.rows(a.k(l), kv0, kv1);
        w[weightKey.v(l)] ??= store.rows(a.v(l), kv0, kv1);
        w[weightKey.o(l)] ??= store.cols(a.o(l), q0, q1);
        if (model.attentionBias) {
          // a bias is one value per output row: the same head range as the projection's rows
          w[weightKey.qBias(l)] ??= store.rows(a.qBias(l), q0, q1);
          w[weightKey.kBias(l)] ??= store.rows(a.kBias(l), kv0, kv1);
          w[weightKey.vBias(l)] ??= store.rows(a.vBias(l), kv0, kv1);
        }
        if (model.qkNorm) {
          // shared by every head: each chip holds the whole [headDim] vector
          w[weightKey.qNorm(l)] ??= store.full(a.qNorm(l));
          w[weightKey.kNorm(l)] ??= store.full(a.kNorm(l));
        }
        break;
      }
      case 'ffn': {
        const l = k.layer;
        w[weightKey.ln2(l)] ??= store.full(`model.layers.${l}.post_attention_layernorm.weight`);
        if (moe) w[weightKey.router(l)] ??= store.full(routerTensorName(model, l));
        for (const u of k.units) {
          const x = expertTensorNames(model, l, u.expert);
          w[weightKey.w1(l, u.expert)] ??= store.rows(x.gate, u.start, u.end);
          w[weightKey.w3(l, u.expert)] ??= store.rows(x.up, u.start, u.end);
          w[weightKey.w2(l, u.expert)] ??= store.cols(x.down, u.start, u.end);
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

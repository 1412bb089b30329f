/**
 * Single-process reference model: the numbers the distributed run is checked against.
 * Same kernels as the chips (./kernels.ts), whole tensors, one KV cache per layer, greedy decoding.
 *
 * Per layer (HF Mixtral/Llama/Mistral/Qwen2/Qwen3/Qwen3-MoE):
 *   h  = x + o_proj(attend(rope(qn(q_proj(n) + bq)), rope(kn(k_proj(n) + bk)), v_proj(n) + bv))
 *        with n = rmsnorm(x), biases only with attentionBias (Qwen2), per-head norms qn/kn only
 *        with qkNorm (Qwen3) (see kernels/qkv.ts)
 *   x' = h + ffn(rmsnorm(h))
 * ffn is routed experts (Mixtral, Qwen3-MoE: sum over the top-k of weight_e * expert_e, accumulated
 * in increasing expert index like HF's index_add loop) or the dense SwiGLU MLP (gate/up/down_proj).
 * Then the final norm, lm_head (embed_tokens when tie_word_embeddings) and argmax (ties -> lowest id).
 */
import { usesMoe, type ModelConfig } from '../model/config.js';
import type { WeightStore } from '../model/weights.js';
import { attentionTensorName, expertTensorNames, routerTensorName } from '../model/tensors.js';
import { RunError } from '../util/errors.js';
import {
  KvCache,
  argmaxRows,
  attend,
  embedLookup,
  matmulXWt,
  projectQkv,
  rmsNorm,
  routeTopK,
  swigluSlice,
  type QkvWeights,
} from './kernels.js';

interface DenseFfn {
  kind: 'dense';
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
}
interface MoeFfn {
  kind: 'moe';
  router: Float32Array;
  w1: Float32Array[];
  w3: Float32Array[];
  w2: Float32Array[];
}
interface LayerWeights {
  ln1: Float32Array;
  qkv: QkvWeights;
  o: Float32Array;
  ln2: Float32Array;
  ffn: DenseFfn | MoeFfn;
}

export interface ReferenceModelOptions {
  /** KV cache positions per layer (default config.maxPositions). */
  capacity?: number;
}

export class ReferenceModel {
  readonly caches: KvCache[];
  private readonly layerWeights: (LayerWeights | undefined)[];
  private embed?: Float32Array;
  private finalNorm?: Float32Array;
  private lmHead?: Float32Array;

  constructor(
    readonly config: ModelConfig,
    readonly weights: WeightStore,
    opts: ReferenceModelOptions = {},
  ) {
    const c = config;
    if (c.heads % c.kvHeads !== 0) {
      throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `heads ${c.heads} not a multiple of kvHeads ${c.kvHeads}`);
    }
    const cap = opts.capacity ?? c.maxPositions;
    this.caches = Array.from({ length: c.layers }, () => new KvCache(cap, c.kvHeads, c.headDim));
    this.layerWeights = new Array(c.layers).fill(undefined);
  }

  /** Empty every layer's KV cache (start a new sequence). */
  reset(): void {
    for (const kc of this.caches) kc.truncate(0);
  }

  private layer(i: number): LayerWeights {
    const cached = this.layerWeights[i];
    if (cached) return cached;
    const w = this.weights;
    const p = `model.layers.${i}.`;
    const c = this.config;
    let ffn: DenseFfn | MoeFfn;
    if (usesMoe(c)) {
      const ex = Array.from({ length: c.experts }, (_, e) => expertTensorNames(c, i, e));
      ffn = {
        kind: 'moe',
        router: w.full(routerTensorName(c, i)),
        w1: ex.map((x) => w.full(x.gate)),
        w3: ex.map((x) => w.full(x.up)),
        w2: ex.map((x) => w.full(x.down)),
      };
    } else {
      const x = expertTensorNames(c, i, 0);
      ffn = { kind: 'dense', gate: w.full(x.gate), up: w.full(x.up), down: w.full(x.down) };
    }
    const a = attentionTensorName;
    const lw: LayerWeights = {
      ln1: w.full(`${p}input_layernorm.weight`),
      qkv: {
        q: w.full(a.q(i)),
        k: w.full(a.k(i)),
        v: w.full(a.v(i)),
        ...(c.attentionBias ? { qBias: w.full(a.qBias(i)), kBias: w.full(a.kBias(i)), vBias: w.full(a.vBias(i)) } : {}),
        ...(c.qkNorm ? { qNorm: w.full(a.qNorm(i)), kNorm: w.full(a.kNorm(i)) } : {}),
      },
      o: w.full(a.o(i)),
      ln2: w.full(`${p}post_attention_layernorm.weight`),
      ffn,
    };
    this.layerWeights[i] = lw;
    return lw;
  }

  private embedTable(): Float32Array {
    return (this.embed ??= this.weights.full('model.embed_tokens.weight'));
  }

  private head(): Float32Array {
    if (!this.lmHead) {
      this.lmHead = this.config.tieEmbeddings ? this.embedTable() : this.weights.full('lm_head.weight');
    }
    return this.lmHead;
  }

  /** One decoder layer on x [rows, hidden] (in place), appending k/v at `positions` to its cache. */
  layerForward(i: number, x: Float32Array, positions: ArrayLike<number>): Float32Array {
    const c = this.config;
    const rows = positions.length;
    const H = c.hidden;
    const hd = c.headDim;
    const lw = this.layer(i);
    const n = rmsNorm(x, rows, H, lw.ln1, c.rmsNormEps);
    const { q, k, v } = projectQkv(c, n, rows, c.heads, c.kvHeads, lw.qkv, positions);
    this.caches[i].append(k, v, positions);
    const a = attend(q, this.caches[i], positions, c.heads / c.kvHeads, c.slidingWindow);
    const o = matmulXWt(a, rows, c.heads * hd, lw.o, H);
    for (let j = 0; j < rows * H; j++) x[j] += o[j];
    const n2 = rmsNorm(x, rows, H, lw.ln2, c.rmsNormEps);
    const f = this.ffnForward(lw.ffn, n2, rows);
    for (let j = 0; j < rows * H; j++) x[j] += f[j];
    return x;
  }

  private ffnForward(ffn: DenseFfn | MoeFfn, x: Float32Array, rows: number): Float32Array {
    const c = this.config;
    const H = c.hidden;
    if (ffn.kind === 'dense') return swigluSlice(x, rows, H, ffn.gate, ffn.up, ffn.down, c.intermediate);
    const E = c.experts;
    const K = c.expertsPerToken;
    const logits = matmulXWt(x, rows, H, ffn.router, E);
    const route = routeTopK(logits, rows, E, K, c.normTopK);
    const out = new Float32Array(rows * H);
    for (let e = 0; e < E; e++) {
      const sel: number[] = [];
      const wt: number[] = [];
      for (let r = 0; r < rows; r++) {
        for (let t = 0; t < K; t++) {
          if (route.experts[r * K + t] === e) {
            sel.push(r);
            wt.push(route.weights[r * K + t]);
          }
        }
      }
      if (sel.length === 0) continue;
      const xs = new Float32Array(sel.length * H);
      sel.forEach((r, j) => xs.set(x.subarray(r * H, (r + 1) * H), j * H));
      const y = swigluSlice(xs, sel.length, H, ffn.w1[e], ffn.w3[e], ffn.w2[e], c.intermediate);
      sel.forEach((r, j) => {
        const w = wt[j];
        for (let d = 0; d < H; d++) out[r * H + d] += w * y[j * H + d];
      });
    }
    return out;
  }

  /**
   * Run tokens at positions (appending to the KV caches) and return the logits
   * [vocab] of the last row, or [rows, vocab] of every row with allRows.
   */
  forward(tokenIds: ArrayLike<number>, positions: ArrayLike<number>, allRows = false): Float32Array {
    const c = this.config;
    const rows = tokenIds.length;
    if (rows === 0 || positions.length !== rows) {
      throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `forward: ${rows} tokens and ${positions.length} positions`);
    }
    for (let r = 0; r < rows; r++) {
      const id = tokenIds[r];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocab) {
        throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `token id ${id} outside [0, ${c.vocab})`, {
          details: { got: String(id), expected: `integer in [0, ${c.vocab})` },
        });
      }
    }
    const x = embedLookup(tokenIds, this.embedTable(), 0, c.vocab, c.hidden);
    for (let i = 0; i < c.layers; i++) this.layerForward(i, x, positions);
    const H = c.hidden;
    const last = allRows ? x : x.subarray((rows - 1) * H, rows * H);
    const nr = allRows ? rows : 1;
    const n = rmsNorm(last, nr, H, (this.finalNorm ??= this.weights.full('model.norm.weight')), c.rmsNormEps);
    return matmulXWt(n, nr, H, this.head(), c.vocab);
  }
}

export interface ReferenceResult {
  /** The generated tokens (not including the prompt). */
  tokens: number[];
  /** Logits the last generated token was picked from (with maxNewTokens 0: the last prompt position's). */
  finalLogits: Float32Array;
  /** allLogits[i] = the logits generated token i was picked from. */
  allLogits: Float32Array[];
}

export interface ReferenceOptions {
  /** Feed the prompt in chunks of this many positions (default: the whole prompt at once). */
  prefillChunk?: number;
}

/**
 * Greedy generation: prefill the prompt (positions 0..n-1), pick token 0 from the last prompt
 * position's logits, then decode one token at a time through the KV caches.
 */
export function referenceGenerate(
  config: ModelConfig,
  weights: WeightStore,
  promptIds: number[],
  maxNewTokens: number,
  opts: ReferenceOptions = {},
): ReferenceResult {
  if (promptIds.length === 0) throw new RunError('RACKEMU_ERR_GENERATE_OPTION', 'empty prompt');
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `maxNewTokens ${maxNewTokens} is not a non-negative integer`);
  }
  const total = promptIds.length + maxNewTokens;
  if (total > config.maxPositions) {
    throw new RunError(
      'RACKEMU_ERR_GENERATE_OPTION',
      `prompt (${promptIds.length}) + maxNewTokens (${maxNewTokens}) exceeds maxPositions ${config.maxPositions}`,
    );
  }
  const chunk = opts.prefillChunk ?? promptIds.length;
  if (!Number.isInteger(chunk) || chunk < 1) {
    throw new RunError('RACKEMU_ERR_GENERATE_OPTION', `prefillChunk ${chunk} is not a positive integer`);
  }
  const model = new ReferenceModel(config, weights, { capacity: total });
  let logits: Float32Array = new Float32Array(0);
  for (let s = 0; s < promptIds.length; s += chunk) {
    const ids = promptIds.slice(s, s + chunk);
    logits = model.forward(
      ids,
      ids.map((_, j) => s + j),
    );
  }
  const tokens: number[] = [];
  const allLogits: Float32Array[] = [];
  for (let t = 0; t < maxNewTokens; t++) {
    if (t > 0) logits = model.forward([tokens[t - 1]], [promptIds.length + t - 1]);
    const tok = argmaxRows(logits, 1, config.vocab).indices[0];
    tokens.push(tok);
    allLogits.push(logits);
  }
  return { tokens, finalLogits: logits, allLogits };
}

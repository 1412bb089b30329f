import { bytesPerParam, kvBytesPerToken, paramCounts, type ModelConfig, type WeightDtype } from '../model/config.js';
import type { Topology } from '../topology/types.js';
import { CompileError } from '../util/errors.js';
import { KV_BYTES, type HardwareModel } from './cost.js';
import { activationReserve, attentionBytes, attentionPart, ffnBytes, finestShare } from './partition.js';
import { planSlots, type ResolvedCompileOptions } from './plan.js';

/** Why a model does not fit a topology, and what would: the RACKEMU_ERR_DOES_NOT_FIT the compiler raises. */

function gb(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(1)} kB`;
}

function mib(bytes: number): string {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The shortfall, and what would fit: more chips of this kind, or a smaller dtype. */
export function doesNotFit(
  t: Topology,
  m: ModelConfig,
  o: ResolvedCompileOptions,
  hw: HardwareModel,
  activeChips: number,
  totalChips: number,
): CompileError {
  const sequences = planSlots(o);
  const need = (dtype: WeightDtype) =>
    paramCounts(m).total * bytesPerParam(dtype) + kvBytesPerToken(m, KV_BYTES) * o.context * sequences;
  const needed = need(o.dtype);
  const available = hw.capacityBytes * activeChips;
  const withSpares = hw.capacityBytes * totalChips;
  const chipsNeeded = Math.ceil(needed / (hw.capacityBytes * 0.9));
  const smaller = (['int8', 'fp8'] as WeightDtype[]).filter(
    (d) => bytesPerParam(d) < bytesPerParam(o.dtype) && need(d) <= available * 0.95,
  );
  // the total fits but no split does: a chip's indivisible share binds, and more chips would not help
  const share = needed <= available ? bindingShare(hw, o, activeChips, sequences) : null;
  const binding = share !== null && share.bytes > hw.capacityBytes ? share : null;
  const hints =
    needed > available
      ? [`about ${chipsNeeded} active chips of ${mib(hw.capacityBytes)} (this topology has ${activeChips})`]
      : [binding ? `chips of at least ${mib(binding.bytes)}` : `chips with more than ${mib(hw.capacityBytes)}`];
  if (smaller.length) hints.push(`--dtype ${smaller.join(' or ')} (needs ${gb(need(smaller[0]))})`);
  const kv = kvBytesPerToken(m, KV_BYTES) * o.context * sequences;
  if (needed - kv < available * 0.95 && kv > available * 0.05)
    hints.push(`a shorter --context (the KV cache takes ${gb(kv)})`);
  if (o.microBatches > 1)
    hints.push(`fewer --micro-batches (each keeps its own KV cache; a split needs a group per micro-batch)`);
  const below = `the total (${gb(needed)}) is below the ${gb(available)} of the ${activeChips} active chips, but`;
  const why =
    binding !== null
      ? `${below} ${binding.what} needs ${mib(binding.bytes)} on one chip, and a chip holds ${mib(hw.capacityBytes)}`
      : needed <= available
        ? `${below} no split of its layers packs every chip's share (layers, embedding, lm_head and activation headroom) within ${mib(hw.capacityBytes)}`
        : `needs ${gb(needed)} (weights ${o.dtype} + KV cache for ${o.microBatches > 1 ? `${o.microBatches} micro-batches x ` : ''}${o.batch} x ${o.context} tokens) but the ${activeChips} active chips hold ${gb(available)} (${gb(withSpares)} counting spares)`;
  return new CompileError(
    'RACKEMU_ERR_DOES_NOT_FIT',
    `${m.name} does not fit on ${t.name}: ${why}. Would fit with: ${hints.join('; ')}.`,
    {
      details: {
        needed_bytes: needed,
        available_bytes: available,
        available_with_spares_bytes: withSpares,
        chips_needed: needed > available ? chipsNeeded : null,
        chip_bytes_needed: binding?.bytes ?? null,
        smaller_dtypes: smaller,
      },
    },
  );
}

/**
 * The smallest share of one layer a chip can hold in the finest split the topology allows (one layer
 * per group, as many chips per group as the groups leave room for, the attention and FFN cut as
 * finely as the heads and slices allow) with the activation headroom the compiler keeps. When even
 * that exceeds a chip, no number of chips of this size fits the model.
 */
function bindingShare(
  hw: HardwareModel,
  o: ResolvedCompileOptions,
  activeChips: number,
  sequences: number,
): { bytes: number; what: string } {
  const m = hw.model;
  // the bare decode headroom: the least the compiler ever keeps
  const headroom = activationReserve(1, o.batch, m);
  const finest = finestShare(hw, activeChips, sequences, o.context);
  const shape = finest.shape;
  const p = attentionPart(m, shape.attention, 0);
  const heads = p.headEnd - p.headStart;
  const attention = attentionBytes(hw, shape.attention, 0, sequences, o.context);
  const ffn = ffnBytes(hw, shape.ffn, 0);
  const attentionText = `the attention of ${heads === 1 ? 'one query head' : `${heads} query heads`} with its KV cache for ${sequences} x ${o.context} tokens (${mib(attention.kv)})`;
  const ffnText = `an FFN slice of 1/${shape.ffn}`;
  // with attention on chips of its own, the larger of the two shares binds
  const parts =
    shape.ffn === shape.chips
      ? `${attentionText} and ${ffnText} on the same chip`
      : attention.weights + attention.kv >= ffn
        ? attentionText
        : `${ffnText} (attention on chips of its own)`;
  return {
    bytes: finest.bytes + headroom,
    what: `a chip's smallest share of one layer (${parts}, with activation headroom; ${m.layers} layers over ${activeChips} chips allow ${Math.floor(activeChips / m.layers)} chips per layer)`,
  };
}

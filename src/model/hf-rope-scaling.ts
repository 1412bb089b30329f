/**
 * config.json's rope_scaling -> ModelConfig.ropeScaling. Only Llama 3's scaling is implemented;
 * every other type (linear, dynamic, yarn, longrope, ...) changes the numbers differently and is
 * refused rather than run as plain RoPE.
 */

import type { RopeScaling } from './config.js';
import type { Reader } from './hf-reader.js';

const SUPPORTED = '"llama3" (or "default", or rope_scaling null)';

export function parseRopeScaling(r: Reader): RopeScaling | null {
  if (!r.has('rope_scaling')) return null;
  const raw = r.raw('rope_scaling');
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw r.fail('rope_scaling', `null or an object with rope_type ${SUPPORTED}`, raw);
  }
  const s = r.nested('rope_scaling');
  // transformers reads rope_type, falling back to the older key "type"
  const typeKey = s.has('rope_type') ? 'rope_type' : 'type';
  const type = s.raw(typeKey);
  if (type === 'default') return null;
  if (type !== 'llama3') {
    throw s.fail(typeKey, SUPPORTED, type, `is not supported: rackemu implements rope scaling ${SUPPORTED}`);
  }
  const lowFreqFactor = s.positiveNumber('low_freq_factor');
  const highFreqFactor = s.positiveNumber('high_freq_factor');
  if (highFreqFactor <= lowFreqFactor) {
    // the smooth band divides by (high - low)
    throw s.fail('high_freq_factor', `greater than low_freq_factor (${lowFreqFactor})`, highFreqFactor);
  }
  return {
    type: 'llama3',
    factor: s.positiveNumber('factor'),
    lowFreqFactor,
    highFreqFactor,
    originalMaxPositions: s.positiveInt('original_max_position_embeddings'),
  };
}

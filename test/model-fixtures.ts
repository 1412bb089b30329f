// Shared fixtures of the model tests: temp folders and small HF model folders written with writeSafetensors.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { ModelConfig } from '../src/model/config.js';
import { createRandomWeights } from '../src/model/random-weights.js';
import { writeSafetensors, type SafetensorsDtype, type TensorToWrite } from '../src/model/safetensors.js';
import { requiredTensors } from '../src/model/tensors.js';
import { RackemuError, type ErrorCode } from '../src/util/errors.js';

const made: string[] = [];
// Registered while the importing test file is collected, so each file removes the folders it made.
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rackemu-model-'));
  made.push(dir);
  return dir;
}

/** A small Mixtral-shaped config.json (HF keys). */
export function tinyMixtralJson(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['MixtralForCausalLM'],
    model_type: 'mixtral',
    hidden_size: 8,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    intermediate_size: 12,
    num_local_experts: 2,
    num_experts_per_tok: 1,
    vocab_size: 16,
    max_position_embeddings: 64,
    rope_theta: 1000000.0,
    rms_norm_eps: 1e-5,
    sliding_window: null,
    tie_word_embeddings: false,
    hidden_act: 'silu',
    torch_dtype: 'bfloat16',
    ...over,
  };
}

/** The tensors of `config` with seeded random values (f32 source values, before storage rounding). */
export function modelTensors(config: ModelConfig, dtype: SafetensorsDtype, seed = 7): TensorToWrite[] {
  // bf16-rounded draws, so BF16 files hold them exactly and tests can compare read-back values bit for bit.
  const store = createRandomWeights(config, seed, 'bf16');
  return requiredTensors(config).map((t) => ({ name: t.name, dtype, shape: t.shape, data: store.full(t.name) }));
}

/** Write config.json and the model's tensors split over `shards` safetensors files. */
export function writeModelFolder(
  dir: string,
  configJson: Record<string, unknown>,
  tensors: readonly TensorToWrite[],
  shards = 1,
): string[] {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson, null, 2));
  const files: string[] = [];
  const per = Math.ceil(tensors.length / shards);
  for (let s = 0; s < shards; s++) {
    const file = join(dir, `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`);
    writeSafetensors(file, tensors.slice(s * per, (s + 1) * per));
    files.push(file);
  }
  return files;
}

/** Run fn, expect a RackemuError with `code`, return it for message/details checks. */
export function expectCode(fn: () => unknown, code: ErrorCode): RackemuError {
  try {
    fn();
  } catch (e) {
    if (e instanceof RackemuError && e.code === code) return e;
    throw new Error(`expected ${code}, got ${e instanceof RackemuError ? `${e.code}: ${e.message}` : String(e)}`, {
      cause: e,
    });
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModelConfig, WeightDtype } from '../src/model/config.js';
import { parseHfConfig } from '../src/model/hf-config.js';
import { storeAs } from '../src/model/quantize.js';
import { writeSafetensors } from '../src/model/safetensors.js';
import { listSafetensorsFiles, openSafetensorsStore, validateSafetensorsFolder } from '../src/model/store.js';
import { lmHeadName, requiredTensors } from '../src/model/tensors.js';
import { expectCode, modelTensors, tempDir, tinyMixtralJson, writeModelFolder } from './model-fixtures.js';

function tinyConfig(over: Record<string, unknown> = {}): { json: Record<string, unknown>; config: ModelConfig } {
  const json = tinyMixtralJson(over);
  return { json, config: parseHfConfig(json, 'config.json', 'tiny') };
}

describe('store - reading a valid folder', () => {
  it('returns the written values, sharded or not, with rows/cols equal to parts of full()', () => {
    const { json, config } = tinyConfig();
    const tensors = modelTensors(config, 'BF16');
    for (const shards of [1, 3]) {
      const dir = tempDir();
      writeModelFolder(dir, json, tensors, shards);
      expect(listSafetensorsFiles(dir).length).toBe(shards);
      for (const dtype of ['bf16', 'fp16', 'int8', 'fp8'] as const satisfies readonly WeightDtype[]) {
        const store = openSafetensorsStore(dir, config, dtype);
        for (const t of tensors) {
          const rowLength = t.shape.length === 2 ? t.shape[1] : t.data.length;
          const full = store.full(t.name);
          expect(full).toEqual(storeAs(t.data, dtype, rowLength));
          expect(store.shape(t.name)).toEqual(t.shape);
          if (t.shape.length === 2) {
            const [rows, cols] = t.shape;
            expect(store.rows(t.name, 1, rows - 1)).toEqual(full.slice(cols, (rows - 1) * cols));
            const c = store.cols(t.name, 2, cols - 1);
            const w = cols - 3;
            for (let r = 0; r < rows; r++)
              expect(c.subarray(r * w, (r + 1) * w)).toEqual(full.slice(r * cols + 2, r * cols + cols - 1));
          } else {
            expect(store.rows(t.name, 3, 6)).toEqual(full.slice(3, 6));
          }
        }
      }
    }
  });

  it('rounds F32 sources to the storage dtype', () => {
    const { json, config } = tinyConfig();
    const dir = tempDir();
    const tensors = modelTensors(config, 'F32').map((t) => ({ ...t, data: t.data.map((v) => v * 1.0001) }));
    writeModelFolder(dir, json, tensors);
    const store = openSafetensorsStore(dir, config, 'fp16');
    const t = tensors[1];
    expect(store.full(t.name)).toEqual(storeAs(t.data, 'fp16', 1));
    expect(store.full(t.name)).not.toEqual(t.data);
  });

  it('ignores rotary inv_freq buffers and a redundant lm_head of a tied model', () => {
    const { json, config } = tinyConfig({ tie_word_embeddings: true });
    expect(requiredTensors(config).some((t) => t.name === 'lm_head.weight')).toBe(false);
    expect(lmHeadName(config)).toBe('model.embed_tokens.weight');
    const dir = tempDir();
    const tensors = [
      ...modelTensors(config, 'BF16'),
      {
        name: 'model.layers.0.self_attn.rotary_emb.inv_freq',
        dtype: 'F32' as const,
        shape: [2],
        data: Float32Array.of(1, 0.01),
      },
      { name: 'lm_head.weight', dtype: 'BF16' as const, shape: [16, 8], data: new Float32Array(128) },
    ];
    writeModelFolder(dir, json, tensors);
    const store = openSafetensorsStore(dir, config, 'bf16');
    expect(store.has('lm_head.weight')).toBe(false);
    expect(store.has('model.layers.0.self_attn.rotary_emb.inv_freq')).toBe(false);
    expect(store.full(lmHeadName(config)).length).toBe(16 * 8);
  });
});

describe('store - folders that disagree with config.json', () => {
  it('reports a missing tensor with the file set', () => {
    const { json, config } = tinyConfig();
    const dir = tempDir();
    const files = writeModelFolder(
      dir,
      json,
      modelTensors(config, 'BF16').filter((t) => t.name !== 'model.layers.1.self_attn.k_proj.weight'),
      2,
    );
    const e = expectCode(() => validateSafetensorsFolder(dir, config), 'RACKEMU_ERR_SAFETENSORS_MISSING');
    expect(e.message).toContain('model.layers.1.self_attn.k_proj.weight');
    for (const f of files) expect(e.message).toContain(f);
    expect(e.details.path).toBe('model.layers.1.self_attn.k_proj.weight');
  });

  it('reports a shape mismatch naming file, tensor, expected and got', () => {
    const { json, config } = tinyConfig();
    const dir = tempDir();
    const tensors = modelTensors(config, 'BF16').map((t) =>
      t.name === 'model.layers.0.block_sparse_moe.experts.1.w2.weight' ? { ...t, shape: [12, 8] } : t,
    );
    const [file] = writeModelFolder(dir, json, tensors);
    const e = expectCode(() => openSafetensorsStore(dir, config, 'bf16'), 'RACKEMU_ERR_SAFETENSORS_SHAPE');
    expect(e.message).toContain(file);
    expect(e.message).toContain('model.layers.0.block_sparse_moe.experts.1.w2.weight');
    expect(e.details).toMatchObject({ file, expected: '[8, 12]', got: '[12, 8]' });
  });

  it('reports tensors that are not part of the model', () => {
    const { json, config } = tinyConfig();
    const dir = tempDir();
    const extra = {
      name: 'model.layers.0.self_attn.q_proj.bias',
      dtype: 'BF16' as const,
      shape: [8],
      data: new Float32Array(8),
    };
    const [file] = writeModelFolder(dir, json, [...modelTensors(config, 'BF16'), extra]);
    const e = expectCode(() => validateSafetensorsFolder(dir, config), 'RACKEMU_ERR_SAFETENSORS_UNEXPECTED');
    expect(e.message).toContain('model.layers.0.self_attn.q_proj.bias');
    expect(e.message).toContain(file);
  });

  it('reports a tensor present in two shards', () => {
    const { json, config } = tinyConfig();
    const dir = tempDir();
    const tensors = modelTensors(config, 'BF16');
    writeModelFolder(dir, json, tensors);
    writeSafetensors(join(dir, 'zz-extra.safetensors'), [tensors[0]]);
    const e = expectCode(() => validateSafetensorsFolder(dir, config), 'RACKEMU_ERR_SAFETENSORS_UNEXPECTED');
    expect(e.message).toContain('model.embed_tokens.weight');
    expect(e.message).toContain('zz-extra.safetensors');
  });

  it('reports a model tensor in a dtype rackemu does not read', () => {
    const { json, config } = tinyConfig();
    const dir = tempDir();
    const [file] = writeModelFolder(dir, json, modelTensors(config, 'BF16'));
    // Relabel the first tensor BF16 -> I16 (same width, valid file), padding to keep the header length.
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = bytes
      .subarray(8, 8 + n)
      .toString()
      .replace('"BF16"', '"I16" ');
    writeFileSync(file, Buffer.concat([bytes.subarray(0, 8), Buffer.from(header), bytes.subarray(8 + n)]));
    const e = expectCode(() => validateSafetensorsFolder(dir, config), 'RACKEMU_ERR_SAFETENSORS_DTYPE');
    expect(e.message).toContain(file);
    expect(e.message).toContain('model.embed_tokens.weight');
  });

  it('reports a malformed shard header', () => {
    const { json, config } = tinyConfig();
    const dir = tempDir();
    writeModelFolder(dir, json, modelTensors(config, 'BF16'));
    const bad = join(dir, 'broken.safetensors');
    writeFileSync(bad, Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x7b]));
    const e = expectCode(() => validateSafetensorsFolder(dir, config), 'RACKEMU_ERR_SAFETENSORS_HEADER');
    expect(e.message).toContain(bad);
  });
});

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import type { WeightDtype } from '../src/model/config.js';
import { parseHfConfig } from '../src/model/hf-config.js';
import { loadModel } from '../src/model/load.js';
import { expectCode, modelTensors, tempDir, tinyMixtralJson, writeModelFolder } from './model-fixtures.js';

describe('load - built-in models', () => {
  it('resolves every built-in name, with lazy seeded weights on request', () => {
    for (const name of Object.keys(BUILTIN_MODELS)) {
      const m = loadModel(name, { dtype: 'bf16', withWeights: false });
      expect(m).toEqual({ config: BUILTIN_MODELS[name], weights: null, source: 'builtin' });
      const w = loadModel(name, { dtype: 'int8', withWeights: true }).weights;
      expect(w?.shape('model.norm.weight')).toEqual([BUILTIN_MODELS[name].hidden]);
    }
    const a = loadModel('mixtral-tiny', { dtype: 'bf16', withWeights: true }).weights;
    const b = loadModel('mixtral-tiny', { dtype: 'bf16', withWeights: true }).weights;
    expect(a?.full('lm_head.weight')).toEqual(b?.full('lm_head.weight'));
  });

  it('rejects an unknown name listing the built-ins, and an unknown dtype', () => {
    const e = expectCode(() => loadModel('gpt-5', { dtype: 'bf16', withWeights: false }), 'RACKEMU_ERR_MODEL_UNKNOWN');
    for (const name of Object.keys(BUILTIN_MODELS)) expect(e.message).toContain(name);
    expect(e.message).toContain('gpt-5');
    expectCode(
      () => loadModel('mixtral-tiny', { dtype: 'fp32' as WeightDtype, withWeights: false }),
      'RACKEMU_ERR_MODEL_DTYPE',
    );
    expectCode(() => loadModel('', { dtype: 'bf16', withWeights: false }), 'RACKEMU_ERR_MODEL_UNKNOWN');
  });
});

describe('load - model folders', () => {
  it('loads config.json alone (weights null) and names the model after the folder', () => {
    const root = tempDir();
    const dir = join(root, 'My-Model');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(tinyMixtralJson()));
    const m = loadModel(dir, { dtype: 'bf16', withWeights: true });
    expect(m.source).toBe('folder');
    expect(m.weights).toBeNull();
    expect(m.config).toMatchObject({ name: 'My-Model', family: 'mixtral', hidden: 8, experts: 2 });
  });

  it('loads safetensors weights when present', () => {
    const dir = tempDir();
    const json = tinyMixtralJson();
    const config = parseHfConfig(json, 'config.json', 'x');
    const tensors = modelTensors(config, 'BF16');
    writeModelFolder(dir, json, tensors, 2);
    const m = loadModel(dir, { dtype: 'bf16', withWeights: true });
    expect(m.weights?.full('model.layers.1.block_sparse_moe.gate.weight')).toEqual(
      tensors.find((t) => t.name === 'model.layers.1.block_sparse_moe.gate.weight')?.data,
    );
    expect(loadModel(dir, { dtype: 'bf16', withWeights: false }).weights).toBeNull();
  });

  it('validates safetensors headers against config.json even without weights', () => {
    const dir = tempDir();
    const json = tinyMixtralJson();
    writeModelFolder(dir, json, modelTensors(parseHfConfig(json, 'c', 'x'), 'BF16'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(tinyMixtralJson({ intermediate_size: 16 })));
    const e = expectCode(() => loadModel(dir, { dtype: 'bf16', withWeights: false }), 'RACKEMU_ERR_SAFETENSORS_SHAPE');
    expect(e.message).toContain('.safetensors');
  });

  it('rejects a folder without config.json, naming the folder', () => {
    const dir = tempDir();
    const e = expectCode(() => loadModel(dir, { dtype: 'bf16', withWeights: false }), 'RACKEMU_ERR_MODEL_NO_CONFIG');
    expect(e.message).toContain(dir);
  });

  it('rejects config.json that is not JSON, naming the file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.json'), '{"model_type": "llama",');
    const e = expectCode(() => loadModel(dir, { dtype: 'bf16', withWeights: false }), 'RACKEMU_ERR_MODEL_CONFIG_JSON');
    expect(e.message).toContain(join(dir, 'config.json'));
    expect(e.details.file).toBe(join(dir, 'config.json'));
  });

  it('passes config.json errors through with their codes', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(tinyMixtralJson({ model_type: 'gemma2' })));
    expectCode(() => loadModel(dir, { dtype: 'bf16', withWeights: false }), 'RACKEMU_ERR_MODEL_TYPE_UNSUPPORTED');
    writeFileSync(join(dir, 'config.json'), JSON.stringify(tinyMixtralJson({ num_key_value_heads: 3 })));
    const e = expectCode(() => loadModel(dir, { dtype: 'bf16', withWeights: false }), 'RACKEMU_ERR_MODEL_CONFIG_KEY');
    expect(e.message).toContain(join(dir, 'config.json'));
    expect(e.message).toContain('num_key_value_heads');
  });

  it('treats a path that is a file, or missing, as unknown', () => {
    const dir = tempDir();
    const file = join(dir, 'config.json');
    writeFileSync(file, '{}');
    expectCode(() => loadModel(file, { dtype: 'bf16', withWeights: false }), 'RACKEMU_ERR_MODEL_UNKNOWN');
    expectCode(() => loadModel(join(dir, 'nope'), { dtype: 'bf16', withWeights: false }), 'RACKEMU_ERR_MODEL_UNKNOWN');
  });
});

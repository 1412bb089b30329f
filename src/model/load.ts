/**
 * Resolve a user's model argument: a built-in name or a Hugging Face model folder.
 *
 * Compile-time loading (withWeights: false) reads config.json and the safetensors headers only, so
 * it stays cheap for 90 GB checkpoints yet still rejects a folder whose weights disagree with its
 * config. Built-in names win over a folder of the same name (a bare word is far more likely meant
 * as the built-in); write ./name to force the folder.
 */

import { readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { BUILTIN_MODELS, TINY_WEIGHT_SEED } from './builtin.js';
import { WEIGHT_DTYPES, type ModelConfig, type WeightDtype } from './config.js';
import { parseHfConfig } from './hf-config.js';
import { createRandomWeights } from './random-weights.js';
import { listSafetensorsFiles, openSafetensorsStore, validateSafetensorsFolder } from './store.js';
import type { WeightStore } from './weights.js';
import { ModelError } from '../util/errors.js';

export interface LoadModelOptions {
  /** Storage dtype the weights are rounded/quantised to (see storeAs). */
  readonly dtype: WeightDtype;
  /** false: config (and header validation) only, weights is null. */
  readonly withWeights: boolean;
}

export interface LoadedModel {
  readonly config: ModelConfig;
  /** null when not asked for, or for a folder without *.safetensors (timing fidelity only). */
  readonly weights: WeightStore | null;
  readonly source: 'builtin' | 'folder';
}

export function loadModel(spec: string, opts: LoadModelOptions): LoadedModel {
  if (!WEIGHT_DTYPES.includes(opts.dtype)) {
    throw new ModelError(
      'RACKEMU_ERR_MODEL_DTYPE',
      `weight dtype ${JSON.stringify(opts.dtype)} is not one of ${WEIGHT_DTYPES.join(', ')}`,
      {
        details: { path: 'dtype', expected: WEIGHT_DTYPES.join('|'), got: String(opts.dtype) },
      },
    );
  }
  if (Object.prototype.hasOwnProperty.call(BUILTIN_MODELS, spec)) {
    const config = BUILTIN_MODELS[spec];
    // Every built-in gets the same fixed seed: the store is lazy, so even full-size ones cost nothing until read.
    const weights = opts.withWeights ? createRandomWeights(config, TINY_WEIGHT_SEED, opts.dtype) : null;
    return { config, weights, source: 'builtin' };
  }
  if (isDirectory(spec)) return loadFolder(spec, opts);
  const names = Object.keys(BUILTIN_MODELS).join(', ');
  throw new ModelError(
    'RACKEMU_ERR_MODEL_UNKNOWN',
    `model ${JSON.stringify(spec)} is neither a built-in model (${names}) nor a folder`,
    {
      details: { path: 'model', expected: `one of ${names}, or a folder with config.json`, got: spec },
    },
  );
}

function isDirectory(p: string): boolean {
  if (p === '') return false;
  try {
    return statSync(p).isDirectory();
  } catch {
    return false; // missing, not a directory on the way (ENOTDIR), or unreadable: not a usable folder
  }
}

function loadFolder(folder: string, opts: LoadModelOptions): LoadedModel {
  const file = join(folder, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const why =
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'has no config.json'
        : `config.json cannot be read (${(e as Error).message})`;
    throw new ModelError('RACKEMU_ERR_MODEL_NO_CONFIG', `model folder ${folder} ${why}`, {
      details: { file, path: folder },
      cause: e,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelError('RACKEMU_ERR_MODEL_CONFIG_JSON', `${file} is not valid JSON: ${(e as Error).message}`, {
      details: { file },
      cause: e,
    });
  }
  const config = parseHfConfig(json, file, basename(resolve(folder)));
  const files = listSafetensorsFiles(folder);
  if (files.length === 0) return { config, weights: null, source: 'folder' };
  if (!opts.withWeights) {
    validateSafetensorsFolder(folder, config, files);
    return { config, weights: null, source: 'folder' };
  }
  return { config, weights: openSafetensorsStore(folder, config, opts.dtype, files), source: 'folder' };
}

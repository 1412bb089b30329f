/**
 * A WeightStore over a Hugging Face model folder's *.safetensors shards, validated against the
 * model's config.json before any tensor data is touched.
 *
 * Indexing reads only the shards' headers (a few KB each), so the compiler can afford it on every
 * compile and rejects a folder whose weights disagree with its config.json early. The shard index file
 * (model.safetensors.index.json) is not needed: the headers themselves say which shard holds what.
 */

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig, WeightDtype } from './config.js';
import { isSupportedDtype, SafetensorsFile, unsupportedDtype, type SafetensorsTensorInfo } from './safetensors.js';
import { StoredWeights, type RawTensorSource } from './stored-weights.js';
import { isIgnoredTensor, LM_HEAD, requiredTensors } from './tensors.js';
import type { WeightStore } from './weights.js';
import { ModelError } from '../util/errors.js';

/** Regular files (or symlinks to them, as in the Hugging Face hub cache) named *.safetensors, sorted. */
export function listSafetensorsFiles(folder: string): string[] {
  return readdirSync(folder)
    .filter((f) => f.endsWith('.safetensors'))
    .sort()
    .map((f) => join(folder, f))
    .filter((p) => statSync(p, { throwIfNoEntry: false })?.isFile() === true);
}

function listSome(names: readonly string[], max = 5): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} (and ${names.length - max} more)` : shown;
}

function showShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

interface Located {
  readonly file: SafetensorsFile;
  readonly info: SafetensorsTensorInfo;
}

/** The validated tensor index of a folder; the raw source behind its WeightStore. */
export class SafetensorsFolder implements RawTensorSource {
  private constructor(
    readonly folder: string,
    readonly files: readonly string[],
    private readonly tensors: ReadonlyMap<string, Located>,
  ) {}

  /**
   * Read every shard's header and check it against the config: each required tensor present exactly
   * once with a supported dtype and the config's shape, and nothing else (rotary inv_freq buffers are
   * ignored; a redundant lm_head.weight in a tied-embedding model is ignored after a shape check, as
   * transformers ties it to the embedding on load).
   */
  static index(
    folder: string,
    config: ModelConfig,
    files: readonly string[] = listSafetensorsFiles(folder),
  ): SafetensorsFolder {
    const fileSet = files.length > 0 ? files.join(', ') : `${folder} (no *.safetensors files)`;
    const all = new Map<string, Located>();
    for (const path of files) {
      const file = SafetensorsFile.open(path);
      for (const info of file.tensors.values()) {
        const prior = all.get(info.name);
        if (prior !== undefined) {
          throw new ModelError(
            'RACKEMU_ERR_SAFETENSORS_UNEXPECTED',
            `tensor ${info.name} appears in both ${prior.file.file} and ${path}`,
            {
              details: {
                file: path,
                path: info.name,
                expected: 'one shard per tensor',
                got: `${prior.file.file} and ${path}`,
              },
            },
          );
        }
        all.set(info.name, { file, info });
      }
    }

    const required = requiredTensors(config);
    const checkShape = (name: string, want: readonly number[], at: Located): void => {
      if (at.info.shape.length !== want.length || at.info.shape.some((d, i) => d !== want[i])) {
        throw new ModelError(
          'RACKEMU_ERR_SAFETENSORS_SHAPE',
          `${at.file.file}: tensor ${name} has shape ${showShape(at.info.shape)}, config.json implies ${showShape(want)}`,
          { details: { file: at.file.file, path: name, expected: showShape(want), got: showShape(at.info.shape) } },
        );
      }
    };

    const tensors = new Map<string, Located>();
    const missing: string[] = [];
    for (const t of required) {
      const at = all.get(t.name);
      if (at === undefined) {
        missing.push(t.name);
        continue;
      }
      if (!isSupportedDtype(at.info.dtype)) throw unsupportedDtype(at.file.file, at.info);
      checkShape(t.name, t.shape, at);
      tensors.set(t.name, at);
    }
    if (missing.length > 0) {
      throw new ModelError(
        'RACKEMU_ERR_SAFETENSORS_MISSING',
        `${missing.length} tensor(s) the model needs are in none of ${fileSet}: ${listSome(missing)}`,
        { details: { file: fileSet, path: missing[0], expected: missing.join(', '), got: 'absent' } },
      );
    }

    const unexpected: string[] = [];
    let unexpectedFile = '';
    for (const [name, at] of all) {
      if (tensors.has(name) || isIgnoredTensor(name)) continue;
      if (name === LM_HEAD && config.tieEmbeddings) {
        checkShape(name, [config.vocab, config.hidden], at);
        continue;
      }
      if (unexpected.length === 0) unexpectedFile = at.file.file;
      unexpected.push(name);
    }
    if (unexpected.length > 0) {
      throw new ModelError(
        'RACKEMU_ERR_SAFETENSORS_UNEXPECTED',
        `${unexpectedFile}: tensor(s) not part of a ${config.family} model with this config.json: ${listSome(unexpected)}`,
        {
          details: {
            file: unexpectedFile,
            path: unexpected[0],
            expected: 'only tensors the config implies',
            got: unexpected.join(', '),
          },
        },
      );
    }
    return new SafetensorsFolder(folder, files, tensors);
  }

  shape(name: string): readonly number[] | undefined {
    return this.tensors.get(name)?.info.shape;
  }

  read(name: string, start: number, count: number): Float32Array {
    const at = this.tensors.get(name);
    if (at === undefined) throw new RangeError(`${this.folder}: no tensor ${name}`);
    return at.file.read(name, start, count);
  }

  readColumns(name: string, rowLength: number, r0: number, r1: number, c0: number, c1: number): Float32Array {
    const at = this.tensors.get(name);
    if (at === undefined) throw new RangeError(`${this.folder}: no tensor ${name}`);
    return at.file.readColumns(name, rowLength, r0, r1, c0, c1);
  }

  describe(): string {
    return this.files.join(', ');
  }
}

/** Header-only validation of a folder's shards against the config (what compile-time loading needs). */
export function validateSafetensorsFolder(folder: string, config: ModelConfig, files?: readonly string[]): void {
  SafetensorsFolder.index(folder, config, files);
}

/** A WeightStore over the folder's shards; values come back as stored in `dtype` (see storeAs). */
export function openSafetensorsStore(
  folder: string,
  config: ModelConfig,
  dtype: WeightDtype,
  files?: readonly string[],
): WeightStore {
  return new StoredWeights(SafetensorsFolder.index(folder, config, files), dtype);
}

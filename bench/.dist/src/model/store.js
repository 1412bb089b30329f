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
import { isSupportedDtype, SafetensorsFile, unsupportedDtype } from './safetensors.js';
import { StoredWeights } from './stored-weights.js';
import { isIgnoredTensor, LM_HEAD, requiredTensors } from './tensors.js';
import { ModelError } from '../util/errors.js';
/** Regular files (or symlinks to them, as in the Hugging Face hub cache) named *.safetensors, sorted. */
export function listSafetensorsFiles(folder) {
    return readdirSync(folder)
        .filter((f) => f.endsWith('.safetensors'))
        .sort()
        .map((f) => join(folder, f))
        .filter((p) => statSync(p, { throwIfNoEntry: false })?.isFile() === true);
}
function listSome(names, max = 5) {
    const shown = names.slice(0, max).join(', ');
    return names.length > max ? `${shown} (and ${names.length - max} more)` : shown;
}
function showShape(s) {
    return `[${s.join(', ')}]`;
}
/** The validated tensor index of a folder; the raw source behind its WeightStore. */
export class SafetensorsFolder {
    folder;
    files;
    tensors;
    constructor(folder, files, tensors) {
        this.folder = folder;
        this.files = files;
        this.tensors = tensors;
    }
    /**
     * Read every shard's header and check it against the config: each required tensor present exactly
     * once with a supported dtype and the config's shape, and nothing else (rotary inv_freq buffers are
     * ignored; a redundant lm_head.weight in a tied-embedding model is ignored after a shape check, as
     * transformers ties it to the embedding on load).
     */
    static index(folder, config, files = listSafetensorsFiles(folder)) {
        const fileSet = files.length > 0 ? files.join(', ') : `${folder} (no *.safetensors files)`;
        const all = new Map();
        for (const path of files) {
            const file = SafetensorsFile.open(path);
            for (const info of file.tensors.values()) {
                const prior = all.get(info.name);
                if (prior !== undefined) {
                    throw new ModelError('RACKEMU_ERR_SAFETENSORS_UNEXPECTED', `tensor ${info.name} appears in both ${prior.file.file} and ${path}`, { details: { file: path, path: info.name, expected: 'one shard per tensor', got: `${prior.file.file} and ${path}` } });
                }
                all.set(info.name, { file, info });
            }
        }
        const required = requiredTensors(config);
        const checkShape = (name, want, at) => {
            if (at.info.shape.length !== want.length || at.info.shape.some((d, i) => d !== want[i])) {
                throw new ModelError('RACKEMU_ERR_SAFETENSORS_SHAPE', `${at.file.file}: tensor ${name} has shape ${showShape(at.info.shape)}, config.json implies ${showShape(want)}`, { details: { file: at.file.file, path: name, expected: showShape(want), got: showShape(at.info.shape) } });
            }
        };
        const tensors = new Map();
        const missing = [];
        for (const t of required) {
            const at = all.get(t.name);
            if (at === undefined) {
                missing.push(t.name);
                continue;
            }
            if (!isSupportedDtype(at.info.dtype))
                throw unsupportedDtype(at.file.file, at.info);
            checkShape(t.name, t.shape, at);
            tensors.set(t.name, at);
        }
        if (missing.length > 0) {
            throw new ModelError('RACKEMU_ERR_SAFETENSORS_MISSING', `${missing.length} tensor(s) the model needs are in none of ${fileSet}: ${listSome(missing)}`, { details: { file: fileSet, path: missing[0], expected: missing.join(', '), got: 'absent' } });
        }
        const unexpected = [];
        let unexpectedFile = '';
        for (const [name, at] of all) {
            if (tensors.has(name) || isIgnoredTensor(name))
                continue;
            if (name === LM_HEAD && config.tieEmbeddings) {
                checkShape(name, [config.vocab, config.hidden], at);
                continue;
            }
            if (unexpected.length === 0)
                unexpectedFile = at.file.file;
            unexpected.push(name);
        }
        if (unexpected.length > 0) {
            throw new ModelError('RACKEMU_ERR_SAFETENSORS_UNEXPECTED', `${unexpectedFile}: tensor(s) not part of a ${config.family} model with this config.json: ${listSome(unexpected)}`, { details: { file: unexpectedFile, path: unexpected[0], expected: 'only tensors the config implies', got: unexpected.join(', ') } });
        }
        return new SafetensorsFolder(folder, files, tensors);
    }
    shape(name) {
        return this.tensors.get(name)?.info.shape;
    }
    read(name, start, count) {
        const at = this.tensors.get(name);
        if (at === undefined)
            throw new RangeError(`${this.folder}: no tensor ${name}`);
        return at.file.read(name, start, count);
    }
    readColumns(name, rowLength, r0, r1, c0, c1) {
        const at = this.tensors.get(name);
        if (at === undefined)
            throw new RangeError(`${this.folder}: no tensor ${name}`);
        return at.file.readColumns(name, rowLength, r0, r1, c0, c1);
    }
    describe() {
        return this.files.join(', ');
    }
}
/** Header-only validation of a folder's shards against the config (what compile-time loading needs). */
export function validateSafetensorsFolder(folder, config, files) {
    SafetensorsFolder.index(folder, config, files);
}
/** A WeightStore over the folder's shards; values come back as stored in `dtype` (see storeAs). */
export function openSafetensorsStore(folder, config, dtype, files) {
    return new StoredWeights(SafetensorsFolder.index(folder, config, files), dtype);
}
//# sourceMappingURL=store.js.map
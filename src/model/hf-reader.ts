/**
 * Typed reads of one JSON object of a Hugging Face config.json (the top level, or a nested object
 * such as rope_scaling), every failure a RACKEMU_ERR_MODEL_CONFIG_KEY naming the file and the key path.
 */

import { ModelError } from '../util/errors.js';

export function show(v: unknown): string {
  if (v === undefined) return 'nothing (key absent)';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export class Reader {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly file: string,
    /** Key path of `obj` inside config.json ('' at the top level, 'rope_scaling.' inside it). */
    private readonly prefix = '',
  ) {}

  /** A reader of the nested object at `key` (the caller has checked it is an object). */
  nested(key: string): Reader {
    return new Reader(this.obj[key] as Record<string, unknown>, this.file, `${this.prefix}${key}.`);
  }

  fail(key: string, expected: string, got: unknown, why?: string): ModelError {
    const g = show(got);
    const path = `${this.prefix}${key}`;
    return new ModelError(
      'RACKEMU_ERR_MODEL_CONFIG_KEY',
      `${this.file}: ${path} ${why ?? `must be ${expected}`}, got ${g}`,
      {
        details: { file: this.file, path, expected, got: g },
      },
    );
  }

  /** null counts as absent: transformers writes None for "use the default". */
  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  positiveInt(key: string): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw this.fail(key, 'a positive integer', v);
    return v;
  }

  optionalPositiveInt(key: string, fallback: number): number {
    return this.has(key) ? this.positiveInt(key) : fallback;
  }

  positiveNumber(key: string, fallback?: number): number {
    if (!this.has(key) && fallback !== undefined) return fallback;
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw this.fail(key, 'a positive finite number', v);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const v = this.obj[key];
    if (typeof v !== 'boolean') throw this.fail(key, 'true or false', v);
    return v;
  }
}

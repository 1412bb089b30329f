import { WEIGHT_DTYPES, type ModelConfig, type WeightDtype } from '../model/config.js';
import { CompileError } from '../util/errors.js';
import { LAYOUT_SEARCHES, type LayoutSearch, type ResolvedCompileOptions } from './plan.js';

/** What a user may ask of the compiler; every field optional, defaults and validation in one place. */
export interface CompileOptions {
  dtype?: WeightDtype;
  /** Sequences decoded together in one step. */
  batch?: number;
  /** Tokens of KV cache reserved per sequence (prompt + generated). Default: the model's maximum. */
  context?: number;
  /** Prompt length the TTFT prediction assumes. */
  promptTokens?: number;
  /** Largest prompt chunk one prefill step processes (the compiler may shrink it to fit memory). */
  prefillChunk?: number;
  /**
   * Micro-batches of `batch` sequences each that a step pipelines through the layer groups (at most
   * one per group at a time); default 1. Each micro-batch keeps its own KV cache.
   */
  microBatches?: number;
  /** Group shapes to search (default full; see LayoutSearch). */
  layoutSearch?: LayoutSearch;
}

export const DEFAULT_PROMPT_TOKENS = 128;
export const DEFAULT_PREFILL_CHUNK = 512;

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  const value = v ?? fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new CompileError('RACKEMU_ERR_COMPILE_OPTION', `${name}: expected a positive integer, got ${String(v)}`, {
      details: { path: name, expected: 'positive integer', got: String(v) },
    });
  }
  return value;
}

export function resolveOptions(model: ModelConfig, o: CompileOptions): ResolvedCompileOptions {
  const dtype = o.dtype ?? 'bf16';
  if (!WEIGHT_DTYPES.includes(dtype)) {
    throw new CompileError(
      'RACKEMU_ERR_COMPILE_OPTION',
      `--dtype: expected one of ${WEIGHT_DTYPES.join(', ')}, got ${String(dtype)}`,
      {
        details: { path: 'dtype', expected: WEIGHT_DTYPES.join(' | '), got: String(dtype) },
      },
    );
  }
  const batch = positiveInt('--batch', o.batch, 1);
  const context = positiveInt('--context', o.context, model.maxPositions);
  if (context > model.maxPositions) {
    throw new CompileError(
      'RACKEMU_ERR_COMPILE_OPTION',
      `--context ${context}: ${model.name} supports at most ${model.maxPositions} positions`,
      {
        details: { path: 'context', expected: `<= ${model.maxPositions}`, got: String(context) },
      },
    );
  }
  const promptTokens = positiveInt(
    '--prompt-tokens',
    o.promptTokens,
    Math.min(DEFAULT_PROMPT_TOKENS, Math.max(1, context - 1)),
  );
  if (promptTokens >= context) {
    throw new CompileError(
      'RACKEMU_ERR_COMPILE_OPTION',
      `--prompt-tokens ${promptTokens}: must leave room to generate within --context ${context}`,
      {
        details: { path: 'prompt-tokens', expected: `< ${context}`, got: String(promptTokens) },
      },
    );
  }
  const prefillChunk = Math.min(positiveInt('--prefill-chunk', o.prefillChunk, DEFAULT_PREFILL_CHUNK), promptTokens);
  const microBatches = positiveInt('--micro-batches', o.microBatches, 1);
  if (microBatches > model.layers) {
    throw new CompileError(
      'RACKEMU_ERR_COMPILE_OPTION',
      `--micro-batches ${microBatches}: at most one micro-batch per layer group, and ${model.name} has ${model.layers} layers`,
      { details: { path: 'micro-batches', expected: `<= ${model.layers}`, got: String(microBatches) } },
    );
  }
  const layoutSearch = o.layoutSearch ?? 'full';
  if (!LAYOUT_SEARCHES.includes(layoutSearch)) {
    throw new CompileError(
      'RACKEMU_ERR_COMPILE_OPTION',
      `--layout-search: expected one of ${LAYOUT_SEARCHES.join(', ')}, got ${String(layoutSearch)}`,
      { details: { path: 'layout-search', expected: LAYOUT_SEARCHES.join(' | '), got: String(layoutSearch) } },
    );
  }
  return { dtype, batch, context, promptTokens, prefillChunk, microBatches, layoutSearch };
}

import type { CompletionEngine, CompletionResult } from '../control/engine-types.js';
import type { RackemuError } from '../util/errors.js';
import { mulberry32 } from '../util/prng.js';
import type { WorkloadSpec } from './types.js';

/** One request's fate in a workload run. */
export interface RequestOutcome {
  readonly id: string;
  readonly result: CompletionResult | null;
  readonly error: RackemuError | null;
}

export function requestId(index: number): string {
  return `req-${index}`;
}

/** The workload's prompts: seeded ids in [1, vocab), the same for every run of the same seed. */
export function prompts(w: WorkloadSpec, vocab: number): number[][] {
  const rand = mulberry32(w.seed);
  return Array.from({ length: w.requests }, () =>
    Array.from({ length: w.promptTokens }, () => 1 + Math.floor(rand() * (vocab - 1))),
  );
}

/** Serves the workload through `engine`, `concurrency` requests at a time, in index order. */
export async function serveWorkload(
  engine: CompletionEngine,
  w: WorkloadSpec,
  onToken?: (requestId: string) => void,
): Promise<RequestOutcome[]> {
  const all = prompts(w, engine.vocab);
  const out: RequestOutcome[] = new Array<RequestOutcome>(all.length);
  let next = 0;
  const worker = async () => {
    while (next < all.length) {
      const i = next++;
      const id = requestId(i);
      try {
        const result = await engine.submit({ id, promptIds: all[i], maxTokens: w.maxNewTokens }, () => onToken?.(id));
        out[i] = { id, result, error: null };
      } catch (e) {
        out[i] = { id, result: null, error: e as RackemuError };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(w.concurrency, all.length) }, worker));
  return out;
}

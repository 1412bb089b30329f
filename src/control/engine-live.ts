import type { RackemuError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { KIND } from '../runtime/index.js';
import type { BatchScheduler, PlannedWindow } from './batch-scheduler.js';
import type { WindowView } from './engine-faults.js';
import type { CompletionRequest, CompletionResult, EngineObserver, TokenEvent } from './engine-types.js';

/** A request from submit to its last token. */
export interface Live {
  readonly request: CompletionRequest;
  readonly resolve: (r: CompletionResult) => void;
  readonly reject: (e: RackemuError) => void;
  readonly onToken?: (e: TokenEvent) => void;
  /** Virtual tick of its arrival, and of its admission into a slot (-1 before). */
  readonly arrivalTick: number;
  admitTick: number;
  readonly wallStart: number;
  wallFirst: number;
  readonly tokens: number[];
  readonly ticks: number[];
  done: boolean;
  /** Tokens it had when it was last replayed: the scheduler's token indices count from there. */
  offset: number;
}

/**
 * After a recovery every request in flight replays, in the order it arrived: its prompt plus the tokens it
 * has become its prompt, and the scheduler's token indices count from there (Live.offset).
 */
export function replayLive(live: Iterable<Live>, scheduler: BatchScheduler): { requests: number; tokens: number } {
  scheduler.reset();
  let tokens = 0;
  let requests = 0;
  for (const r of live) {
    if (r.done) continue;
    r.offset = r.tokens.length;
    tokens += r.tokens.length;
    requests++;
    const promptIds = [...r.request.promptIds, ...r.tokens];
    scheduler.enqueue({ id: r.request.id, promptIds, maxTokens: r.request.maxTokens - r.tokens.length }, true);
  }
  return { requests, tokens };
}

/** A planned window as fault triggers see it: step start ticks and each step's tokens by absolute index. */
export function windowView(
  planned: PlannedWindow,
  baseTick: number,
  stepTicks: { readonly prefill: number; readonly decode: number },
  live: ReadonlyMap<string, Live>,
): WindowView {
  const starts: number[] = [];
  let tick = baseTick;
  for (const kind of planned.kinds) {
    starts.push(tick);
    tick += kind === KIND.prefill ? stepTicks.prefill : stepTicks.decode;
  }
  const outputs = planned.outputs.map((list) =>
    list.map((o) => ({ requestId: o.requestId, index: o.index + (live.get(o.requestId)?.offset ?? 0) })),
  );
  return { firstStep: planned.firstStep, starts, outputs };
}

/** Reports how far tokens lag their virtual time (--pace realtime), with a warning at most every 10 s. */
export function pacingLag(observer: EngineObserver | undefined): (seconds: number) => void {
  let lastWarning = 0;
  return (seconds) => {
    observer?.setPacingLag?.(Math.max(0, seconds));
    if (seconds > 0.05 && performance.now() - lastWarning > 10_000) {
      lastWarning = performance.now();
      logger().warn(
        { lag_s: seconds },
        'pace realtime: the emulator is behind the hardware it emulates; tokens reach clients late',
      );
    }
  };
}

import type { ChipToHost, StepSamples } from '../runtime/index.js';
import type { RunError } from '../util/errors.js';

type Reply = Exclude<ChipToHost, { type: 'failed' } | { type: 'samples' } | { type: 'alive' }>;

interface Waiter {
  readonly type: Reply['type'];
  readonly resolve: (m: Reply) => void;
  readonly reject: (e: RunError) => void;
  /** A run's waiter: where the chip's streamed samples of that run go. */
  readonly onSamples?: (s: StepSamples) => void;
}

/**
 * The replies a host agent waits for from one chip worker, in order. A worker handles its messages one
 * after another, so its replies come in the order of the requests: the oldest waiter takes the next
 * reply, a failure rejects it, and samples streamed during a run go to that run's waiter.
 */
export class ChipMailbox {
  private readonly waiters: Waiter[] = [];
  /** Set once the worker is gone: every later wait fails with it at once. */
  private gone: RunError | null = null;
  /** Date.now() of the worker's last message of any kind (hang detection). */
  lastHeard = Date.now();

  constructor(private readonly toError: (m: Extract<ChipToHost, { type: 'failed' }>) => RunError) {}

  /** The next reply of `type`; `onSamples` sees samples the chip streams until then. */
  expect<T extends Reply['type']>(type: T, onSamples?: (s: StepSamples) => void): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.gone !== null) return reject(this.gone);
      this.waiters.push({ type, resolve: resolve as (m: Reply) => void, reject, onSamples });
    });
  }

  /** A run's reply is awaited: the chip should be beating. */
  get running(): boolean {
    return this.gone === null && this.waiters.some((w) => w.type === 'done');
  }

  deliver(m: ChipToHost): void {
    this.lastHeard = Date.now();
    const head = this.waiters[0];
    if (head === undefined) return;
    if (m.type === 'samples') {
      head.onSamples?.(m.samples);
      return;
    }
    if (m.type === 'failed') {
      this.waiters.shift();
      head.reject(this.toError(m));
      return;
    }
    if (m.type === head.type) {
      this.waiters.shift();
      head.resolve(m);
    }
  }

  /** The worker is gone: every waiter fails with `e`. */
  failAll(e: RunError): void {
    this.gone = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
  }
}

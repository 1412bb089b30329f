import type { DecodedFrame } from '../transport/frame.js';
import type { DueFrame } from './chip-types.js';

/** One frame a numeric Program receives: its key in the inbox, and the tensor id its values go to. */
export interface ExpectedFrame extends DueFrame {
  readonly key: string;
  /** The receiving instruction's tensor id. */
  readonly tensorId: number;
}

export const frameKey = (step: number, tensor: string, src: string): string => `${step}|${tensor}|${src}`;

/** The step of a frame key (keys begin with it). */
const stepOfKey = (key: string): number => Number(key.slice(0, key.indexOf('|')));

export type InboxOutcome = 'taken' | 'buffered' | 'duplicate';

/**
 * Decoded frames a chip holds until its Program receives them, keyed by (step, tensor, source).
 * Numeric fidelity receives every frame through it; timing fidelity only those that came before its
 * run began or that its run does not expect (reported as unexpected at the run's end). A frame that
 * is already held, or was taken, is a duplicate. One receive may wait for its frame on the event loop
 * (transports without a blocking poll).
 */
export class FrameInbox {
  private readonly held = new Map<string, { readonly frame: DecodedFrame; readonly src: string }>();
  private readonly taken = new Set<string>();
  private waiter: {
    readonly expect: ExpectedFrame;
    readonly resolve: (d: DecodedFrame) => void;
    readonly since: number;
  } | null = null;

  /** A decoded frame arrives: handed to the receive waiting for it, held, or refused as a duplicate. */
  put(frame: DecodedFrame, src: string): InboxOutcome {
    const h = frame.header;
    const key = frameKey(h.step, h.tensor, src);
    if (this.held.has(key) || this.taken.has(key)) return 'duplicate';
    const w = this.waiter;
    if (w !== null && w.expect.key === key) {
      this.waiter = null;
      this.taken.add(key);
      w.resolve(frame);
      return 'taken';
    }
    this.held.set(key, { frame, src });
    return 'buffered';
  }

  has(key: string): boolean {
    return this.held.has(key);
  }

  /** The frame `e`, if it has arrived (it is then taken). */
  take(e: ExpectedFrame): DecodedFrame | undefined {
    const entry = this.held.get(e.key);
    if (entry === undefined) return undefined;
    this.held.delete(e.key);
    this.taken.add(e.key);
    return entry.frame;
  }

  /** The frame `e`, now or when it arrives (one receive waits at a time). */
  wait(e: ExpectedFrame): Promise<DecodedFrame> {
    const now = this.take(e);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve) => (this.waiter = { expect: e, resolve, since: Date.now() }));
  }

  /** The frame a receive has waited for since before `now - limitMs`, if any. */
  overdue(now: number, limitMs: number): ExpectedFrame | null {
    const w = this.waiter;
    return w !== null && now - w.since >= limitMs ? w.expect : null;
  }

  /** Frames of `group` not yet here. */
  absent(group: readonly ExpectedFrame[]): number {
    let n = 0;
    for (const e of group) if (!this.held.has(e.key)) n++;
    return n;
  }

  /**
   * A run begins at step `firstStep`: keys of earlier runs can no longer collide (step numbers only
   * grow), so they are forgotten; with `dropHeld` (the last run failed) so are its frames still held.
   */
  beginRun(firstStep: number, dropHeld: boolean): void {
    this.waiter = null;
    for (const key of this.taken) if (stepOfKey(key) < firstStep) this.taken.delete(key);
    if (dropHeld) for (const key of this.held.keys()) if (stepOfKey(key) < firstStep) this.held.delete(key);
  }

  /** Offers every held frame to `place`; those it takes (returns true for) leave the inbox. */
  adopt(place: (frame: DecodedFrame, src: string) => boolean): void {
    for (const [key, { frame, src }] of this.held) if (place(frame, src)) this.held.delete(key);
  }

  /**
   * Removes and returns the frames held of steps before `endStep`: at the end of a run that ends there,
   * frames nobody asked for. Frames of later steps stay: the next window's, from peers already running it.
   */
  leftovers(endStep: number): { readonly step: number; readonly tensor: string; readonly src: string }[] {
    const out: { step: number; tensor: string; src: string }[] = [];
    for (const [key, { frame, src }] of this.held) {
      if (frame.header.step >= endStep) continue;
      out.push({ step: frame.header.step, tensor: frame.header.tensor, src });
      this.held.delete(key);
    }
    return out;
  }
}

import { KIND, rowWords, type BatchShape } from '../runtime/index.js';
import { UsageError } from '../util/errors.js';

/**
 * Continuous batching: which request each batch slot of the Plan carries in each step, decided ahead
 * of the chips in windows of steps (DESIGN.md, "Steps as a stream"). A pure state machine: requests
 * in, planned windows out; the engine runs the windows and maps the sampler's output back through
 * `outputs`.
 *
 * Policy (docs/serving.md, "Batching policy"): waiting requests take free slots in arrival order
 * (lowest slot first). A step is a prefill step when some slot still has prompt to prefill and either
 * no slot is decoding or the previous step was a decode step; otherwise a decode step over every
 * decoding slot. Prefill and decode thus alternate while both have work: a decoding request waits at
 * most one prefill step between two of its tokens, and a new request's prompt still enters at once
 * (one chunk of prefillChunk tokens per prefill step, every prefilling slot at once). The Plan has no
 * mixed steps (a step is prefill or decode), which rules out Sarathi-style piggybacking; a pure
 * prefill-first policy (vLLM's default before chunked prefill) would stall every decode for a whole
 * prompt, and decode-first would starve new requests while the batch is busy.
 */

export interface ScheduledRequest {
  readonly id: string;
  readonly promptIds: readonly number[];
  readonly maxTokens: number;
}

/** What one slot's output of one step is: token `index` of request `requestId`. */
export interface SlotOutput {
  readonly slot: number;
  readonly requestId: string;
  readonly index: number;
  /** The request's last planned token (its max tokens). */
  readonly last: boolean;
}

export interface PlannedWindow {
  readonly firstStep: number;
  readonly kinds: Uint8Array;
  /** StepWindow.rows (numeric fidelity), or null. */
  readonly rows: Int32Array | null;
  /** Per step of the window, the tokens its samples are. */
  readonly outputs: readonly (readonly SlotOutput[])[];
  /** Per step of the window, the requests whose first prompt chunk enters in it. */
  readonly admitted: readonly (readonly string[])[];
  /** Per step of the window, the slots that carry a request's rows (batch occupancy). */
  readonly activeSlots: readonly number[];
}

interface Slot {
  readonly request: ScheduledRequest;
  /** Prompt tokens prefilled so far (planned). */
  prefilled: number;
  /** Tokens planned so far. */
  planned: number;
}

export class BatchScheduler {
  private readonly queue: ScheduledRequest[] = [];
  private readonly slots: (Slot | null)[];
  private lastKind: number = KIND.prefill;

  constructor(
    private readonly shape: BatchShape,
    /** Requests that may wait for a slot; more are refused (RACKEMU_ERR_QUEUE_FULL). */
    private readonly maxWaiting: number,
  ) {
    this.slots = new Array<Slot | null>(shape.batch).fill(null);
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Requests in slots with steps still to plan. */
  get running(): number {
    return this.slots.filter((s) => s !== null).length;
  }

  /** Tokens the planned steps hold in the KV cache (prompt prefilled plus tokens planned), over all slots. */
  get kvTokens(): number {
    let n = 0;
    for (const s of this.slots) if (s !== null) n += s.prefilled + s.planned;
    return n;
  }

  /** Forgets every planned step (recovery replays the requests from what they have); returns nothing. */
  reset(): void {
    this.queue.length = 0;
    this.slots.fill(null);
    this.lastKind = KIND.prefill;
  }

  /** `force`: a request replayed after a recovery, which takes its place ahead of the waiting limit. */
  enqueue(request: ScheduledRequest, force = false): void {
    if (!force && this.queue.length >= this.maxWaiting) {
      throw new UsageError(
        'RACKEMU_ERR_QUEUE_FULL',
        `the queue holds ${this.maxWaiting} waiting request(s) and is full`,
        {
          details: { expected: `at most ${this.maxWaiting} waiting`, got: String(this.queue.length + 1) },
        },
      );
    }
    this.queue.push(request);
  }

  /** Plan no more steps for `requestId` (it stopped early, or failed): its slot is free for the next window. */
  finish(requestId: string): void {
    const i = this.queue.findIndex((r) => r.id === requestId);
    if (i >= 0) this.queue.splice(i, 1);
    for (let b = 0; b < this.slots.length; b++) if (this.slots[b]?.request.id === requestId) this.slots[b] = null;
  }

  /** The next window of at most `maxSteps` steps from `firstStep`, or null when there is nothing to run. */
  plan(firstStep: number, maxSteps: number, withRows: boolean): PlannedWindow | null {
    const kinds: number[] = [];
    const records: Int32Array[] = [];
    const outputs: SlotOutput[][] = [];
    const admitted: string[][] = [];
    const activeSlots: number[] = [];
    while (kinds.length < maxSteps) {
      const entered = this.admit();
      const prefilling = this.slots.some((s) => s !== null && s.prefilled < s.request.promptIds.length);
      const decoding = this.slots.some((s) => s !== null && s.prefilled === s.request.promptIds.length);
      if (!prefilling && !decoding) break;
      const kind = prefilling && (!decoding || this.lastKind === KIND.decode) ? KIND.prefill : KIND.decode;
      activeSlots.push(
        this.slots.filter((sl) => sl !== null && (kind === KIND.prefill) === sl.prefilled < sl.request.promptIds.length)
          .length,
      );
      const record = new Int32Array(withRows ? rowWords(kind, this.shape) : 0);
      outputs.push(kind === KIND.prefill ? this.prefillStep(record, withRows) : this.decodeStep(record, withRows));
      admitted.push(entered);
      kinds.push(kind);
      records.push(record);
      this.lastKind = kind;
      for (const o of outputs[outputs.length - 1]) if (o.last) this.slots[o.slot] = null;
    }
    if (kinds.length === 0) return null;
    let rows: Int32Array | null = null;
    if (withRows) {
      rows = new Int32Array(records.reduce((n, r) => n + r.length, 0));
      let at = 0;
      for (const r of records) {
        rows.set(r, at);
        at += r.length;
      }
    }
    return { firstStep, kinds: Uint8Array.from(kinds), rows, outputs, admitted, activeSlots };
  }

  /** Waiting requests into free slots, lowest slot first; returns the ids that entered. */
  private admit(): string[] {
    const entered: string[] = [];
    for (let b = 0; b < this.slots.length && this.queue.length > 0; b++) {
      if (this.slots[b] !== null) continue;
      const request = this.queue.shift()!;
      this.slots[b] = { request, prefilled: 0, planned: 0 };
      entered.push(request.id);
    }
    return entered;
  }

  /** Every prefilling slot takes its next chunk: [valid rows, first position, chunk ids] per slot. */
  private prefillStep(record: Int32Array, withRows: boolean): SlotOutput[] {
    const T = this.shape.prefillChunk;
    const out: SlotOutput[] = [];
    this.slots.forEach((s, b) => {
      if (s === null || s.prefilled >= s.request.promptIds.length) return;
      const prompt = s.request.promptIds;
      const valid = Math.min(T, prompt.length - s.prefilled);
      if (withRows) {
        const at = b * (2 + T);
        record[at] = valid;
        record[at + 1] = s.prefilled;
        for (let r = 0; r < valid; r++) record[at + 2 + r] = prompt[s.prefilled + r];
      }
      s.prefilled += valid;
      // the prompt's last chunk yields the request's first token
      if (s.prefilled === prompt.length) out.push(this.token(s, b));
    });
    return out;
  }

  /** Every decoding slot generates its next token: [1, position] per slot. */
  private decodeStep(record: Int32Array, withRows: boolean): SlotOutput[] {
    const out: SlotOutput[] = [];
    this.slots.forEach((s, b) => {
      if (s === null || s.prefilled < s.request.promptIds.length) return;
      if (withRows) {
        record[2 * b] = 1;
        record[2 * b + 1] = s.prefilled + s.planned - 1;
      }
      out.push(this.token(s, b));
    });
    return out;
  }

  private token(s: Slot, slot: number): SlotOutput {
    const index = s.planned++;
    return { slot, requestId: s.request.id, index, last: s.planned === s.request.maxTokens };
  }
}

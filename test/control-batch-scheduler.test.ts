import { describe, expect, it } from 'vitest';
import { BatchScheduler, type PlannedWindow } from '../src/control/batch-scheduler.js';
import { KIND } from '../src/runtime/step-kind.js';
import type { RackemuError } from '../src/util/errors.js';

const shape = { batch: 2, prefillChunk: 2 };
const kinds = (w: PlannedWindow) => [...w.kinds].map((k) => (k === KIND.prefill ? 'P' : 'D')).join('');
const tokens = (w: PlannedWindow) =>
  w.outputs.map((o) => o.map((t) => `${t.requestId}#${t.index}@${t.slot}`).join(' '));

describe('batch scheduler', () => {
  it('batch scheduler - one request: its prompt in chunks, then a decode step per further token', () => {
    const s = new BatchScheduler(shape, 4);
    s.enqueue({ id: 'a', promptIds: [5, 6, 7], maxTokens: 3 });
    const w = s.plan(10, 16, true)!;
    expect(w.firstStep).toBe(10);
    expect(kinds(w)).toBe('PPDD');
    expect(tokens(w)).toEqual(['', 'a#0@0', 'a#1@0', 'a#2@0']);
    expect(w.admitted[0]).toEqual(['a']);
    // rows: prefill [valid, start, id, id] per slot, decode [active, position] per slot
    expect([...w.rows!]).toEqual([2, 0, 5, 6, 0, 0, 0, 0, 1, 2, 7, 0, 0, 0, 0, 0, 1, 3, 0, 0, 1, 4, 0, 0]);
    expect(s.running).toBe(0);
    expect(s.plan(14, 16, true)).toBeNull();
  });

  it('batch scheduler - prefill and decode alternate while both have work; slots are reused as requests end', () => {
    const s = new BatchScheduler(shape, 4);
    s.enqueue({ id: 'a', promptIds: [1], maxTokens: 4 });
    expect(kinds(s.plan(0, 2, false)!)).toBe('PD'); // a's prompt, then its second token
    s.enqueue({ id: 'b', promptIds: [1, 2, 3], maxTokens: 1 });
    s.enqueue({ id: 'c', promptIds: [9], maxTokens: 1 });
    const w = s.plan(2, 16, false)!;
    // b enters slot 1 and prefills in two chunks, each after a decode step of a; c waits for a free
    // slot, takes b's once b is done, and prefills after a's next decode step
    expect(kinds(w)).toBe('PDPDP');
    expect(tokens(w)).toEqual(['', 'a#2@0', 'b#0@1', 'a#3@0', 'c#0@1']);
    expect(w.admitted).toEqual([['b'], [], [], ['c'], []]);
    expect(w.rows).toBeNull();
  });

  it('batch scheduler - a full queue refuses with a code; finish frees a slot for the next window', () => {
    const s = new BatchScheduler({ batch: 1, prefillChunk: 4 }, 2);
    s.enqueue({ id: 'a', promptIds: [1], maxTokens: 100 });
    s.enqueue({ id: 'b', promptIds: [2], maxTokens: 1 });
    let err: RackemuError | undefined;
    try {
      s.enqueue({ id: 'c', promptIds: [3], maxTokens: 1 });
    } catch (e) {
      err = e as RackemuError;
    }
    expect(err?.code).toBe('RACKEMU_ERR_QUEUE_FULL');
    expect(kinds(s.plan(0, 3, false)!)).toBe('PDD');
    expect(s.waiting).toBe(1);
    s.finish('a'); // a stopped early (EOS)
    const w = s.plan(3, 3, false)!;
    expect(tokens(w)).toEqual(['b#0@0']);
    expect(s.running + s.waiting).toBe(0);
  });

  it('batch scheduler - KV tokens held count prompt and planned tokens of the running slots', () => {
    const s = new BatchScheduler(shape, 4);
    s.enqueue({ id: 'a', promptIds: [1, 2, 3], maxTokens: 5 });
    s.plan(0, 3, false); // P P D: 3 prompt tokens, 2 planned
    expect(s.kvTokens).toBe(5);
  });
});

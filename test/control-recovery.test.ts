import { describe, expect, it } from 'vitest';
import { BatchScheduler, type PlannedWindow } from '../src/control/batch-scheduler.js';
import { replayLive, type Live } from '../src/control/engine-live.js';
import { WindowFlights } from '../src/control/window-flights.js';
import type { StepSamples } from '../src/runtime/index.js';

const planned = (firstStep: number): PlannedWindow => ({
  firstStep,
  kinds: new Uint8Array(4),
  rows: null,
  outputs: [],
  admitted: [],
  activeSlots: [],
});
const samples = (firstStep: number): StepSamples => ({ firstStep, ticks: [firstStep], ids: null });

describe('control recovery', () => {
  it('control - a window hands its samples on only after every earlier window completed', () => {
    const got: number[] = [];
    const flights = new WindowFlights((_, s) => got.push(s.firstStep));
    const a = flights.add(planned(0), 0);
    const b = flights.add(planned(4), 100);
    flights.samples(a, samples(0));
    flights.samples(b, samples(4)); // held: a has not completed
    expect(got).toEqual([0]);
    a.state = 'ok';
    flights.settle();
    expect(got).toEqual([0, 4]);
    flights.samples(b, samples(5)); // b is now first in line
    expect(got).toEqual([0, 4, 5]);
  });

  it('control - after a failed window every later window is void, even once the failed one has left the line', () => {
    const got: number[] = [];
    const flights = new WindowFlights((_, s) => got.push(s.firstStep));
    const a = flights.add(planned(0), 0);
    const b = flights.add(planned(4), 100);
    const c = flights.add(planned(8), 200);
    flights.samples(a, samples(1)); // before its failure: valid
    flights.samples(b, samples(4)); // held
    flights.fail(a);
    flights.settle();
    flights.samples(b, samples(5)); // b completes on undefined KV caches: void
    b.state = 'ok';
    flights.settle();
    flights.samples(c, samples(8));
    expect(got).toEqual([1]);
    expect(b.void && c.void).toBe(true);
    flights.clear();
    flights.samples(c, samples(9)); // a window from before a recovery
    expect(got).toEqual([1]);
  });

  it('control - recovery replays every request in flight from its prompt and the tokens it has, in arrival order', () => {
    const scheduler = new BatchScheduler({ batch: 2, prefillChunk: 4 }, 1);
    const live = (id: string, prompt: number[], tokens: number[], maxTokens: number, done = false): Live => ({
      request: { id, promptIds: prompt, maxTokens },
      resolve: () => undefined,
      reject: () => undefined,
      arrivalTick: 0,
      admitTick: 0,
      wallStart: 0,
      wallFirst: 0,
      tokens,
      ticks: tokens.map(() => 0),
      done,
      offset: 0,
    });
    const lives = [
      live('a', [1, 2], [7, 8], 5),
      live('b', [3], [], 2),
      live('c', [4], [9], 1, true),
      live('d', [5], [6], 3),
    ];
    // the scheduler holds planned steps from before the failure: they are forgotten
    scheduler.enqueue({ id: 'x', promptIds: [1], maxTokens: 1 });
    const r = replayLive(lives, scheduler);
    expect(r).toEqual({ requests: 3, tokens: 3 });
    expect(lives.map((l) => l.offset)).toEqual([2, 0, 0, 1]);
    // more than maxWaiting (1) wait: replays go ahead of the limit
    expect(scheduler.waiting).toBe(3);
    const w = scheduler.plan(0, 8, true)!;
    // a's replay prefills prompt + tokens [1, 2, 7, 8] and its next token is its third (index 0 of the replay)
    expect(Array.from(w.rows!.subarray(0, 6))).toEqual([4, 0, 1, 2, 7, 8]);
    const firstOfA = w.outputs.flat().find((o) => o.requestId === 'a')!;
    expect(firstOfA.index + lives[0].offset).toBe(2);
    expect(
      w.outputs
        .flat()
        .filter((o) => o.requestId === 'a')
        .at(-1)!.last,
    ).toBe(true);
    expect(w.outputs.flat().some((o) => o.requestId === 'x' || o.requestId === 'c')).toBe(false);
  });
});

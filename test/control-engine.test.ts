import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { predict } from '../src/compiler/report.js';
import type { Deployment } from '../src/control/deployment.js';
import { Engine, type EngineObserver } from '../src/control/engine.js';
import { FILLER_TOKEN_ID, type CompletionResult, type TokenEvent } from '../src/control/engine-types.js';
import { referenceGenerate } from '../src/runtime/reference.js';
import type { RackemuError } from '../src/util/errors.js';
import { deploy, setup, type Setup } from './helpers/deploy.js';
import { MIXED_REQUESTS } from './helpers/requests.js';

/** More requests than one batch (or micro-batch) holds: the scheduler fills every slot. */
const REQUESTS = MIXED_REQUESTS.map((r) => ({ promptIds: [...r.promptIds], maxTokens: r.maxTokens }));

function recorder(): EngineObserver & { activeRows: number[] } {
  const activeRows: number[] = [];
  return { activeRows, stepRan: (s) => activeRows.push(s.activeRows) };
}

describe('serving engine, numeric', () => {
  let s: Setup;
  let d: Deployment;
  beforeAll(async () => {
    s = setup('groq-72', 'mixtral-tiny', ['chip.sram_mib=0.1'], { context: 64, batch: 4, promptTokens: 3 });
    d = await deploy(s);
  });
  afterAll(() => d?.stop());

  it('engine - concurrent requests share the batch, and each gets the tokens it gets alone and from the reference', async () => {
    const obs = recorder();
    const engine = new Engine(d, s.plan, { pace: 'max', windowSteps: 6, observer: obs });
    const events = new Map<string, TokenEvent[]>();
    const results = await Promise.all(
      REQUESTS.map((r, i) => {
        const id = `r${i}`;
        events.set(id, []);
        return engine.submit({ id, ...r }, (e) => events.get(id)!.push(e));
      }),
    );
    // batching happened: some step carried several requests' rows
    expect(Math.max(...obs.activeRows)).toBeGreaterThan(1);
    for (const [i, r] of REQUESTS.entries()) {
      const res = results[i];
      const ref = referenceGenerate(s.plan.model, s.weights!, r.promptIds, r.maxTokens).tokens;
      expect(res.tokenIds, `request ${i}`).toEqual(ref);
      expect(res.finishReason).toBe('length');
      expect(events.get(`r${i}`)!.map((e) => e.tokenId)).toEqual(res.tokenIds);
      expect(events.get(`r${i}`)!.map((e) => e.index)).toEqual(res.tokenIds.map((_, k) => k));
      expect(res.virtual.ttftMs).toBeGreaterThan(0);
    }
    // and the same as generate, which runs each alone
    for (const r of REQUESTS.slice(0, 3)) {
      const solo = await d.generate({ promptIds: r.promptIds, maxNewTokens: r.maxTokens });
      expect(results[REQUESTS.indexOf(r)].tokenIds).toEqual(solo.tokens);
    }
  });

  it('engine - a stop id ends a request early; bad requests are refused with codes', async () => {
    const engine = new Engine(d, s.plan, { pace: 'max', windowSteps: 4, maxWaiting: 2 });
    const alone = await engine.submit({ id: 'a', promptIds: [1, 2, 3, 4, 5], maxTokens: 6 });
    const stopAt = alone.tokenIds[2];
    const first = alone.tokenIds.indexOf(stopAt);
    const stopped = await engine.submit({ id: 'b', promptIds: [1, 2, 3, 4, 5], maxTokens: 6, stopIds: [stopAt] });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.tokenIds).toEqual(alone.tokenIds.slice(0, first + 1));
    const code = (p: Promise<CompletionResult>) =>
      p.then(
        () => 'ok',
        (e: RackemuError) => e.code,
      );
    expect(await code(engine.submit({ id: 'c', promptIds: [1, 99999], maxTokens: 2 }))).toBe('RACKEMU_ERR_REQUEST');
    expect(await code(engine.submit({ id: 'd', promptIds: [1], maxTokens: 64 }))).toBe('RACKEMU_ERR_REQUEST');
    expect(await code(engine.submit({ id: 'e', promptIds: [1], maxTokens: 0 }))).toBe('RACKEMU_ERR_REQUEST');
    const drained = engine.drain();
    expect(await code(engine.submit({ id: 'f', promptIds: [1], maxTokens: 1 }))).toBe('RACKEMU_ERR_DRAINING');
    await drained;
  });
});

describe('serving engine, timing', () => {
  it('engine - timing fidelity serves filler tokens with the predicted virtual timings', async () => {
    const s = setup('groq-72', 'mixtral-tiny', ['chip.sram_mib=0.1'], {
      context: 64,
      batch: 2,
      promptTokens: 4,
      numeric: false,
    });
    const d = await deploy(s, { fidelity: 'timing', weights: null });
    try {
      const engine = new Engine(d, s.plan, { pace: 'max', windowSteps: 8 });
      const alone = await engine.submit({ id: 'x', promptIds: [1, 2, 3, 4], maxTokens: 5 });
      expect(alone.fidelity).toBe('timing');
      expect(alone.tokenIds).toEqual([
        FILLER_TOKEN_ID,
        FILLER_TOKEN_ID,
        FILLER_TOKEN_ID,
        FILLER_TOKEN_ID,
        FILLER_TOKEN_ID,
      ]);
      const p = predict(s.plan);
      expect(alone.virtual.ttftMs).toBeCloseTo(p.ttft_ms, 6);
      expect(alone.virtual.tpotMs).toBeCloseTo(p.tpot_ms, 6);
      expect(alone.virtual.queueMs).toBe(0);
      const two = await Promise.all([1, 2].map((i) => engine.submit({ id: `y${i}`, promptIds: [5, 6], maxTokens: 3 })));
      for (const r of two) expect(r.tokenIds).toHaveLength(3);
      // a request over several windows, queued on the chips while earlier ones run: peers send a
      // window's frames before a chip has begun it, and nothing is lost or out of schedule
      const long = await engine.submit({ id: 'long', promptIds: [1, 2, 3, 4], maxTokens: 30 });
      expect(long.tokenIds).toHaveLength(30);
      expect(long.virtual.tpotMs).toBeCloseTo(p.tpot_ms, 6);
      // realtime pacing: no token reaches its client before its virtual time
      const paced = new Engine(d, s.plan, { pace: 'realtime', windowSteps: 4 });
      const seen: { wall: number; virtual: number }[] = [];
      const t0 = performance.now();
      const r = await paced.submit({ id: 'z', promptIds: [1, 2, 3, 4], maxTokens: 8 }, (e) =>
        seen.push({ wall: performance.now() - t0, virtual: e.virtualMs }),
      );
      expect(r.tokenIds).toHaveLength(8);
      for (const e of seen) expect(e.wall).toBeGreaterThanOrEqual(e.virtual - 1);
      expect(r.wall.ttftMs).toBeGreaterThanOrEqual(r.virtual.ttftMs - 1);
    } finally {
      await d.stop();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { predict } from '../src/compiler/report.js';
import type { Deployment } from '../src/control/deployment.js';
import { Engine, type EngineObserver } from '../src/control/engine.js';
import { referenceGenerate } from '../src/runtime/reference.js';
import { deploy, setup, type Setup } from './helpers/deploy.js';
import { MIXED_REQUESTS } from './helpers/requests.js';

/** More requests than one batch (or micro-batch) holds: the scheduler fills every slot. */
const REQUESTS = MIXED_REQUESTS.map((r) => ({ promptIds: [...r.promptIds], maxTokens: r.maxTokens }));

describe('runtime pipeline, numeric', () => {
  let s: Setup;
  let d: Deployment;
  beforeAll(async () => {
    // mixtral-tiny over the 8 layer groups of groq-72 (SRAM shrunk), 2 micro-batches of 2 sequences
    s = setup('groq-72', 'mixtral-tiny', ['chip.sram_mib=0.1'], {
      context: 64,
      batch: 2,
      microBatches: 2,
      promptTokens: 3,
    });
    d = await deploy(s);
  });
  afterAll(() => d?.stop());

  it('runtime pipeline - requests in both micro-batches get the tokens they get alone and from the reference', async () => {
    expect(s.plan.layout.groups.length).toBeGreaterThanOrEqual(2);
    const active: number[] = [];
    const obs: EngineObserver = { stepRan: (x) => active.push(x.activeRows) };
    const engine = new Engine(d, s.plan, { pace: 'max', windowSteps: 6, observer: obs });
    const results = await Promise.all(REQUESTS.map((r, i) => engine.submit({ id: `r${i}`, ...r })));
    // steps carried more sequences than one micro-batch holds (2): the second micro-batch ran too
    expect(Math.max(...active)).toBeGreaterThan(2);
    for (const [i, r] of REQUESTS.entries()) {
      const ref = referenceGenerate(s.plan.model, s.weights!, r.promptIds, r.maxTokens).tokens;
      expect(results[i].tokenIds, `request ${i}`).toEqual(ref);
    }
    const solo = await d.generate({ promptIds: REQUESTS[0].promptIds, maxNewTokens: REQUESTS[0].maxTokens });
    expect(solo.tokens).toEqual(results[0].tokenIds);
    expect(solo.violations).toHaveLength(0);
  });
});

describe('runtime pipeline, timing', () => {
  it('runtime pipeline - mixtral-8x7b on groq-576 in 4 micro-batches: the predicted virtual timings, no violations', async () => {
    const s = setup('groq-576', 'mixtral-8x7b', [], {
      context: 4096,
      batch: 1,
      microBatches: 4,
      promptTokens: 4,
      numeric: false,
    });
    const d = await deploy(s, { fidelity: 'timing', weights: null });
    try {
      const p = predict(s.plan);
      const solo = await d.generate({ promptIds: [1, 2, 3, 4], maxNewTokens: 8 });
      expect(solo.violations).toHaveLength(0);
      expect(solo.virtual.ttftMs).toBeCloseTo(p.ttft_ms, 6);
      expect(solo.virtual.tpotMs).toBeCloseTo(p.tpot_ms, 6);
      // four users at once, one per micro-batch: each at the predicted time per output token
      const engine = new Engine(d, s.plan, { pace: 'max', windowSteps: 16 });
      const four = await Promise.all(
        [0, 1, 2, 3].map((i) => engine.submit({ id: `u${i}`, promptIds: [1, 2, 3, 4], maxTokens: 6 })),
      );
      for (const r of four) {
        expect(r.tokenIds).toHaveLength(6);
        expect(r.virtual.tpotMs).toBeCloseTo(p.tpot_ms, 6);
      }
    } finally {
      await d.stop();
    }
  }, 300_000);
});

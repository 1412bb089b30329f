import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnNatsServer, type SpawnedNatsServer } from '../src/transport/nats-server.js';
import { type RunError } from '../src/util/errors.js';
import { predict } from '../src/compiler/report.js';
import type { Deployment, GenerateResult } from '../src/control/deployment.js';
import { createRandomWeights } from '../src/model/random-weights.js';
import { writeSafetensors, type TensorToWrite } from '../src/model/safetensors.js';
import { requiredTensors } from '../src/model/tensors.js';
import { BUILTIN_MODELS, TINY_WEIGHT_SEED } from '../src/model/builtin.js';
import { referenceGenerate } from '../src/runtime/reference.js';
import { DEFAULT_LOOKAHEAD_STEPS } from '../src/runtime/run-spec.js';
import { deploy, maxRelError, setup } from './helpers/deploy.js';

const PROMPT = [1, 2, 3, 4, 5];
/** mixtral-tiny's classic layout on groq-72: attention over 2 chips, so attention partials travel (fault targets). */
const CLASSIC_72 = { context: 48, promptTokens: PROMPT.length, layoutSearch: 'classic' } as const;

/**
 * A fault target: the first decode transfer whose tensor name starts with `prefix` (tensor, sending
 * and receiving chip), and how many prefill steps a PROMPT run has before its decode steps.
 */
function faultTarget(
  s: ReturnType<typeof setup>,
  prefix: string,
): { target: { tensor: string; src: string; dst: string }; prefillSteps: number } {
  const step = s.plan.steps.decode;
  const tr = step.transfers.find((t) => step.tensors[t.tensor].name.startsWith(prefix))!;
  return {
    target: { tensor: step.tensors[tr.tensor].name, src: s.fabric.chipId(tr.src), dst: s.fabric.chipId(tr.dst) },
    prefillSteps: Math.ceil(PROMPT.length / s.plan.options.prefillChunk),
  };
}

function expectMatchesReference(r: GenerateResult, ref: { tokens: number[]; finalLogits: Float32Array }): void {
  expect(r.violations).toEqual([]);
  expect(r.tokens).toEqual(ref.tokens);
  expect(r.finalLogits).not.toBeNull();
  expect(maxRelError(r.finalLogits!, ref.finalLogits)).toBeLessThan(1e-4);
}

describe('runtime generate', () => {
  it('runtime - mixtral-tiny over 300+ chips of groq-576 generates the reference tokens and logits', async () => {
    const s = setup('groq-576', 'mixtral-tiny', ['chip.sram_mib=0.03'], { context: 64, promptTokens: PROMPT.length });
    expect(s.plan.programs.size).toBeGreaterThanOrEqual(256);
    const d = await deploy(s);
    try {
      const r = await d.generate({ promptIds: PROMPT, maxNewTokens: 6 });
      expectMatchesReference(r, referenceGenerate(s.plan.model, s.weights!, PROMPT, 6));
      // virtual time comes from the Plan: the run reproduces the compiler's prediction exactly
      const p = predict(s.plan);
      expect(r.virtual.ttftMs).toBeCloseTo(p.ttft_ms, 9);
      expect(r.virtual.tpotMs).toBeCloseTo(p.tpot_ms, 9);
      expect(r.messages.frames).toBe(
        Math.ceil(PROMPT.length / s.plan.options.prefillChunk) * s.plan.steps.prefill.transfers.length +
          5 * s.plan.steps.decode.transfers.length,
      );
    } finally {
      await d.stop();
    }
  });

  const families = [
    { family: 'mixtral', dtype: 'F32' },
    { family: 'mixtral', dtype: 'BF16' },
    { family: 'llama', dtype: 'BF16' },
    { family: 'mistral', dtype: 'F32' },
  ] as const;
  for (const { family, dtype } of families) {
    it(`runtime - a Hugging Face ${family} folder with ${dtype} safetensors runs distributed like the reference`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `rackemu-hf-${family}-${dtype}-`));
      const moe = family === 'mixtral';
      const config = {
        ...BUILTIN_MODELS['mixtral-tiny'],
        name: `hf-${family}`,
        family,
        layers: 2,
        maxPositions: 64,
        experts: moe ? 8 : 1,
        expertsPerToken: moe ? 2 : 1,
        // a window shorter than the run so that Mistral's sliding window really masks
        slidingWindow: family === 'mistral' ? 4 : null,
        tieEmbeddings: family === 'llama',
      };
      writeFileSync(
        join(dir, 'config.json'),
        JSON.stringify({
          model_type: family,
          hidden_size: config.hidden,
          num_hidden_layers: config.layers,
          num_attention_heads: config.heads,
          num_key_value_heads: config.kvHeads,
          intermediate_size: config.intermediate,
          vocab_size: config.vocab,
          rope_theta: config.ropeTheta,
          rms_norm_eps: config.rmsNormEps,
          max_position_embeddings: config.maxPositions,
          tie_word_embeddings: config.tieEmbeddings,
          ...(moe ? { num_local_experts: config.experts, num_experts_per_tok: config.expertsPerToken } : {}),
          ...(family === 'mistral' ? { sliding_window: config.slidingWindow } : {}),
        }),
      );
      // weights from a seeded source, written in two shards so the loader has to combine files
      const src = createRandomWeights(config, TINY_WEIGHT_SEED + 1, 'bf16');
      const tensors: TensorToWrite[] = requiredTensors(config).map((t) => ({
        name: t.name,
        dtype,
        shape: t.shape,
        data: src.full(t.name),
      }));
      writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), tensors.slice(0, tensors.length >> 1));
      writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), tensors.slice(tensors.length >> 1));
      const s = setup('groq-72', dir, [`chip.sram_mib=${moe ? 0.04 : 0.02}`], {
        context: 32,
        promptTokens: PROMPT.length,
        dtype: 'bf16',
      });
      expect(s.plan.model.family).toBe(family);
      expect(s.plan.programs.size).toBeGreaterThanOrEqual(16);
      const d = await deploy(s);
      try {
        const r = await d.generate({ promptIds: PROMPT, maxNewTokens: 5 });
        expectMatchesReference(r, referenceGenerate(s.plan.model, s.weights!, PROMPT, 5));
      } finally {
        await d.stop();
      }
    });
  }
});

describe('runtime lockstep', () => {
  const s = setup('groq-72', 'mixtral-tiny', ['chip.sram_mib=0.1'], CLASSIC_72);
  let d: Deployment;
  beforeAll(async () => {
    d = await deploy(s, { watchdogMs: 10000 });
  });
  afterAll(() => d?.stop());

  it('runtime - repeated runs on one deployment give identical tokens, logits and virtual timings', async () => {
    const a = await d.generate({ promptIds: PROMPT, maxNewTokens: 4 });
    const b = await d.generate({ promptIds: PROMPT, maxNewTokens: 4 });
    expect(a.violations).toEqual([]);
    expect(b.tokens).toEqual(a.tokens);
    expect(b.finalLogits).toEqual(a.finalLogits);
    expect(b.virtual.ticks.map((t) => t - b.virtual.ticks[0])).toEqual(
      a.virtual.ticks.map((t) => t - a.virtual.ticks[0]),
    );
    expect(b.virtual.tpotMs).toBe(a.virtual.tpotMs);
  });

  it('runtime - a delayed frame is a violation naming the chips and ticks; the run still completes', async () => {
    const {
      target: { tensor, src, dst },
      prefillSteps,
    } = faultTarget(s, 'o.L1.');
    const r = await d.generate({ promptIds: PROMPT, maxNewTokens: 3 });
    expect(r.violations).toEqual([]);
    // fault steps are numbered on the deployment's timeline: the second decode step of the next run
    const late = await d.generate({
      promptIds: PROMPT,
      maxNewTokens: 3,
      faults: [{ kind: 'delay', step: d.nextStep + prefillSteps + 1, tensor, src, dst, ticks: 100000 }],
    });
    expect(late.violations).toHaveLength(1);
    const v = late.violations[0];
    expect(v).toMatchObject({ kind: 'late', tensor, src, dst });
    expect(v.tick).toBeGreaterThan(v.needBy!);
    expect(v.message).toContain(src);
    expect(v.message).toContain(dst);
    expect(v.message).toContain(`tick ${v.tick}`);
    // lockstep: the timeline stays the compiler's; the fault is one violation, not a cascade
    expect(late.virtual.tpotMs).toBe(r.virtual.tpotMs);
    expect(late.tokens).toEqual(r.tokens);
  });

  it('runtime - duplicate and corrupt frames are violations naming the chips', async () => {
    const { target, prefillSteps } = faultTarget(s, 'y.L2.');
    const dup = await d.generate({
      promptIds: PROMPT,
      maxNewTokens: 2,
      faults: [{ kind: 'duplicate', step: d.nextStep + prefillSteps, ...target }],
    });
    expect(dup.violations).toHaveLength(1);
    expect(dup.violations[0]).toMatchObject({ kind: 'duplicate', ...target });
    const corrupt = d.generate({
      promptIds: PROMPT,
      maxNewTokens: 2,
      faults: [{ kind: 'corrupt', step: d.nextStep + prefillSteps, ...target }],
    });
    const err = await corrupt.then(
      () => null,
      (e: unknown) => e as RunError,
    );
    expect(err?.code).toBe('RACKEMU_ERR_SCHEDULE_VIOLATION');
    expect(err?.message).toContain(target.src);
    expect(err?.message).toContain('checksum');
  });
});

describe('runtime missing frames', () => {
  it('runtime - a dropped frame ends the run with a watchdog error naming the chips and tick, not a hang', async () => {
    const s2 = setup('groq-72', 'mixtral-tiny', ['chip.sram_mib=0.1'], CLASSIC_72);
    const d2 = await deploy(s2, { watchdogMs: 8000 });
    try {
      const {
        target: { tensor, src, dst },
        prefillSteps,
      } = faultTarget(s2, 'x.L4');
      const t0 = Date.now();
      const err = await d2
        .generate({
          promptIds: PROMPT,
          maxNewTokens: 3,
          faults: [{ kind: 'drop', step: prefillSteps, tensor, src, dst }],
        })
        .then(
          () => null,
          (e: unknown) => e as RunError,
        );
      expect(Date.now() - t0).toBeLessThan(60000);
      expect(err?.code).toBe('RACKEMU_ERR_WATCHDOG');
      expect(err?.message).toContain(`${tensor} from ${src} to ${dst} (step ${prefillSteps})`);
      expect(err?.message).toMatch(/due at tick \d+/);
      // the deployment recovers: the failed run's leftovers do not leak into the next one
      const again = await d2.generate({ promptIds: PROMPT, maxNewTokens: 3 });
      expect(again.violations).toEqual([]);
      expect(again.tokens).toEqual(referenceGenerate(s2.plan.model, s2.weights!, PROMPT, 3).tokens);
    } finally {
      await d2.stop();
    }
  });
});

describe('runtime transports and isolation', () => {
  let nats: SpawnedNatsServer;
  beforeAll(async () => {
    nats = await spawnNatsServer();
  });
  afterAll(() => nats?.stop());

  it('runtime - embedded vs NATS, threads vs processes: identical tokens, logits and virtual timings', async () => {
    const s = setup('groq-72', 'mixtral-tiny', ['chip.sram_mib=0.1'], CLASSIC_72);
    const results: GenerateResult[] = [];
    for (const opts of [
      { transport: 'embedded', isolation: 'thread' },
      { transport: 'nats', isolation: 'thread', natsUrl: nats.url },
      { transport: 'nats', isolation: 'process', natsUrl: nats.url },
    ] as const) {
      const d = await deploy(s, opts);
      try {
        results.push(await d.generate({ promptIds: PROMPT, maxNewTokens: 4 }));
      } finally {
        await d.stop();
      }
    }
    const [ref, ...others] = results;
    expect(ref.violations).toEqual([]);
    expect(ref.tokens).toEqual(referenceGenerate(s.plan.model, s.weights!, PROMPT, 4).tokens);
    for (const r of others) {
      expect(r.violations).toEqual([]);
      expect(r.tokens).toEqual(ref.tokens);
      expect(r.finalLogits).toEqual(ref.finalLogits);
      expect(r.virtual).toEqual(ref.virtual);
      expect(r.messages.frames).toBe(ref.messages.frames);
    }
  });

  it('runtime - bad deployment options are coded errors', async () => {
    const s = setup('mini-node', 'mixtral-tiny', [], { context: 16, promptTokens: 2 });
    await expect(deploy(s, { transport: 'embedded', isolation: 'process' })).rejects.toMatchObject({
      code: 'RACKEMU_ERR_GENERATE_OPTION',
    });
    await expect(deploy(s, { transport: 'nats', natsUrl: undefined })).rejects.toMatchObject({
      code: 'RACKEMU_ERR_GENERATE_OPTION',
    });
    await expect(deploy(s, { transport: 'nats', natsUrl: 'nats://127.0.0.1:1' })).rejects.toMatchObject({
      code: 'RACKEMU_ERR_NATS_UNAVAILABLE',
    });
    const d = await deploy(s);
    try {
      await expect(d.generate({ promptIds: [], maxNewTokens: 2 })).rejects.toMatchObject({
        code: 'RACKEMU_ERR_GENERATE_OPTION',
      });
      await expect(d.generate({ promptIds: [99999], maxNewTokens: 2 })).rejects.toMatchObject({
        code: 'RACKEMU_ERR_GENERATE_OPTION',
      });
      await expect(d.generate({ promptIds: [1], maxNewTokens: 100 })).rejects.toMatchObject({
        code: 'RACKEMU_ERR_GENERATE_OPTION',
      });
    } finally {
      await d.stop();
    }
  });
});

describe('runtime timing look-ahead', () => {
  // mixtral-tiny spread over a rack, timing fidelity: chips send a step's frames without waiting for
  // their inputs and check what they received up to `lookaheadSteps` steps later.
  const s = setup('groq-72', 'mixtral-tiny', ['chip.sram_mib=0.1'], { ...CLASSIC_72, numeric: false });
  let d: Deployment;
  let nats: SpawnedNatsServer;
  beforeAll(async () => {
    d = await deploy(s, { fidelity: 'timing', watchdogMs: 8000 });
    nats = await spawnNatsServer();
  });
  afterAll(async () => {
    await d?.stop();
    await nats?.stop();
  });

  it('runtime - every look-ahead, on both transports, gives the predicted virtual timings and the same frames', async () => {
    const p = predict(s.plan);
    const runs: GenerateResult[] = [];
    for (const lookaheadSteps of [0, 1, 3, undefined])
      runs.push(await d.generate({ promptIds: PROMPT, maxNewTokens: 12, lookaheadSteps }));
    const dn = await deploy(s, { fidelity: 'timing', transport: 'nats', natsUrl: nats.url });
    try {
      runs.push(await dn.generate({ promptIds: PROMPT, maxNewTokens: 12 }));
    } finally {
      await dn.stop();
    }
    const [ref, ...others] = runs;
    // each link's frames of a look-ahead window travel as one bundle: one transport message per
    // (link, window) that has frames (the embedded runs, in look-ahead order)
    const prefillSteps = Math.ceil(PROMPT.length / s.plan.options.prefillChunk);
    const links = (kind: 'prefill' | 'decode') => new Set(s.plan.steps[kind].transfers.map((t) => `${t.src}>${t.dst}`));
    const kinds = [...Array<'prefill'>(prefillSteps).fill('prefill'), ...Array<'decode'>(11).fill('decode')];
    [0, 1, 3, DEFAULT_LOOKAHEAD_STEPS].forEach((lookahead, i) => {
      let messages = 0;
      for (let from = 0; from < kinds.length; from += lookahead + 1) {
        messages += new Set(kinds.slice(from, from + lookahead + 1).flatMap((k) => [...links(k)])).size;
      }
      expect(runs[i].messages.transportMessages, `look-ahead ${lookahead}`).toBe(messages);
    });
    expect(ref.violations).toEqual([]);
    expect(ref.generated).toBe(12);
    expect(ref.virtual.tpotMs).toBeCloseTo(p.tpot_ms, 9);
    expect(ref.virtual.ttftMs).toBeCloseTo(p.ttft_ms, 9);
    const relative = (r: GenerateResult) => r.virtual.ticks.map((t) => t - r.virtual.ticks[0]);
    for (const r of others) {
      expect(r.violations).toEqual([]);
      expect(r.messages.decoded).toBe(0);
      expect(relative(r)).toEqual(relative(ref));
      expect(r.virtual.tpotMs).toBe(ref.virtual.tpotMs);
      expect(r.virtual.ttftMs).toBe(ref.virtual.ttftMs);
      expect(r.messages.frames).toBe(ref.messages.frames);
      expect(r.messages.bytes).toBe(ref.messages.bytes);
    }
  });

  it('runtime - with look-ahead a delayed frame is still exactly one late violation, and a dropped one a watchdog error', async () => {
    const { target, prefillSteps } = faultTarget(s, 'o.L1.');
    const late = await d.generate({
      promptIds: PROMPT,
      maxNewTokens: 6,
      lookaheadSteps: 4,
      faults: [{ kind: 'delay', step: d.nextStep + prefillSteps + 2, ...target, ticks: 50000 }],
    });
    expect(late.violations).toHaveLength(1);
    expect(late.violations[0]).toMatchObject({ kind: 'late', ...target, step: d.nextStep - 6 + prefillSteps + 2 });
    const dropAt = d.nextStep + prefillSteps + 1;
    const err = await d
      .generate({
        promptIds: PROMPT,
        maxNewTokens: 6,
        lookaheadSteps: 4,
        faults: [{ kind: 'drop', step: dropAt, ...target }],
      })
      .then(
        () => null,
        (e: unknown) => e as RunError,
      );
    expect(err?.code).toBe('RACKEMU_ERR_WATCHDOG');
    expect(err?.message).toContain(`${target.tensor} from ${target.src} to ${target.dst} (step ${dropAt})`);
    // the deployment recovers: the failed run's leftovers do not leak into the next one
    const again = await d.generate({ promptIds: PROMPT, maxNewTokens: 6, lookaheadSteps: 4 });
    expect(again.violations).toEqual([]);
    expect(again.virtual.tpotMs).toBe(late.virtual.tpotMs);
  });

  it('runtime - timing chips check frames by their bytes and decode only the ones that differ', async () => {
    const { target, prefillSteps } = faultTarget(s, 'y.L2.');
    const clean = await d.generate({ promptIds: PROMPT, maxNewTokens: 8, lookaheadSteps: 2 });
    expect(clean.violations).toEqual([]);
    // a healthy run decodes nothing: bundles are compared whole, even those that came before a chip's run began
    expect(clean.messages.decoded).toBe(0);
    // a duplicated frame: one violation of that kind, and the frames after it are checked as before
    const at = d.nextStep + prefillSteps + 1;
    const dup = await d.generate({
      promptIds: PROMPT,
      maxNewTokens: 8,
      lookaheadSteps: 2,
      faults: [{ kind: 'duplicate', step: at, ...target }],
    });
    expect(dup.violations).toHaveLength(1);
    expect(dup.violations[0]).toMatchObject({ kind: 'duplicate', ...target, step: at });
    expect(dup.messages.frames).toBe(clean.messages.frames);
    expect(dup.virtual.tpotMs).toBe(clean.virtual.tpotMs);
    // a delayed frame is decoded (its tick differs from the schedule's) and is one late violation
    const lateAt = d.nextStep + prefillSteps + 3;
    const late = await d.generate({
      promptIds: PROMPT,
      maxNewTokens: 8,
      lookaheadSteps: 2,
      faults: [{ kind: 'delay', step: lateAt, ...target, ticks: 50000 }],
    });
    expect(late.violations).toHaveLength(1);
    expect(late.violations[0]).toMatchObject({ kind: 'late', ...target, step: lateAt });
    expect(late.messages.decoded).toBeGreaterThanOrEqual(1);
  });

  it('runtime - a look-ahead that is not an integer >= 0 is a coded error', async () => {
    await expect(d.generate({ promptIds: PROMPT, maxNewTokens: 2, lookaheadSteps: -1 })).rejects.toMatchObject({
      code: 'RACKEMU_ERR_GENERATE_OPTION',
    });
    await expect(d.generate({ promptIds: PROMPT, maxNewTokens: 2, lookaheadSteps: 1.5 })).rejects.toMatchObject({
      code: 'RACKEMU_ERR_GENERATE_OPTION',
    });
  });
});

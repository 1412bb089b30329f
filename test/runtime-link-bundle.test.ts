import { describe, expect, it } from 'vitest';
import type { Instruction } from '../src/compiler/plan.js';
import type { TensorMeta } from '../src/runtime/chip-types.js';
import { LinkBundle, RunTimeline, type LinkFrame } from '../src/runtime/link-bundle.js';
import { soloWindow, windowSteps, type StepInstance } from '../src/runtime/run-spec.js';
import { frameTemplate, stepRecvs, TimingReceiver } from '../src/runtime/timing-receiver.js';
import { encodeBundle } from '../src/transport/internal.js';

const SRC = 'r0.n0.c0';
const DST = 'r0.n1.c3';
const EMPTY = new Uint8Array(0);

const tensor = (name: string, rows: number, cols: number): TensorMeta => ({
  name,
  rows,
  cols,
  dtype: 'act',
  bytes: rows * cols * 2,
});
const PREFILL: TensorMeta[] = [tensor('h.L0.pre', 4, 4096)];
const DECODE: TensorMeta[] = [tensor('h.L0', 1, 4096), tensor('o.L0.r1', 1, 2048), tensor('x.L1', 1, 512)];
const PREFILL_TICKS = [1200];
const DECODE_TICKS = [17, 900, 4000];

/** The link's frames per step as the sender lists them (each test makes its own templates). */
function linkFrames(metas: TensorMeta[], ticks: number[]): LinkFrame[] {
  return metas.map((m, i) => ({ template: frameTemplate(m, SRC, DST, 'none'), tick: ticks[i] }));
}

/** What the bundle must be: each frame encoded on its own (FrameTemplate.encode), bundled by encodeBundle. */
function expected(steps: readonly StepInstance[], from: number, to: number, seq: number): Buffer {
  const frames: Uint8Array[] = [];
  for (let s = from; s < to; s++) {
    const st = steps[s];
    const [metas, ticks] = st.kind === 'prefill' ? [PREFILL, PREFILL_TICKS] : [DECODE, DECODE_TICKS];
    metas.forEach((m, i) =>
      frames.push(frameTemplate(m, SRC, DST, 'none').encode(st.index, st.base + ticks[i], seq++, EMPTY)),
    );
  }
  return encodeBundle(frames);
}

/**
 * Runs of `tokens` tokens after a 3-id prompt (prefill chunk 2: two prefill steps), steps numbered on from `offset`.
 */
function run(tokens: number, offset: number, decodeTicks: number): StepInstance[] {
  const shape = { batch: 1, prefillChunk: 2 };
  const window = soloWindow(
    { promptIds: [1, 2, 3], maxNewTokens: tokens },
    { firstStep: offset, baseTick: 0 },
    shape,
    false,
  );
  return windowSteps(window, shape, { prefill: 5000, decode: decodeTicks });
}

describe('runtime link bundle', () => {
  it('link bundle - every window is byte for byte the bundle of its frames, kept images rewritten across integer widths', () => {
    const link = new LinkBundle(linkFrames(PREFILL, PREFILL_TICKS), linkFrames(DECODE, DECODE_TICKS));
    // steps and seqs cross 128, 256 and 65536; ticks cross 2^16 and 2^32 (decode steps of ~2^28 ticks)
    let offset = 100;
    let seq = 60;
    let windows = 0;
    for (const [tokens, window, decodeTicks] of [
      [40, 8, 3000],
      [40, 8, 3000],
      [30, 7, 2 ** 28 + 3],
      [30, 7, 2 ** 28 + 3],
      [5, 64, 70_000],
      // long decodes: windows of one shape whose integers all have one width (the uniform rewrite)
      [300, 32, 1_900_000],
      [300, 32, 1_900_000],
      // ticks past 2^32: nine-byte integers
      [20, 4, 2 ** 31 + 7],
      [20, 4, 2 ** 31 + 7],
    ] as const) {
      const steps = run(tokens, offset, decodeTicks);
      for (let from = 0; from < steps.length; from += window) {
        const to = Math.min(steps.length, from + window);
        const want = expected(steps, from, to, seq);
        const got = link.build(new RunTimeline(steps), from, to, seq);
        expect(
          got === null ? null : Buffer.from(got).equals(want),
          `run at step ${offset}, window [${from}, ${to}), seq ${seq}`,
        ).toBe(true);
        seq += want.readUInt32LE(4);
        windows++;
      }
      offset += steps.length;
    }
    expect(windows).toBeGreaterThan(20);
    expect(seq).toBeGreaterThan(256);
    // seq past 65536: a kept image of the same shape gets a wider integer
    const steps = run(20, offset, 3000);
    for (const s of [65_530, 65_540])
      expect(Buffer.from(link.build(new RunTimeline(steps), 2, 10, s)!).equals(expected(steps, 2, 10, s))).toBe(true);
  });

  it('link bundle - a link with nothing in a window has no bundle', () => {
    const link = new LinkBundle([], linkFrames(DECODE, DECODE_TICKS));
    const steps = new RunTimeline(run(10, 0, 3000));
    expect(link.build(steps, 0, 2, 0)).toBeNull(); // the two prefill steps
    expect(link.build(steps, 0, 3, 0)).not.toBeNull();
  });
});

describe('runtime timing receiver', () => {
  /** A receiver (DST) of the link SRC -> DST, and a sender's LinkBundle for it. */
  function receiver(): { rx: TimingReceiver; tx: LinkBundle } {
    const recvs = (metas: TensorMeta[], ticks: number[]) => {
      const tensors: Record<number, TensorMeta> = {};
      const program: Instruction[] = metas.map((m, i) => {
        tensors[i] = m;
        return { kind: 'recv', tick: ticks[i], needBy: ticks[i] + 10, tensor: i, from: 0, bytes: m.bytes };
      });
      return stepRecvs(program, tensors, { 0: SRC }, DST);
    };
    const rx = new TimingReceiver({ prefill: recvs(PREFILL, PREFILL_TICKS), decode: recvs(DECODE, DECODE_TICKS) });
    return { rx, tx: new LinkBundle(linkFrames(PREFILL, PREFILL_TICKS), linkFrames(DECODE, DECODE_TICKS)) };
  }

  it('timing receiver - takes the bundle of a window whole and declines any other bytes, recording nothing', () => {
    const { rx, tx } = receiver();
    const steps = run(30, 500, 3000);
    const W = 8;
    rx.begin(steps, W);
    const sent = new RunTimeline(steps);
    const missing = () => rx.missing(0, steps.length);
    const total = missing();
    // every single-byte change of the first window's bundle is declined, and nothing is recorded
    const first = Buffer.from(tx.build(sent, 0, W, 0)!);
    for (let i = 0; i < first.length; i++) {
      const bad = Buffer.from(first);
      bad[i] ^= 0x01;
      expect(rx.acceptBundle(bad, SRC), `byte ${i}`).toBe(-1);
    }
    expect(rx.acceptBundle(first.subarray(0, first.length - 8), SRC)).toBe(-1); // a frame short
    expect(rx.acceptBundle(first, 'r9.n9.c9')).toBe(-1); // from a chip that sends this one nothing
    expect(rx.acceptBundle(Buffer.from(tx.build(sent, W, 2 * W, 0)!), SRC)).toBe(-1); // the next window first
    expect(missing()).toBe(total);
    // the right one: all its frames are in, and the next window is expected next, with seq counting on
    expect(rx.acceptBundle(first, SRC)).toBe(0);
    const inFirst = first.readUInt32LE(4);
    expect(rx.missing(0, W)).toBe(0);
    expect(missing()).toBe(total - inFirst);
    expect(rx.acceptBundle(first, SRC)).toBe(-1); // again: a duplicate, declined
    const second = Buffer.from(tx.build(sent, W, 2 * W, inFirst)!);
    expect(rx.acceptBundle(second, SRC)).toBe(W);
    // a frame of the third window that came on its own (through the decoding path): its bundle is declined
    const third = Buffer.from(tx.build(sent, 2 * W, 3 * W, inFirst + second.readUInt32LE(4))!);
    const slot = rx.locate(
      { step: steps[2 * W + 1].index, tensor: DECODE[0].name } as Parameters<TimingReceiver['locate']>[0],
      SRC,
    )!;
    expect(rx.mark(slot.step, slot.slot, 0)).toBe(true);
    expect(rx.acceptBundle(third, SRC)).toBe(-1);
    rx.end();
    expect(rx.acceptBundle(third, SRC)).toBe(-1); // no run
  });
});

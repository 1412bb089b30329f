/**
 * The receive and send state machines of one chip (ChipReceiver with its FrameInbox and ViolationLog,
 * ChipSender), tested without a deployment: no worker threads, frames fed by hand, the way a protocol
 * parser is tested without a server. Programs, tensors and peers are real: ChipInits made by chipInit
 * from a compiled plan (mixtral-tiny spread over groq-72). The frames a peer sends are built from that
 * peer's own ChipInit (its send instructions), with the templates the sender uses, or sent by a real
 * ChipSender over a real embedded endpoint pair.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RecvInstruction, SendInstruction, StepKind } from '../src/compiler/plan.js';
import { chipInit } from '../src/control/chip-inits.js';
import { ChipReceiver } from '../src/runtime/chip-receiver.js';
import { ChipSender } from '../src/runtime/chip-sender.js';
import type { ChipInit, TensorMeta, Violation } from '../src/runtime/chip-types.js';
import { frameKey } from '../src/runtime/frame-inbox.js';
import { LinkBundle, RunTimeline, type LinkFrame } from '../src/runtime/link-bundle.js';
import { soloWindow, windowSteps, type Fidelity, type FrameFault, type StepInstance } from '../src/runtime/run-spec.js';
import { frameTemplate } from '../src/runtime/timing-receiver.js';
import { ViolationLog } from '../src/runtime/violation-log.js';
import {
  bundleCount,
  createEmbeddedFabric,
  decodeFrame,
  encodeFrame,
  openEndpoint,
  splitBundle,
  tensorView,
  type ChipEndpoint,
  type DecodedFrame,
} from '../src/transport/internal.js';
import { RunError } from '../src/util/errors.js';
import { setup } from './helpers/deploy.js';
import { mulberry32 } from './helpers/random.js';

const EMPTY = new Uint8Array(0);
const PROMPT = [1, 2, 3, 4, 5];
/** Watchdog of the ChipInits: only read by the messages and the overdue checks, never waited for. */
const WATCHDOG_MS = 50;

// One compile for the file: mixtral-tiny spread over 64 chips (a few ms, no weights), prefill chunks of
// 3 rows, so that PROMPT takes two prefill steps (the second one padded). The classic layout sends
// attention partials from two chips, so some chip hears several peers per step.
const s = setup('groq-72', 'mixtral-tiny', ['chip.sram_mib=0.1'], {
  context: 32,
  promptTokens: 3,
  numeric: false,
  layoutSearch: 'classic',
});
const chipOf = new Map([...s.plan.programs.keys()].map((c) => [s.fabric.chipId(c), c]));
const inits = new Map<string, ChipInit>();
/** A chip's real ChipInit (kept: nothing mutates one). */
function init(chipId: string, fidelity: Fidelity): ChipInit {
  const key = `${chipId}|${fidelity}`;
  let ci = inits.get(key);
  if (ci === undefined) {
    ci = chipInit(s.plan, s.fabric, chipOf.get(chipId)!, { fidelity, watchdogMs: WATCHDOG_MS });
    inits.set(key, ci);
  }
  return ci;
}

const recvsOf = (ci: ChipInit, kind: StepKind): RecvInstruction[] =>
  ci.program[kind].instructions.filter((ins): ins is RecvInstruction => ins.kind === 'recv');
const sendsOf = (ci: ChipInit, kind: StepKind): SendInstruction[] =>
  ci.program[kind].instructions.filter((ins): ins is SendInstruction => ins.kind === 'send');

/**
 * The receiving chip: the one with the fewest receives per decode step among those that receive from
 * at least two peers, one of which sends it two frames or more per step (so a link carries a sequence).
 */
const RX = (() => {
  let best: { id: string; n: number } | null = null;
  for (const id of chipOf.keys()) {
    const ci = init(id, 'timing');
    const perPeer = new Map<string, number>();
    for (const ins of recvsOf(ci, 'decode')) {
      const p = ci.peers[ins.from];
      perPeer.set(p, (perPeer.get(p) ?? 0) + 1);
    }
    const n = recvsOf(ci, 'decode').length;
    if (perPeer.size >= 2 && Math.max(...perPeer.values()) >= 2 && (best === null || n < best.n)) best = { id, n };
  }
  return best!.id;
})();
/** RX's peers: MULTI sends it several frames per step, SINGLE one. */
const [MULTI, SINGLE] = (() => {
  const ci = init(RX, 'timing');
  const count = (p: string) => recvsOf(ci, 'decode').filter((ins) => ci.peers[ins.from] === p).length;
  const peers = [...new Set(recvsOf(ci, 'decode').map((ins) => ci.peers[ins.from]))];
  peers.sort((a, b) => count(b) - count(a));
  return [peers[0], peers[peers.length - 1]];
})();

/** A run of 2 prefill steps (prompt 5, chunk 3) and 4 decode steps, numbered from `stepOffset`. */
const steps = (stepOffset = 0): StepInstance[] => {
  const ci = init(RX, 'timing');
  const window = soloWindow({ promptIds: PROMPT, maxNewTokens: 5 }, { firstStep: stepOffset, baseTick: 0 }, ci, true);
  return windowSteps(window, ci, ci.stepLengths);
};

/** One frame `src` sends `dst` in a run, as the sender's Program has it. */
interface PeerFrame {
  /** Index of its step in the run. */
  readonly s: number;
  readonly step: number;
  readonly src: string;
  readonly dst: string;
  readonly meta: TensorMeta;
  readonly tick: number;
  readonly seq: number;
  /** The timing-fidelity frame (dtype 'none'), as the sender's template encodes it. */
  readonly bytes: Buffer;
}

/** The frames `src` sends `dst` in run steps [from, to), in send order, seq counting from `seq0`. */
function peerFrames(
  src: string,
  dst: string,
  run: readonly StepInstance[],
  from = 0,
  to = run.length,
  seq0 = 0,
): PeerFrame[] {
  const ci = init(src, 'timing');
  const out: PeerFrame[] = [];
  let seq = seq0;
  for (let i = from; i < to; i++) {
    const st = run[i];
    for (const ins of sendsOf(ci, st.kind)) {
      if (ci.peers[ins.to] !== dst) continue;
      const meta = ci.tensors[st.kind][ins.tensor];
      const tick = st.base + ins.arrive;
      const bytes = frameTemplate(meta, src, dst, 'none').encode(st.index, tick, seq, EMPTY);
      out.push({ s: i, step: st.index, src, dst, meta, tick, seq: seq++, bytes });
    }
  }
  return out;
}

/** RX's frames from both peers in run steps [from, to), interleaved by step and tick (each link in order). */
function rxFrames(run: readonly StepInstance[], from = 0, to = run.length): PeerFrame[] {
  const all = [...peerFrames(MULTI, RX, run), ...peerFrames(SINGLE, RX, run)];
  return all.filter((f) => f.s >= from && f.s < to).sort((a, b) => a.s - b.s || a.tick - b.tick);
}

/** A timing frame like `f` with some header fields changed. */
function altered(f: PeerFrame, change: { tick?: number; tensor?: string; step?: number }): Buffer {
  const { meta } = f;
  return encodeFrame(
    {
      src: f.src,
      dst: f.dst,
      step: change.step ?? f.step,
      tick: change.tick ?? f.tick,
      tensor: change.tensor ?? meta.name,
      dtype: 'none',
      shape: [meta.rows, meta.dtype === 'argmax' ? 2 : meta.cols],
      byteLength: meta.bytes,
      seq: f.seq,
    },
    EMPTY,
  );
}

/** The LinkBundle of the link src -> dst, built from src's Program as the sender builds it. */
function linkBundle(src: string, dst: string): LinkBundle {
  const ci = init(src, 'timing');
  const frames = (kind: StepKind): LinkFrame[] =>
    sendsOf(ci, kind)
      .filter((ins) => ci.peers[ins.to] === dst)
      .map((ins) => ({ template: frameTemplate(ci.tensors[kind][ins.tensor], src, dst, 'none'), tick: ins.arrive }));
  return new LinkBundle(frames('prefill'), frames('decode'));
}

/** A receiver of RX with its violation log and the errors it aborted with. */
function receiver(fidelity: Fidelity): { r: ChipReceiver; log: ViolationLog; aborts: RunError[]; ci: ChipInit } {
  const ci = init(RX, fidelity);
  const log = new ViolationLog(RX);
  const aborts: RunError[] = [];
  return { r: new ChipReceiver(ci, log, (e) => aborts.push(e)), log, aborts, ci };
}

const kinds = (vs: readonly Violation[]) => vs.map((v) => v.kind);

describe('chip receiver, timing fidelity', () => {
  it('receiver - plan: the receiving chip has several receives from two peers, one link carrying a sequence', () => {
    const ci = init(RX, 'timing');
    const peers = new Set(recvsOf(ci, 'decode').map((ins) => ci.peers[ins.from]));
    expect(peers.size).toBeGreaterThanOrEqual(2);
    expect(MULTI).not.toBe(SINGLE);
    expect(peerFrames(MULTI, RX, steps()).length).toBeGreaterThan(peerFrames(SINGLE, RX, steps()).length);
    expect(rxFrames(steps()).length).toBe(steps().reduce((n, st) => n + recvsOf(ci, st.kind).length, 0));
    expect(steps().map((st) => st.kind)).toEqual(['prefill', 'prefill', 'decode', 'decode', 'decode', 'decode']);
  });

  it('receiver - timing frames in order are taken by byte comparison without decoding', () => {
    const { r, log, aborts } = receiver('timing');
    const run = steps();
    r.beginRun(run, run.length, false);
    const frames = rxFrames(run);
    expect(r.missingInWindow(0, run.length)).toBe(frames.length);
    for (const f of frames) {
      r.onFrame(f.bytes, f.src);
      // each frame is counted at its step as it comes
      if (f === frames.findLast((g) => g.s === f.s)) expect(r.missingInWindow(f.s, f.s + 1)).toBe(0);
    }
    expect(r.missingInWindow(0, run.length)).toBe(0);
    expect(r.takeDecoded()).toBe(0);
    r.endRun(true);
    expect(log.recorded).toEqual([]);
    expect(aborts).toEqual([]);
  });

  it('receiver - a whole window bundle per link is taken in one call; a bundle out of turn is declined', () => {
    const { r, log, aborts } = receiver('timing');
    const run = steps();
    const W = 3;
    r.beginRun(run, W, false);
    const timeline = new RunTimeline(run);
    const multi = linkBundle(MULTI, RX);
    const single = linkBundle(SINGLE, RX);
    const inFirst = (p: string) => peerFrames(p, RX, run, 0, W).length;
    // the second window before the first: declined, nothing recorded
    expect(r.onBundle(Buffer.from(multi.build(timeline, W, run.length, inFirst(MULTI))!), MULTI)).toBe(false);
    expect(r.missingInWindow(0, run.length)).toBe(rxFrames(run).length);
    expect(r.onBundle(Buffer.from(multi.build(timeline, 0, W, 0)!), MULTI)).toBe(true);
    expect(r.missingInWindow(0, W)).toBe(inFirst(SINGLE));
    expect(r.onBundle(Buffer.from(single.build(timeline, 0, W, 0)!), SINGLE)).toBe(true);
    expect(r.missingInWindow(0, W)).toBe(0);
    // the next window's bundles continue each link's seq
    expect(r.onBundle(Buffer.from(multi.build(timeline, W, run.length, inFirst(MULTI))!), MULTI)).toBe(true);
    expect(r.onBundle(Buffer.from(single.build(timeline, W, run.length, inFirst(SINGLE))!), SINGLE)).toBe(true);
    expect(r.missingInWindow(0, run.length)).toBe(0);
    expect(r.takeDecoded()).toBe(0);
    r.endRun(true);
    expect(log.recorded).toEqual([]);
    expect(aborts).toEqual([]);
  });

  it('receiver - a late timing frame is one late violation and still counts as arrived', () => {
    const { r, log, aborts, ci } = receiver('timing');
    const run = steps();
    r.beginRun(run, run.length, false);
    const frames = rxFrames(run);
    const victim = frames.find((f) => f.s === 2 && f.src === MULTI)!;
    const recv = recvsOf(ci, run[2].kind).find((ins) => ci.tensors[run[2].kind][ins.tensor].name === victim.meta.name)!;
    const needBy = run[2].base + recv.needBy;
    const lateTick = needBy + 25;
    for (const f of frames) r.onFrame(f === victim ? altered(f, { tick: lateTick }) : f.bytes, f.src);
    expect(r.missingInWindow(0, run.length)).toBe(0);
    // only the late frame was decoded: its link's next frames are back on the fast path
    expect(r.takeDecoded()).toBe(1);
    expect(log.recorded).toHaveLength(1);
    expect(log.recorded[0]).toMatchObject({
      kind: 'late',
      step: victim.step,
      tensor: victim.meta.name,
      src: MULTI,
      dst: RX,
      tick: lateTick,
      needBy,
    });
    expect(log.recorded[0].message).toContain('25 ticks late');
    expect(aborts).toEqual([]);
  });

  it('receiver - a duplicate timing frame is one duplicate violation', () => {
    const { r, log, aborts } = receiver('timing');
    const run = steps();
    r.beginRun(run, run.length, false);
    const frames = rxFrames(run);
    const twice = frames.find((f) => f.s === 1 && f.src === MULTI)!;
    for (const f of frames) {
      r.onFrame(f.bytes, f.src);
      if (f === twice) r.onFrame(f.bytes, f.src);
    }
    expect(r.missingInWindow(0, run.length)).toBe(0);
    expect(r.takeDecoded()).toBe(1);
    expect(log.recorded).toHaveLength(1);
    expect(log.recorded[0]).toMatchObject({
      kind: 'duplicate',
      step: twice.step,
      tensor: twice.meta.name,
      src: MULTI,
      dst: RX,
      tick: twice.tick,
    });
    expect(aborts).toEqual([]);
  });

  it('receiver - frames the Program does not expect are unexpected at the end of the run; later steps wait', () => {
    const { r, log, aborts } = receiver('timing');
    const run = steps();
    r.beginRun(run, run.length, false);
    const frames = rxFrames(run);
    const model = frames[0];
    const wrongTensor = altered(model, { tensor: 'x.L99' });
    const unknownStep = altered(model, { step: run[run.length - 1].index + 7 });
    r.onFrame(wrongTensor, model.src);
    r.onFrame(unknownStep, model.src);
    for (const f of frames) r.onFrame(f.bytes, f.src);
    expect(r.missingInWindow(0, run.length)).toBe(0);
    expect(r.takeDecoded()).toBe(2);
    expect(log.recorded).toEqual([]); // held until the run ends
    r.endRun(true);
    expect(log.recorded.map((v) => [v.kind, v.step, v.tensor, v.src, v.dst])).toEqual([
      ['unexpected', model.step, 'x.L99', model.src, RX],
    ]);
    // a frame of a step after the run is held for the window that has it (a serving stream queues the
    // next window while one runs, so peers may already send it)
    expect(r.inbox.leftovers(Number.MAX_SAFE_INTEGER)).toEqual([
      { step: run[run.length - 1].index + 7, tensor: model.meta.name, src: model.src },
    ]);
    expect(aborts).toEqual([]);
  });

  it('receiver - an undecodable timing frame aborts the run with a schedule violation', () => {
    const { r, log, aborts } = receiver('timing');
    const run = steps();
    r.beginRun(run, run.length, false);
    const rand = mulberry32(7);
    const junk = Uint8Array.from({ length: rxFrames(run)[0].bytes.length }, () => Math.floor(rand() * 256));
    r.onFrame(junk, SINGLE);
    expect(aborts).toHaveLength(1);
    expect(aborts[0]).toBeInstanceOf(RunError);
    expect(aborts[0].code).toBe('RACKEMU_ERR_SCHEDULE_VIOLATION');
    expect(aborts[0].message).toContain(SINGLE);
    expect(kinds(log.recorded)).toEqual(['corrupt']);
    expect(log.recorded[0]).toMatchObject({ src: SINGLE, dst: RX });
    expect(r.missingInWindow(0, run.length)).toBe(rxFrames(run).length);
  });

  it('receiver - a missing timing frame: firstMissing names the earliest due; window wait, watchdog', async () => {
    const { r, log, ci } = receiver('timing');
    const run = steps();
    r.beginRun(run, run.length, false);
    const frames = rxFrames(run);
    const later = frames.find((f) => f.s === 3 && f.src === MULTI)!;
    const earlier = frames.find((f) => f.s === 1 && f.src === SINGLE)!;
    const state = { done: false };
    const wait = r.waitWindow(0, run.length).then(() => (state.done = true));
    for (const f of frames) if (f !== later && f !== earlier) r.onFrame(f.bytes, f.src);
    expect(r.missingInWindow(0, run.length)).toBe(2);
    const due = r.firstMissing(0, run.length);
    expect(due).toMatchObject({ step: earlier.step, tensor: earlier.meta.name, src: SINGLE, tick: earlier.tick });
    expect(r.firstMissing(2, run.length)).toMatchObject({ step: later.step, tensor: later.meta.name, src: MULTI });
    // the event-loop watchdog: the window wait is overdue only once it has lasted the limit
    expect(r.overdue(Date.now(), 60_000)).toBeNull();
    expect(r.overdue(Date.now() + 60_000, 60_000)).toEqual(due);
    const err = log.missing(due, ci.watchdogMs);
    expect(err).toBeInstanceOf(RunError);
    expect(err.code).toBe('RACKEMU_ERR_WATCHDOG');
    expect(err.message).toContain(
      `${due.tensor} from ${SINGLE} to ${RX} (step ${due.step}) was due at tick ${due.tick}`,
    );
    expect(log.recorded).toEqual([expect.objectContaining({ kind: 'missing', tick: due.tick, needBy: due.needBy })]);
    // the stragglers arrive: the wait ends with the last of them
    r.onFrame(earlier.bytes, earlier.src);
    await Promise.resolve();
    expect(state.done).toBe(false);
    r.onFrame(later.bytes, later.src);
    await wait;
    expect(state.done).toBe(true);
    expect(r.missingInWindow(0, run.length)).toBe(0);
  });

  it('receiver - timing frames and bundles that arrive before the run begins are placed when it begins', () => {
    const { r, log, aborts } = receiver('timing');
    const run = steps();
    const W = 3;
    // the peers began their run first: SINGLE's first window frame by frame, MULTI's as a bundle
    const early = peerFrames(SINGLE, RX, run, 0, W);
    for (const f of early) r.onFrame(f.bytes, f.src);
    const bundle = linkBundle(MULTI, RX).build(new RunTimeline(run), 0, W, 0)!;
    expect(r.onBundle(bundle, MULTI)).toBe(true); // kept whole (a copy: the bytes are the builder's)
    bundle.fill(0);
    expect(r.takeDecoded()).toBe(early.length);
    r.beginRun(run, W, false);
    expect(r.missingInWindow(0, W)).toBe(0);
    expect(r.missingInWindow(W, run.length)).toBe(rxFrames(run, W).length);
    // the rest comes on time, on the fast path: each link's seq continues from the early frames
    for (const f of rxFrames(run, W)) r.onFrame(f.bytes, f.src);
    expect(r.missingInWindow(0, run.length)).toBe(0);
    expect(r.takeDecoded()).toBe(0);
    r.endRun(true);
    expect(log.recorded).toEqual([]);
    expect(aborts).toEqual([]);
  });
});

/** A numeric frame of `f` carrying `values` (f32, or i32 for i32 tensors), optionally with another tick. */
function numericFrame(f: PeerFrame, values: Float32Array | Int32Array, tick = f.tick): Buffer {
  const { meta } = f;
  return encodeFrame(
    {
      src: f.src,
      dst: f.dst,
      step: f.step,
      tick,
      tensor: meta.name,
      dtype: values instanceof Int32Array ? 'i32' : 'f32',
      shape: [meta.rows, meta.dtype === 'argmax' ? 2 : meta.cols],
      seq: f.seq,
    },
    new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  );
}

/** Distinct values for frame `f`, of its tensor's shape and type. */
function valuesOf(f: PeerFrame): Float32Array | Int32Array {
  const n = f.meta.rows * (f.meta.dtype === 'argmax' ? 2 : f.meta.cols);
  if (f.meta.dtype === 'i32') return Int32Array.from({ length: n }, (_, j) => 1000 * f.step + 10 * f.seq + j);
  return Float32Array.from({ length: n }, (_, j) => f.step + f.seq / 8 + j / 1024);
}

/** RX's numeric receive of frame `f`: the recv instruction of its step that takes it. */
function recvFor(ci: ChipInit, run: readonly StepInstance[], f: PeerFrame): RecvInstruction {
  const kind = run[f.s].kind;
  return recvsOf(ci, kind).find(
    (ins) => ci.tensors[kind][ins.tensor].name === f.meta.name && ci.peers[ins.from] === f.src,
  )!;
}

describe('chip receiver, numeric fidelity', () => {
  it('receiver - numeric frames are decoded into the inbox and taken by the receives of their step', () => {
    const { r, log, aborts, ci } = receiver('numeric');
    expect(r.timing).toBeNull();
    const run = steps();
    r.beginRun(run, 1, false);
    const frames = rxFrames(run, 0, 3);
    const group = (i: number) => recvsOf(ci, run[i].kind).map((ins) => r.expected(ins, run[i]));
    expect(r.inbox.absent(group(0))).toBe(group(0).length);
    for (const f of frames) r.onFrame(numericFrame(f, valuesOf(f)), f.src);
    expect(r.takeDecoded()).toBe(frames.length);
    for (let i = 0; i < 3; i++) {
      expect(r.inbox.absent(group(i))).toBe(0);
      for (const ins of recvsOf(ci, run[i].kind)) {
        const e = r.expected(ins, run[i]);
        const f = frames.find((g) => g.s === i && g.meta.name === e.tensor && g.src === e.src)!;
        const { base } = run[i];
        expect(e).toMatchObject({
          step: run[i].index,
          tensorId: ins.tensor,
          tick: base + ins.tick,
          needBy: base + ins.needBy,
        });
        const got = r.inbox.take(e);
        expect(got?.integrity).toBe('ok');
        expect(log.check(e, got!)).toBeNull();
        expect(tensorView(got!)).toEqual(valuesOf(f));
        expect(r.inbox.take(e)).toBeUndefined(); // taken once
      }
    }
    r.endRun(true);
    expect(log.recorded).toEqual([]);
    expect(aborts).toEqual([]);
  });

  it('receiver - a numeric frame altered after encoding fails its checksum: check returns the corrupt error', () => {
    const { r, log, aborts, ci } = receiver('numeric');
    const run = steps();
    r.beginRun(run, 1, false);
    const f = rxFrames(run).find((g) => g.s === 1 && g.src === MULTI)!;
    const bytes = numericFrame(f, valuesOf(f));
    bytes[bytes.length - 3] ^= 0x40; // a payload byte
    r.onFrame(bytes, f.src);
    expect(aborts).toEqual([]); // decodable: checked when the Program receives it
    const e = r.expected(recvFor(ci, run, f), run[1]);
    const got = r.inbox.take(e)!;
    expect(got.integrity).toBe('mismatch');
    const err = log.check(e, got);
    expect(err).toBeInstanceOf(RunError);
    expect(err?.code).toBe('RACKEMU_ERR_SCHEDULE_VIOLATION');
    expect(err?.message).toContain('checksum');
    expect(log.recorded).toEqual([
      expect.objectContaining({
        kind: 'corrupt',
        step: f.step,
        tensor: f.meta.name,
        src: MULTI,
        dst: RX,
        tick: f.tick,
      }),
    ]);
  });

  it('receiver - a numeric duplicate is a duplicate violation, while held and after it was taken', () => {
    const { r, log, ci } = receiver('numeric');
    const run = steps();
    r.beginRun(run, 1, false);
    const f = rxFrames(run).find((g) => g.s === 0 && g.src === SINGLE)!;
    const bytes = numericFrame(f, valuesOf(f));
    r.onFrame(bytes, f.src);
    r.onFrame(bytes, f.src);
    expect(log.recorded.map((v) => [v.kind, v.step, v.tensor, v.src, v.tick])).toEqual([
      ['duplicate', f.step, f.meta.name, SINGLE, f.tick],
    ]);
    expect(r.inbox.take(r.expected(recvFor(ci, run, f), run[0]))).toBeDefined();
    r.onFrame(bytes, f.src);
    expect(kinds(log.recorded)).toEqual(['duplicate', 'duplicate']);
    r.endRun(true);
    expect(kinds(log.recorded)).toEqual(['duplicate', 'duplicate']); // the copies were not kept
  });

  it('receiver - a numeric frame with a tick past needBy is recorded late by check, its values still used', () => {
    const { r, log, aborts, ci } = receiver('numeric');
    const run = steps();
    r.beginRun(run, 1, false);
    const f = rxFrames(run).find((g) => g.s === 4 && g.src === MULTI)!;
    const e = r.expected(recvFor(ci, run, f), run[4]);
    const tick = e.needBy + 1;
    r.onFrame(numericFrame(f, valuesOf(f), tick), f.src);
    const got = r.inbox.take(e)!;
    expect(log.check(e, got)).toBeNull();
    expect(log.recorded).toEqual([
      expect.objectContaining({
        kind: 'late',
        step: f.step,
        tensor: f.meta.name,
        src: MULTI,
        dst: RX,
        tick,
        needBy: e.needBy,
      }),
    ]);
    expect(tensorView(got)).toEqual(valuesOf(f));
    // on time: nothing recorded
    const g = rxFrames(run).find((h) => h.s === 4 && h.src === SINGLE)!;
    r.onFrame(numericFrame(g, valuesOf(g)), g.src);
    const eg = r.expected(recvFor(ci, run, g), run[4]);
    expect(log.check(eg, r.inbox.take(eg)!)).toBeNull();
    expect(log.recorded).toHaveLength(1);
    expect(aborts).toEqual([]);
  });

  it('receiver - a numeric receive waits for a frame that arrives later; overdue names it past the limit', async () => {
    const { r, ci } = receiver('numeric');
    const run = steps();
    r.beginRun(run, 1, false);
    const f = rxFrames(run).find((g) => g.s === 2 && g.src === MULTI)!;
    const e = r.expected(recvFor(ci, run, f), run[2]);
    const box: { got: DecodedFrame | null } = { got: null };
    const waiting = r.inbox.wait(e).then((d) => (box.got = d));
    await Promise.resolve();
    expect(box.got).toBeNull();
    expect(r.inbox.overdue(Date.now(), 60_000)).toBeNull();
    expect(r.inbox.overdue(Date.now() + 60_000, 60_000)).toBe(e);
    expect(r.overdue(Date.now() + 60_000, 60_000)).toBe(e);
    // another frame does not end the wait
    const other = rxFrames(run).find((g) => g.s === 2 && g.src === SINGLE)!;
    r.onFrame(numericFrame(other, valuesOf(other)), other.src);
    await Promise.resolve();
    expect(box.got).toBeNull();
    r.onFrame(numericFrame(f, valuesOf(f)), f.src);
    await waiting;
    expect(box.got?.header).toMatchObject({ step: f.step, tensor: f.meta.name, src: MULTI, seq: f.seq });
    expect(r.inbox.overdue(Date.now() + 60_000, 60_000)).toBeNull();
    expect(r.inbox.take(e)).toBeUndefined(); // handed to the waiter, not held
  });

  it('receiver - a run after a failed one drops its stragglers; after a good run they are unexpected', () => {
    for (const failed of [true, false]) {
      const { r, log, ci } = receiver('numeric');
      const first = steps();
      r.beginRun(first, 1, false);
      r.endRun(!failed);
      const second = steps(first.length);
      const old = rxFrames(first);
      const next = rxFrames(second);
      // between the runs: a straggler of the first run, and a frame of the second that came early
      r.onFrame(numericFrame(old[3], valuesOf(old[3])), old[3].src);
      r.onFrame(numericFrame(next[0], valuesOf(next[0])), next[0].src);
      const straggler = frameKey(old[3].step, old[3].meta.name, old[3].src);
      expect(r.inbox.has(straggler)).toBe(true);
      r.beginRun(second, 1, failed);
      expect(r.inbox.has(straggler)).toBe(!failed);
      // after the second began: another straggler
      r.onFrame(numericFrame(old[5], valuesOf(old[5])), old[5].src);
      const e = r.expected(recvFor(ci, second, next[0]), second[0]);
      expect(r.inbox.take(e)?.header.step).toBe(second[0].index);
      r.endRun(true);
      const unexpected = log.recorded.map((v) => [v.kind, v.step, v.tensor]);
      if (failed) expect(unexpected).toEqual([]);
      else {
        expect(unexpected).toEqual([
          ['unexpected', old[3].step, old[3].meta.name],
          ['unexpected', old[5].step, old[5].meta.name],
        ]);
      }
    }
  });
});

/**
 * Embedded links src -> dsts with polled delivery: what each destination got, frame by frame or
 * bundled (bundles are taken whole), and anything that came from another chip (`strays`; a handler
 * must not throw into the transport, so it is checked by the tests).
 */
async function embeddedLink(
  src: string,
  dsts: readonly string[],
): Promise<{
  tx: ChipEndpoint;
  rx: Map<string, ChipEndpoint>;
  frames: Map<string, Buffer[]>;
  bundles: Map<string, Buffer[]>;
  strays: string[];
  close: () => Promise<void>;
}> {
  const fabric = createEmbeddedFabric(
    dsts.map((d) => [src, d] as const),
    [],
    { ringBytes: 64 * 1024 },
  );
  const tx = await openEndpoint(fabric.endpointConfig(src), src, { delivery: 'poll' });
  const rx = new Map<string, ChipEndpoint>();
  const frames = new Map<string, Buffer[]>();
  const bundles = new Map<string, Buffer[]>();
  const strays: string[] = [];
  for (const d of dsts) {
    const ep = await openEndpoint(fabric.endpointConfig(d), d, { delivery: 'poll' });
    frames.set(d, []);
    bundles.set(d, []);
    ep.onFrame((f, from) => {
      if (from !== src) strays.push(from);
      frames.get(d)!.push(Buffer.from(f));
    });
    ep.onBundle((b, from) => {
      if (from !== src) strays.push(from);
      bundles.get(d)!.push(Buffer.from(b));
      return true;
    });
    rx.set(d, ep);
  }
  const close = async () => {
    for (const ep of [tx, ...rx.values()]) await ep.close();
  };
  return { tx, rx, frames, bundles, strays, close };
}

describe('chip sender over an embedded endpoint pair', () => {
  const run = steps();
  /** MULTI's numeric sends to RX in the first prefill step, with their f32 values. */
  const tx = init(MULTI, 'numeric');
  const toRx = sendsOf(tx, run[0].kind).filter((ins) => tx.peers[ins.to] === RX);
  const value = (ins: SendInstruction, salt: number): Float32Array => {
    const m = tx.tensors[run[0].kind][ins.tensor];
    return Float32Array.from({ length: m.rows * m.cols }, (_, j) => salt + j / 16);
  };
  let link: Awaited<ReturnType<typeof embeddedLink>> | undefined;
  let sender: ChipSender;
  let received: Buffer[];
  /** A fresh link and sender per test: each starts its link's seq at 0. */
  const fresh = async () => {
    await link?.close();
    link = await embeddedLink(MULTI, [RX]);
    sender = new ChipSender(tx, link.tx);
    received = link.frames.get(RX)!;
  };
  const deliver = (): number => {
    const n = link!.rx.get(RX)!.pollSync!(0);
    expect(link!.strays).toEqual([]);
    return n;
  };
  afterAll(() => link?.close());

  it('sender - a numeric send delivers a frame of the same values, with the next seq on its link', async () => {
    expect(toRx.length).toBeGreaterThanOrEqual(2);
    expect(toRx.every((ins) => tx.tensors[run[0].kind][ins.tensor].dtype === 'act')).toBe(true);
    await fresh();
    const { r, log } = receiver('numeric');
    r.beginRun(run, 1, false);
    toRx.forEach((ins, k) => sender.send(ins, run[0], value(ins, k), []));
    expect(deliver()).toBe(toRx.length);
    expect(received).toHaveLength(toRx.length);
    toRx.forEach((ins, k) => {
      const d = decodeFrame(received[k]);
      const meta = tx.tensors[run[0].kind][ins.tensor];
      expect(d.integrity).toBe('ok');
      expect(d.header).toMatchObject({
        src: MULTI,
        dst: RX,
        step: run[0].index,
        tick: run[0].base + ins.arrive,
        tensor: meta.name,
        dtype: 'f32',
        shape: [meta.rows, meta.cols],
        seq: k,
      });
      expect(tensorView(d)).toEqual(value(ins, k));
      // and the receiving chip takes it, on time, where its Program receives it
      r.onFrame(received[k], MULTI);
    });
    expect(sender.framesSent).toBe(toRx.length);
    expect(sender.bytesSent).toBe(toRx.reduce((n, ins, k) => n + value(ins, k).byteLength, 0));
    const rxInit = init(RX, 'numeric');
    for (const ins of recvsOf(rxInit, run[0].kind).filter((i) => rxInit.peers[i.from] === MULTI)) {
      const e = r.expected(ins, run[0]);
      const got = r.inbox.take(e);
      expect(got).toBeDefined();
      expect(log.check(e, got!)).toBeNull();
    }
    expect(log.recorded).toEqual([]);
    // the link's seq goes on in the next step
    sender.send(toRx[0], run[1], value(toRx[0], 9), []);
    deliver();
    expect(decodeFrame(received[toRx.length]).header).toMatchObject({ step: run[1].index, seq: toRx.length });
  });

  const fault = (kind: FrameFault['kind'], ins: SendInstruction, ticks?: number): FrameFault => ({
    kind,
    step: run[0].index,
    tensor: tx.tensors[run[0].kind][ins.tensor].name,
    src: MULTI,
    dst: RX,
    ticks,
  });

  it('sender - a drop fault sends nothing, and only the frame it names', async () => {
    await fresh();
    const faults = [fault('drop', toRx[0])];
    sender.send(toRx[0], run[0], value(toRx[0], 0), faults);
    expect(deliver()).toBe(0);
    expect(sender.framesSent).toBe(0);
    sender.send(toRx[1], run[0], value(toRx[1], 1), faults);
    sender.send(toRx[0], run[1], value(toRx[0], 2), faults); // another step: not dropped
    expect(deliver()).toBe(2);
    expect(received.map((f) => decodeFrame(f).header.tensor)).toEqual(
      [toRx[1], toRx[0]].map((ins) => tx.tensors[run[0].kind][ins.tensor].name),
    );
    expect(sender.framesSent).toBe(2);
  });

  it('sender - a duplicate fault sends two identical frames', async () => {
    await fresh();
    sender.send(toRx[0], run[0], value(toRx[0], 0), [fault('duplicate', toRx[0])]);
    expect(deliver()).toBe(2);
    expect(received).toHaveLength(2);
    expect(received[0].equals(received[1])).toBe(true);
    expect(decodeFrame(received[0]).integrity).toBe('ok');
    sender.send(toRx[1], run[0], value(toRx[1], 1), []);
    deliver();
    expect(decodeFrame(received[2]).header.seq).toBe(decodeFrame(received[0]).header.seq + 1);
  });

  it('sender - a corrupt fault flips the last byte: the frame decodes with a checksum mismatch', async () => {
    await fresh();
    const v = value(toRx[0], 0);
    sender.send(toRx[0], run[0], v, [fault('corrupt', toRx[0])]);
    sender.send(toRx[0], run[1], v, []); // the next frame from the same buffer is intact
    expect(deliver()).toBe(2);
    const meta = tx.tensors[run[0].kind][toRx[0].tensor];
    const clean = frameTemplate(meta, MULTI, RX, 'f32').encode(
      run[0].index,
      run[0].base + toRx[0].arrive,
      0,
      new Uint8Array(v.buffer),
    );
    const bad = received[0];
    expect(bad.length).toBe(clean.length);
    const differ = [...bad.keys()].filter((i) => bad[i] !== clean[i]);
    expect(differ).toEqual([bad.length - 1]);
    expect(bad[bad.length - 1]).toBe(clean[clean.length - 1] ^ 0xff);
    expect(decodeFrame(bad).integrity).toBe('mismatch');
    expect(decodeFrame(received[1]).integrity).toBe('ok');
  });

  it('sender - a delay fault adds its ticks to the header tick', async () => {
    await fresh();
    sender.send(toRx[0], run[0], value(toRx[0], 0), [fault('delay', toRx[0], 4321)]);
    sender.send(toRx[1], run[0], value(toRx[1], 1), [fault('delay', toRx[0], 4321)]);
    expect(deliver()).toBe(2);
    expect(decodeFrame(received[0]).header.tick).toBe(run[0].base + toRx[0].arrive + 4321);
    expect(decodeFrame(received[1]).header.tick).toBe(run[0].base + toRx[1].arrive);
  });

  const ti = init(MULTI, 'timing');
  /** Every chip MULTI sends to. */
  const dsts = [...new Set(run.flatMap((st) => sendsOf(ti, st.kind).map((ins) => ti.peers[ins.to])))];

  it('sender - timing sendWindow sends one bundle per peer link, counted, and the receiver takes it', async () => {
    expect(dsts.length).toBeGreaterThanOrEqual(2);
    expect(dsts).toContain(RX);
    const l = await embeddedLink(MULTI, dsts);
    try {
      const snd = new ChipSender(ti, l.tx);
      const { r, log } = receiver('timing');
      const W = 3;
      r.beginRun(run, W, false);
      const timeline = r.timing!.timeline;
      for (const [from, to] of [
        [0, W],
        [W, run.length],
      ]) {
        const before = snd.framesSent;
        snd.sendWindow(timeline, from, to, []);
        let frames = 0;
        for (const d of dsts) {
          const want = peerFrames(MULTI, d, run, from, to);
          expect(l.rx.get(d)!.pollSync!(0)).toBe(want.length);
          const got = l.bundles.get(d)!.splice(0);
          expect(l.frames.get(d)).toEqual([]);
          if (want.length === 0) {
            expect(got).toEqual([]);
            continue;
          }
          expect(got).toHaveLength(1);
          expect(bundleCount(got[0])).toBe(want.length);
          // the bundle holds exactly the frames the sender's Program sends, seq counting on per link
          const seq0 = peerFrames(MULTI, d, run, 0, from).length;
          const inBundle = splitBundle(got[0]).map((f) => Buffer.from(f));
          expect(inBundle).toEqual(peerFrames(MULTI, d, run, from, to, seq0).map((f) => f.bytes));
          if (d === RX) expect(r.onBundle(got[0], MULTI)).toBe(true);
          frames += want.length;
        }
        expect(frames).toBeGreaterThan(0);
        expect(snd.framesSent - before).toBe(frames);
      }
      expect(l.strays).toEqual([]);
      const tensorBytes = dsts.flatMap((d) => peerFrames(MULTI, d, run)).reduce((b, f) => b + f.meta.bytes, 0);
      expect(snd.bytesSent).toBe(tensorBytes);
      // everything MULTI sends RX arrived whole; only SINGLE's frames are still missing
      expect(r.missingInWindow(0, run.length)).toBe(peerFrames(SINGLE, RX, run).length);
      expect(r.takeDecoded()).toBe(0);
      expect(log.recorded).toEqual([]);
    } finally {
      await l.close();
    }
  });

  it('sender - a fault in a timing window sends that window frame by frame, hitting only the named frame', async () => {
    const l = await embeddedLink(MULTI, dsts);
    try {
      const snd = new ChipSender(ti, l.tx);
      const want = peerFrames(MULTI, RX, run);
      const victim = want.find((f) => f.s === 1)!;
      const faults: FrameFault[] = [
        { kind: 'delay', step: victim.step, tensor: victim.meta.name, src: MULTI, dst: RX, ticks: 99 },
      ];
      const { r, log } = receiver('timing');
      r.beginRun(run, run.length, false);
      snd.sendWindow(r.timing!.timeline, 0, run.length, faults);
      expect(l.rx.get(RX)!.pollSync!(0)).toBe(want.length);
      expect(l.bundles.get(RX)).toEqual([]);
      expect(l.strays).toEqual([]);
      const got = l.frames.get(RX)!;
      const ticks = got.map((f) => decodeFrame(f).header.tick);
      expect(ticks).toEqual(want.map((f) => (f === victim ? f.tick + 99 : f.tick)));
      for (const f of got) r.onFrame(f, MULTI);
      expect(log.recorded).toEqual([
        expect.objectContaining({ kind: 'late', step: victim.step, tensor: victim.meta.name, src: MULTI }),
      ]);
      expect(r.takeDecoded()).toBe(1);
    } finally {
      await l.close();
    }
  });
});

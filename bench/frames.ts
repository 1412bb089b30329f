/**
 * The on-wire size of the frames a step's transfers become, encoded exactly as chips encode them
 * (src/runtime/chip.ts, send), and the measureRawRate frameBytes whose raw frames have the same size.
 */
import type { Plan, StepKind } from '../src/compiler/plan.js';
import type { Fidelity } from '../src/runtime/run-spec.js';
import type { Fabric } from '../src/topology/fabric.js';
import { encodeFrame } from '../src/transport/internal.js';

export interface FrameSizes {
  /** Frames one step sends (one per transfer). */
  frames: number;
  /** Encoded bytes of all of them: header, padding and payload. */
  wireBytes: number;
  meanBytes: number;
  minBytes: number;
  maxBytes: number;
  /** Payload bytes only (0 in timing fidelity). */
  payloadBytes: number;
  /** Logical tensor bytes the frames stand for (the schedule's transfer sizes). */
  logicalBytes: number;
}

/**
 * Sizes of one `kind` step's frames. Header fields that vary per run (step index, tick, seq) are given
 * values typical of the middle of a run of `stepIndex` steps, so their msgpack widths match.
 */
export function stepFrameSizes(
  plan: Plan,
  fabric: Fabric,
  fidelity: Fidelity,
  kind: StepKind = 'decode',
  stepIndex = 9,
): FrameSizes {
  const step = plan.steps[kind];
  const base = plan.steps.prefill.lengthTicks + (stepIndex - 1) * plan.steps.decode.lengthTicks;
  let wire = 0;
  let payload = 0;
  let logical = 0;
  let min = Infinity;
  let max = 0;
  for (const tr of step.transfers) {
    const t = step.tensors[tr.tensor];
    const cols = t.dtype === 'argmax' ? 2 : t.cols;
    const head = {
      src: fabric.chipId(tr.src),
      dst: fabric.chipId(tr.dst),
      step: stepIndex,
      tick: base + tr.arrive,
      tensor: t.name,
      shape: [t.rows, cols],
      seq: stepIndex,
    };
    const body = fidelity === 'timing' ? new Uint8Array(0) : new Uint8Array(t.rows * cols * 4);
    const f =
      fidelity === 'timing'
        ? encodeFrame({ ...head, dtype: 'none', byteLength: t.bytes }, body)
        : encodeFrame({ ...head, dtype: t.dtype === 'act' ? 'f32' : 'i32' }, body);
    wire += f.length;
    payload += body.length;
    logical += tr.bytes;
    min = Math.min(min, f.length);
    max = Math.max(max, f.length);
  }
  const n = step.transfers.length;
  return {
    frames: n,
    wireBytes: wire,
    meanBytes: n ? wire / n : 0,
    minBytes: n ? min : 0,
    maxBytes: max,
    payloadBytes: payload,
    logicalBytes: logical,
  };
}

/** Encoded size of one of measureRawRate's frames for a given frameBytes (src/transport/raw-rate-worker.ts). */
export function rawFrameSize(frameBytes: number): number {
  const elements = frameBytes >>> 2;
  return encodeFrame(
    { src: 'r0.n0.c0', dst: 'r0.n0.c1', step: 0, tick: 0, tensor: 'raw', dtype: 'f32', shape: [elements], seq: 0 },
    new Uint8Array(elements * 4),
  ).length;
}

/**
 * The frameBytes (payload, a multiple of 4, at least 4) whose raw frame's encoded size is closest to
 * `encodedBytes`; measureRawRate's frameBytes is the payload only, its header comes on top.
 */
export function rawFrameBytesFor(encodedBytes: number): { frameBytes: number; encodedBytes: number } {
  let best = { frameBytes: 4, encodedBytes: rawFrameSize(4) };
  for (let b = 4; b <= Math.max(64, encodedBytes + 64); b += 4) {
    const size = rawFrameSize(b);
    if (Math.abs(size - encodedBytes) < Math.abs(best.encodedBytes - encodedBytes))
      best = { frameBytes: b, encodedBytes: size };
  }
  return best;
}

/**
 * Frames on the step's longest dependency chain: the most transfers any value passes through in
 * sequence from the step's input (the token ids) to the next token ids. Each of them is a wake-up of
 * a waiting chip that no amount of parallelism can overlap.
 */
export function criticalHops(plan: Plan, kind: StepKind = 'decode'): number {
  const step = plan.steps[kind];
  const producer = new Map<string, (typeof step.ops)[number]>();
  for (const op of step.ops) producer.set(`${op.output}@${op.chip}`, op);
  const arrival = new Map<string, (typeof step.transfers)[number]>();
  for (const tr of step.transfers) arrival.set(`${tr.tensor}@${tr.dst}`, tr);
  const memo = new Map<string, number>();
  const depth = (tensor: number, chip: number): number => {
    const key = `${tensor}@${chip}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let d = 0;
    const op = producer.get(key);
    if (op) for (const i of op.inputs) d = Math.max(d, depth(i, chip));
    else {
      const tr = arrival.get(key);
      if (tr) d = depth(tensor, tr.src) + 1;
    }
    memo.set(key, d);
    return d;
  };
  let max = 0;
  for (const op of step.ops) max = Math.max(max, depth(op.output, op.chip));
  return max;
}

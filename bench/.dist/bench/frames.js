import { encodeFrame } from '../src/transport/frame.js';
/**
 * Sizes of one `kind` step's frames. Header fields that vary per run (step index, tick, seq) are given
 * values typical of the middle of a run of `stepIndex` steps, so their msgpack widths match.
 */
export function stepFrameSizes(plan, fabric, fidelity, kind = 'decode', stepIndex = 9) {
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
        const head = { src: fabric.chipId(tr.src), dst: fabric.chipId(tr.dst), step: stepIndex, tick: base + tr.arrive, tensor: t.name, shape: [t.rows, cols], seq: stepIndex };
        const body = fidelity === 'timing' ? new Uint8Array(0) : new Uint8Array(t.rows * cols * 4);
        const f = fidelity === 'timing'
            ? encodeFrame({ ...head, dtype: 'none', byteLength: t.bytes }, body)
            : encodeFrame({ ...head, dtype: t.dtype === 'act' ? 'f32' : 'i32' }, body);
        wire += f.length;
        payload += body.length;
        logical += tr.bytes;
        min = Math.min(min, f.length);
        max = Math.max(max, f.length);
    }
    const n = step.transfers.length;
    return { frames: n, wireBytes: wire, meanBytes: n ? wire / n : 0, minBytes: n ? min : 0, maxBytes: max, payloadBytes: payload, logicalBytes: logical };
}
/** Encoded size of one of measureRawRate's frames for a given frameBytes (src/transport/raw-rate-worker.ts). */
export function rawFrameSize(frameBytes) {
    const elements = frameBytes >>> 2;
    return encodeFrame({ src: 'r0.n0.c0', dst: 'r0.n0.c1', step: 0, tick: 0, tensor: 'raw', dtype: 'f32', shape: [elements], seq: 0 }, new Uint8Array(elements * 4)).length;
}
/**
 * The frameBytes (payload, a multiple of 4, at least 4) whose raw frame's encoded size is closest to
 * `encodedBytes`; measureRawRate's frameBytes is the payload only, its header comes on top.
 */
export function rawFrameBytesFor(encodedBytes) {
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
export function criticalHops(plan, kind = 'decode') {
    const step = plan.steps[kind];
    const producer = new Map();
    for (const op of step.ops)
        producer.set(`${op.output}@${op.chip}`, op);
    const arrival = new Map();
    for (const tr of step.transfers)
        arrival.set(`${tr.tensor}@${tr.dst}`, tr);
    const memo = new Map();
    const depth = (tensor, chip) => {
        const key = `${tensor}@${chip}`;
        const known = memo.get(key);
        if (known !== undefined)
            return known;
        let d = 0;
        const op = producer.get(key);
        if (op)
            for (const i of op.inputs)
                d = Math.max(d, depth(i, chip));
        else {
            const tr = arrival.get(key);
            if (tr)
                d = depth(tensor, tr.src) + 1;
        }
        memo.set(key, d);
        return d;
    };
    let max = 0;
    for (const op of step.ops)
        max = Math.max(max, depth(op.output, op.chip));
    return max;
}
//# sourceMappingURL=frames.js.map
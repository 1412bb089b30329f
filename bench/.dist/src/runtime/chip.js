import { decodeFrame, encodeFrame, tensorView } from '../transport/frame.js';
import { RunError } from '../util/errors.js';
import { weightKey } from './chip-weights.js';
import { addInPlace, applyRope, argmaxRows, attend, combineArgmax, embedLookup, KvCache, lmHeadSlice, matmulXWt, rmsNorm, routeTopK, swigluSlice, } from './kernels.js';
import { usesMoe } from './reference.js';
import { runSteps } from './run-spec.js';
export class ChipRuntime {
    init;
    weights;
    endpoint = null;
    buffered = new Map();
    consumed = new Set();
    waiter = null;
    violations = [];
    fatal = null;
    failRun = null;
    seq = new Map();
    caches = new Map();
    framesSent = 0;
    bytesSent = 0;
    /** lm_head chips: the logits slice of the most recent step (host readback for final_logits). */
    lastLogits = null;
    moe;
    constructor(init, weights) {
        this.init = init;
        this.weights = weights;
        this.moe = usesMoe(init.model);
        if (init.fidelity === 'numeric') {
            const m = init.model;
            for (const ins of init.program.decode.instructions) {
                if (ins.kind === 'compute' && ins.kernel.kind === 'attention') {
                    const k = ins.kernel;
                    this.caches.set(k.layer, new KvCache(init.context, k.kvHeadEnd - k.kvHeadStart, m.headDim, k.kvHeadStart));
                }
            }
        }
    }
    attach(endpoint) {
        this.endpoint = endpoint;
        endpoint.onFrame((frame, src) => this.onFrame(frame, src));
        endpoint.onError((err) => this.abort(new RunError('RACKEMU_ERR_TRANSPORT', `${this.init.chipId}: transport failed: ${err.message}`, { cause: err })));
    }
    violation(v, message) {
        const full = { ...v, dst: this.init.chipId, message: `${v.kind} frame: ${message}` };
        this.violations.push(full);
        return full;
    }
    abort(e) {
        if (this.fatal)
            return;
        this.fatal = e;
        this.failRun?.(e);
    }
    onFrame(frame, src) {
        let decoded;
        try {
            decoded = decodeFrame(frame, { verify: false });
        }
        catch (cause) {
            const v = this.violation({ kind: 'corrupt', step: -1, tensor: '?', src, tick: -1 }, `undecodable frame from ${src} at ${this.init.chipId}`);
            this.abort(new RunError('RACKEMU_ERR_SCHEDULE_VIOLATION', v.message, { cause, details: { violation: v } }));
            return;
        }
        const h = decoded.header;
        const key = `${h.step}|${h.tensor}|${src}`;
        if (this.buffered.has(key) || this.consumed.has(key)) {
            this.violation({ kind: 'duplicate', step: h.step, tensor: h.tensor, src, tick: h.tick }, `${h.tensor} from ${src} to ${this.init.chipId} (step ${h.step}, tick ${h.tick}) arrived twice; the copy is dropped`);
            return;
        }
        if (this.waiter?.key === key) {
            const w = this.waiter;
            this.waiter = null;
            this.consumed.add(key);
            w.resolve(frame);
        }
        else {
            this.buffered.set(key, frame);
        }
    }
    /** The frame for (step, tensor, src), waiting for it if it has not arrived. */
    take(step, tensor, src, tick, needBy) {
        const key = `${step}|${tensor}|${src}`;
        const f = this.buffered.get(key);
        if (f) {
            this.buffered.delete(key);
            this.consumed.add(key);
            return f;
        }
        return new Promise((resolve) => {
            this.waiter = { key, resolve, since: Date.now(), step, tensor, src, tick, needBy };
        });
    }
    /** Wall-clock watchdog: a receive that waits longer than watchdogMs is a missing frame. */
    checkWatchdog() {
        const w = this.waiter;
        if (!w || Date.now() - w.since < this.init.watchdogMs)
            return;
        const v = this.violation({ kind: 'missing', step: w.step, tensor: w.tensor, src: w.src, tick: w.tick, needBy: w.needBy }, `${w.tensor} from ${w.src} to ${this.init.chipId} (step ${w.step}) was due at tick ${w.tick} and has not arrived after ${this.init.watchdogMs} ms of wall time`);
        this.abort(new RunError('RACKEMU_ERR_WATCHDOG', v.message, { details: { violation: v } }));
    }
    async run(spec) {
        const steps = runSteps(spec, this.init.prefillChunk, this.init.stepLengths);
        this.violations = [];
        // keys of earlier runs can no longer collide (step numbers only grow); forget them
        for (const key of this.consumed)
            if (Number(key.slice(0, key.indexOf('|'))) < steps[0].index)
                this.consumed.delete(key);
        const isSampler = this.init.sampler !== null;
        const tokens = [];
        const tokenTicks = [];
        const tokenWallMs = [];
        const timer = setInterval(() => this.checkWatchdog(), Math.max(50, Math.min(1000, this.init.watchdogMs / 4)));
        const failed = new Promise((_, reject) => {
            this.failRun = reject;
            if (this.fatal)
                reject(this.fatal);
        });
        failed.catch(() => undefined);
        try {
            let carry = { ids: null, tick: 0 };
            const lastPrefill = steps.findLastIndex((st) => st.kind === 'prefill');
            for (const [i, step] of steps.entries()) {
                carry = await Promise.race([this.runStep(step, spec.faults ?? [], carry), failed]);
                // a prefill step's output token counts only at the end of the prompt (the first new token)
                if (isSampler && i >= lastPrefill) {
                    tokenTicks.push(carry.tick);
                    tokenWallMs.push(performance.now());
                    if (carry.ids)
                        tokens.push(carry.ids[0]);
                }
            }
            // Frames nobody asked for: a sender with a wrong Program, or a misrouted frame.
            for (const key of this.buffered.keys()) {
                const [step, tensor, src] = key.split('|');
                this.violation({ kind: 'unexpected', step: Number(step), tensor, src, tick: -1 }, `${tensor} from ${src} (step ${step}) is not in ${this.init.chipId}'s Program`);
            }
            this.buffered.clear();
        }
        finally {
            clearInterval(timer);
            this.failRun = null;
        }
        return {
            chipId: this.init.chipId,
            violations: this.violations,
            framesSent: this.framesSent,
            bytesSent: this.bytesSent,
            tokens: isSampler && this.init.fidelity === 'numeric' ? tokens : null,
            tokenTicks: isSampler ? tokenTicks : null,
            tokenWallMs: isSampler ? tokenWallMs : null,
        };
    }
    async runStep(step, faults, carry) {
        const prog = this.init.program[step.kind].instructions;
        const meta = this.init.tensors[step.kind];
        const values = new Map();
        const s = this.init.sampler;
        let nextTick = 0;
        if (s)
            values.set(s.tok[step.kind], step.inputIds ?? carry.ids);
        for (const ins of prog) {
            if (ins.kind === 'recv') {
                const m = meta[ins.tensor];
                const src = this.init.peers[ins.from];
                const got = this.take(step.index, m.name, src, step.base + ins.tick, step.base + ins.needBy);
                const frame = got instanceof Uint8Array ? got : await got;
                const d = decodeFrame(frame, { verify: this.init.fidelity === 'numeric' });
                if (d.integrity === 'mismatch') {
                    const v = this.violation({ kind: 'corrupt', step: step.index, tensor: m.name, src, tick: d.header.tick }, `${m.name} from ${src} to ${this.init.chipId} (step ${step.index}, tick ${d.header.tick}) failed its checksum`);
                    throw new RunError('RACKEMU_ERR_SCHEDULE_VIOLATION', v.message, { details: { violation: v } });
                }
                const needBy = step.base + ins.needBy;
                if (d.header.tick > needBy) {
                    this.violation({ kind: 'late', step: step.index, tensor: m.name, src, tick: d.header.tick, needBy }, `${m.name} from ${src} to ${this.init.chipId} (step ${step.index}) arrived at tick ${d.header.tick}, needed at tick ${needBy} (${d.header.tick - needBy} ticks late)`);
                }
                values.set(ins.tensor, tensorView(d) ?? null);
            }
            else if (ins.kind === 'compute') {
                values.set(ins.output, this.init.fidelity === 'numeric' ? this.compute(ins, step, values) : null);
                if (s && ins.output === s.next[step.kind])
                    nextTick = step.base + ins.end;
            }
            else {
                this.send(ins, step, meta, values, faults);
            }
        }
        if (!s)
            return { ids: null, tick: 0 };
        return { ids: values.get(s.next[step.kind]), tick: nextTick };
    }
    send(ins, step, meta, values, faults) {
        const m = meta[ins.tensor];
        const dst = this.init.peers[ins.to];
        let tick = step.base + ins.arrive;
        const fault = faults.find((f) => f.step === step.index && f.tensor === m.name && f.src === this.init.chipId && (f.dst === undefined || f.dst === dst));
        if (fault?.kind === 'drop')
            return;
        if (fault?.kind === 'delay')
            tick += fault.ticks ?? 0;
        const v = values.get(ins.tensor) ?? null;
        const pairKey = dst;
        const seq = this.seq.get(pairKey) ?? 0;
        this.seq.set(pairKey, seq + 1);
        const cols = m.dtype === 'argmax' ? 2 : m.cols;
        const frame = v === null
            ? encodeFrame({ src: this.init.chipId, dst, step: step.index, tick, tensor: m.name, dtype: 'none', shape: [m.rows, cols], seq, byteLength: m.bytes }, new Uint8Array(0))
            : encodeFrame({ src: this.init.chipId, dst, step: step.index, tick, tensor: m.name, dtype: v instanceof Float32Array ? 'f32' : 'i32', shape: [m.rows, cols], seq }, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
        if (fault?.kind === 'corrupt' && frame.length > 0)
            frame[frame.length - 1] ^= 0xff;
        this.framesSent++;
        this.bytesSent += v === null ? m.bytes : v.byteLength;
        const endpoint = this.endpoint;
        if (fault?.kind === 'duplicate')
            endpoint.send(dst, Uint8Array.from(frame));
        endpoint.send(dst, frame);
    }
    /** Numeric kernels; inputs are the chip's own buffers or views of received frames (never mutated). */
    compute(ins, step, values) {
        const m = this.init.model;
        const w = this.weights;
        const H = m.hidden;
        const input = (i) => values.get(ins.inputs[i]);
        const k = ins.kernel;
        const rows = step.positions.length;
        switch (k.kind) {
            case 'embed':
                return embedLookup(values.get(ins.inputs[0]), w[weightKey.embed()], k.vocabStart, k.vocabEnd, H);
            case 'sum': {
                const out = Float32Array.from(input(0));
                for (let i = 1; i < ins.inputs.length; i++)
                    addInPlace(out, input(i));
                return out;
            }
            case 'attention': {
                const hd = m.headDim;
                const heads = k.headEnd - k.headStart;
                const kvh = k.kvHeadEnd - k.kvHeadStart;
                const xn = rmsNorm(input(0), rows, H, w[weightKey.ln1(k.layer)], m.rmsNormEps);
                const q = matmulXWt(xn, rows, H, w[weightKey.q(k.layer)], heads * hd);
                const kk = matmulXWt(xn, rows, H, w[weightKey.k(k.layer)], kvh * hd);
                const vv = matmulXWt(xn, rows, H, w[weightKey.v(k.layer)], kvh * hd);
                applyRope(q, rows, heads, hd, step.positions, m.ropeTheta);
                applyRope(kk, rows, kvh, hd, step.positions, m.ropeTheta);
                const cache = this.caches.get(k.layer);
                cache.append(kk, vv, step.positions.subarray(0, step.valid));
                const a = attend(q, cache, step.positions, m.heads / m.kvHeads, m.slidingWindow, { qHeadOffset: k.headStart });
                return matmulXWt(a, rows, heads * hd, w[weightKey.o(k.layer)], H);
            }
            case 'ffn':
                return this.ffn(k, input(0), rows);
            case 'lm_head': {
                const row = step.valid - 1;
                const xn = rmsNorm(input(0).subarray(row * H, (row + 1) * H), 1, H, w[weightKey.finalNorm()], m.rmsNormEps);
                const logits = lmHeadSlice(xn, 1, H, w[weightKey.lmHead()], k.vocabStart, k.vocabEnd);
                this.lastLogits = { start: k.vocabStart, logits };
                return packArgmax(argmaxRows(logits, 1, k.vocabEnd - k.vocabStart, k.vocabStart));
            }
            case 'sample': {
                const parts = ins.inputs.map((t) => unpackArgmax(values.get(t)));
                return Int32Array.from(combineArgmax(...parts).indices);
            }
        }
    }
    ffn(k, h, rows) {
        const m = this.init.model;
        const w = this.weights;
        const H = m.hidden;
        const xn = rmsNorm(h, rows, H, w[weightKey.ln2(k.layer)], m.rmsNormEps);
        const out = new Float32Array(rows * H);
        if (!this.moe) {
            for (const u of k.units) {
                swigluSlice(xn, rows, H, w[weightKey.w1(k.layer, u.expert)], w[weightKey.w3(k.layer, u.expert)], w[weightKey.w2(k.layer, u.expert)], u.end - u.start, out, true);
            }
            return out;
        }
        // The router is replicated on every chip and computed over the full hidden dimension, so every
        // chip of the group makes the same (bit-identical) routing decision as the reference.
        const logits = matmulXWt(xn, rows, H, w[weightKey.router(k.layer)], m.experts);
        const route = routeTopK(logits, rows, m.experts, m.expertsPerToken);
        for (const u of k.units) {
            const picked = [];
            const gate = [];
            for (let r = 0; r < rows; r++) {
                for (let j = 0; j < m.expertsPerToken; j++) {
                    if (route.experts[r * m.expertsPerToken + j] === u.expert) {
                        picked.push(r);
                        gate.push(route.weights[r * m.expertsPerToken + j]);
                    }
                }
            }
            if (picked.length === 0)
                continue; // not routed here this step: the slot in the schedule stays, the work is zero
            const xs = new Float32Array(picked.length * H);
            picked.forEach((r, i) => xs.set(xn.subarray(r * H, (r + 1) * H), i * H));
            const y = swigluSlice(xs, picked.length, H, w[weightKey.w1(k.layer, u.expert)], w[weightKey.w3(k.layer, u.expert)], w[weightKey.w2(k.layer, u.expert)], u.end - u.start);
            picked.forEach((r, i) => {
                const g = gate[i];
                for (let c = 0; c < H; c++)
                    out[r * H + c] = Math.fround(out[r * H + c] + g * y[i * H + c]);
            });
        }
        return out;
    }
}
/** (value, index) per row as two int32 words: the float's bits, then the index. */
function packArgmax(p) {
    const out = new Int32Array(p.values.length * 2);
    const f = new Float32Array(out.buffer);
    for (let r = 0; r < p.values.length; r++) {
        f[2 * r] = p.values[r];
        out[2 * r + 1] = p.indices[r];
    }
    return out;
}
function unpackArgmax(a) {
    const rows = a.length / 2;
    const f = new Float32Array(a.buffer, a.byteOffset, a.length);
    const values = new Float32Array(rows);
    const indices = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
        values[r] = f[2 * r];
        indices[r] = a[2 * r + 1];
    }
    return { values, indices };
}
//# sourceMappingURL=chip.js.map
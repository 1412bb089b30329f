/**
 * What the control plane loads into each chip: its Program and only the metadata that Program needs.
 * The chips that get a worker are those of every node the plan occupies: chips with work, their idle
 * node-mates and the spare nodes of the racks involved (standing by for failover).
 */
export function deployedChips(plan, fabric) {
    const used = [...plan.programs.keys()];
    const nodes = new Set(used.map((c) => fabric.globalNodeOf(c)));
    const racks = new Set(used.map((c) => fabric.rackOf(c)));
    for (let c = 0; c < fabric.chipCount; c++)
        if (fabric.isSpare(c) && racks.has(fabric.rackOf(c)))
            nodes.add(fabric.globalNodeOf(c));
    const chips = [];
    for (const n of [...nodes].sort((a, b) => a - b))
        for (let i = 0; i < fabric.chipsPerNode; i++)
            chips.push(n * fabric.chipsPerNode + i);
    return chips;
}
const EMPTY = { chip: -1, prefill: { kind: 'prefill', instructions: [] }, decode: { kind: 'decode', instructions: [] } };
function tensorMeta(step, program, kind) {
    const out = {};
    const add = (id) => {
        const t = step.tensors[id];
        out[id] = { name: t.name, rows: t.rows, cols: t.cols, dtype: t.dtype, bytes: t.bytes };
    };
    for (const ins of program[kind].instructions) {
        if (ins.kind === 'compute') {
            ins.inputs.forEach(add);
            add(ins.output);
        }
        else
            add(ins.tensor);
    }
    return out;
}
export function chipInit(plan, fabric, chip, o) {
    const program = plan.programs.get(chip) ?? { ...EMPTY, chip };
    const peers = {};
    for (const kind of ['prefill', 'decode']) {
        for (const ins of program[kind].instructions) {
            if (ins.kind === 'send')
                peers[ins.to] = fabric.chipId(ins.to);
            if (ins.kind === 'recv')
                peers[ins.from] = fabric.chipId(ins.from);
        }
    }
    const idOf = (step, name) => step.tensors.findIndex((t) => t.name === name);
    const isSampler = plan.layout.sampler === chip;
    return {
        chip,
        chipId: fabric.chipId(chip),
        model: plan.model,
        fidelity: o.fidelity,
        context: plan.options.context,
        prefillChunk: plan.options.prefillChunk,
        program,
        tensors: { prefill: tensorMeta(plan.steps.prefill, program, 'prefill'), decode: tensorMeta(plan.steps.decode, program, 'decode') },
        peers,
        stepLengths: { prefill: plan.steps.prefill.lengthTicks, decode: plan.steps.decode.lengthTicks },
        startTick: plan.topology.sync.step_overhead_ticks,
        sampler: isSampler
            ? {
                tok: { prefill: idOf(plan.steps.prefill, 'tok'), decode: idOf(plan.steps.decode, 'tok') },
                next: { prefill: idOf(plan.steps.prefill, 'next'), decode: idOf(plan.steps.decode, 'next') },
            }
            : null,
        watchdogMs: o.watchdogMs,
    };
}
/** Every (src, dst) chip pair the schedule uses, by chip id (for the embedded transport's channels). */
export function schedulePairs(plan, fabric) {
    const seen = new Set();
    const pairs = [];
    for (const step of [plan.steps.prefill, plan.steps.decode]) {
        for (const tr of step.transfers) {
            const k = tr.src < tr.dst ? `${tr.src}-${tr.dst}` : `${tr.dst}-${tr.src}`;
            if (seen.has(k))
                continue;
            seen.add(k);
            pairs.push([fabric.chipId(tr.src), fabric.chipId(tr.dst)]);
        }
    }
    return pairs;
}
//# sourceMappingURL=chip-inits.js.map
import type { Instruction, Program, Step } from './plan.js';

/** Per-chip Programs (plan.ts has the types): at one tick receives come before computes, computes before sends. */
const ORDER = { recv: 0, compute: 1, send: 2 } as const;

function stepPrograms(step: Step): Map<number, Instruction[]> {
  const out = new Map<number, Instruction[]>();
  const list = (chip: number) => {
    let l = out.get(chip);
    if (!l) out.set(chip, (l = []));
    return l;
  };
  const firstUse = new Map<string, number>();
  const use = (tensor: number, chip: number, tick: number) => {
    const k = `${tensor}@${chip}`;
    firstUse.set(k, Math.min(firstUse.get(k) ?? Infinity, tick));
  };
  for (const op of step.ops) for (const t of op.inputs) use(t, op.chip, op.start);
  for (const tr of step.transfers) use(tr.tensor, tr.src, tr.depart);
  for (const op of step.ops) {
    list(op.chip).push({
      kind: 'compute',
      tick: op.start,
      end: op.end,
      op: op.id,
      kernel: op.kernel,
      microBatch: op.microBatch,
      inputs: op.inputs,
      output: op.output,
    });
  }
  for (const tr of step.transfers) {
    list(tr.src).push({
      kind: 'send',
      tick: tr.depart,
      arrive: tr.arrive,
      tensor: tr.tensor,
      to: tr.dst,
      bytes: tr.bytes,
    });
    const needBy = firstUse.get(`${tr.tensor}@${tr.dst}`) ?? tr.arrive;
    list(tr.dst).push({ kind: 'recv', tick: tr.arrive, needBy, tensor: tr.tensor, from: tr.src, bytes: tr.bytes });
  }
  for (const l of out.values()) l.sort((a, b) => a.tick - b.tick || ORDER[a.kind] - ORDER[b.kind]);
  return out;
}

/** Programs of every chip that has work in either step. */
export function buildPrograms(steps: { prefill: Step; decode: Step }): Map<number, Program> {
  const p = stepPrograms(steps.prefill);
  const d = stepPrograms(steps.decode);
  const chips = new Set([...p.keys(), ...d.keys()]);
  const out = new Map<number, Program>();
  for (const chip of [...chips].sort((a, b) => a - b)) {
    out.set(chip, {
      chip,
      prefill: { kind: 'prefill', instructions: p.get(chip) ?? [] },
      decode: { kind: 'decode', instructions: d.get(chip) ?? [] },
    });
  }
  return out;
}

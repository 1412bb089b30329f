import { RunError } from '../util/errors.js';
import { mulberry32 } from '../util/prng.js';
import type { ChipWeights } from './chip-weights.js';
import type { EccEvent } from './chip-types.js';
import type { ChipFault, FrameFault } from './run-spec.js';
import type { ViolationLog } from './violation-log.js';

/** Exit code of a chip worker killed by a `crash` fault (the host sees the worker exit with it). */
export const CRASH_EXIT_CODE = 70;

/** Last step of a fault that lasts until the chip is replaced. */
const FOREVER = Number.MAX_SAFE_INTEGER;

/**
 * The chip faults of one run that hit this chip, applied at the start of their step (ChipFault). A
 * fault outlives nothing: the next run brings its own list, so every fault is rolled back with the
 * window that carried it, except a bit flip with ECC off, which stays in SRAM until the weights reload.
 */
export class ChipFaults {
  readonly ecc: EccEvent[] = [];
  private readonly mine: readonly ChipFault[];

  constructor(
    private readonly chipId: string,
    faults: readonly ChipFault[] | undefined,
    private readonly weights: ChipWeights | null,
    private readonly log: ViolationLog,
  ) {
    this.mine = (faults ?? []).filter((f) => f.chip === chipId);
  }

  get none(): boolean {
    return this.mine.length === 0;
  }

  /** A skewed clock stamps every later frame late: the frame faults that say so. */
  frameFaults(): FrameFault[] {
    return this.mine.flatMap((f) =>
      f.kind === 'skew'
        ? [{ kind: 'delay' as const, src: this.chipId, step: f.step, lastStep: FOREVER, ticks: f.ticks }]
        : [],
    );
  }

  /** Applies the faults of step `step` starting at virtual tick `tick`; throws what halts the chip. */
  atStep(step: number, tick: number): void {
    for (const f of this.mine) {
      if (f.step !== step) continue;
      switch (f.kind) {
        case 'crash':
          // the worker thread ends here, as a chip that dies mid-run: its host sees the exit
          process.exit(CRASH_EXIT_CODE);
          break;
        case 'hang':
          // blocks this thread for good without spinning a core: it answers nothing, not even beats
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
          break;
        case 'skew':
          this.log.skew(step, tick, f.ticks);
          break;
        case 'bitflip':
          this.flip(f, step, tick);
          break;
      }
    }
  }

  private flip(f: Extract<ChipFault, { kind: 'bitflip' }>, step: number, tick: number): void {
    const rand = mulberry32(f.seed);
    const names = this.weights === null ? [] : Object.keys(this.weights).sort();
    const tensor = f.tensor ?? (names.length > 0 ? names[Math.floor(rand() * names.length)] : '(timing: no values)');
    const data = this.weights?.[tensor];
    if (this.weights !== null && data === undefined) {
      throw new RunError('RACKEMU_ERR_FAULT_TARGET', `${this.chipId} holds no weight slice ${tensor}`, {
        details: { chip: this.chipId, got: tensor, expected: names.join(', ') },
      });
    }
    const word = data === undefined ? 0 : Math.floor(rand() * data.length);
    const first = Math.floor(rand() * 32);
    const bits = f.bits === 1 ? [first] : [first, (first + 1 + Math.floor(rand() * 31)) % 32];
    const event: EccEvent = { chip: this.chipId, step, tick, tensor, word, bits, ecc: f.ecc, corrected: false };
    if (f.ecc && bits.length === 1) {
      // SECDED: the syndrome names the bit and the read returns the corrected word
      this.ecc.push({ ...event, corrected: true });
      return;
    }
    this.ecc.push(event);
    if (f.ecc) {
      throw new RunError(
        'RACKEMU_ERR_ECC_UNCORRECTABLE',
        `${this.chipId}: ECC found ${bits.length} flipped bits in one word of ${tensor} (word ${word}) at step ${step}, tick ${tick}: uncorrectable, the chip halts`,
        { details: { chip: this.chipId, step, tick, tensor, word, bits } },
      );
    }
    if (data === undefined) return;
    // no ECC: the flip stays in SRAM and every later read sees it
    const u32 = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (const b of bits) u32[word] ^= 1 << b;
  }
}

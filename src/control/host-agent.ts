import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type {
  ChipInit,
  ChipRunResult,
  ChipWeights,
  ChipToHost,
  HostToChip,
  WireError,
  RunSpec,
  StepSamples,
} from '../runtime/index.js';
import { withoutNatsSecrets, type TransportConfig, type TransportStats } from '../transport/index.js';
import { compiledUrl } from '../util/compiled-url.js';
import { RunError, type ErrorCode, ERRORS } from '../util/errors.js';
import { ChipMailbox } from './chip-mailbox.js';
import { StallMeter } from './silence.js';

/**
 * A host agent: the control-plane process of one GroqNode (its 2 CPUs). It owns its node's chips as
 * worker threads: spawns them, loads their Programs and weights, starts runs and collects results.
 * The same class runs inside the coordinator's process (--isolation thread) or as its own OS process
 * (--isolation process, see host-main.ts): one pod per host agent on Kubernetes.
 */

export interface HostChip {
  readonly init: ChipInit;
  readonly weights: ChipWeights;
  readonly transport: TransportConfig;
}

/** How one chip's run ended: a result, or the error it stopped with. */
export type ChipOutcome =
  | {
      readonly chipId: string;
      readonly result: ChipRunResult;
      readonly transport: TransportStats;
      readonly error: null;
    }
  | { readonly chipId: string; readonly result: null; readonly transport: null; readonly error: WireError };

/**
 * The chip worker as one bundled file (scripts/bundle-chip-worker.mjs, run by `npm run build`): each
 * of hundreds of isolates loads it, and one file loads far faster than a graph of ES modules.
 */
export const CHIP_WORKER = new URL('../bundle/chip-worker.js', compiledUrl('../', import.meta.url));

/**
 * msgpackr would load its native extractor (a .node addon) in every chip's isolate: measured here,
 * that doubles the start-up of hundreds of workers, and frame headers are too small to gain from it.
 * The NATS secrets the CLI reads from the environment stay out (chips get credentials in their config).
 */
export const CHIP_ENV: NodeJS.ProcessEnv = {
  ...withoutNatsSecrets(process.env),
  MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true',
};

export function fromWireError(e: WireError): RunError {
  const code = (e.code in ERRORS ? e.code : 'RACKEMU_ERR_WORKER') as ErrorCode;
  return new RunError(code, e.message, { details: e.details });
}

/** `details.worker` of a RACKEMU_ERR_WORKER whose chip worker is gone: it crashed, or exited with `code`. */
export type WorkerGone = { readonly state: 'crashed' } | { readonly state: 'exited'; readonly code: number };

/** What a host agent tells its owner outside replies (host-main.ts counts it in the host's metrics). */
export interface HostAgentEvents {
  /** A chip's worker crashed or exited while the agent still owned it (not at stop()). */
  readonly chipDown?: (chipId: string, why: string) => void;
}

/** How often a host agent looks for hung chips (ms). */
const HANG_CHECK_MS = 500;

/**
 * A chip in a run that has sent nothing (samples, replies, beats every second) for this long is hung: 1.5
 * watchdogs and at least 3 s. Longer than a watchdog, because a chip blocked sending into a full ring is
 * silent until the watchdog ends the wait, and the hung chip is the one its peers stall behind.
 */
export function chipSilenceMs(watchdogMs: number): number {
  return Math.max(3000, 1.5 * watchdogMs);
}

export class HostAgent {
  private readonly workers = new Map<string, Worker>();
  private readonly mailboxes = new Map<string, ChipMailbox>();
  private hangTimer: ReturnType<typeof setInterval> | null = null;
  private hangStalls = new StallMeter(HANG_CHECK_MS);
  private silenceMs = chipSilenceMs(30_000);

  constructor(
    readonly hostId: string,
    private readonly events: HostAgentEvents = {},
  ) {}

  /** The next reply of `type` from one chip, or rejection if the chip fails or its worker dies first. */
  private expect<T extends 'ready' | 'done' | 'logits' | 'closed'>(
    chipId: string,
    type: T,
    onSamples?: (s: StepSamples) => void,
  ) {
    return this.mailboxes.get(chipId)!.expect(type, onSamples);
  }

  /** Spawns and loads the chips; `onReady` fires as each one is up with its Program and weights. */
  async load(chips: readonly HostChip[], onReady: (chipId: string) => void = () => undefined): Promise<void> {
    if (!existsSync(CHIP_WORKER)) {
      throw new RunError(
        'RACKEMU_ERR_WORKER',
        `the chip worker bundle ${fileURLToPath(CHIP_WORKER)} is missing: run \`npm run build\` (tsc, then the bundle)`,
        {
          details: { expected: 'dist/bundle/chip-worker.js' },
        },
      );
    }
    if (chips.length > 0) this.silenceMs = chipSilenceMs(chips[0].init.watchdogMs);
    await Promise.all(
      chips.map(async (c) => {
        const w = new Worker(CHIP_WORKER, { name: c.init.chipId, env: CHIP_ENV });
        this.workers.set(c.init.chipId, w);
        const mailbox = new ChipMailbox((m) => fromWireError(m.error));
        this.mailboxes.set(c.init.chipId, mailbox);
        w.on('message', (m: ChipToHost) => mailbox.deliver(m));
        // details.worker marks a worker that is gone (root-cause.ts ranks it first), apart from a chip
        // that failed with an uncoded error
        const died = (why: string, worker: WorkerGone) => {
          this.events.chipDown?.(c.init.chipId, why);
          mailbox.failAll(
            new RunError('RACKEMU_ERR_WORKER', `chip ${c.init.chipId} on host ${this.hostId}: ${why}`, {
              details: { chip: c.init.chipId, worker },
            }),
          );
        };
        w.on('error', (err) => died(`worker crashed: ${err.message}`, { state: 'crashed' }));
        w.on('exit', (code) => {
          if (this.workers.has(c.init.chipId)) died(`worker exited with code ${code}`, { state: 'exited', code });
        });
        const ready = this.expect(c.init.chipId, 'ready');
        const msg: HostToChip = { type: 'init', init: c.init, weights: c.weights, transport: c.transport };
        w.postMessage(msg);
        await ready;
        onReady(c.init.chipId);
      }),
    );
  }

  /**
   * Runs every chip and waits until each has finished or failed. A chip stuck on a missing frame
   * fails by its own watchdog, so this settles; the coordinator then looks at all failures together
   * to name the root cause rather than whichever chip happened to report first. Runs may be queued
   * while earlier ones run (each chip runs them in order); `onSamples` sees the sampler's streamed
   * samples of this run.
   */
  async run(spec: RunSpec, onSamples?: (s: StepSamples) => void): Promise<ChipOutcome[]> {
    if (this.hangTimer === null) {
      this.hangStalls = new StallMeter(HANG_CHECK_MS);
      this.hangTimer = setInterval(() => this.findHung(), HANG_CHECK_MS);
    }
    return Promise.all(
      [...this.workers.entries()].map(async ([chipId, w]): Promise<ChipOutcome> => {
        const p = this.expect(chipId, 'done', onSamples);
        w.postMessage({ type: 'run', spec } satisfies HostToChip);
        try {
          const m = await p;
          return { chipId, result: m.result, transport: m.transport, error: null };
        } catch (e) {
          const err = e as RunError;
          return {
            chipId,
            result: null,
            transport: null,
            error: { code: err.code, message: err.message, details: err.details },
          };
        }
      }),
    );
  }

  /** A running chip that has been silent for silenceMs is hung: its run fails and its worker is ended. */
  private findHung(): void {
    let running = false;
    // time this process was stalled is not the chips' silence (silence.ts)
    const now = Date.now();
    const stalled = this.hangStalls.stalled(now);
    for (const [chipId, box] of this.mailboxes) {
      if (!box.running) continue;
      running = true;
      box.lastHeard += stalled;
      const silent = now - box.lastHeard;
      if (silent < this.silenceMs) continue;
      const w = this.workers.get(chipId);
      this.workers.delete(chipId);
      this.events.chipDown?.(chipId, `no heartbeat for ${silent} ms`);
      box.failAll(
        new RunError(
          'RACKEMU_ERR_CHIP_HANG',
          `chip ${chipId} on host ${this.hostId} stopped answering: no heartbeat for ${silent} ms during a run`,
          { details: { chip: chipId, host: this.hostId, silent_ms: silent } },
        ),
      );
      void w?.terminate();
    }
    if (!running && this.hangTimer !== null) {
      clearInterval(this.hangTimer);
      this.hangTimer = null;
    }
  }

  /** Ends every chip worker at once, as a host that loses power: nothing is closed (fault campaigns). */
  async crash(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.terminate()));
  }

  async readback(
    chipIds: readonly string[],
  ): Promise<{ chipId: string; start: number; logits: Float32Array | null }[]> {
    return Promise.all(
      chipIds.map(async (chipId) => {
        const p = this.expect(chipId, 'logits');
        this.workers.get(chipId)!.postMessage({ type: 'readback' } satisfies HostToChip);
        const m = await p;
        return { chipId, start: m.start, logits: m.logits };
      }),
    );
  }

  /** Closes every chip's endpoint, then ends the workers. */
  async stop(): Promise<void> {
    if (this.hangTimer !== null) clearInterval(this.hangTimer);
    this.hangTimer = null;
    const workers = [...this.workers.entries()];
    this.workers.clear();
    await Promise.all(
      workers.map(async ([chipId, w]) => {
        const closed = Promise.race([this.expect(chipId, 'closed'), new Promise((r) => setTimeout(r, 2000))]).catch(
          () => undefined,
        );
        w.postMessage({ type: 'close' } satisfies HostToChip);
        await closed;
        await w.terminate();
      }),
    );
  }

  get chipIds(): string[] {
    return [...this.workers.keys()];
  }
}

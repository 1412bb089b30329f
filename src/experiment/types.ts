/**
 * A fault-injection experiment: the system to build (topology, model, plan options), the workload to serve
 * through it, the faults to inject and what must hold afterwards. Read from YAML by ./file.ts.
 */

import type { LayoutSearch, Plan } from '../compiler/plan.js';
import type { EngineObserver } from '../control/engine-types.js';
import type { FaultObserver } from '../control/metrics-faults.js';
import type { FaultSpec, RandomFaults } from '../faults/types.js';
import type { Fabric } from '../topology/fabric.js';

export {
  FAULT_KINDS,
  isRandomFaults,
  type FaultAt,
  type FaultKind,
  type FaultParams,
  type FaultSpec,
  type RandomFaults,
} from '../faults/types.js';

export interface WorkloadSpec {
  readonly requests: number;
  readonly promptTokens: number;
  readonly maxNewTokens: number;
  readonly concurrency: number;
  readonly seed: number;
}

export interface ExpectSpec {
  readonly lostRequests?: number;
  readonly tokensIdentical?: boolean;
  readonly allDetected?: boolean;
  readonly allRecovered?: boolean;
  readonly maxRecoveryVirtualMs?: number;
}

export interface ExperimentSpec {
  /** Absolute path of the experiment file. */
  readonly file: string;
  /** `name` key, else the file's base name without extension. */
  readonly name: string;
  readonly description?: string;
  /** Absolute path. */
  readonly topology: string;
  /** Absolute path of a folder, or a built-in name. */
  readonly model: string;
  readonly fidelity: 'numeric' | 'timing';
  /** `set` map flattened to `key.path=value` strings, the same form as the CLI's --set (parseSetArg reads them). */
  readonly set: readonly string[];
  readonly plan: {
    readonly dtype?: 'bf16' | 'fp16' | 'int8' | 'fp8';
    readonly batch?: number;
    readonly context?: number;
    readonly prefillChunk?: number;
    readonly layoutSearch?: LayoutSearch;
  };
  readonly workload: WorkloadSpec;
  readonly faults: readonly (FaultSpec | RandomFaults)[];
  readonly expect: ExpectSpec;
}

/** How `rackemu experiment run` runs an experiment (its flags). */
export interface ExperimentRunOptions {
  readonly isolation: 'thread' | 'process';
  readonly transport: 'embedded' | 'nats';
  /** An existing NATS server or cluster (nats-server-kill then has nothing to kill); else one is spawned. */
  readonly natsUrl?: string;
  /** Size of the NATS cluster spawned for --transport nats without natsUrl (default 3). */
  readonly natsServers?: number;
  /** Wall-clock limit on a chip waiting for one frame: how soon a lost frame is declared missing. */
  readonly watchdogMs: number;
  readonly progress?: (message: string) => void;
  /** Sees both runs as they go (the rack view of `--watch`): each Plan, the engines' and the campaign's reports. */
  readonly watcher?: ExperimentWatcher;
}

/** What watches an experiment run: the Plans it runs (a recovery's included) and what they report. */
export interface ExperimentWatcher extends EngineObserver, FaultObserver {
  setPlan(plan: Plan, fabric: Fabric): void;
}

import { Option, type Command } from 'commander';
import { totalmem } from 'node:os';
import type { Plan } from '../compiler/plan.js';
import type { DeployOptions } from '../control/deployment.js';
import type { WeightStore } from '../model/weights.js';
import { spawnNatsServer, type NatsAuth, type SpawnedNatsServer } from '../transport/index.js';
import { bytesPerParam, paramCounts } from '../model/config.js';
import { DEFAULT_LOOKAHEAD_STEPS } from '../runtime/index.js';
import { UsageError, type ErrorCode } from '../util/errors.js';
import { addNatsAuthFlags, type NatsAuthFlags } from './nats-flags.js';
import { integerFlag } from './plan-flags.js';

/** The flags of the commands that run chips (generate, serve): fidelity, transport, isolation, watchdog. */
export interface RuntimeFlags extends NatsAuthFlags {
  fidelity: 'numeric' | 'timing';
  transport: 'embedded' | 'nats';
  natsUrl?: string;
  nats?: string;
  isolation: 'thread' | 'process' | 'remote';
  /** Remote isolation: the deployment name host agents join. */
  deployment?: string;
  joinTimeoutS: number;
  watchdogMs: number;
  lookahead: number;
}

export function addRuntimeFlags(cmd: Command): Command {
  cmd
    .addOption(
      new Option('--fidelity <f>', 'numeric: real values; timing: sizes only')
        .choices(['numeric', 'timing'])
        .default('numeric'),
    )
    .addOption(
      new Option('--transport <t>', 'how chips exchange tensor slices')
        .choices(['embedded', 'nats'])
        .default('embedded'),
    )
    .option('--nats-url <url>', 'NATS server for --transport nats')
    .addOption(new Option('--nats <mode>', 'spawn: start a private nats-server on a free port').choices(['spawn']));
  return addNatsAuthFlags(cmd)
    .addOption(
      new Option(
        '--isolation <i>',
        'thread: chips are threads of this process; process: a child process per host agent; remote: host agents join over NATS (rackemu host)',
      )
        .choices(['thread', 'process', 'remote'])
        .default('thread'),
    )
    .option('--deployment <name>', 'remote isolation: the name host agents join with rackemu host --deployment NAME')
    .option(
      '--join-timeout-s <s>',
      'process and remote isolation: seconds to wait for every host agent to join',
      integerFlag('--join-timeout-s', 1),
      120,
    )
    .option(
      '--watchdog-ms <ms>',
      'wall-clock limit on a chip waiting for one frame',
      integerFlag('--watchdog-ms', 1),
      30000,
    )
    .option(
      '--lookahead <steps>',
      'timing fidelity: steps a chip may send ahead of checking its received frames (0: check every step before the next)',
      integerFlag('--lookahead', 0),
      DEFAULT_LOOKAHEAD_STEPS,
    );
}

/** The transport flags' combinations, checked before anything is compiled or started; errors carry `code`. */
export function checkRuntimeFlags(flags: RuntimeFlags, code: ErrorCode): void {
  if (flags.isolation !== 'thread' && flags.transport === 'embedded') {
    throw new UsageError(
      code,
      `--isolation ${flags.isolation} needs --transport nats: the embedded transport connects threads of one process only`,
      { details: { path: '--transport', expected: '--transport nats', got: '--transport embedded' } },
    );
  }
  if (flags.isolation === 'remote' && !/^[A-Za-z0-9-]+$/.test(flags.deployment ?? '')) {
    throw new UsageError(
      code,
      '--isolation remote needs --deployment NAME (letters, digits and -): the name host agents join',
      {
        details: { path: '--deployment', expected: 'letters, digits and -', got: flags.deployment ?? '' },
      },
    );
  }
  if (flags.transport === 'nats' && !flags.natsUrl && flags.nats !== 'spawn') {
    throw new UsageError(code, '--transport nats needs --nats-url nats://host:port or --nats spawn', {
      details: { path: '--nats-url', expected: 'a NATS url' },
    });
  }
}

/** Numeric fidelity holds every weight as float32: refuse a model that would take over half this machine's memory. */
export function checkNumericMemory(plan: Plan, fidelity: RuntimeFlags['fidelity'], code: ErrorCode): void {
  if (fidelity !== 'numeric') return;
  const bytes = paramCounts(plan.model).total * Math.max(4, bytesPerParam(plan.options.dtype));
  if (bytes > totalmem() / 2) {
    throw new UsageError(
      code,
      `numeric fidelity would hold ${(bytes / 1e9).toFixed(1)} GB of float32 weights on this ${(totalmem() / 2 ** 30).toFixed(0)} GiB machine; use --fidelity timing`,
      { details: { expected: '--fidelity timing', got: '--fidelity numeric' } },
    );
  }
}

/** `--nats spawn` with the nats transport: a private nats-server requiring `natsAuth`; else null. */
export function spawnNatsIfAsked(
  flags: RuntimeFlags,
  natsAuth: NatsAuth | undefined,
): Promise<SpawnedNatsServer | null> {
  return flags.transport === 'nats' && flags.nats === 'spawn'
    ? spawnNatsServer({ auth: natsAuth })
    : Promise.resolve(null);
}

/** The Deployment options the runtime flags give (the command adds its own progress and metrics). */
export function deployOptions(
  flags: RuntimeFlags & { readonly model: string },
  plan: Plan,
  weights: WeightStore | null,
  nats: { readonly url: string | undefined; readonly auth: NatsAuth | undefined },
): DeployOptions {
  return {
    fidelity: flags.fidelity,
    transport: flags.transport,
    natsUrl: nats.url,
    natsAuth: nats.auth,
    isolation: flags.isolation,
    deployment: flags.deployment,
    joinTimeoutMs: flags.joinTimeoutS * 1000,
    model: { spec: flags.model, dtype: plan.options.dtype },
    weights,
    watchdogMs: flags.watchdogMs,
  };
}

import type { Command } from 'commander';
import { runHostAgent } from '../control/host-runner.js';
import { UsageError } from '../util/errors.js';
import { addNatsAuthFlags, natsAuthFromFlags, type NatsAuthFlags } from './nats-flags.js';
import { integerFlag } from './plan-flags.js';

interface HostFlags extends NatsAuthFlags {
  nats: string;
  deployment: string;
  hostId?: string;
  ordinal?: number;
  joinTimeoutS?: number;
  metricsHost?: string;
  metricsPort?: number;
}

const HOST_ID = /^r\d+\.n\d+$/;

/**
 * `rackemu host`: one node server's host agent, as its own process on any machine. It joins the
 * deployment over NATS, receives its chips' Programs from the coordinator, loads its weight slices
 * from the model source (a path every host can read), runs its chips, and exits 0 when the
 * coordinator stops the deployment.
 */
export function hostCommand(program: Command): void {
  const cmd = program
    .command('host')
    .description("run one node server's host agent: it joins a deployment over NATS (docs/cluster.md)")
    .requiredOption('--nats <url>', 'NATS server(s) of the deployment, comma-separated')
    .requiredOption(
      '--deployment <name>',
      'the deployment to join (the coordinator runs with --isolation remote --deployment NAME)',
    )
    .option('--host-id <id>', 'which node server this is: r<rack>.n<node>')
    .option(
      '--ordinal <n>',
      "or its ordinal among the deployment's host agents (a StatefulSet pod's)",
      integerFlag('--ordinal', 0),
    )
    .option('--metrics-host <addr>', "serve the host agent's own GET /metrics on this address (with --metrics-port)")
    .option('--metrics-port <n>', 'port of that /metrics (0: any free port)', integerFlag('--metrics-port', 0))
    .option(
      '--join-timeout-s <s>',
      'give up when no coordinator takes this host within this many seconds',
      integerFlag('--join-timeout-s', 1),
    );
  addNatsAuthFlags(cmd).action(async (flags: HostFlags) => {
    const fail = (message: string, path: string, expected: string, got: string) => {
      throw new UsageError('RACKEMU_ERR_USAGE', message, { details: { path, expected, got } });
    };
    if ((flags.hostId === undefined) === (flags.ordinal === undefined)) {
      fail(
        'rackemu host needs exactly one of --host-id r<rack>.n<node> and --ordinal N',
        '--host-id',
        'one of --host-id, --ordinal',
        '',
      );
    }
    if (flags.hostId !== undefined && !HOST_ID.test(flags.hostId)) {
      fail(
        `--host-id: expected r<rack>.n<node> such as r0.n3, got "${flags.hostId}"`,
        '--host-id',
        'r<rack>.n<node>',
        flags.hostId,
      );
    }
    if (!/^[A-Za-z0-9-]+$/.test(flags.deployment)) {
      fail(
        `--deployment: expected letters, digits and -, got "${flags.deployment}"`,
        '--deployment',
        'letters, digits and -',
        flags.deployment,
      );
    }
    await runHostAgent({
      servers: flags.nats.split(','),
      auth: natsAuthFromFlags(flags, 'RACKEMU_ERR_USAGE'),
      deployment: flags.deployment,
      host: flags.hostId !== undefined ? { hostId: flags.hostId } : { ordinal: flags.ordinal! },
      joinTimeoutMs: flags.joinTimeoutS === undefined ? undefined : flags.joinTimeoutS * 1000,
      metrics:
        flags.metricsHost === undefined && flags.metricsPort === undefined
          ? undefined
          : { host: flags.metricsHost ?? '127.0.0.1', port: flags.metricsPort ?? 0 },
    });
  });
}

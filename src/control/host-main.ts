/**
 * A host agent as a child process of its coordinator (--isolation process): the same agent as
 * `rackemu host` on any machine (host-runner.ts), joining the coordinator's deployment over NATS.
 *   node host-main.js --nats URL --deployment NAME --host-id r<rack>.n<node>
 * Credentials come in the environment variable RACKEMU_HOST_NATS_AUTH (JSON), never on the command line.
 */
import type { NatsAuth } from '../transport/index.js';
import { isRackemuError, type RackemuError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { runHostAgent } from './host-runner.js';

const arg = (name: string): string => {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`host-main: ${name} is required`);
  return process.argv[i + 1];
};
const authJson = process.env.RACKEMU_HOST_NATS_AUTH;
delete process.env.RACKEMU_HOST_NATS_AUTH;
const auth = authJson ? (JSON.parse(authJson) as NatsAuth) : undefined;
// the coordinator went away: so does its child
process.on('disconnect', () => process.exit(0));
try {
  await runHostAgent({
    servers: arg('--nats'),
    auth,
    deployment: arg('--deployment'),
    host: { hostId: arg('--host-id') },
  });
  process.exit(0);
} catch (e) {
  // the coordinator sees the exit (NatsHost); the log says why
  logger().error({ err: e, code: (e as RackemuError).code }, `host agent left: ${(e as Error).message}`);
  process.exit(isRackemuError(e) ? e.exitCode : 1);
}

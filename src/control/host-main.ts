/**
 * A host agent as its own OS process (--isolation process): it receives its chips' Programs from the
 * coordinator over IPC, loads the weight slices itself from the model source, and runs the chips as
 * its worker threads. Chips in different processes talk over NATS. When the coordinator asks (serve),
 * it also serves its own GET /metrics (host-metrics.ts) and says where in its `loaded` reply.
 */
import { loadModel } from '../model/load.js';
import { toWireError } from '../runtime/index.js';
import { childLogger } from '../util/log.js';
import { HostAgent } from './host-agent.js';
import { HostMetrics, listenMetrics } from './host-metrics.js';
import { weightsFor, type CoordinatorToHost, type HostToCoordinator } from './host.js';

let agent: HostAgent | null = null;
let metrics: HostMetrics | null = null;
const send = (m: HostToCoordinator) => process.send!(m);

process.on('message', (msg: CoordinatorToHost) => {
  void handle(msg).catch((e: unknown) => send({ type: 'error', error: toWireError(e) }));
});
process.on('disconnect', () => process.exit(0));

async function load(msg: Extract<CoordinatorToHost, { type: 'load' }>): Promise<void> {
  const log = childLogger({ host: msg.hostId });
  const chipIds = msg.chips.map((c) => c.init.chipId);
  const m = msg.metrics === null ? null : new HostMetrics(msg.hostId, chipIds);
  metrics = m;
  const numeric = msg.chips.some((c) => c.init.fidelity === 'numeric');
  const { weights } = loadModel(msg.model.spec, { dtype: msg.model.dtype, withWeights: numeric });
  agent = new HostAgent(msg.hostId, {
    chipDown: (chip, why) => {
      m?.chipFailed(chip);
      log.warn({ chip, why }, 'chip down');
    },
  });
  // listen while the chips load
  const listening = m && msg.metrics ? listenMetrics(m.registry, msg.metrics.host) : null;
  listening?.catch(() => undefined); // reported below, after the load
  await agent.load(
    msg.chips.map((c) => ({ init: c.init, transport: c.transport, weights: weightsFor(c.init, weights) })),
    (chipId) => {
      m?.chipUp(chipId);
      send({ type: 'chip-ready', chipId });
    },
  );
  const metricsUrl = listening === null ? null : (await listening).url;
  if (metricsUrl !== null) log.info({ url: metricsUrl, chips: chipIds.length }, 'host metrics listening');
  send({ type: 'loaded', metricsUrl });
}

async function handle(msg: CoordinatorToHost): Promise<void> {
  switch (msg.type) {
    case 'load':
      return load(msg);
    case 'run': {
      const outcomes = await agent!.run(msg.spec, (samples) => send({ type: 'samples', samples }));
      metrics?.runEnded(outcomes);
      send({ type: 'ran', outcomes });
      return;
    }
    case 'readback':
      send({ type: 'logits', logits: await agent!.readback(msg.chipIds) });
      return;
    case 'stop':
      await agent?.stop();
      send({ type: 'stopped' });
      process.exit(0);
  }
}

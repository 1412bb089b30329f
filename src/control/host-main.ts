/**
 * A host agent as its own OS process (--isolation process): it receives its chips' Programs from the
 * coordinator over IPC, loads the weight slices itself from the model source, and runs the chips as
 * its worker threads. Chips in different processes talk over NATS.
 */
import { loadModel } from '../model/load.js';
import { toWireError } from '../runtime/index.js';
import { HostAgent } from './host-agent.js';
import { weightsFor, type CoordinatorToHost, type HostToCoordinator } from './host.js';

let agent: HostAgent | null = null;
const send = (m: HostToCoordinator) => process.send!(m);

process.on('message', (msg: CoordinatorToHost) => {
  void handle(msg).catch((e: unknown) => send({ type: 'error', error: toWireError(e) }));
});
process.on('disconnect', () => process.exit(0));

async function handle(msg: CoordinatorToHost): Promise<void> {
  switch (msg.type) {
    case 'load': {
      const numeric = msg.chips.some((c) => c.init.fidelity === 'numeric');
      const { weights } = loadModel(msg.model.spec, { dtype: msg.model.dtype, withWeights: numeric });
      agent = new HostAgent(msg.hostId);
      await agent.load(
        msg.chips.map((c) => ({ init: c.init, transport: c.transport, weights: weightsFor(c.init, weights) })),
        (chipId) => send({ type: 'chip-ready', chipId }),
      );
      send({ type: 'loaded' });
      return;
    }
    case 'run':
      send({ type: 'ran', outcomes: await agent!.run(msg.spec, (samples) => send({ type: 'samples', samples })) });
      return;
    case 'readback':
      send({ type: 'logits', logits: await agent!.readback(msg.chipIds) });
      return;
    case 'stop':
      await agent?.stop();
      send({ type: 'stopped' });
      process.exit(0);
  }
}

import type { FaultCampaign } from '../control/fault-campaign.js';
import { parseFault } from '../experiment/file.js';
import type { FaultControl } from '../serve/admin.js';
import { UsageError } from '../util/errors.js';

const WHERE = 'POST /admin/faults';

/**
 * POST /admin/faults on a live `serve`: a fault as in an experiment file, whose `at` is `{tick}` (a
 * virtual tick of the serving timeline), `{wall_ms}` (from now) or absent (the next window of steps).
 * The serving deployment's campaign fires it, detects it and recovers, as in an experiment.
 */
export function faultControl(campaign: FaultCampaign, wallT0: number): FaultControl {
  return {
    inject(body: unknown) {
      const b = body !== null && typeof body === 'object' && !Array.isArray(body) ? { ...body } : body;
      if (b !== null && typeof b === 'object' && !Array.isArray(b)) {
        const o = b as Record<string, unknown>;
        o.at ??= { wall_ms: 0 };
        const at = o.at as Record<string, unknown> | null;
        if (at !== null && typeof at === 'object' && ('request' in at || 'token' in at)) {
          throw new UsageError(
            'RACKEMU_ERR_FAULT',
            `${WHERE}: at: { request, token } names a request of an experiment's workload; a live server takes { tick } or { wall_ms } (from now)`,
            { details: { path: 'at', expected: '{ tick } | { wall_ms }', got: JSON.stringify(at) } },
          );
        }
      }
      let spec = parseFault(JSON.stringify(b ?? null), WHERE);
      if ('wallMs' in spec.at) spec = { ...spec, at: { wallMs: spec.at.wallMs + (performance.now() - wallT0) } };
      const index = campaign.inject(spec, WHERE);
      return { index, kind: spec.kind, target: spec.target };
    },
    list: () => campaign.records,
  };
}

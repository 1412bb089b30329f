/**
 * The transport room's public surface: what a chip's endpoint is and how one is opened, the configs,
 * the embedded fabric a coordinator builds, and a private nats-server for runs that need one. The
 * control plane imports from here; the runtime holds only a ChipEndpoint, and its frame and bundle
 * codec users import internal.ts. nats.ts (and the NATS client) load lazily through openEndpoint.
 */
export type {
  ChipEndpoint,
  EmbeddedTransportConfig,
  ErrorHandler,
  BundleHandler,
  FrameHandler,
  NatsAuth,
  NatsBus,
  NatsBusOptions,
  NatsTransportConfig,
  OpenEndpointOptions,
  TransportConfig,
  TransportKind,
  TransportStats,
} from './types.js';
export { DEFAULT_WINDOW_BYTES, DEFAULT_WINDOW_FRAMES } from './types.js';
export { openEndpoint, openNatsBus } from './open.js';
export { chipToken } from './nats-subjects.js';
export { createEmbeddedFabric, type EmbeddedFabric, type EmbeddedFabricOptions } from './embedded-fabric.js';
export { DEFAULT_RING_BYTES, MIN_RING_BYTES, type PairTraffic, type RingSizeOptions } from './ring-size.js';
export {
  spawnNatsServer,
  spawnNatsCluster,
  freePort,
  type SpawnedNatsServer,
  type SpawnedNatsCluster,
  type SpawnNatsServerOptions,
} from './nats-server.js';
export { checkNatsAuth, describeNatsAuth, redactUrl, withoutNatsSecrets, NATS_SECRET_ENV } from './nats-auth.js';

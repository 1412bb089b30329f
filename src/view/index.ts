/** The rack view: a live page of the deployment's chips (docs/view.md). */
export { ACTIVITY_MS, RackView } from './live.js';
export { registerView, UPDATE_MS } from './routes.js';
export { viewLayout, stepProfile, PROFILE_BINS } from './layout.js';
export * from './protocol.js';
export { startViewServer, type ViewServer } from './server.js';

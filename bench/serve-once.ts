/**
 * One serving case of `npm run bench`: starts `rackemu serve` as its own process (as a user would),
 * waits until it is ready, runs each load of the case against it with the load generator (load.ts),
 * drains it with SIGTERM and prints one JSON line: start-up time and each load's report.
 *
 * Usage: node serve-once.js '<ServeCase JSON>'
 */
import { runLoad, type LoadReport, type LoadSpec } from './load.js';
import { startServe } from './serve-process.js';

export interface ServeCase {
  readonly topology: string;
  readonly sets: readonly string[];
  readonly model: string;
  readonly fidelity: 'numeric' | 'timing';
  readonly batch: number;
  readonly context?: number;
  readonly promptTokens?: number;
  readonly pace: 'max' | 'realtime';
  readonly windowSteps?: number;
  /** --lookahead (timing fidelity). */
  readonly lookahead?: number;
  readonly vocab: number;
  readonly loads: readonly Omit<LoadSpec, 'url' | 'model' | 'vocab'>[];
}

export interface ServeResult {
  readonly case: ServeCase;
  readonly startup_s: number;
  readonly loads: LoadReport[];
  readonly exit_code: number | null;
}

const c = JSON.parse(process.argv[2]) as ServeCase;
const args = ['--topology', c.topology, '--model', c.model, '--fidelity', c.fidelity];
args.push('--batch', String(c.batch), '--port', '0', '--pace', c.pace, '--max-waiting', '1000');
for (const s of c.sets) args.push('--set', s);
if (c.context !== undefined) args.push('--context', String(c.context));
if (c.promptTokens !== undefined) args.push('--prompt-tokens', String(c.promptTokens));
if (c.windowSteps !== undefined) args.push('--window-steps', String(c.windowSteps));
if (c.lookahead !== undefined) args.push('--lookahead', String(c.lookahead));
const { url, child, exited, startupS: startup } = await startServe(args);
const loads: LoadReport[] = [];
try {
  for (const l of c.loads) loads.push(await runLoad({ ...l, url, model: c.model, vocab: c.vocab }));
} finally {
  child.kill('SIGTERM');
}
const result: ServeResult = { case: c, startup_s: startup, loads, exit_code: await exited };
console.log(JSON.stringify(result));

/**
 * Recovery time per fault kind (issue 14's figures), wall and virtual: the shipped campaigns run as
 * `rackemu experiment run` runs them, in this process.
 *   - experiments/each-kind.yaml: mixtral-tiny numeric on groq-576, one fault of each kind while serving
 *     50 requests, chips as threads over a spawned 3-server NATS cluster (so nats-server-kill applies);
 *   - experiments/mixtral-8x7b-timing.yaml: the full-size model in timing fidelity, a chip crash and a
 *     link down (onto the spare nodes).
 * Prints a Markdown table per campaign (for BENCHMARKS.md) and one JSON line per campaign.
 * Usage, with the V8 flags of src/control/v8-flags.ts (as bin/rackemu.js adds them); default: both
 * campaigns, about 6 minutes here:
 *   node --single-threaded-gc --no-memory-reducer --max-semi-space-size=1 dist/bench/recovery.js [each-kind|timing]
 */
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadExperiment } from '../src/experiment/file.js';
import type { ExperimentReport } from '../src/experiment/report.js';
import { runExperiment } from '../src/experiment/runner.js';
import type { ExperimentRunOptions } from '../src/experiment/types.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CAMPAIGNS: Record<string, { file: string; options: ExperimentRunOptions }> = {
  'each-kind': {
    file: `${root}experiments/each-kind.yaml`,
    options: { isolation: 'thread', transport: 'nats', watchdogMs: 4000 },
  },
  timing: {
    file: `${root}experiments/mixtral-8x7b-timing.yaml`,
    options: { isolation: 'thread', transport: 'embedded', watchdogMs: 20_000 },
  },
};

function table(r: ExperimentReport): string {
  const rows = r.faults.map(
    (f) =>
      `| ${f.kind} | ${f.target} | ${f.mechanism ?? '-'} | ${f.attributed_correctly ? 'yes' : f.detected ? 'no' : '-'} | ${f.action ?? '-'} | ${f.spare ?? '-'} | ${f.recovery_virtual_ms ?? '-'} | ${f.recovery_wall_ms ?? '-'} | ${f.replan_wall_ms ?? '-'} |`,
  );
  return [
    `${r.model} on ${r.topology}, ${r.fidelity}, ${r.transport}: ${r.requests.completed}/${r.requests.total} requests, ${r.requests.lost} lost, tokens identical: ${r.tokens_identical}; wall ${r.wall.baseline_s} s fault-free, ${r.wall.faulted_s} s with faults`,
    '',
    '| fault | target | detected by | attributed | action | spare | recovery virtual ms | recovery wall ms | re-plan wall ms |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
console.log(`Machine: ${machine}`);
const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(CAMPAIGNS);
for (const name of names) {
  const c = CAMPAIGNS[name];
  if (c === undefined) throw new Error(`unknown campaign ${name}: ${Object.keys(CAMPAIGNS).join(', ')}`);
  const report = await runExperiment(loadExperiment(c.file), c.options);
  console.log(`\n${table(report)}\n`);
  console.log(JSON.stringify({ campaign: name, report }));
}

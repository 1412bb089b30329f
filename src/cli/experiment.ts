import { Option, type Command } from 'commander';
import { loadExperiment } from '../experiment/file.js';
import { reportMarkdown } from '../experiment/report.js';
import { runExperimentWithRecords } from '../experiment/runner.js';
import { faultTrace } from '../experiment/trace.js';
import { UsageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { RackView, startViewServer, type ViewServer } from '../view/index.js';
import { integerFlag } from './plan-flags.js';

interface ExperimentFlags {
  json?: boolean;
  report?: string;
  trace?: string;
  isolation: 'thread' | 'process';
  transport: 'embedded' | 'nats';
  natsUrl?: string;
  watchdogMs: number;
  watch?: number;
}

async function watchServer(view: RackView, port: number): Promise<ViewServer> {
  if (port > 65535) {
    throw new UsageError('RACKEMU_ERR_USAGE', `--watch: expected a port 0..65535, got ${port}`, {
      details: { path: '--watch', expected: '0..65535', got: String(port) },
    });
  }
  try {
    return await startViewServer(view, '127.0.0.1', port);
  } catch (e) {
    throw new UsageError('RACKEMU_ERR_USAGE', `--watch: cannot listen on 127.0.0.1:${port}: ${(e as Error).message}`, {
      details: { path: '--watch', got: String(port) },
      cause: e,
    });
  }
}

/**
 * `rackemu experiment run FILE`: the fault-free baseline and the faulted run of one experiment file,
 * and the report. Exit status 1 when an `expect` of the file fails (the report says which).
 */
export function experimentCommand(program: Command, out: (s: string) => void): void {
  const experiment = program.command('experiment').description('fault-injection experiments (docs/faults.md)');
  experiment
    .command('run')
    .description('run an experiment file: baseline, faulted run, report')
    .argument('<file>', 'experiment YAML (examples in experiments/)')
    .option('--json', 'print the report as JSON')
    .option('--report <file.md>', 'also write the report as Markdown')
    .option('--trace <file.json>', 'also write the faults on the virtual timeline as a Chrome trace (Perfetto)')
    .addOption(
      new Option('--isolation <mode>', 'chips as threads of this process, or host agents as processes')
        .choices(['thread', 'process'])
        .default('thread'),
    )
    .addOption(
      new Option('--transport <kind>', 'embedded, or nats (a 3-server cluster is spawned unless --nats-url)')
        .choices(['embedded', 'nats'])
        .default('embedded'),
    )
    .option('--nats-url <urls>', 'an existing NATS server or cluster (nats-server-kill needs the spawned cluster)')
    .option(
      '--watch <port>',
      'serve the rack view of the run at http://127.0.0.1:<port>/ (0: any free port) while it runs',
      integerFlag('--watch', 0),
    )
    .option(
      '--watchdog-ms <ms>',
      'wall-clock limit on a chip waiting for one frame (how soon a lost frame is missing)',
      integerFlag('--watchdog-ms', 1),
      4000,
    )
    .action(async (file: string, flags: ExperimentFlags) => {
      if (flags.isolation === 'process' && flags.transport !== 'nats') {
        throw new UsageError('RACKEMU_ERR_USAGE', '--isolation process needs --transport nats', {
          details: { path: '--transport', expected: 'nats', got: flags.transport },
        });
      }
      const spec = loadExperiment(file);
      const view = flags.watch === undefined ? null : new RackView(spec.fidelity);
      const server = view === null ? null : await watchServer(view, flags.watch!);
      if (server !== null) process.stderr.write(`rackemu experiment: rack view on ${server.url}/\n`);
      let run: Awaited<ReturnType<typeof runExperimentWithRecords>>;
      try {
        run = await runExperimentWithRecords(spec, {
          isolation: flags.isolation,
          transport: flags.transport,
          natsUrl: flags.natsUrl,
          watchdogMs: flags.watchdogMs,
          progress: flags.json ? undefined : (m) => out(`${m}\n`),
          watcher: view ?? undefined,
        });
      } finally {
        await server?.close();
      }
      const report = run.report;
      if (flags.report) writeFileAtomic(flags.report, reportMarkdown(report));
      if (flags.trace) writeFileAtomic(flags.trace, JSON.stringify(faultTrace(run.records, run.plan)));
      out(flags.json ? `${JSON.stringify(report, null, 2)}\n` : reportMarkdown(report));
      if (!report.expect.passed) {
        throw new UsageError('RACKEMU_ERR_EXPECT', `${spec.name}: ${report.expect.failures.join('; ')}`, {
          details: { failures: report.expect.failures },
        });
      }
    });
}

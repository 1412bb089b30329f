import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { Deployment } from '../control/deployment.js';
import { generateJson, type GenerateJson } from './generate-report.js';
import { predict } from '../compiler/report.js';
import type { SpawnedNatsServer } from '../transport/index.js';
import { RunError, UsageError } from '../util/errors.js';
import { natsAuthFromFlags } from './nats-flags.js';
import {
  addRuntimeFlags,
  checkNumericMemory,
  checkRuntimeFlags,
  deployOptions,
  spawnNatsIfAsked,
  type RuntimeFlags,
} from './runtime-flags.js';
import { addPlanFlags, integerFlag, planFromFlags, type PlanFlags } from './plan-flags.js';

interface GenerateFlags extends PlanFlags, RuntimeFlags {
  promptIds: string;
  maxNewTokens: number;
  json?: boolean;
  progress: boolean;
  retries: number;
}

function ids(v: string): number[] {
  const out = v.split(',').map((s) => Number(s.trim()));
  if (v.trim() === '' || out.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new UsageError(
      'RACKEMU_ERR_USAGE',
      `--prompt-ids: expected comma-separated token ids such as 1,2,3, got "${v}"`,
      { details: { path: '--prompt-ids', got: v } },
    );
  }
  return out;
}

export function generateCommand(program: Command, out: (s: string) => void): void {
  const cmd = addPlanFlags(
    program.command('generate').description('run the compiled Plan on emulated chips and generate tokens'),
  )
    .requiredOption('--prompt-ids <ids>', 'prompt token ids, comma-separated')
    .option('--max-new-tokens <n>', 'tokens to generate', integerFlag('--max-new-tokens', 1), 16);
  addRuntimeFlags(cmd)
    .option(
      '--retries <n>',
      'replay the run from the prompt up to N times when the transport fails (a NATS server of a cluster went away)',
      integerFlag('--retries', 0),
      0,
    )
    .option('--no-progress', 'no progress bar while chips start')
    .option('--json', 'print one JSON object')
    .action(async (flags: GenerateFlags) => {
      const promptIds = ids(flags.promptIds);
      checkRuntimeFlags(flags, 'RACKEMU_ERR_GENERATE_OPTION');
      // credentials every chip's connection presents (and a spawned server requires)
      const natsAuth = flags.transport === 'nats' ? natsAuthFromFlags(flags, 'RACKEMU_ERR_GENERATE_OPTION') : undefined;
      const { plan, fabric, weights } = planFromFlags(flags, {
        promptTokens: promptIds.length,
        withWeights: flags.fidelity === 'numeric',
      });
      checkNumericMemory(plan, flags.fidelity, 'RACKEMU_ERR_GENERATE_OPTION');
      if (plan.options.batch !== 1) {
        throw new UsageError(
          'RACKEMU_ERR_GENERATE_OPTION',
          'generate runs one prompt: --batch must be 1 (rackemu serve fills batch slots)',
          { details: { got: String(plan.options.batch) } },
        );
      }
      let nats: SpawnedNatsServer | null = null;
      let deployment: Deployment | null = null;
      const bar = flags.progress ? progressBar() : null;
      try {
        nats = await spawnNatsIfAsked(flags, natsAuth);
        deployment = await Deployment.start(plan, fabric, {
          ...deployOptions(flags, plan, weights, { url: nats?.url ?? flags.natsUrl, auth: natsAuth }),
          onProgress: (ready, total) => {
            if (!bar) return;
            if (ready === 0) bar.start(total, 0);
            else bar.update(ready);
          },
        });
        bar?.stop();
        const r = await deployment.generate({
          promptIds,
          maxNewTokens: flags.maxNewTokens,
          lookaheadSteps: flags.lookahead,
          retries: flags.retries,
        });
        const p = predict(plan);
        const report: Report = {
          topology: plan.topology.name,
          model: plan.model.name,
          fidelity: flags.fidelity,
          transport: flags.transport,
          isolation: flags.isolation,
          ...generateJson(r),
          predicted: { ttft_ms: p.ttft_ms, tpot_ms: p.tpot_ms },
        };
        out(flags.json ? JSON.stringify(report) + '\n' : format(report));
        if (r.violations.length > 0) {
          throw new RunError(
            'RACKEMU_ERR_SCHEDULE_VIOLATION',
            `${r.violations.length} schedule violation(s); first: ${r.violations[0].message}`,
            {
              details: { violations: r.violations },
            },
          );
        }
      } finally {
        bar?.stop();
        await deployment?.stop();
        await nats?.stop();
      }
    });
}

/** Chips up and loaded, on stderr while the deployment starts. */
function progressBar(): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'chips {bar} {value}/{total} up and loaded | {duration}s',
      noTTYOutput: true,
      notTTYSchedule: 2000,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
}

type Report = GenerateJson & {
  topology: string;
  model: string;
  fidelity: string;
  transport: string;
  isolation: string;
  predicted: { ttft_ms: number; tpot_ms: number };
};

function format(r: Report): string {
  const f = (n: number, d = 3) => n.toFixed(d);
  return [
    `${r.model} on ${r.topology}: ${r.generated} token(s), ${r.fidelity} fidelity, ${r.transport} transport, ${r.isolation} isolation`,
    `chips     ${r.chips.workers} workers on ${r.chips.hosts} host agents (${r.chips.used} with work)`,
    r.tokens ? `tokens    ${r.tokens.join(' ')}` : 'tokens    (timing fidelity: sizes only, no values)',
    `virtual   TTFT ${f(r.virtual.ttft_ms)} ms, TPOT ${f(r.virtual.tpot_ms, 4)} ms, ${f(r.virtual.tokens_per_s_per_user, 1)} tokens/s per user (predicted: ${f(r.predicted.ttft_ms)} ms, ${f(r.predicted.tpot_ms, 4)} ms)`,
    `wall      start-up ${f(r.wall.startup_s, 2)} s, run ${f(r.wall.run_s, 2)} s = ${f(r.wall.per_token_ms, 1)} ms per token (real-time factor ${f(r.wall.per_token_ms / r.virtual.tpot_ms, 0)}x)`,
    `messages  ${r.messages.count} frames in ${r.messages.transport_messages} transport messages, ${(r.messages.bytes / 1e6).toFixed(2)} MB of tensor data`,
    `violations ${r.violations.length}`,
    '',
  ].join('\n');
}

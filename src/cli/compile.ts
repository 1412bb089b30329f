import type { Command } from 'commander';
import { report } from '../compiler/report.js';
import { stepTrace } from '../compiler/trace.js';
import { writeFileAtomic } from '../util/files.js';
import { formatReport } from './format.js';
import { addPlanFlags, planFromFlags, type PlanFlags } from './plan-flags.js';

interface CompileFlags extends PlanFlags {
  json?: boolean;
  trace?: string;
}

export function compileCommand(program: Command, out: (s: string) => void): void {
  addPlanFlags(
    program
      .command('compile')
      .description('compile a model onto a topology and report fit, layout and predicted performance'),
  )
    .option('--json', 'print one JSON object instead of the report')
    .option('--trace <file>', 'write a Chrome trace (opens in Perfetto) of one decode step')
    .action((flags: CompileFlags) => {
      const { plan, fabric } = planFromFlags(flags);
      const r = report(plan, fabric);
      if (flags.trace) writeFileAtomic(flags.trace, JSON.stringify(stepTrace(plan, fabric)));
      out(flags.json ? JSON.stringify(r) + '\n' : formatReport(r));
    });
}

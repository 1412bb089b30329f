import { report } from '../compiler/report.js';
import { stepTrace } from '../compiler/trace.js';
import { writeFileAtomic } from '../util/files.js';
import { formatReport } from './format.js';
import { addPlanFlags, planFromFlags } from './plan-flags.js';
export function compileCommand(program, out) {
    addPlanFlags(program.command('compile').description('compile a model onto a topology and report fit, layout and predicted performance'))
        .option('--json', 'print one JSON object instead of the report')
        .option('--trace <file>', 'write a Chrome trace (opens in Perfetto) of one decode step')
        .action((flags) => {
        const { plan, fabric } = planFromFlags(flags);
        const r = report(plan, fabric);
        if (flags.trace)
            writeFileAtomic(flags.trace, JSON.stringify(stepTrace(plan, fabric)));
        out(flags.json ? JSON.stringify(r) + '\n' : formatReport(r));
    });
}
//# sourceMappingURL=compile.js.map
/**
 * `npm run bench`: the emulator's own speed. Each case runs in a fresh child process; results go to
 * stdout, to bench/results.json and to the generated section of BENCHMARKS.md.
 */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
const root = new URL('../../', import.meta.url).pathname;
const here = new URL('.', import.meta.url).pathname;
function compileCase(topology, model) {
    const out = execFileSync(process.execPath, [`${here}compile-once.js`, `${root}topologies/${topology}.yaml`, model], { encoding: 'utf8' });
    return JSON.parse(out);
}
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
let commit = 'uncommitted';
try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
}
catch {
    // not a git checkout
}
const date = new Date().toISOString().slice(0, 10);
const compileRuns = [compileCase('groq-576', 'mixtral-8x7b'), compileCase('groq-10440', 'mixtral-8x7b')];
const aims = { 'groq-576': 'under 10 s and 1 GB', 'groq-10440': 'under 60 s' };
const lines = [
    `Machine: ${machine}. Date: ${date}. Commit: ${commit}.`,
    '',
    '### Compile',
    '',
    '| case | chips | links | decode ops / transfers | compile time | peak RSS | aim |',
    '|---|---|---|---|---|---|---|',
    ...compileRuns.map((r) => `| ${r.model} on ${r.topology} | ${r.chips} | ${r.links} | ${r.decode_ops} / ${r.decode_transfers} | ${r.seconds.toFixed(2)} s | ${r.peak_rss_mb.toFixed(0)} MB | ${aims[r.topology]} |`),
];
const section = lines.join('\n');
console.log(section);
writeFileSync(`${root}bench/results.json`, JSON.stringify({ machine, date, commit, compile: compileRuns }, null, 2) + '\n');
const file = `${root}BENCHMARKS.md`;
const doc = readFileSync(file, 'utf8');
const [head, rest] = doc.split('<!-- bench:start -->');
const tail = rest?.split('<!-- bench:end -->')[1] ?? '\n';
writeFileSync(file, `${head}<!-- bench:start -->\n${section}\n<!-- bench:end -->${tail}`);
//# sourceMappingURL=run.js.map
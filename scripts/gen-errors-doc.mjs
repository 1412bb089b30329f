// Writes docs/errors.md from the error registry (npm run build first). A test keeps them in step.
import { writeFileSync } from 'node:fs';
import { ERRORS } from '../dist/src/util/errors.js';
const rows = Object.entries(ERRORS).map(([code, e]) => `| \`${code}\` | ${e.exitCode} | ${e.summary} |`);
writeFileSync(
  new URL('../docs/errors.md', import.meta.url),
  `# Error codes\n\nEvery error rackemu raises on purpose carries one of these codes (\`err.code\`, and the\nfirst word of the CLI's message); the CLI exits with the status shown. Generated from\n\`src/util/errors.ts\` by \`node scripts/gen-errors-doc.mjs\`.\n\n| code | exit status | meaning |\n|---|---|---|\n${rows.join('\n')}\n`,
);

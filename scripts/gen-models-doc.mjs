// Writes docs/models.md from the built-in models and the compiler (npm run build first). A test keeps them in step.
import { writeFileSync } from 'node:fs';
import { modelsTableMarkdown } from '../dist/src/sweep/index.js';
import { loadTopology } from '../dist/src/topology/load.js';
const base = loadTopology(new URL('../topologies/groq-10440.yaml', import.meta.url).pathname);
writeFileSync(new URL('../docs/models.md', import.meta.url), modelsTableMarkdown(base));

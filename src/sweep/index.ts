export { sweep, type SweepOptions, type SweepPoint, type SweepResult, type SweepSkip } from './sweep.js';
export { frontierSvg } from './chart.js';
export { renderPng } from './png.js';
export { modelsTableMarkdown, modelsTableRows, MODELS_TABLE_CONTEXT, type ModelsTableRow } from './models-table.js';

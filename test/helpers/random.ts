export { mulberry32 } from '../../src/util/prng.js';

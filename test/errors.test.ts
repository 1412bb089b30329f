import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, RackemuError, TopologyError } from '../src/util/errors.js';
import { ROOT } from './helpers/cli.js';

describe('errors', () => {
  it('errors - every code is documented in docs/errors.md with its exit status', () => {
    const doc = readFileSync(`${ROOT}docs/errors.md`, 'utf8');
    for (const [code, e] of Object.entries(ERRORS)) expect(doc).toContain(`| \`${code}\` | ${e.exitCode} |`);
  });

  it('errors - coded errors keep code, details and cause', () => {
    const cause = new Error('root');
    const e = new TopologyError('RACKEMU_ERR_TOPOLOGY_RANGE', 'racks: expected >= 1', {
      cause,
      details: { path: 'racks' },
    });
    expect(e).toBeInstanceOf(RackemuError);
    expect(e.code).toBe('RACKEMU_ERR_TOPOLOGY_RANGE');
    expect(e.exitCode).toBe(65);
    expect(e.cause).toBe(cause);
    expect(e.details.path).toBe('racks');
    expect(e.name).toBe('TopologyError');
  });
});

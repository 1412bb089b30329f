import { describe, expect, it } from 'vitest';
import { run, spawnCli, topo } from './helpers/cli.js';

const KEYS = [
  'tokens',
  'final_logits',
  'virtual.ttft_ms',
  'virtual.tpot_ms',
  'virtual.tokens_per_s_per_user',
  'wall.startup_s',
  'wall.per_token_ms',
  'messages.count',
  'messages.bytes',
  'violations',
];

function at(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], o);
}

describe('cli generate', () => {
  it('cli - mixtral-8x7b on groq-576 (timing fidelity) generates 16 tokens with the predicted virtual timings', async () => {
    const c = await run(
      'compile',
      '--topology',
      topo('groq-576'),
      '--model',
      'mixtral-8x7b',
      '--prompt-tokens',
      '4',
      '--json',
    );
    const predicted = JSON.parse(c.out).predicted as { ttft_ms: number; tpot_ms: number };
    const r = await run(
      'generate',
      '--topology',
      topo('groq-576'),
      '--model',
      'mixtral-8x7b',
      '--fidelity',
      'timing',
      '--prompt-ids',
      '1,2,3,4',
      '--max-new-tokens',
      '16',
      '--no-progress',
      '--json',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    for (const k of KEYS) expect(at(j, k), k).toBeDefined();
    expect(j.generated).toBe(16);
    expect(j.tokens).toBeNull();
    expect(j.final_logits).toBeNull();
    // a worker for every chip of every node the plan occupies (the racks' spare nodes included)
    expect(j.chips.workers).toBe(j.chips.hosts * 8);
    expect(j.chips.workers).toBeGreaterThanOrEqual(512);
    expect(j.violations).toEqual([]);
    expect(j.virtual.ttft_ms).toBeCloseTo(predicted.ttft_ms, 9);
    expect(j.virtual.tpot_ms).toBeCloseTo(predicted.tpot_ms, 9);
    expect(j.messages.count).toBeGreaterThan(15 * 1000);
  });

  it('cli - numeric generate over NATS with host-agent processes prints tokens and logits', () => {
    const r = spawnCli(
      'generate',
      '--topology',
      topo('mini-2rack'),
      '--model',
      'mixtral-tiny',
      '--context',
      '32',
      '--set',
      'chip.sram_mib=0.5',
      '--prompt-ids',
      '3,1,4,1,5',
      '--max-new-tokens',
      '3',
      '--transport',
      'nats',
      '--nats',
      'spawn',
      '--isolation',
      'process',
      '--json',
    );
    expect(r.err).not.toContain('RACKEMU_ERR');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.tokens).toHaveLength(3);
    expect(j.final_logits).toHaveLength(256);
    expect(j.transport).toBe('nats');
    expect(j.isolation).toBe('process');
    expect(j.chips.hosts).toBeGreaterThan(1);
  });

  it('cli - generate rejects bad input with codes', async () => {
    const base = [
      'generate',
      '--topology',
      topo('mini-node'),
      '--model',
      'mixtral-tiny',
      '--context',
      '16',
      '--no-progress',
    ];
    const cases: [string[], string][] = [
      [[...base, '--prompt-ids', '1,x'], 'RACKEMU_ERR_USAGE'],
      [[...base, '--prompt-ids', '1', '--max-new-tokens', '0'], 'RACKEMU_ERR_USAGE'],
      [[...base, '--prompt-ids', '1', '--batch', '2'], 'RACKEMU_ERR_GENERATE_OPTION'],
      [[...base, '--prompt-ids', '1', '--isolation', 'process'], 'RACKEMU_ERR_GENERATE_OPTION'],
      [[...base, '--prompt-ids', '1', '--transport', 'nats'], 'RACKEMU_ERR_GENERATE_OPTION'],
      [[...base, '--prompt-ids', '1000'], 'RACKEMU_ERR_GENERATE_OPTION'],
      [
        ['generate', '--topology', topo('groq-576'), '--model', 'mixtral-8x7b', '--prompt-ids', '1', '--no-progress'],
        'use --fidelity timing',
      ],
    ];
    for (const [argv, text] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.err, argv.join(' ')).toContain(text);
    }
  });
});

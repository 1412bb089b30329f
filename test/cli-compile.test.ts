import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSafetensors } from '../src/model/safetensors.js';
import { run, spawnCli, topo } from './helpers/cli.js';

const REQUIRED = [
  'fits',
  'chips.total',
  'chips.active',
  'chips.spare',
  'chips.used',
  'sram.capacity_bytes',
  'sram.max_used_bytes',
  'sram.mean_used_bytes',
  'predicted.ttft_ms',
  'predicted.tpot_ms',
  'predicted.tokens_per_s_per_user',
  'predicted.tokens_per_s_total',
  'power_w',
  'cost_per_million_tokens_usd',
  'messages_per_token',
  'bytes_per_token',
];

function at(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], o);
}

function tinyFolder(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rackemu-cli-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const TINY_LLAMA = {
  model_type: 'llama',
  hidden_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 32,
  vocab_size: 32,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
};

/** mixtral-8x7b on groq-576 in the classic layout (DESIGN.md's sketch: every weight once, every active chip busy). */
const CLASSIC_MIXTRAL = [
  'compile',
  '--topology',
  topo('groq-576'),
  '--model',
  'mixtral-8x7b',
  '--layout-search',
  'classic',
];

describe('cli compile', () => {
  it('cli - compile --json reports mixtral-8x7b fitting groq-576 with every required key', async () => {
    const r = await run('compile', '--topology', topo('groq-576'), '--model', 'mixtral-8x7b', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    for (const k of REQUIRED) expect(at(j, k), k).toBeDefined();
    expect(j.fits).toBe(true);
    expect(at(j, 'chips.active')).toBe(512);
    expect(at(j, 'chips.spare')).toBe(64);
    expect(at(j, 'chips.used') as number).toBeLessThanOrEqual(512);
    expect(at(j, 'sram.max_used_bytes') as number).toBeLessThanOrEqual(at(j, 'sram.capacity_bytes') as number);
  });

  it('cli - human report answers fit, layout, timing, power and cost', async () => {
    const r = await run('compile', '--topology', topo('groq-576'), '--model', 'mixtral-8x7b', '--prompt-tokens', '256');
    expect(r.code).toBe(0);
    for (const s of [
      'FITS',
      'SRAM',
      'L0:',
      'time to first token',
      'time per output token',
      'tokens/s per user',
      'tokens/s total',
      'links',
      'power',
      'per million tokens',
      'calibrated',
      'prompt 256 tokens',
    ]) {
      expect(r.out).toContain(s);
    }
  });

  it('cli - compile reports the control plane: host CPUs, start-up load over PCIe and host RAM', async () => {
    // the classic layout holds each weight once (the full search copies some K/V projections)
    const r = await run(...CLASSIC_MIXTRAL, '--json');
    expect(r.code).toBe(0);
    const cp = (JSON.parse(r.out) as { control_plane: Record<string, number> }).control_plane;
    for (const k of [
      'hosts',
      'cpus',
      'cpu_utilisation_mean',
      'cpu_utilisation_max',
      'load_time_s',
      'host_ram_bytes_per_host_max',
      'host_ram_bytes_total',
      'host_ram_capacity_bytes',
    ]) {
      expect(typeof cp[k], k).toBe('number');
    }
    expect([cp.hosts, cp.cpus]).toEqual([72, 144]);
    expect(cp.cpu_utilisation_mean).toBeGreaterThan(0);
    expect(cp.cpu_utilisation_max).toBeLessThan(1);
    expect(cp.cpu_utilisation_max).toBeGreaterThanOrEqual(cp.cpu_utilisation_mean);
    expect(cp.host_ram_bytes_total / 1e9).toBeCloseTo(93.4, 0);
    expect(cp.host_ram_bytes_per_host_max).toBeLessThan(cp.host_ram_capacity_bytes);
    expect(cp.load_time_s).toBeGreaterThan(0);

    const text = await run(...CLASSIC_MIXTRAL);
    expect(text.out).toMatch(
      /hosts {5}72 host agent\(s\), 144 CPUs: utilisation mean [\d.]+%, max [\d.]+% \(r\d\.n\d\)/,
    );
    expect(text.out).toMatch(/start-up load over PCIe [\d.]+ ms/);
    expect(text.out).toMatch(
      /host RAM {2}93\.4 GB of programs and weights kept for reload, at most [\d.]+ GB per host of 2,048 GiB/,
    );
    expect(text.out).not.toContain('OVERLOADED');
    const slow = await run(
      'compile',
      '--topology',
      topo('groq-576'),
      '--model',
      'mixtral-8x7b',
      '--set',
      'host.cpu_us.readback_per_step=5000',
    );
    expect(slow.out).toContain('OVERLOADED: its CPUs cannot keep up');
  });

  it('cli - a model that does not fit exits 2 naming the shortfall and what would fit', () => {
    const r = spawnCli('compile', '--topology', topo('groq-576'), '--model', 'llama-2-70b');
    expect(r.code).toBe(2);
    expect(r.err).toContain('RACKEMU_ERR_DOES_NOT_FIT');
    expect(r.err).toMatch(/needs [\d.]+ GB/);
    expect(r.err).toContain('--dtype int8');
    expect(r.out).toBe('');
    const ok = spawnCli(
      'compile',
      '--topology',
      topo('groq-576'),
      '--model',
      'llama-2-70b',
      '--dtype',
      'int8',
      '--json',
    );
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).fits).toBe(true);
  });

  it('cli - --trace writes a Chrome trace with a track per chip and per busy link', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rackemu-trace-'));
    const file = join(dir, 'decode.json');
    // the classic layout puts work on every one of the 512 active chips
    const r = await run(...CLASSIC_MIXTRAL, '--trace', file);
    expect(r.code).toBe(0);
    const trace = JSON.parse(readFileSync(file, 'utf8')) as {
      traceEvents: { ph: string; pid: number; tid: number; name: string; ts?: number; dur?: number }[];
    };
    const names = trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name');
    expect(names.filter((e) => e.pid === 1).length).toBe(512);
    expect(names.filter((e) => e.pid === 2).length).toBeGreaterThan(100);
    const spans = trace.traceEvents.filter((e) => e.ph === 'X');
    expect(spans.some((e) => e.name.startsWith('attention L31'))).toBe(true);
    for (const e of spans) expect(e.dur!).toBeGreaterThan(0);
  });

  it('cli - bad input: usage, topology and model errors carry codes and non-zero exits', async () => {
    const cases: [string[], string][] = [
      [['compile', '--model', 'mixtral-8x7b'], 'required option'],
      [['compile', '--topology', topo('groq-576'), '--model', 'mixtral-8x7b', '--batch', '0'], 'RACKEMU_ERR_USAGE'],
      [['compile', '--topology', topo('groq-576'), '--model', 'gpt-5'], 'RACKEMU_ERR_MODEL_UNKNOWN'],
      [
        ['compile', '--topology', topo('groq-576'), '--model', 'mixtral-8x7b', '--set', 'chip.sram_mib=-1'],
        'RACKEMU_ERR_TOPOLOGY_RANGE',
      ],
      [
        ['compile', '--topology', topo('groq-576'), '--model', 'mixtral-8x7b', '--set', 'chip.nope=1'],
        'RACKEMU_ERR_TOPOLOGY_UNKNOWN_KEY',
      ],
      [['compile', '--topology', '/nonexistent.yaml', '--model', 'mixtral-8x7b'], 'RACKEMU_ERR_TOPOLOGY_FILE'],
      [['compile', '--topology', topo('groq-576'), '--model', 'mixtral-8x7b', '--dtype', 'fp4'], 'fp4'],
    ];
    for (const [argv, text] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.err, argv.join(' ')).toContain(text);
      expect(r.out).toBe('');
    }
  });

  it('cli - Hugging Face folders: missing config.json, unsupported model_type, safetensors that disagree', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'rackemu-empty-'));
    let r = await run('compile', '--topology', topo('mini-node'), '--model', empty);
    expect(r.err).toContain('RACKEMU_ERR_MODEL_NO_CONFIG');
    r = await run(
      'compile',
      '--topology',
      topo('mini-node'),
      '--model',
      tinyFolder({ ...TINY_LLAMA, model_type: 'gpt2' }),
    );
    expect(r.err).toContain('RACKEMU_ERR_MODEL_TYPE_UNSUPPORTED');
    const dir = tinyFolder(TINY_LLAMA);
    writeSafetensors(join(dir, 'model.safetensors'), [
      { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [32, 8], data: new Float32Array(256) },
    ]);
    r = await run('compile', '--topology', topo('mini-node'), '--model', dir);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('RACKEMU_ERR_SAFETENSORS_SHAPE');
    expect(r.err).toContain('model.embed_tokens.weight');
    const good = tinyFolder(TINY_LLAMA);
    r = await run('compile', '--topology', topo('mini-node'), '--model', good, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).model).toBe(good.split('/').pop());
  });
});

import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from './helpers/cli.js';
import { post, sseData, startServe, tinyArgs, waitReady, type ServeProcess } from './serve-fixtures.js';

// One real `rackemu serve` (mixtral-tiny, numeric, 8 chips of mini-2rack, 4 batch slots of 64 tokens,
// at most 2 waiting), driven by the official OpenAI client and by raw HTTP.
const PROMPT = [3, 1, 4, 1, 5];
const ADMIN = 'test-admin-token';
let server: ServeProcess;
let client: OpenAI;
let generated: number[];

beforeAll(async () => {
  // generate's tokens for the same prompt, the reference every served completion must equal
  const g = spawnCli(
    'generate',
    ...tinyArgs(1), // generate runs one prompt at a time
    '--prompt-ids',
    PROMPT.join(','),
    '--max-new-tokens',
    '8',
    '--no-progress',
    '--json',
  );
  expect(g.code, g.err).toBe(0);
  generated = (JSON.parse(g.out) as { tokens: number[] }).tokens;
  // a short watchdog: the fault test's stalled chips give up in 4 s, not the default 30
  server = await startServe([...tinyArgs(4), '--max-waiting', '2', '--watchdog-ms', '4000'], {
    RACKEMU_ADMIN_TOKEN: ADMIN,
  });
  await waitReady(server.url);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  const r = await server?.stop();
  expect(r?.code).toBe(0);
});

const completions = () => `${server.url}/v1/completions`;

async function expectGoodRequest(): Promise<void> {
  const r = await post(completions(), { model: 'mixtral-tiny', prompt: PROMPT, max_tokens: 2 });
  expect(r.status).toBe(200);
  expect((r.json.choices as { token_ids: number[] }[])[0].token_ids).toEqual(generated.slice(0, 2));
}

describe('serve', () => {
  it('serve - the OpenAI client gets a completion whose tokens equal generate, with usage and virtual timings', async () => {
    const r = await client.completions.create({ model: 'mixtral-tiny', prompt: PROMPT, max_tokens: 8 });
    const choice = r.choices[0] as (typeof r.choices)[0] & { token_ids: number[] };
    expect(choice.token_ids).toEqual(generated);
    expect(choice.text).toBe(generated.join(' '));
    expect(choice.finish_reason).toBe('length');
    expect(r.object).toBe('text_completion');
    expect(r.model).toBe('mixtral-tiny');
    expect(r.usage).toEqual({ prompt_tokens: 5, completion_tokens: 8, total_tokens: 13 });
    const ext = (r as unknown as { rackemu: Record<string, Record<string, number> | string> }).rackemu;
    expect(ext.fidelity).toBe('numeric');
    const v = ext.virtual as Record<string, number>;
    expect(v.ttft_ms).toBeGreaterThan(0);
    expect(v.tpot_ms).toBeGreaterThan(0);
    expect(v.e2e_ms).toBeGreaterThanOrEqual(v.ttft_ms);
    expect(v.queue_ms).toBeGreaterThanOrEqual(0);
    expect((ext.wall as Record<string, number>).e2e_ms).toBeGreaterThan(0);
  });

  it('serve - the OpenAI client streams a completion token by token, then the finish reason, usage and [DONE]', async () => {
    const stream = await client.completions.create({
      model: 'mixtral-tiny',
      prompt: PROMPT,
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    const ids: number[] = [];
    let text = '';
    let finish: string | null = null;
    let usage: unknown = null;
    let ext: unknown = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices as ((typeof chunk.choices)[0] & { token_ids: number[] })[]) {
        ids.push(...c.token_ids);
        text += c.text;
        finish = c.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
      ext ??= (chunk as unknown as { rackemu?: unknown }).rackemu ?? null;
    }
    expect(ids).toEqual(generated);
    expect(text).toBe(generated.join(' '));
    expect(finish).toBe('length');
    expect(usage).toEqual({ prompt_tokens: 5, completion_tokens: 8, total_tokens: 13 });
    expect(ext).toMatchObject({ fidelity: 'numeric' });

    // on the wire: one event per token, the finish chunk, the usage chunk, [DONE]
    const raw = await fetch(completions(), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: PROMPT, max_tokens: 3, stream: true }),
    });
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = sseData(await raw.text());
    expect(events).toHaveLength(3 + 1 + 1);
    expect(events.at(-1)).toBe('[DONE]');
    expect(JSON.parse(events[3]).choices[0].finish_reason).toBe('length');
  });

  it('serve - a missing max_tokens means 16, and the model field may be left out', async () => {
    const r = await post(completions(), { prompt: [7] });
    expect(r.status).toBe(200);
    expect(r.json.usage).toMatchObject({ completion_tokens: 16 });
  });

  it('serve - models, health, readiness and metrics', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['mixtral-tiny']);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/ready`);
    expect(ready.status).toBe(200);
    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(/^rackemu_deployment_info\{.*model_name="mixtral-tiny".*\} 1$/m);
    expect(text).toMatch(/^rackemu_ready 1$/m);
  });

  it('serve - chat completions without a chat template are a 400 that says so', async () => {
    const r = await post(`${server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code: 'chat_template_unavailable' });
    await expect(
      client.chat.completions.create({ model: 'mixtral-tiny', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('serve - admin routes need the bearer token', async () => {
    const none = await post(`${server.url}/admin/drain`, {});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.json.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    const wrong = await post(
      `${server.url}/admin/drain`,
      {},
      { 'content-type': 'application/json', authorization: 'Bearer not-it' },
    );
    expect(wrong.status).toBe(401);
    await expectGoodRequest();
  });

  it('serve - POST /admin/faults: a bad fault is a 400 naming what is wrong; a crashed chip fails over to the spare node and the tokens stay the same', async () => {
    const faults = `${server.url}/admin/faults`;
    const auth = { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` };
    const bad = async (body: unknown, code: string, says: RegExp) => {
      const r = await post(faults, body, auth);
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code });
      expect((r.json.error as { message: string }).message).toMatch(says);
    };
    await bad({ kind: 'chip-crash' }, 'RACKEMU_ERR_EXPERIMENT_KEY', /target/);
    await bad({ kind: 'chip-melt', target: 'r0.n1.c2' }, 'RACKEMU_ERR_EXPERIMENT_KEY', /kind/);
    await bad({ kind: 'chip-crash', target: 'r0.n1.c2', loss: 0.5 }, 'RACKEMU_ERR_EXPERIMENT_KEY', /loss/);
    await bad({ kind: 'chip-crash', target: 'r9.n0.c0' }, 'RACKEMU_ERR_FAULT_TARGET', /r9\.n0\.c0/);
    await bad({ kind: 'chip-crash', target: 'r1.n1.c0' }, 'RACKEMU_ERR_FAULT_TARGET', /no traffic/);
    await bad({ kind: 'chip-crash', target: 'r0.n1.c2', at: { request: 1, token: 1 } }, 'RACKEMU_ERR_FAULT', /tick/);
    await bad({ kind: 'nats-server-kill', target: 'nats-0' }, 'RACKEMU_ERR_FAULT_TARGET', /NATS cluster/);
    await expectGoodRequest();
    const armed = await post(faults, { kind: 'chip-crash', target: 'r0.n1.c2' }, auth);
    expect(armed.status).toBe(202);
    expect(armed.json).toMatchObject({ status: 'armed', fault: 0, kind: 'chip-crash', target: 'r0.n1.c2' });
    // the next request's window carries the fault: the request is replayed on the re-planned system
    const r = await post(completions(), { model: 'mixtral-tiny', prompt: PROMPT, max_tokens: 8 });
    expect(r.status).toBe(200);
    expect((r.json.choices as { token_ids: number[] }[])[0].token_ids).toEqual(generated);
    const list = await fetch(faults, { headers: auth }).then((x) => x.json() as Promise<{ faults: unknown[] }>);
    expect(list.faults[0]).toMatchObject({
      kind: 'chip-crash',
      target: 'r0.n1.c2',
      detected: { mechanism: 'worker-exit', part: { kind: 'chip', id: 'r0.n1.c2' } },
      recovered: { action: 'replan', spare: 'r0.n2' },
    });
    await expectGoodRequest();
  });

  // Each bad request: its status and OpenAI-style error object; then a good request still works.
  const TOO_LONG = Array.from({ length: 65 }, (_, i) => i % 256);
  const cases: {
    name: string;
    body: unknown;
    headers?: Record<string, string>;
    status: number;
    code: string;
    param?: string | null;
  }[] = [
    {
      name: 'unknown model',
      body: { model: 'gpt-4', prompt: [1] },
      status: 404,
      code: 'model_not_found',
      param: 'model',
    },
    { name: 'id >= vocab', body: { prompt: [1, 256] }, status: 400, code: 'invalid_value', param: 'prompt[1]' },
    { name: 'negative id', body: { prompt: [1, -1] }, status: 400, code: 'invalid_value', param: 'prompt[1]' },
    { name: 'non-integer id', body: { prompt: [1, 2.5] }, status: 400, code: 'invalid_type', param: 'prompt[1]' },
    { name: 'id as a string', body: { prompt: ['1'] }, status: 400, code: 'invalid_type', param: 'prompt[0]' },
    { name: 'batched prompts', body: { prompt: [[1], [2]] }, status: 400, code: 'invalid_type', param: 'prompt[0]' },
    { name: 'empty prompt', body: { prompt: [] }, status: 400, code: 'invalid_value', param: 'prompt' },
    { name: 'missing prompt', body: { max_tokens: 2 }, status: 400, code: 'missing_required_parameter' },
    { name: 'text without a tokenizer', body: { prompt: 'hello' }, status: 400, code: 'tokenizer_unavailable' },
    { name: 'prompt over the context', body: { prompt: TOO_LONG }, status: 400, code: 'context_length_exceeded' },
    {
      name: 'prompt + max_tokens over the context',
      body: { prompt: [1, 2, 3], max_tokens: 62 },
      status: 400,
      code: 'context_length_exceeded',
      param: 'max_tokens',
    },
    { name: 'max_tokens 0', body: { prompt: [1], max_tokens: 0 }, status: 400, code: 'invalid_value' },
    { name: 'max_tokens < 0', body: { prompt: [1], max_tokens: -4 }, status: 400, code: 'invalid_value' },
    { name: 'max_tokens 1.5', body: { prompt: [1], max_tokens: 1.5 }, status: 400, code: 'invalid_type' },
    { name: 'max_tokens "16"', body: { prompt: [1], max_tokens: '16' }, status: 400, code: 'invalid_type' },
    { name: 'stream "yes"', body: { prompt: [1], stream: 'yes' }, status: 400, code: 'invalid_type', param: 'stream' },
    { name: 'model 5', body: { prompt: [1], model: 5 }, status: 400, code: 'invalid_type', param: 'model' },
    { name: 'temperature "hot"', body: { prompt: [1], temperature: 'hot' }, status: 400, code: 'invalid_type' },
    { name: 'n 2', body: { prompt: [1], n: 2 }, status: 400, code: 'invalid_value', param: 'n' },
    { name: 'stop strings', body: { prompt: [1], stop: ['x'] }, status: 400, code: 'unsupported_parameter' },
    { name: 'body not an object', body: '[1, 2]', status: 400, code: 'invalid_type', param: null },
    { name: 'malformed JSON', body: '{"prompt": [1, 2', status: 400, code: 'invalid_json', param: null },
    { name: 'empty body', body: '', status: 400, code: 'invalid_json', param: null },
    {
      name: 'oversized body',
      body: JSON.stringify({ prompt: Array.from({ length: 600_000 }, () => 1) }),
      status: 413,
      code: 'request_too_large',
    },
    {
      name: 'text/plain',
      body: '{"prompt": [1]}',
      headers: { 'content-type': 'text/plain' },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'form body',
      body: 'prompt=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      status: 415,
      code: 'unsupported_media_type',
    },
  ];
  for (const c of cases) {
    it(`serve - bad request: ${c.name} gets ${c.status} ${c.code}, and the server keeps serving`, async () => {
      const r = await post(completions(), c.body, c.headers);
      expect(r.status).toBe(c.status);
      const error = r.json.error as Record<string, unknown>;
      expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(error.code).toBe(c.code);
      expect(error.type).toBe(c.status === 429 ? 'rate_limit_error' : 'invalid_request_error');
      expect(typeof error.message).toBe('string');
      if (c.param !== undefined) expect(error.param).toBe(c.param);
      await expectGoodRequest();
    });
  }

  it('serve - more requests than the batch slots and the queue hold get 429, the others complete', async () => {
    const rs = await Promise.all(
      Array.from({ length: 16 }, () => post(completions(), { prompt: PROMPT, max_tokens: 8 })),
    );
    const ok = rs.filter((r) => r.status === 200);
    const full = rs.filter((r) => r.status === 429);
    expect(ok.length + full.length).toBe(16);
    expect(full.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThanOrEqual(4);
    for (const r of full) {
      expect(r.json.error).toMatchObject({ type: 'rate_limit_error', code: 'RACKEMU_ERR_QUEUE_FULL' });
      expect(r.headers.get('retry-after')).toBe('1');
    }
    for (const r of ok) expect((r.json.choices as { token_ids: number[] }[])[0].token_ids).toEqual(generated);
    await expectGoodRequest();
    // refusals are counted by reason (the bad-request matrix ran before)
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const rejected = (reason: string) =>
      Number(new RegExp(`^rackemu_requests_rejected_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
    expect(rejected('queue_full')).toBe(full.length);
    expect(rejected('invalid')).toBeGreaterThanOrEqual(cases.length);
  });

  it('serve - one JSON log line per request event, never per token', () => {
    const admitted = server.events('request admitted');
    const finished = server.events('request finished');
    expect(admitted.length).toBeGreaterThan(10);
    expect(finished.length).toBeGreaterThan(10);
    expect(finished[0]).toMatchObject({ id: expect.stringMatching(/^cmpl-/), virtual: expect.any(Object) });
    expect(server.stderr()).not.toMatch(/"msg":"token/);
  });
});

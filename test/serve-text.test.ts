import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHfConfig } from '../src/model/hf-config.js';
import { topo } from './helpers/cli.js';
import { modelTensors, tempDir, tinyMixtralJson, writeModelFolder } from './model-fixtures.js';
import { post, startServe, waitReady, type ServeProcess } from './serve-fixtures.js';

// A Hugging Face model folder with weights, a byte-level BPE tokenizer.json (256 byte tokens, <s>,
// </s>; no merges) and a chat template, served numerically: text in, text out, chat.

/** GPT-2's byte-to-character map of byte-level BPE. */
function byteChars(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

function tokenizerJson(): Record<string, unknown> {
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(256, '<s>'), special(257, '</s>')],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [256], tokens: ['<s>'] } },
    },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab: Object.fromEntries(byteChars().map((c, b) => [c, b])),
      merges: [],
    },
  };
}

const TOKENIZER_CONFIG = {
  bos_token: '<s>',
  eos_token: '</s>',
  chat_template:
    '{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}',
};

let server: ServeProcess;
let client: OpenAI;
let model: string;
let tok: Tokenizer;

beforeAll(async () => {
  const dir = tempDir();
  const json = tinyMixtralJson({ vocab_size: 258, bos_token_id: 256, eos_token_id: 257 });
  writeModelFolder(dir, json, modelTensors(parseHfConfig(json, 'config.json', basename(dir)), 'BF16'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(TOKENIZER_CONFIG));
  tok = new Tokenizer(tokenizerJson(), TOKENIZER_CONFIG);
  model = basename(dir);
  server = await startServe(['--topology', topo('mini-2rack'), '--model', dir, '--context', '64', '--batch', '2']);
  await waitReady(server.url);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  expect((await server?.stop())?.code).toBe(0);
});

const decode = (ids: number[]) => tok.decode(ids, { skip_special_tokens: true });
type Choice = { token_ids: number[]; text: string; finish_reason: string };

describe('serve with a tokenizer', () => {
  const TEXT = 'héllo wörld';

  it('serve - a text prompt is encoded with tokenizer.json, and the completion is detokenised', async () => {
    const ids = tok.encode(TEXT).ids;
    expect(ids[0]).toBe(256); // <s>, from the post-processor
    const byText = await post(`${server.url}/v1/completions`, { model, prompt: TEXT, max_tokens: 6, ignore_eos: true });
    expect(byText.status).toBe(200);
    expect(byText.json.usage).toMatchObject({ prompt_tokens: ids.length, completion_tokens: 6 });
    const byIds = await post(`${server.url}/v1/completions`, { model, prompt: ids, max_tokens: 6, ignore_eos: true });
    const a = (byText.json.choices as Choice[])[0];
    const b = (byIds.json.choices as Choice[])[0];
    expect(a.token_ids).toEqual(b.token_ids);
    expect(a.text).toBe(decode(a.token_ids));
    expect(b.text).toBe(a.text);
  });

  it('serve - streamed text pieces join to the whole text', async () => {
    const whole = await client.completions.create({ model, prompt: TEXT, max_tokens: 12 });
    const stream = await client.completions.create({ model, prompt: TEXT, max_tokens: 12, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices.map((c) => c.text).join('');
    expect(text).toBe(whole.choices[0].text);
  });

  it('serve - stop_token_ids and the model EOS end generation with finish_reason "stop"', async () => {
    const free = await post(`${server.url}/v1/completions`, { model, prompt: TEXT, max_tokens: 8, ignore_eos: true });
    const ids = (free.json.choices as Choice[])[0].token_ids;
    const stopped = await post(`${server.url}/v1/completions`, {
      model,
      prompt: TEXT,
      max_tokens: 8,
      stop_token_ids: [ids[0]],
    });
    expect((stopped.json.choices as Choice[])[0]).toMatchObject({ token_ids: [ids[0]], finish_reason: 'stop' });
    const eos = ids.indexOf(257);
    const byDefault = await post(`${server.url}/v1/completions`, { model, prompt: TEXT, max_tokens: 8 });
    const c = (byDefault.json.choices as Choice[])[0];
    // without ignore_eos, generation ends after </s> if the model emits it
    expect(c.token_ids).toEqual(eos >= 0 ? ids.slice(0, eos + 1) : ids);
    expect(c.finish_reason).toBe(eos >= 0 ? 'stop' : 'length');
  });

  it('serve - chat completions render the chat template, streaming and not', async () => {
    const messages = [
      { role: 'system' as const, content: 'be brief' },
      { role: 'user' as const, content: 'hi there' },
    ];
    const rendered = new Template(TOKENIZER_CONFIG.chat_template).render({
      messages,
      bos_token: '<s>',
      eos_token: '</s>',
      add_generation_prompt: true,
    });
    const promptTokens = tok.encode(rendered, { add_special_tokens: false }).ids.length;
    const r = await client.chat.completions.create({ model, messages, max_tokens: 5 });
    const ids = (r.choices[0] as unknown as { token_ids: number[] }).token_ids;
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message).toMatchObject({ role: 'assistant', content: decode(ids) });
    expect(r.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: ids.length });

    const stream = await client.chat.completions.create({ model, messages, max_tokens: 5, stream: true });
    let content = '';
    const roles: string[] = [];
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        if (c.delta.role) roles.push(c.delta.role);
        content += c.delta.content ?? '';
      }
    }
    expect(roles).toEqual(['assistant']);
    expect(content).toBe(r.choices[0].message.content);
  });

  it('serve - bad chat requests get 400 with the field named', async () => {
    const url = `${server.url}/v1/chat/completions`;
    const cases: [unknown, string, string | null][] = [
      [{ model }, 'missing_required_parameter', 'messages'],
      [{ messages: [] }, 'invalid_value', 'messages'],
      [{ messages: [{ role: 7, content: 'x' }] }, 'invalid_type', 'messages[0].role'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }, 'invalid_value', 'messages[0].content[0]'],
      [
        { messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 0 },
        'invalid_value',
        'max_completion_tokens',
      ],
    ];
    for (const [body, code, param] of cases) {
      const r = await post(url, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toMatchObject({ code, param });
    }
    const ok = await post(url, { messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
    expect(ok.status).toBe(200);
  });
});

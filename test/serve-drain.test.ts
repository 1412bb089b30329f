import { describe, expect, it } from 'vitest';
import { post, sseData, startServe, tinyArgs, waitReady } from './serve-fixtures.js';

const PROMPT = [3, 1, 4, 1, 5];

/** Reads a streaming completion as it arrives; `first` resolves with the first event. */
function streamCompletion(url: string, maxTokens: number): { first: Promise<void>; all: Promise<string> } {
  let firstSeen: () => void = () => {};
  let failed: (e: unknown) => void = () => {};
  const first = new Promise<void>((resolve, reject) => ((firstSeen = resolve), (failed = reject)));
  const all = (async () => {
    const r = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: PROMPT, max_tokens: maxTokens, stream: true }),
    });
    expect(r.status).toBe(200);
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return text;
      text += value;
      if (text.includes('\n\n')) firstSeen();
    }
  })();
  all.then(firstSeen, failed); // a stream that fails before its first event fails `first` too
  return { first, all };
}

describe('serve drain', () => {
  it('serve - /ready is 503 while the chips load, then 200; without RACKEMU_ADMIN_TOKEN there are no admin routes; SIGTERM drains and exits 0', async () => {
    const server = await startServe(tinyArgs(4));
    try {
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      const seen = await waitReady(server.url);
      expect(seen[0]).toBe(503); // the server listens before Deployment.start: loading is observable
      expect(seen.at(-1)).toBe(200);
      const admin = await post(`${server.url}/admin/drain`, {}, { authorization: 'Bearer x' });
      expect(admin.status).toBe(404);

      // a stream in flight when SIGTERM comes
      const stream = streamCompletion(server.url, 56);
      await stream.first;
      server.child.kill('SIGTERM');
      // new requests get 503 (a request that reached the server before the signal is still served)
      const statuses: number[] = [];
      let drainingError: unknown = null;
      for (let i = 0; i < 200 && drainingError === null; i++) {
        const r = await post(`${server.url}/v1/completions`, { prompt: PROMPT, max_tokens: 1 }).catch(() => null);
        if (r === null) break; // closed already
        statuses.push(r.status);
        if (r.status === 503) drainingError = r.json.error;
      }
      expect(drainingError).toMatchObject({ type: 'service_unavailable_error', code: 'RACKEMU_ERR_DRAINING' });
      const events = sseData(await stream.all);
      expect(events.at(-1)).toBe('[DONE]');
      const ids = events.slice(0, -1).flatMap((e) => (JSON.parse(e).choices as { token_ids: number[] }[])[0].token_ids);
      expect(ids).toHaveLength(56);
      expect((await server.exited).code).toBe(0);
      expect(server.events('drain started')).toHaveLength(1);
      expect(server.events('drain finished')).toHaveLength(1);
    } finally {
      await server.stop();
    }
  });

  it('serve - a second SIGTERM exits at once', async () => {
    const server = await startServe([...tinyArgs(2), '--max-waiting', '64']);
    try {
      await waitReady(server.url);
      // work for many steps: 2 slots, a stream and 24 more requests of 56 tokens
      const stream = streamCompletion(server.url, 56);
      const cut = stream.all.catch(() => ''); // the exit cuts it off
      await stream.first;
      const work = Array.from({ length: 24 }, () =>
        post(`${server.url}/v1/completions`, { prompt: PROMPT, max_tokens: 56 }).catch(() => null),
      );
      while (server.events('request admitted').length < 25) await new Promise((r) => setTimeout(r, 10));
      server.child.kill('SIGTERM');
      while (server.events('drain started').length === 0) await new Promise((r) => setTimeout(r, 10));
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(143);
      expect(server.events('drain finished')).toHaveLength(0);
      await Promise.all([...work, cut]);
    } finally {
      await server.stop();
    }
  });

  it('serve - timing fidelity returns the documented filler token and says so', async () => {
    const server = await startServe([...tinyArgs(2), '--fidelity', 'timing']);
    try {
      await waitReady(server.url);
      const r = await post(`${server.url}/v1/completions`, { prompt: PROMPT, max_tokens: 4 });
      expect(r.status).toBe(200);
      expect((r.json.choices as { token_ids: number[]; text: string }[])[0]).toMatchObject({
        token_ids: [0, 0, 0, 0],
        text: '0 0 0 0',
      });
      expect(r.json.rackemu).toMatchObject({ fidelity: 'timing' });
      expect(r.json.usage).toEqual({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
    } finally {
      expect((await server.stop()).code).toBe(0);
    }
  });
});

// The relay over real sockets with the official openai client. The host tab here is a scripted WebSocket client
// speaking the relay protocol (a test double: the real host tab runs in Chromium, in e2e/api.spec.ts); this file
// checks what the server itself owns: routing, streaming, stop strings, cancellation, queueing, limits, errors.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { WebSocket } from 'ws';
import { startShoalServer, type ShoalServer } from './app.ts';
import { API_HOST_PATH, type HostMessage, type RelayRequest, type ServerToHost } from '../api/hostProtocol.ts';
import type { ApiRelayOptions } from './apiRelay.ts';

let server: ShoalServer | null = null;
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await server?.close();
  server = null;
});

async function start(api: Omit<ApiRelayOptions, 'secret' | 'log'> = {}): Promise<ShoalServer> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-api-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html>');
  server = await startShoalServer({ distDir: dir, modelsDir: dir, httpPort: 0, httpsPort: null, api });
  return server;
}

const client = (s: ShoalServer, extra: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}) =>
  new OpenAI({ baseURL: `${s.httpUrl}/v1`, apiKey: 'unused', maxRetries: 0, ...extra });

/** A scripted host tab: records what it is sent; `answer` decides what it does with each request. */
class FakeHost {
  readonly requests: RelayRequest[] = [];
  readonly cancels: string[] = [];
  private ws: WebSocket;
  constructor(
    s: ShoalServer,
    private readonly answer: (req: RelayRequest, host: FakeHost) => void,
    room = 'default',
  ) {
    this.ws = new WebSocket(`${s.httpUrl.replace('http', 'ws')}${API_HOST_PATH}`);
    sockets.push(this.ws);
    this.ws.on('error', () => undefined); // terminated before it opened, at the end of a test
    this.ws.on('open', () =>
      this.send({
        type: 'hello',
        v: 1,
        room,
        name: 'fake',
        models: [{ id: 'demo', location: '/models/demo/', contextTokens: 64 }],
      }),
    );
    this.ws.on('message', (d) => {
      const m = JSON.parse((d as Buffer).toString('utf8')) as ServerToHost;
      if (m.type === 'request') {
        this.requests.push(m);
        this.answer(m, this);
      } else if (m.type === 'cancel') this.cancels.push(m.id);
    });
  }
  send(m: HostMessage | Record<string, unknown>): void {
    this.ws.send(JSON.stringify(m));
  }
  /** Answer `id` with these pieces of text, then done. */
  reply(id: string, pieces: string[], finish: 'stop' | 'length' = 'length'): void {
    this.send({ type: 'started', id, promptTokens: 5 });
    for (const text of pieces) this.send({ type: 'delta', id, text });
    this.send({ type: 'done', id, finish, promptTokens: 5, completionTokens: pieces.length });
  }
  close(): void {
    this.ws.close();
  }
}

async function hosted(s: ShoalServer, n = 1, room = 'default'): Promise<void> {
  await expect.poll(() => s.api.hostCount(room)).toBe(n);
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'demo',
  messages: [{ role: 'user' as const, content }],
  ...extra,
});

describe('ApiRelay', () => {
  it('answers 503 naming how to start a host tab when none is there', async () => {
    const s = await start();
    const err = await client(s)
      .chat.completions.create(chat('hi'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((err as Error).message).toMatch(/--host-tabs/);
  });

  it('lists the hosts models and relays a whole answer and a stream', async () => {
    const s = await start();
    const host = new FakeHost(s, (req, h) => h.reply(req.id, ['Hel', 'lo', ' there']));
    await hosted(s);
    const models = await client(s).models.list();
    expect(models.data.map((m) => m.id)).toEqual(['demo']);
    const whole = await client(s).chat.completions.create(chat('hi', { max_tokens: 3, temperature: 0 }));
    expect(whole.choices[0].message.content).toBe('Hello there');
    expect(whole.choices[0].finish_reason).toBe('length');
    expect(whole.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
    expect(host.requests[0]).toMatchObject({ kind: 'chat', maxTokens: 3, temperature: 0, location: '/models/demo/' });
    const stream = await client(s).chat.completions.create({
      ...chat('hi'),
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let total = 0;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      total = c.usage?.total_tokens ?? total;
    }
    expect({ text, finish, total }).toEqual({ text: 'Hello there', finish: 'length', total: 8 });
    const completion = await client(s).completions.create({ model: 'demo', prompt: 'once' });
    expect(completion.choices[0].text).toBe('Hello there');
    expect(host.requests[2]).toMatchObject({ kind: 'completion', prompt: 'once' });
  });

  it('cuts the answer at a stop string and cancels the turn on the host', async () => {
    const s = await start();
    const host = new FakeHost(s, (req, h) => {
      h.send({ type: 'started', id: req.id, promptTokens: 2 });
      h.send({ type: 'delta', id: req.id, text: 'one two ST' });
      h.send({ type: 'delta', id: req.id, text: 'OP three' });
      // The host answers the cancel with done, as the real one does.
      setTimeout(() => h.send({ type: 'done', id: req.id, finish: 'stop', promptTokens: 2, completionTokens: 4 }), 50);
    });
    await hosted(s);
    const r = await client(s).chat.completions.create(chat('count', { stop: ['STOP'] }));
    expect(r.choices[0]).toMatchObject({ message: { content: 'one two ' }, finish_reason: 'stop' });
    expect(host.cancels).toEqual([host.requests[0].id]);
  });

  it('cancels the turn when the client aborts mid-stream, and frees the slot', async () => {
    const s = await start({ maxInFlight: 1 });
    const host = new FakeHost(s, (req, h) => {
      h.send({ type: 'started', id: req.id, promptTokens: 2 });
      h.send({ type: 'delta', id: req.id, text: 'a' });
    });
    await hosted(s);
    const ac = new AbortController();
    const stream = await client(s).chat.completions.create({ ...chat('go'), stream: true }, { signal: ac.signal });
    for await (const c of stream) {
      if (c.choices[0]?.delta.content) break; // leaving the loop aborts the request
    }
    await expect.poll(() => host.cancels.length).toBe(1);
    host.send({ type: 'done', id: host.requests[0].id, finish: 'stop', promptTokens: 2, completionTokens: 1 });
    await expect.poll(() => s.api.load().running).toBe(0);
  });

  it('queues past the in-flight limit and answers 429 past the queue', async () => {
    const s = await start({ maxInFlight: 1, maxQueued: 1 });
    const host = new FakeHost(s, () => undefined); // answers later, by hand
    await hosted(s);
    const first = client(s).chat.completions.create(chat('1'));
    await expect.poll(() => host.requests.length).toBe(1);
    const second = client(s).chat.completions.create(chat('2'));
    await expect.poll(() => s.api.load().queued).toBe(1);
    const third = await client(s)
      .chat.completions.create(chat('3'))
      .catch((e: unknown) => e);
    expect((third as InstanceType<typeof OpenAI.APIError>).status).toBe(429);
    host.reply(host.requests[0].id, ['one']);
    expect((await first).choices[0].message.content).toBe('one');
    await expect.poll(() => host.requests.length).toBe(2);
    host.reply(host.requests[1].id, ['two']);
    expect((await second).choices[0].message.content).toBe('two');
  });

  it('moves a request that had not started to another host when its host leaves', async () => {
    const s = await start();
    const leaving = new FakeHost(s, (_req, h) => h.close());
    await hosted(s);
    const pending = client(s).chat.completions.create(chat('hi'));
    await expect.poll(() => leaving.requests.length).toBe(1);
    new FakeHost(s, (req, h) => h.reply(req.id, ['rescued']));
    expect((await pending).choices[0].message.content).toBe('rescued');
  });

  it('answers bad requests with 400 error objects and ignores bad host messages', async () => {
    const s = await start();
    const host = new FakeHost(s, (req, h) => {
      h.send({ type: 'nonsense' });
      h.send({ type: 'delta', id: req.id, text: 42 });
      h.send({
        type: 'failed',
        id: req.id,
        status: 400,
        message: 'the prompt is 99 tokens',
        code: 'context_length_exceeded',
      });
    });
    await hosted(s);
    const post = (body: string) =>
      fetch(`${s.httpUrl}/v1/chat/completions`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
    for (const [body, pattern] of [
      ['{"model": "demo", ', /not valid JSON/],
      ['{"model": "demo"}', /messages/],
      ['{"model": "demo", "messages": "hi"}', /messages/],
      [JSON.stringify(chat('hi', { model: 'gpt-4' })), /unknown model "gpt-4"/],
    ] as const) {
      const r = await post(body);
      expect(r.status).toBe(400);
      const j = (await r.json()) as { error: { message: string; type: string } };
      expect(j.error.type).toBe('invalid_request_error');
      expect(j.error.message).toMatch(pattern);
    }
    const long = await client(s)
      .chat.completions.create(chat('a very long prompt'))
      .catch((e: unknown) => e);
    expect((long as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((long as InstanceType<typeof OpenAI.APIError>).code).toBe('context_length_exceeded');
    expect(host.requests.length).toBe(1);
    expect((await fetch(`${s.httpUrl}/v1/nothing`)).status).toBe(404);
  });

  it('needs the bearer token when one is set', async () => {
    const s = await start({ token: 'sekrit' });
    new FakeHost(s, (req, h) => h.reply(req.id, ['ok']));
    await hosted(s);
    const err = await client(s, { apiKey: 'wrong' })
      .models.list()
      .catch((e: unknown) => e);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(401);
    const r = await client(s, { apiKey: 'sekrit' }).chat.completions.create(chat('hi'));
    expect(r.choices[0].message.content).toBe('ok');
  });

  it('routes by the shoal-room header', async () => {
    const s = await start();
    new FakeHost(s, (req, h) => h.reply(req.id, ['from b']), 'b');
    await hosted(s, 1, 'b');
    const inB = await client(s, { defaultHeaders: { 'shoal-room': 'b' } }).chat.completions.create(chat('hi'));
    expect(inB.choices[0].message.content).toBe('from b');
    const inDefault = await client(s)
      .chat.completions.create(chat('hi'))
      .catch((e: unknown) => e);
    expect((inDefault as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
  });
});

// The OpenAI request checks: good requests become one turn with OpenAI's defaults; bad ones a 400 naming the field.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_TOKENS, chunkBody, completionBody, errorBody, parseApiRequest, usage } from './openai.ts';
import type { ApiError, ApiTurnRequest } from './openai.ts';

const ok = (x: ApiTurnRequest | ApiError): ApiTurnRequest => {
  if ('status' in x) throw new Error(x.message);
  return x;
};
const bad = (x: ApiTurnRequest | ApiError): ApiError => {
  if (!('status' in x)) throw new Error('accepted');
  return x;
};

describe('parseApiRequest', () => {
  it('takes a chat request with defaults and text parts', () => {
    const t = ok(
      parseApiRequest('chat', {
        model: 'demo',
        messages: [
          { role: 'developer', content: 'be brief' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'hi ' },
              { type: 'text', text: 'there' },
            ],
          },
        ],
        frequency_penalty: 0, // unknown to us: ignored, as other OpenAI-compatible servers do
      }),
    );
    expect(t.messages).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi there' },
    ]);
    expect(t).toMatchObject({ maxTokens: DEFAULT_MAX_TOKENS, temperature: 1, topP: 1, stop: [], stream: false });
  });

  it('takes the sampling fields, stop lists and stream options', () => {
    const t = ok(
      parseApiRequest('completion', {
        model: 'demo',
        prompt: ['once'],
        max_tokens: 7,
        temperature: 0,
        top_p: 0.5,
        seed: 42,
        stop: 'x',
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(t).toMatchObject({ prompt: 'once', maxTokens: 7, temperature: 0, topP: 0.5, seed: 42, stop: ['x'] });
    expect(t).toMatchObject({ stream: true, includeUsage: true });
    expect(
      ok(parseApiRequest('chat', { model: 'm', messages: [{ role: 'user', content: 'a' }], max_completion_tokens: 3 }))
        .maxTokens,
    ).toBe(3);
  });

  it.each([
    ['not an object', [], undefined],
    ['no model', { messages: [{ role: 'user', content: 'a' }] }, 'model'],
    ['no messages', { model: 'm' }, 'messages'],
    ['empty messages', { model: 'm', messages: [] }, 'messages'],
    ['bad role', { model: 'm', messages: [{ role: 'tool', content: 'a' }] }, 'messages.0.role'],
    [
      'image part',
      { model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url' }] }] },
      'messages.0.content',
    ],
    ['temperature', { model: 'm', messages: [{ role: 'user', content: 'a' }], temperature: 3 }, 'temperature'],
    ['max_tokens', { model: 'm', messages: [{ role: 'user', content: 'a' }], max_tokens: 0 }, 'max_tokens'],
    ['n', { model: 'm', messages: [{ role: 'user', content: 'a' }], n: 2 }, 'n'],
    ['stop list', { model: 'm', messages: [{ role: 'user', content: 'a' }], stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
  ])('refuses %s with a 400', (_name, body, param) => {
    const e = bad(parseApiRequest('chat', body));
    expect(e.status).toBe(400);
    expect(e.param).toBe(param);
    expect(e.message.length).toBeGreaterThan(5);
  });

  it('refuses completion features it cannot honour', () => {
    expect(bad(parseApiRequest('completion', { model: 'm', prompt: 'a', echo: true })).message).toMatch(/echo/);
    expect(bad(parseApiRequest('completion', { model: 'm', prompt: ['a', 'b'] })).message).toMatch(/one prompt/);
  });
});

describe('response objects', () => {
  const head = { id: 'chatcmpl-1', created: 1, model: 'demo' };
  it('builds the whole answer, the chunks and the error in OpenAI shapes', () => {
    expect(completionBody('chat', head, 'hi', 'length', usage(3, 2))).toMatchObject({
      object: 'chat.completion',
      choices: [{ message: { role: 'assistant', content: 'hi' }, finish_reason: 'length' }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
    expect(chunkBody('chat', head, { role: true, text: '' })).toMatchObject({
      object: 'chat.completion.chunk',
      choices: [{ delta: { role: 'assistant', content: '' }, finish_reason: null }],
    });
    expect(chunkBody('completion', head, { finish: 'stop' })).toMatchObject({
      object: 'text_completion',
      choices: [{ text: '', finish_reason: 'stop' }],
    });
    expect(chunkBody('chat', head, { usage: usage(1, 1) })).toMatchObject({ choices: [], usage: { total_tokens: 2 } });
    expect(errorBody({ status: 400, type: 'invalid_request_error', message: 'no' })).toEqual({
      error: { message: 'no', type: 'invalid_request_error', param: null, code: null },
    });
  });
});

// The OpenAI-compatible API end to end (issue 22): the official openai client against the dev server's /v1, answered
// by real host tabs (?host=api) running each request on the mesh in Chromium. One host tab serves most tests; the
// last launches its host tab the way `npm start -- --host-tabs N` does.
import { expect, test } from '@playwright/test';
import type { BrowserContext, Page } from '@playwright/test';
import OpenAI from 'openai';
import { launchHostTabs } from '../scripts/hostTabs.ts';
import { uniqueRoom, type Win } from './room.ts';

const MODEL = '/fixtures/tiny-llama/';
const MODEL_ID = 'tiny-llama';
const EOS_TEXT = '<|im_end|>';

test.describe.configure({ mode: 'serial' });

let context: BrowserContext;
let page: Page;
let room: string;
let api: OpenAI;
let origin: string;

const openai = (r: string): OpenAI =>
  new OpenAI({ baseURL: `${origin}/v1`, apiKey: 'local', maxRetries: 0, defaultHeaders: { 'shoal-room': r } });

/** Poll /v1/models until the room's host tab has said hello. */
async function whenHosted(client: OpenAI): Promise<void> {
  await expect
    .poll(
      () =>
        client.models.list().then(
          (m) => m.data.map((d) => d.id),
          () => [],
        ),
      { timeout: 60_000 },
    )
    .toEqual([MODEL_ID]);
}

const greedy = (content: string, maxTokens = 12) => ({
  model: MODEL_ID,
  messages: [{ role: 'user' as const, content }],
  max_tokens: maxTokens,
  temperature: 0,
});

async function streamText(client: OpenAI, body: ReturnType<typeof greedy>): Promise<string> {
  const stream = await client.chat.completions.create({ ...body, stream: true });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  return text;
}

test.beforeAll(async ({ browser, baseURL }) => {
  origin = baseURL!;
  room = uniqueRoom('api');
  context = await browser.newContext();
  page = await context.newPage();
  await page.goto(`/?room=${room}&name=host&host=api&model=${MODEL}`);
  api = openai(room);
  await whenHosted(api);
});

test.afterAll(async () => {
  await context?.close();
});

test('a greedy streamed chat equals the whole answer and the page typed the same prompt', async () => {
  const prompt = 'Tell me about the sea.';
  const whole = await api.chat.completions.create(greedy(prompt));
  const text = whole.choices[0].message.content ?? '';
  expect(text.length).toBeGreaterThan(0);
  expect(whole.usage?.completion_tokens).toBeGreaterThan(0);
  expect(whole.usage!.prompt_tokens).toBeGreaterThan(5);
  expect(['stop', 'length']).toContain(whole.choices[0].finish_reason);
  expect(await streamText(api, greedy(prompt))).toBe(text);
  const completion = await api.completions.create({ model: MODEL_ID, prompt: 'Once', max_tokens: 5, temperature: 0 });
  expect(completion.usage?.completion_tokens).toBeLessThanOrEqual(5);
  // API turns are shown in the host tab's chat, tagged.
  await expect(page.locator('.msg.assistant.api')).toHaveCount(3);

  // The same prompt typed into the page: the page's answer shows the end-of-turn token the API leaves out.
  // The chat's max tokens (the speculative panel has one too).
  await page.getByRole('spinbutton', { name: 'max tokens' }).first().fill('12');
  await page.getByLabel('prompt', { exact: true }).fill(prompt);
  await page.getByRole('button', { name: 'Send', exact: true }).first().click();
  const answer = page.getByRole('log').first().locator('.msg.assistant:not(.api)').last();
  await expect(answer.locator('.msg-meta')).toBeVisible({ timeout: 60_000 });
  const typed = await answer.evaluate((el) => el.firstChild?.textContent ?? '');
  expect(typed.endsWith(EOS_TEXT) ? typed.slice(0, -EOS_TEXT.length) : typed).toBe(text);
});

test('four concurrent requests each equal their answer alone', async () => {
  const prompts = ['Name a fish.', 'Count to three.', 'What is rain?', 'Say hello.'];
  const alone: string[] = [];
  for (const p of prompts) alone.push((await api.chat.completions.create(greedy(p, 16))).choices[0].message.content!);
  const together = await Promise.all(prompts.map((p) => streamText(api, greedy(p, 16))));
  expect(together).toEqual(alone);
});

test('a client aborting mid-stream frees its share of the mesh within 2 s', async () => {
  const stream = await api.chat.completions.create({ ...greedy('Go on and on.', 400), stream: true });
  let chunks = 0;
  for await (const c of stream) if (c.choices[0]?.delta.content && ++chunks === 3) break; // leaving aborts the request
  expect(chunks).toBe(3); // it was cut mid-answer, not finished
  const t0 = Date.now();
  await expect
    .poll(() => page.evaluate(() => (window as unknown as Win).shoal.session.coordinator.turnsInFlight), {
      timeout: 2000,
      intervals: [50],
    })
    .toBe(0);
  expect(Date.now() - t0).toBeLessThan(2000);
  // The host tab ended the turn because the client left ("stop"), not at its end.
  await expect(page.locator('.msg.assistant.api .msg-meta').last()).toContainText('· stop');
  const next = await api.chat.completions.create(greedy('And now?', 4));
  expect(next.choices[0].message.content).not.toBeNull();
});

test('malformed requests get 400 with an error object; a room with no host tab gets 503', async () => {
  const post = (body: string) =>
    fetch(`${origin}/v1/chat/completions`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'shoal-room': room },
    });
  for (const [body, pattern] of [
    ['{"model":', /not valid JSON/],
    [JSON.stringify({ model: MODEL_ID }), /messages/],
    [JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user' }] }), /content/],
    [JSON.stringify({ ...greedy('hi'), model: 'gpt-4o' }), /unknown model/],
    [JSON.stringify(greedy('many words '.repeat(400))), /context/],
  ] as const) {
    const r = await post(body);
    expect(r.status, body.slice(0, 40)).toBe(400);
    const j = (await r.json()) as { error: { message: string; type: string } };
    expect(j.error.type).toBe('invalid_request_error');
    expect(j.error.message).toMatch(pattern);
  }
  const none = await openai(uniqueRoom('api-none'))
    .chat.completions.create(greedy('hi'))
    .catch((e: unknown) => e);
  expect((none as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
  expect((none as Error).message).toMatch(/host-tabs/);
  // Nothing else broke: the host still answers.
  expect((await api.chat.completions.create(greedy('Still there?', 3))).choices).toHaveLength(1);
});

test('headless host tabs (npm start -- --host-tabs) serve a room with no browser opened by hand', async () => {
  const r = uniqueRoom('api-headless');
  const tabs = await launchHostTabs({ pageUrl: origin, room: r, count: 1, query: `model=${MODEL}` });
  try {
    const client = openai(r);
    await whenHosted(client);
    const c = await client.completions.create({ model: MODEL_ID, prompt: 'The sea', max_tokens: 6, temperature: 0 });
    expect(c.choices[0].text.length).toBeGreaterThan(0);
  } finally {
    await tabs.close();
  }
});

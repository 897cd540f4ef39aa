// Several people on one mesh (issue 18), in real headless Chromium over real WebRTC: two tabs press Send at the same
// moment and both answers equal their answers alone; three conversations of different lengths, one with a
// 512-token prompt started while the others decode, all equal their solo answers and the others keep decoding
// during the long prefill (chunked, batched with their steps).
import { expect, test } from '@playwright/test';
import { loadTokenizer } from '../src/tokenizer/index.ts';
import { localModelFiles } from '../src/weights/localFiles.ts';
import { openModel } from '../src/weights/model.ts';
import type { StageAssignment } from '../src/pipeline/messages.ts';
import { DEMO_DIR, openRoom, soloGreedy } from './room.ts';
import type { Win } from './room.ts';

test.describe('several conversations on one mesh', () => {
  test('3 tabs: two people press Send at the same moment; both answers finish, each equal to its answer alone', async ({
    browser,
  }) => {
    const room = await openRoom(browser, 3);
    try {
      const prompts = ['Tell me about the sea.', 'What do fish eat at night?'];
      const tok = await loadTokenizer(DEMO_DIR);
      const maxTokens = 12;
      const solo = await Promise.all(
        prompts.map((p) =>
          soloGreedy(tok.applyChatTemplate([{ role: 'user', content: p }], { addGenerationPrompt: true }), maxTokens),
        ),
      );
      const senders = room.pages.slice(0, 2);
      for (const [i, page] of senders.entries()) {
        await page.evaluate(() => {
          const w = window as unknown as Win;
          w.e2eTurns = [];
          w.shoal.session.on((e) => {
            if (e.type === 'turn') w.e2eTurns!.push(e.result.tokens);
          });
        });
        await page.locator('section.chat').getByLabel('max tokens').fill(String(maxTokens));
        await page.locator('section.chat').getByLabel('prompt').fill(prompts[i]);
      }
      // Both press Send at the same moment: neither tab has a plan yet, so both plan and the room settles on one.
      await Promise.all(
        senders.map((p) => p.locator('section.chat').getByRole('button', { name: 'Send', exact: true }).click()),
      );
      for (const [i, page] of senders.entries()) {
        await expect
          .poll(() => page.evaluate(() => (window as unknown as Win).e2eTurns!.length), {
            timeout: 120_000,
            message: `tab ${i + 1} answered`,
          })
          .toBe(1);
        expect(await page.evaluate(() => (window as unknown as Win).e2eTurns![0]), `tab ${i + 1}'s answer`).toEqual(
          solo[i],
        );
        await expect(page.locator('section.chat').getByRole('button', { name: 'Send', exact: true })).toBeEnabled();
      }
      const plans = await Promise.all(
        room.pages.map((p) => p.evaluate(() => (window as unknown as Win).shoal.session.coordinator.planId)),
      );
      expect(new Set(plans).size, 'every tab holds the same plan').toBe(1);
    } finally {
      await room.close();
    }
  });

  test('4 tabs, 3 conversations, one a 512-token prompt: all equal their solo answers, others keep decoding', async ({
    browser,
  }) => {
    const room = await openRoom(browser, 4);
    try {
      const model = await openModel(localModelFiles(DEMO_DIR));
      const L = model.spec.nLayers;
      const stages: StageAssignment[] = room.ids.map((peer, i) => ({
        peer,
        start: (i * L) / 4,
        end: ((i + 1) * L) / 4,
      }));
      const long = Array.from({ length: 512 }, (_, i) => 260 + ((i * 131) % 1500));
      const jobs = [
        { tab: 0, ids: [257, 117, 416, 10, 260], steps: 64 },
        { tab: 1, ids: [300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312], steps: 48 },
        { tab: 2, ids: long, steps: 6 },
      ];
      type Run = { tokens: number[]; times: number[]; startMs: number };
      const run = (j: (typeof jobs)[number], conv: string): Promise<Run> =>
        room.pages[j.tab].evaluate(
          async ({ ids, steps, stages, conv }) => {
            const s = (window as unknown as Win).shoal.session;
            const times: number[] = [];
            (window as unknown as Win).e2eTimes = times;
            const startMs = performance.timeOrigin + performance.now();
            const r = await s.generateIds('/models/demo/', ids, {
              maxTokens: steps,
              strategy: 'even',
              stages,
              conv,
              onText: () => times.push(performance.timeOrigin + performance.now()),
            });
            return { tokens: r.tokens, times, startMs };
          },
          { ids: j.ids, steps: j.steps, stages, conv },
        );
      // Alone, one after the other (the first run also loads the layers).
      const solo: Run[] = [];
      for (const j of jobs) solo.push(await run(j, 'solo'));
      for (const [i, j] of jobs.entries())
        expect(solo[i].tokens, `job ${i} alone`).toEqual(await soloGreedy(j.ids, j.steps));
      // Together: the long prompt starts once the other two are decoding.
      const a = run(jobs[0], 'together'),
        b = run(jobs[1], 'together');
      const tokensSoFar = (tab: number) =>
        room.pages[tab].evaluate(() => (window as unknown as Win).e2eTimes?.length ?? 0);
      for (const tab of [0, 1])
        await expect.poll(() => tokensSoFar(tab), { timeout: 60_000 }).toBeGreaterThanOrEqual(4);
      const c = run(jobs[2], 'together');
      const together = [await a, await b, await c];
      for (const [i] of jobs.entries()) expect(together[i].tokens, `job ${i} together`).toEqual(solo[i].tokens);
      // During the long prefill (its start to its first token) the others' time per token stays within 3x alone.
      const prefill = { from: together[2].startMs, to: together[2].times[0] };
      const gaps = (r: Run, from = -Infinity, to = Infinity) =>
        r.times
          .slice(1)
          .map((t, k) => ({ t0: r.times[k], ms: t - r.times[k] }))
          .filter((g) => g.t0 >= from && g.t0 < to)
          .map((g) => g.ms);
      const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
      for (const i of [0, 1]) {
        const during = gaps(together[i], prefill.from, prefill.to);
        const alone = mean(gaps(solo[i]));
        const prefillMs = (prefill.to - prefill.from).toFixed(0);
        const prefillAloneMs = (solo[2].times[0] - solo[2].startMs).toFixed(0);
        console.log(
          `job ${i}: ${alone.toFixed(1)} ms per token alone, ${mean(during).toFixed(1)} during the 512-token prefill ` +
            `(${during.length} tokens; prefill ${prefillMs} ms, alone ${prefillAloneMs} ms)`,
        );
        expect(during.length, `job ${i} decoded during the long prefill`).toBeGreaterThanOrEqual(2);
        expect(
          mean(during),
          `job ${i}: ms per token during the prefill (alone ${alone.toFixed(1)} ms)`,
        ).toBeLessThanOrEqual(3 * alone);
      }
    } finally {
      await room.close();
    }
  });

  test('3 tabs: an evicted conversation continues right; a re-plan mid-answer resumes it exactly and says so', async ({
    browser,
  }) => {
    const room = await openRoom(browser, 3);
    try {
      const model = await openModel(localModelFiles(DEMO_DIR));
      const L = model.spec.nLayers;
      const stages: StageAssignment[] = room.ids.map((peer, i) => ({
        peer,
        start: Math.floor((i * L) / 3),
        end: Math.floor(((i + 1) * L) / 3),
      }));
      type Opts = { ids: number[]; steps: number; conv: string; stages: StageAssignment[]; maxConversations?: number };
      const gen = (tab: number, o: Opts) =>
        room.pages[tab].evaluate(async (o) => {
          const r = await (window as unknown as Win).shoal.session.generateIds('/models/demo/', o.ids, {
            maxTokens: o.steps,
            strategy: 'even',
            ...o,
          });
          return { tokens: r.tokens, restarts: r.restarts };
        }, o);
      // Every stage keeps one conversation's cache: y's turn evicts x's, and x's second turn rebuilds it.
      const x1 = await gen(0, { ids: [257, 117, 416], steps: 6, conv: 'x', stages, maxConversations: 1 });
      await gen(1, { ids: [300, 301], steps: 4, conv: 'y', stages, maxConversations: 1 });
      const turn2 = [257, 117, 416, ...x1.tokens, 10, 260];
      const x2 = await gen(0, { ids: turn2, steps: 6, conv: 'x', stages, maxConversations: 1 });
      expect(x2.tokens).toEqual(await soloGreedy(turn2, 6));
      expect(x2.restarts, 'the evicted cache was rebuilt from the tokens').toBe(1);
      // A long answer in tab 1; tab 2 re-plans (the stages in another order) while it streams.
      const long = gen(0, { ids: [5, 6, 7, 8], steps: 96, conv: 'z', stages });
      await expect
        .poll(() => room.pages[0].evaluate(() => (window as unknown as Win).shoal.session.coordinator.turnsInFlight))
        .toBe(1);
      const reversed = [...room.ids].reverse().map((peer, i) => ({ ...stages[i], peer }));
      await gen(1, { ids: [9, 10], steps: 2, conv: 'w', stages: reversed });
      const z = await long;
      expect(z.tokens).toEqual(await soloGreedy([5, 6, 7, 8], 96));
      expect(z.restarts).toBeGreaterThanOrEqual(1);
      await expect(room.pages[0].locator('section.chat')).toContainText(/plan from .*continue/);
    } finally {
      await room.close();
    }
  });
});

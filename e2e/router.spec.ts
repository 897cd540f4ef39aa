// Routing in real headless Chromium: the small model (tiny-llama fixture) held whole by tab 1, the large one
// (tiny-qwen2, same tokenizer) over a 3-tab mesh. A scripted multi-turn conversation: every turn lands on the
// side the rule gives for its recorded p and predicted latencies, with the tokens that side produces alone
// (the CPU engine in Node on the same files); staying reuses the cache, switching re-reads the history.
import { expect, test } from '@playwright/test';
import type { Browser, Page } from '@playwright/test';
import { resolve } from 'node:path';
import { createCpuBackend } from '../src/backend/cpu/index.ts';
import { runInfer } from '../src/model/infer.ts';
import { openModel } from '../src/weights/model.ts';
import type { ModelSource } from '../src/weights/model.ts';
import { localModelFiles } from '../src/weights/localFiles.ts';
import type { Mesh } from '../src/mesh/mesh.ts';
import type { Session } from '../src/pipeline/session.ts';
import type { TurnRecord } from '../src/router/router.ts';
import type { Side } from '../src/router/predictor.ts';
import { decide } from '../src/router/rule.ts';
import type * as PanelModuleNs from '../src/ui/routerPanel.ts';
import type * as ScorerModuleNs from '../src/router/difficulty.ts';

type PanelModule = typeof PanelModuleNs;
type ScorerModule = typeof ScorerModuleNs;

type Handle = { mesh: Mesh; session: Session };
const FIXTURES = resolve(import.meta.dirname, '../test/fixtures');
const uniqueRoom = (tag: string): string =>
  `${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

interface Mesh3 {
  pages: Page[];
  ids: string[];
  close(): Promise<void>;
}

/** Three tabs: one in the first browser context, two in a second; waits until each sees the other two. */
async function openMesh(browser: Browser): Promise<Mesh3> {
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  const room = uniqueRoom('route');
  const pages = [await ctxA.newPage(), await ctxB.newPage(), await ctxB.newPage()];
  await Promise.all(pages.map((p, i) => p.goto(`/?room=${room}&name=tab${i + 1}`)));
  for (const p of pages) await p.waitForFunction(() => !!(window as unknown as { shoal?: unknown }).shoal);
  for (const p of pages)
    await expect
      .poll(() => p.evaluate(() => (window as unknown as { shoal: Handle }).shoal.mesh.peers().length), {
        timeout: 20_000,
      })
      .toBe(2);
  const ids = await Promise.all(
    pages.map((p) => p.evaluate(() => (window as unknown as { shoal: Handle }).shoal.mesh.peerId)),
  );
  return {
    pages,
    ids,
    close: async () => {
      await ctxA.close();
      await ctxB.close();
    },
  };
}

const MAX_TOKENS = 5;
// p per turn (a scripted scorer: the rule, not the scorer, is under test here) and the query ids
const SCRIPT: { p: number; query: number[] }[] = [
  { p: 0.1, query: [1, 5, 6, 7, 8] },
  { p: 0.97, query: [9, 10, 11] },
  { p: 0.95, query: [12, 13] },
  { p: 0.15, query: [14, 15, 16] },
  { p: 0.05, query: [17, 18] },
  { p: 0.99, query: [19] },
];

test('a 3-tab mesh plus the small model answer a multi-turn conversation where the rule says', async ({ browser }) => {
  const models: Record<Side, ModelSource> = {
    small: await openModel(localModelFiles(resolve(FIXTURES, 'tiny-llama'))),
    large: await openModel(localModelFiles(resolve(FIXTURES, 'tiny-qwen2'))),
  };
  const mesh = await openMesh(browser);
  try {
    const page = mesh.pages[0];
    const stages = [
      { peer: mesh.ids[0], start: 0, end: 2 },
      { peer: mesh.ids[1], start: 2, end: 4 },
      { peer: mesh.ids[2], start: 4, end: 6 },
    ];
    // through the page's routing panel (same module instances as the page: Vite serves one graph)
    await page.evaluate(
      async ({ stages, script }) => {
        const panelUrl = '/src/ui/routerPanel.ts',
          scorerUrl = '/src/router/difficulty.ts'; // page URLs, not Node paths
        const { routerPanels } = (await import(/* @vite-ignore */ panelUrl)) as PanelModule;
        const { scorerFrom } = (await import(/* @vite-ignore */ scorerUrl)) as ScorerModule;
        let turn = 0;
        await routerPanels[0].load({
          smallModel: '/fixtures/tiny-llama/',
          largeModel: '/fixtures/tiny-qwen2/',
          strategy: 'even',
          stages,
          // alpha small enough that a loaded CI machine (seconds of predicted latency) cannot push every turn to one
          // side; the test checks each turn against the rule with the live predictions, whatever they are
          policy: { name: 'latency-aware', alpha: 0.1, theta: 0.5 },
          scorer: scorerFrom('scripted', () => script[turn++]),
        });
      },
      { stages, script: SCRIPT.map((s) => s.p) },
    );

    let conversation: number[] = [];
    let prev: Side | null = null;
    const sides: Side[] = [];
    for (const [i, step] of SCRIPT.entries()) {
      const r: TurnRecord = await page.evaluate(
        async ({ query, maxTokens }) => {
          const panelUrl = '/src/ui/routerPanel.ts';
          const { routerPanels } = (await import(/* @vite-ignore */ panelUrl)) as PanelModule;
          return routerPanels[0].page!.router.turnIds(query, { maxTokens });
        },
        { query: step.query, maxTokens: MAX_TOKENS },
      );
      const context = [...conversation, ...step.query];
      expect(r.p).toBe(step.p);
      expect(r.contextTokens).toBe(context.length);
      expect(r.side, `turn ${i + 1}: ${r.decision.reason}`).toBe(
        decide(r.policy, r.p, r.predicted.small.totalSec, r.predicted.large.totalSec).side,
      );
      const ref = await runInfer({
        model: models[r.side],
        backend: createCpuBackend(),
        ids: context,
        steps: MAX_TOKENS,
        logits: 'none',
      });
      expect(r.tokens, `turn ${i + 1} on the ${r.side} side`).toEqual(ref.generated.slice(0, r.tokens.length));
      expect(r.tokens.length).toBeGreaterThan(0);
      if (prev === null) expect(r.switchSec).toBe(0);
      else if (prev === r.side) {
        expect(r.reusedTokens, `turn ${i + 1} stays: cached prefix reused`).toBe(conversation.length - 1);
        expect(r.switchSec).toBeLessThanOrEqual(r.predicted[r.side].prefillSec);
      } else {
        expect(r.switchSec, `turn ${i + 1} switches to ${r.side}: re-prefill counted`).toBeGreaterThan(0);
        expect(r.reusedTokens).toBeLessThan(conversation.length - 1);
      }
      conversation = [...context, ...r.tokens];
      prev = r.side;
      sides.push(r.side);
    }
    test.info().annotations.push({ type: 'sides', description: sides.join(' ') });
    expect(sides).toContain('small');
    expect(sides).toContain('large');
    // the panel shows every turn and the running count of large-model calls
    await expect(page.locator('.router-table tbody tr')).toHaveCount(SCRIPT.length);
    const large = sides.filter((s) => s === 'large').length;
    await expect(page.locator('.router-summary')).toContainText(`${SCRIPT.length} turns, ${large} large-model calls`);
  } finally {
    await mesh.close();
  }
});

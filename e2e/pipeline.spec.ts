// The product path in real headless Chromium: 3 tabs over 2 browser contexts, real WebRTC, real WebGPU
// (SwiftShader), real Range loads. Generated ids must equal the reference fixtures and the single-tab CPU
// result; a cold run's timeline must show stage 2 loading while stage 1 computes.
import { expect, test } from '@playwright/test';
import type { Browser, Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createCpuBackend } from '../src/backend/cpu/index.ts';
import { runInfer } from '../src/model/infer.ts';
import { openModel } from '../src/weights/model.ts';
import { localModelFiles } from '../src/weights/localFiles.ts';
import type { Session, TurnResult } from '../src/pipeline/session.ts';
import type { Mesh } from '../src/mesh/mesh.ts';
import type { Interval } from '../src/planner/timeline.ts';
import type { StageAssignment } from '../src/pipeline/messages.ts';
import type { FixtureCase } from '../src/testing/allClose.ts';

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
async function openMesh(browser: Browser, queries: string[]): Promise<Mesh3> {
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  const room = uniqueRoom('pipe');
  const pages = [await ctxA.newPage(), await ctxB.newPage(), await ctxB.newPage()];
  await Promise.all(pages.map((p, i) => p.goto(`/?room=${room}&name=tab${i + 1}&${queries[i] ?? ''}`)));
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

function generate(
  page: Page,
  model: string,
  ids: number[],
  opts: { maxTokens: number; strategy: string; cold?: boolean; stages?: StageAssignment[] },
): Promise<Omit<TurnResult, 'plan'> & { plan: unknown }> {
  return page.evaluate(
    async ({ model, ids, opts }) => {
      const s = (window as unknown as { shoal: Handle }).shoal.session;
      const r = await s.generateIds(model, ids, { ...opts, strategy: opts.strategy as 'even' });
      return { ...r, plan: r.plan };
    },
    { model, ids, opts },
  );
}

const intervals = (page: Page): Promise<Interval[]> =>
  page.evaluate(() => (window as unknown as { shoal: Handle }).shoal.session.coordinator.intervals);

test.describe('pipeline over 3 tabs', () => {
  test('each fixture: generated ids equal expected.json, the timeline follows the plan', async ({ browser }) => {
    const mesh = await openMesh(browser, []);
    try {
      for (const name of ['tiny-llama', 'tiny-qwen2']) {
        const cases = (
          JSON.parse(readFileSync(resolve(FIXTURES, name, 'expected.json'), 'utf8')) as { cases: FixtureCase[] }
        ).cases;
        for (const [i, c] of cases.entries()) {
          const r = await generate(mesh.pages[0], `/fixtures/${name}/`, c.input_ids, {
            maxTokens: c.greedy.length,
            strategy: 'even',
            cold: i === 0,
          });
          expect(r.tokens, `${name} case ${i}`).toEqual(c.greedy);
          expect(new Set(r.stages.map((s) => s.peer)).size, 'three tabs take part').toBe(3);
          if (i === 0) {
            // every layer's load is recorded by the tab the plan gave it to
            await expect
              .poll(
                async () =>
                  (await intervals(mesh.pages[0])).filter((iv) => iv.kind === 'load' && iv.layer !== undefined).length,
              )
              .toBe(r.stages.reduce((n, s) => n + s.end - s.start, 0));
            for (const iv of (await intervals(mesh.pages[0])).filter(
              (x) => x.kind === 'load' && x.layer !== undefined,
            )) {
              const owner = r.stages.find((s) => iv.layer! - 1 >= s.start && iv.layer! - 1 < s.end);
              expect(owner?.peer, `layer ${iv.layer}`).toBe(iv.device);
            }
          }
        }
      }
    } finally {
      await mesh.close();
    }
  });

  test('demo model: ids equal the single-tab CPU result; a cold run hides stage 2 loading behind stage 1', async ({
    browser,
  }, testInfo) => {
    const dir = resolve(import.meta.dirname, '../public/models/demo');
    const model = await openModel(localModelFiles(dir));
    const ids = [257, 117, 416, 10, 260, 403, 261, 267];
    const steps = 8;
    const cpu = await runInfer({ model, backend: createCpuBackend(), ids, steps, logits: 'none' });
    // tabs 2 and 3 load slowly (1.5 MB/s: 4 s for their 6.3 MB), tab 1 loads at full speed and computes 4x slower
    // than the machine, so its prefill runs while the others are still loading
    const mesh = await openMesh(browser, ['slowdown=4', 'loadBps=1500000', 'loadBps=1500000']);
    try {
      const L = model.spec.nLayers;
      const stages: StageAssignment[] = [
        { peer: mesh.ids[0], start: 0, end: 4 },
        { peer: mesh.ids[1], start: 4, end: 8 },
        { peer: mesh.ids[2], start: 8, end: L },
      ];
      const r = await generate(mesh.pages[0], '/models/demo/', ids, {
        maxTokens: steps,
        strategy: 'csgo',
        cold: true,
        stages,
      });
      expect(r.tokens).toEqual(cpu.generated);
      await expect
        .poll(
          async () =>
            (await intervals(mesh.pages[0])).filter((iv) => iv.kind === 'load' && iv.device === mesh.ids[1]).length,
        )
        .toBeGreaterThanOrEqual(4);
      const all = await intervals(mesh.pages[0]);
      const stage1Compute = all.filter((iv) => iv.device === stages[0].peer && iv.kind === 'compute');
      const stage2Load = all.filter((iv) => iv.device === stages[1].peer && iv.kind === 'load');
      let overlapSec = 0;
      for (const a of stage1Compute)
        for (const b of stage2Load)
          overlapSec += Math.max(0, Math.min(a.endSec, b.endSec) - Math.max(a.startSec, b.startSec));
      const fmt = (ivs: Interval[]) => ivs.map((iv) => `${iv.startSec.toFixed(3)}-${iv.endSec.toFixed(3)}`).join(' ');
      expect(
        overlapSec,
        `stage 2 loads while stage 1 computes\n` +
          `  stage 1 compute: ${fmt(stage1Compute)}\n  stage 2 load: ${fmt(stage2Load)}`,
      ).toBeGreaterThan(0);
      // each stage loads exactly its own layers
      for (const s of stages) {
        const layers = all
          .filter((iv) => iv.device === s.peer && iv.kind === 'load' && iv.layer !== undefined)
          .map((iv) => iv.layer! - 1)
          .sort((a, b) => a - b);
        expect(layers).toEqual(Array.from({ length: s.end - s.start }, (_, i) => s.start + i));
      }
      const page = mesh.pages[0];
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.locator('.timeline').screenshot({ path: testInfo.outputPath('timeline-desktop.png') });
      await page.setViewportSize({ width: 390, height: 844 });
      await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await page.screenshot({ path: testInfo.outputPath('page-phone.png'), fullPage: true });
      await page.locator('.timeline').screenshot({ path: testInfo.outputPath('timeline-phone.png') });
    } finally {
      await mesh.close();
    }
  });
});

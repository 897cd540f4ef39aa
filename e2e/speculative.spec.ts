// Speculative decoding in real headless Chromium: 3 tabs over 2 browser contexts (real WebRTC, real WebGPU via
// SwiftShader). The draft runs in the first tab, the target across all three. Greedy speculative output must equal
// target-only output (fixtures: expected.json; demo pair: the single-tab CPU result) at several draft lengths, with
// forced rejections; afterwards a plain prompt gives the same result as a fresh session (no stale KV state).
import { expect, test } from '@playwright/test';
import type { Browser, Page } from '@playwright/test';
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createCpuBackend } from '../src/backend/cpu/index.ts';
import { runInfer } from '../src/model/infer.ts';
import { openModel } from '../src/weights/model.ts';
import { localModelFiles } from '../src/weights/localFiles.ts';
import type { Session } from '../src/pipeline/session.ts';
import type { Mesh } from '../src/mesh/mesh.ts';
import type { StageAssignment } from '../src/pipeline/messages.ts';
import type { FixtureCase } from '../src/testing/allClose.ts';
import type { SpecSession, SpecTurnOptions } from '../src/speculative/specSession.ts';
import { makeModel } from '../scripts/make-model.ts';

type Handle = { mesh: Mesh; session: Session };
type Win = { shoal: Handle; shoalSpec: SpecSession };
const FIXTURES = resolve(import.meta.dirname, '../test/fixtures');
const MODELS = resolve(import.meta.dirname, '../public/models');
const PAIR = {
  draft: 'spec-demo-draft',
  target: 'spec-demo-target',
  preset: 'demo',
  draftLayers: 2,
  draftStrength: 0.05,
  seed: 0,
};

/** The demo draft/target pair under public/models (generated once; git-ignored), swapped into place by rename. */
async function ensurePair(): Promise<void> {
  for (const [name, role] of [
    [PAIR.draft, 'draft'],
    [PAIR.target, 'model'],
  ] as const) {
    const dir = join(MODELS, name);
    if (existsSync(join(dir, 'model.safetensors')) && existsSync(join(dir, 'tokenizer.json'))) {
      const g = (
        JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { shoal_generator?: { draft_strength?: number } }
      ).shoal_generator;
      if (g?.draft_strength === PAIR.draftStrength) continue;
    }
    const tmp = join(MODELS, `.${name}.tmp-${process.pid}`);
    await makeModel({
      preset: PAIR.preset,
      role,
      draftLayers: PAIR.draftLayers,
      draftStrength: PAIR.draftStrength,
      seed: PAIR.seed,
      out: tmp,
    });
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  }
}

async function openMesh(
  browser: Browser,
  knobs = '',
): Promise<{ pages: Page[]; ids: string[]; close(): Promise<void> }> {
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  const room = `spec-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const pages = [await ctxA.newPage(), await ctxB.newPage(), await ctxB.newPage()];
  await Promise.all(pages.map((p, i) => p.goto(`/?room=${room}&name=tab${i + 1}${knobs}`)));
  for (const p of pages) await p.waitForFunction(() => !!(window as unknown as Partial<Win>).shoalSpec);
  for (const p of pages)
    await expect
      .poll(() => p.evaluate(() => (window as unknown as Win).shoal.mesh.peers().length), { timeout: 20_000 })
      .toBe(2);
  const ids = await Promise.all(pages.map((p) => p.evaluate(() => (window as unknown as Win).shoal.mesh.peerId)));
  return {
    pages,
    ids,
    close: async () => {
      await ctxA.close();
      await ctxB.close();
    },
  };
}

interface SpecOut {
  tokens: number[];
  drafted: number;
  accepted: number;
  rounds: number;
  gammas: number[];
  draftedAhead: number;
  hedgesSent: number;
  hedgeHits: number;
}

function speculate(page: Page, model: string, ids: number[], opts: SpecTurnOptions): Promise<SpecOut> {
  return page.evaluate(
    async ({ model, ids, opts }) => {
      const r = await (window as unknown as Win).shoalSpec.generateIds(model, ids, opts);
      return {
        tokens: r.tokens,
        drafted: r.drafted,
        accepted: r.accepted,
        rounds: r.rounds,
        gammas: r.gammas,
        draftedAhead: r.draftedAhead,
        hedgesSent: r.hedgesSent,
        hedgeHits: r.hedgeHits,
      };
    },
    { model, ids, opts },
  );
}

function plain(
  page: Page,
  model: string,
  ids: number[],
  opts: { maxTokens: number; stages: StageAssignment[] },
): Promise<number[]> {
  return page.evaluate(
    async ({ model, ids, opts }) =>
      (await (window as unknown as Win).shoal.session.generateIds(model, ids, { ...opts, strategy: 'even' })).tokens,
    { model, ids, opts },
  );
}

const chain = (ids: string[], L: number): StageAssignment[] => {
  const a = Math.max(1, Math.floor(L / 3)),
    b = Math.max(a + 1, Math.floor((2 * L) / 3));
  return [
    { peer: ids[0], start: 0, end: a },
    { peer: ids[1], start: a, end: b },
    { peer: ids[2], start: b, end: L },
  ];
};

test.describe('speculative decoding over 3 tabs', () => {
  test('fixtures (layer-skip draft): greedy ids equal expected.json at several gammas, forced rejections', async ({
    browser,
  }) => {
    const mesh = await openMesh(browser);
    try {
      for (const name of ['tiny-llama', 'tiny-qwen2']) {
        const cases = (
          JSON.parse(readFileSync(resolve(FIXTURES, name, 'expected.json'), 'utf8')) as { cases: FixtureCase[] }
        ).cases;
        const L = (
          JSON.parse(readFileSync(resolve(FIXTURES, name, 'config.json'), 'utf8')) as { num_hidden_layers: number }
        ).num_hidden_layers;
        const stages = chain(mesh.ids, L);
        let rejected = 0;
        for (const [gamma, parallel, corruptEvery] of [
          [1, false, undefined],
          [3, true, 3],
          [6, true, undefined],
          ['auto', true, 4],
        ] as const) {
          for (const [i, c] of cases.entries()) {
            const r = await speculate(mesh.pages[0], `/fixtures/${name}/`, c.input_ids, {
              maxTokens: c.greedy.length,
              strategy: 'even',
              stages,
              draft: { layers: 1 },
              gamma,
              parallel,
              corruptEvery,
            });
            expect(r.tokens, `${name} case ${i} gamma ${gamma} parallel ${parallel}`).toEqual(c.greedy);
            if (corruptEvery) rejected += r.drafted - r.accepted;
          }
        }
        expect(rejected, 'forced corruptions were rejected').toBeGreaterThan(0);
      }
    } finally {
      await mesh.close();
    }
  });

  test('hedges (verified in a branch of every stage, then restored): greedy ids stay exact, no stale state', async ({
    browser,
  }) => {
    // A 40 ms link delay: a hedge's drafts may take 5% of a round trip, and a hedge needs room for two of them (so a
    // draft step under 4 ms, even on a busy machine).
    const mesh = await openMesh(browser, '&linkDelayMs=40');
    try {
      let sent = 0,
        hits = 0;
      for (const name of ['tiny-llama', 'tiny-qwen2']) {
        const cases = (
          JSON.parse(readFileSync(resolve(FIXTURES, name, 'expected.json'), 'utf8')) as { cases: FixtureCase[] }
        ).cases;
        const L = (
          JSON.parse(readFileSync(resolve(FIXTURES, name, 'config.json'), 'utf8')) as { num_hidden_layers: number }
        ).num_hidden_layers;
        const stages = chain(mesh.ids, L);
        for (const [i, c] of cases.entries()) {
          // A forced corruption makes the draft's own choice the alternative: the hedge that should win there.
          const r = await speculate(mesh.pages[0], `/fixtures/${name}/`, c.input_ids, {
            maxTokens: c.greedy.length,
            strategy: 'even',
            stages,
            draft: { layers: 1 },
            gamma: 3,
            parallel: true,
            corruptEvery: 3,
            hedges: 3,
          });
          expect(r.tokens, `${name} case ${i}`).toEqual(c.greedy);
          sent += r.hedgesSent;
          hits += r.hedgeHits;
        }
        // The stages' restored rows leave nothing behind: a plain turn on the first case equals the reference.
        const c = cases[0];
        expect(
          await plain(mesh.pages[0], `/fixtures/${name}/`, c.input_ids, { maxTokens: c.greedy.length, stages }),
        ).toEqual(c.greedy);
      }
      expect(sent, 'hedges went out').toBeGreaterThan(0);
      expect(hits, "some hedges held the target's token").toBeGreaterThan(0);
    } finally {
      await mesh.close();
    }
  });

  test('demo pair: greedy speculative ids equal the target alone; a later prompt equals a fresh session', async ({
    browser,
  }, testInfo) => {
    await ensurePair();
    const model = await openModel(localModelFiles(join(MODELS, PAIR.target)));
    const cpuTarget = async (ids: number[], steps: number) =>
      (await runInfer({ model, backend: createCpuBackend(), ids, steps, logits: 'none' })).generated;
    const prompt = [257, 117, 416, 10, 260, 403, 261, 267];
    const steps = 16;
    const want = await cpuTarget(prompt, steps);
    const mesh = await openMesh(browser);
    try {
      const stages = chain(mesh.ids, model.spec.nLayers);
      const target = `/models/${PAIR.target}/`,
        draft = { url: `/models/${PAIR.draft}/` };
      let accepted = 0,
        drafted = 0;
      for (const [gamma, parallel, corruptEvery] of [
        [2, false, undefined],
        [4, true, undefined],
        [8, true, 5],
        ['auto', true, undefined],
      ] as const) {
        const r = await speculate(mesh.pages[0], target, prompt, {
          maxTokens: steps,
          strategy: 'csgo',
          stages,
          draft,
          gamma,
          parallel,
          corruptEvery,
        });
        expect(r.tokens, `gamma ${gamma} parallel ${parallel} corrupt ${corruptEvery}`).toEqual(want);
        if (!corruptEvery) {
          accepted += r.accepted;
          drafted += r.drafted;
        }
      }
      expect(accepted / drafted, 'the 0.05-strength draft mostly agrees with the target').toBeGreaterThan(0.5);
      // stale state: the caches hold rejected drafts past the last turn; a new, diverging prompt must not see them
      const later = [257, 117, 9, 33, 1000, 5];
      expect(await plain(mesh.pages[0], target, later, { maxTokens: 8, stages })).toEqual(await cpuTarget(later, 8));
      const r = await speculate(mesh.pages[0], target, later, {
        maxTokens: 8,
        strategy: 'csgo',
        stages,
        draft,
        gamma: 5,
        parallel: true,
        corruptEvery: 2,
      });
      expect(r.tokens).toEqual(await cpuTarget(later, 8));
      // the panel shows the run live, and the association view; the page still fits a phone
      const page = mesh.pages[0];
      await expect(page.locator('.spec-live')).toContainText('acceptance');
      await page.locator('.spec-panel > summary').click();
      await page.locator('.spec-assoc-view > summary').click();
      await expect(page.locator('.spec-assoc')).toContainText('matching');
      await page.setViewportSize({ width: 390, height: 844 });
      await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await page.locator('.spec-panel').screenshot({ path: testInfo.outputPath('spec-panel-phone.png') });
    } finally {
      await mesh.close();
    }
  });
});

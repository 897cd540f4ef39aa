// Weights move once (issue 21): the persistent cache across reloads, interrupted and corrupted entries, peers
// serving layers (and one serving bad bytes), and a re-plan after a tab leaves fetching only what nobody holds.
// Origin bytes are counted with request interception: every Range read of the weights file except the header probe.
import { expect, test } from '@playwright/test';
import type { Browser, BrowserContext, Page } from '@playwright/test';
import { openModel } from '../src/weights/model.ts';
import { localModelFiles } from '../src/weights/localFiles.ts';
import { PROBE_BYTES } from '../src/weights/source.ts';
import type { StageAssignment } from '../src/pipeline/messages.ts';
import { DEMO_DIR, soloGreedy, uniqueRoom, type Win } from './room.ts';

const MODEL = '/models/demo/';
const IDS = [256, 72, 101, 108, 108, 111, 44, 32, 115, 101, 97];
const STEPS = 6;
/** The demo model as Node reads it: unit sizes to compare the counted bytes with. */
const model = await openModel(localModelFiles(DEMO_DIR));
const L = model.spec.nLayers;
const UNITS = L + 2; // embedding, layers, head

interface Origin {
  bytes: number;
  requests: number;
}

/**
 * Weight bytes this context reads from the origin: Range reads of the weights file, the header probe left out.
 * openTab zeroes it once the tab's profile is measured (its load probe reads 4 MB of the file on a first visit).
 */
function countOrigin(ctx: BrowserContext): Origin {
  const o = { bytes: 0, requests: 0 };
  counters.set(ctx, o);
  ctx.on('request', (r) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(r.headers()['range'] ?? '');
    if (!m || m[1] === '0' || !new URL(r.url()).pathname.endsWith('.safetensors')) return;
    o.bytes += Number(m[2]) - Number(m[1]) + 1;
    o.requests++;
  });
  return o;
}

const counters = new Map<BrowserContext, Origin>();

async function whenReady(page: Page): Promise<void> {
  await page.waitForFunction(() => !!(window as unknown as Partial<Win>).shoal?.session);
  await page.waitForFunction(
    () => !!(window as unknown as { shoal: { tab: { profile: unknown } } }).shoal.tab.profile,
    null,
    {
      timeout: 60_000,
    },
  );
  const o = counters.get(page.context());
  if (o) Object.assign(o, { bytes: 0, requests: 0 });
}

async function openTab(ctx: BrowserContext, room: string, name: string, query = ''): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(`/?room=${room}&name=${name}&model=${MODEL}${query ? `&${query}` : ''}`);
  await whenReady(page);
  return page;
}

async function reload(page: Page): Promise<void> {
  await page.reload();
  await whenReady(page);
}

const peerId = (p: Page) => p.evaluate(() => (window as unknown as Win).shoal.mesh.peerId);

async function waitPeers(pages: Page[]): Promise<void> {
  for (const p of pages)
    await expect
      .poll(() => p.evaluate(() => (window as unknown as Win).shoal.mesh.peers().length), { timeout: 30_000 })
      .toBe(pages.length - 1);
}

function run(page: Page, opts: { stages?: StageAssignment[]; cold?: boolean } = {}): Promise<number[]> {
  return page.evaluate(
    async ({ ids, steps, opts, model }) => {
      const s = (window as unknown as Win).shoal.session;
      const r = await s.generateIds(model, ids, { maxTokens: steps, strategy: 'even', ...opts });
      return r.tokens;
    },
    { ids: IDS, steps: STEPS, opts, model: MODEL },
  );
}

/** What a tab saw, for a failure message: its loads' sources, its measured links, its chat lines. */
const why = async (p: Page) =>
  JSON.stringify({
    sources: await loadSources(p),
    links: await p.evaluate(() => (window as unknown as Win).shoal.mesh.linkStats()),
    chat: await p.locator('.chat-log').innerText(),
  });

/** Wait until `page` has heard from `holder` that it caches weights (it then asks it for them). */
async function heardCache(page: Page, holder: string): Promise<void> {
  await expect
    .poll(() =>
      page.evaluate(
        (h) => (window as unknown as Win).shoal.session.sources.share.holdingsOf(h)?.cachedBytes ?? 0,
        holder,
      ),
    )
    .toBeGreaterThan(0);
}

/** Committed cache entries of a tab (units). */
const cached = (p: Page) =>
  p.evaluate(async () => {
    const s = (window as unknown as Win).shoal.session;
    await s.sources.ready;
    return s.sources.cache?.entries().map((e) => e.key.slice(e.key.lastIndexOf('#') + 1)) ?? [];
  });

/** Where each unit of the last load on this tab came from, from its own load intervals. */
const loadSources = (p: Page) =>
  p.evaluate(() => {
    const { session, mesh } = (window as unknown as Win).shoal;
    return session.coordinator.intervals
      .filter((iv) => iv.kind === 'load' && iv.device === mesh.peerId)
      .map((iv) => `${iv.layer ?? iv.label}:${iv.source}`);
  });

/**
 * Bytes the origin sends for these units: their file spans (tensors and the small gaps read through), less what the
 * header probe's 64 KiB already brought (the start of the embedding, served from the probe's body).
 */
async function spanBytes(units: string[], probed = PROBE_BYTES): Promise<number> {
  let n = 0;
  for (const u of units) for (const s of await model.unitSpans(u)) n += Math.max(0, s.end - Math.max(s.begin, probed));
  return n;
}

async function newContexts(browser: Browser, n: number): Promise<BrowserContext[]> {
  return Promise.all(Array.from({ length: n }, () => browser.newContext()));
}

test.describe('weights move once', () => {
  test('a reloaded tab answers from its cache: no weight bytes from the origin, same tokens', async ({ browser }) => {
    const [ctx] = await newContexts(browser, 1);
    try {
      const origin = countOrigin(ctx);
      const room = uniqueRoom('cache');
      const page = await openTab(ctx, room, 'a');
      const first = await run(page);
      expect(first).toEqual(await soloGreedy(IDS, STEPS));
      expect(origin.bytes).toBe(await spanBytes(model.units()));
      await expect.poll(() => cached(page).then((u) => u.length)).toBe(UNITS);
      origin.bytes = 0;
      origin.requests = 0;
      await reload(page);
      expect(await run(page)).toEqual(first);
      expect(origin).toEqual({ bytes: 0, requests: 0 });
      await expect
        .poll(() => loadSources(page))
        .toEqual(['embedding', ...Array.from({ length: L }, (_, l) => l + 1), 'head'].map((u) => `${u}:cache`));
      // The peers table shows what this tab caches.
      await expect(page.locator('[data-testid="peers-table"] tr.self')).toContainText(
        `${((await spanBytes(model.units(), 0)) / 1e6).toFixed(1)} MB`,
      );
    } finally {
      await ctx.close();
    }
  });

  test('a load interrupted by closing the tab leaves no entry that is used; a corrupted entry is refetched', async ({
    browser,
  }) => {
    const [ctx] = await newContexts(browser, 1);
    try {
      const room = uniqueRoom('cache');
      // 1 MB/s: about 20 s for the whole model; the tab closes once a few units are in.
      const slow = await openTab(ctx, room, 'slow', 'loadBps=1000000');
      void run(slow).catch(() => undefined);
      await expect.poll(() => cached(slow).then((u) => u.length), { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
      await slow.close();
      const origin = countOrigin(ctx);
      const page = await openTab(ctx, room, 'next');
      const kept = await cached(page);
      expect(kept.length).toBeGreaterThanOrEqual(3);
      expect(kept.length).toBeLessThan(UNITS);
      expect(await run(page)).toEqual(await soloGreedy(IDS, STEPS));
      // Only what was not committed came from the origin; every committed entry was used and checked.
      const missing = model.units().filter((u) => !kept.includes(u));
      expect(origin.bytes).toBe(await spanBytes(missing));
      await expect.poll(() => cached(page).then((u) => u.length)).toBe(UNITS);

      // Corrupt one committed entry on disk (same size, one byte flipped), then reload and answer again.
      await page.evaluate(async () => {
        const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('shoal-weights');
        for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) {
          if (!name.endsWith('.bin')) continue;
          const meta = JSON.parse(
            await (await (await dir.getFileHandle(name.replace('.bin', '.json'))).getFile()).text(),
          ) as { key: string };
          if (!meta.key.endsWith('#layer:5')) continue;
          const f = await dir.getFileHandle(name);
          const bytes = new Uint8Array(await (await f.getFile()).arrayBuffer());
          bytes[100] ^= 0xff;
          const w = await f.createWritable();
          await w.write(bytes);
          await w.close();
        }
      });
      origin.bytes = 0;
      await reload(page);
      expect(await run(page)).toEqual(await soloGreedy(IDS, STEPS));
      expect(origin.bytes).toBe(await spanBytes(['layer:5']));
      await expect(page.getByText('cached layer:5 does not match its hash')).toBeVisible();
      await expect.poll(() => loadSources(page)).toContain('6:origin');
    } finally {
      await ctx.close();
    }
  });

  test('two empty tabs get their layers from the tab that holds the model, not the origin', async ({ browser }) => {
    const ctxs = await newContexts(browser, 3);
    try {
      const origins = ctxs.map(countOrigin);
      const room = uniqueRoom('p2p');
      const holder = await openTab(ctxs[0], room, 'holder');
      await run(holder);
      await expect.poll(() => cached(holder).then((u) => u.length)).toBe(UNITS);
      // The new tabs reach the origin at 1 MB/s (a phone on a slow link): the holder's link is faster.
      const fresh = [
        await openTab(ctxs[1], room, 'b', 'loadBps=1000000'),
        await openTab(ctxs[2], room, 'c', 'loadBps=1000000'),
      ];
      const pages = [holder, ...fresh];
      await waitPeers(pages);
      const ids = await Promise.all(pages.map(peerId));
      for (const p of fresh) await heardCache(p, ids[0]);
      const stages = [
        { peer: ids[1], start: 0, end: 4 },
        { peer: ids[2], start: 4, end: L },
      ];
      expect(await run(holder, { stages })).toEqual(await soloGreedy(IDS, STEPS));
      expect(origins[1].bytes + origins[2].bytes, await why(fresh[0])).toBe(0);
      await expect
        .poll(() => loadSources(fresh[0]))
        .toEqual(['embedding:peer', '1:peer', '2:peer', '3:peer', '4:peer']);
      // What came from a peer is cached there too: checked against the plan's hashes, ready to serve in turn.
      await expect.poll(() => cached(fresh[1]).then((u) => u.length)).toBe(L - 4 + 1);
    } finally {
      for (const c of ctxs) await c.close();
    }
  });

  test('a tab serving corrupted bytes is detected: the layer comes from the origin, the answer is unchanged', async ({
    browser,
  }) => {
    const ctxs = await newContexts(browser, 2);
    try {
      const origins = ctxs.map(countOrigin);
      const room = uniqueRoom('bad-peer');
      const holder = await openTab(ctxs[0], room, 'holder', 'corruptServe=1');
      await run(holder);
      await expect.poll(() => cached(holder).then((u) => u.length)).toBe(UNITS);
      const fresh = await openTab(ctxs[1], room, 'b', 'loadBps=1000000');
      await waitPeers([holder, fresh]);
      const ids = await Promise.all([holder, fresh].map(peerId));
      await heardCache(fresh, ids[0]);
      const stages = [
        { peer: ids[0], start: 0, end: 8 },
        { peer: ids[1], start: 8, end: L },
      ];
      expect(await run(holder, { stages })).toEqual(await soloGreedy(IDS, STEPS));
      // The first unit asked for failed its hash; the peer was skipped from then on: all from the origin.
      const units = Array.from({ length: L - 8 }, (_, i) => `layer:${8 + i}`).concat('head');
      expect(origins[1].bytes).toBe(await spanBytes(units));
      await expect(fresh.getByText(/from .* does not match its hash/)).toBeVisible();
    } finally {
      for (const c of ctxs) await c.close();
    }
  });

  test('after a tab leaves, the next turn fetches from the origin only the layers no surviving tab holds', async ({
    browser,
  }) => {
    const ctxs = await newContexts(browser, 3);
    try {
      const origins = ctxs.map(countOrigin);
      const room = uniqueRoom('leave');
      // Every tab reaches the origin at 1 MB/s: a peer's cache is the faster source where one holds the unit.
      const pages = await Promise.all(ctxs.map((c, i) => openTab(c, room, `t${i}`, 'loadBps=1000000')));
      await waitPeers(pages);
      const ids = await Promise.all(pages.map(peerId));
      const three = [
        { peer: ids[0], start: 0, end: 4 },
        { peer: ids[1], start: 4, end: 8 },
        { peer: ids[2], start: 8, end: L },
      ];
      const solo = await soloGreedy(IDS, STEPS);
      expect(await run(pages[0], { stages: three })).toEqual(solo);
      for (const [i, n] of [5, 4, L - 8 + 1].entries())
        await expect.poll(() => cached(pages[i]).then((u) => u.length)).toBe(n);
      for (const o of origins) o.bytes = 0;
      await ctxs[2].close();
      await expect.poll(() => pages[0].evaluate(() => (window as unknown as Win).shoal.mesh.peers().length)).toBe(1);
      // The room re-plans on its own (the lost layers go to a surviving neighbour, or a fresh plan); the next turn
      // runs on that plan.
      await expect
        .poll(() => pages[0].evaluate(() => (window as unknown as Win).shoal.session.coordinator.stages.length))
        .toBe(2);
      expect(await run(pages[0])).toEqual(solo);
      // Only the units tab 2 alone held came from the origin; the rest stayed in memory or came from a peer's cache.
      const lost = Array.from({ length: L - 8 }, (_, i) => `layer:${8 + i}`).concat('head');
      const lostLabels = new Set(['head', ...Array.from({ length: L - 8 }, (_, i) => String(9 + i))]);
      const fromOrigin = async (p: Page) =>
        (await loadSources(p)).filter((x) => x.endsWith(':origin')).map((x) => x.split(':')[0]);
      await expect
        .poll(async () => [...(await fromOrigin(pages[0])), ...(await fromOrigin(pages[1]))].sort())
        .toEqual([...lostLabels].sort());
      expect(origins[0].bytes + origins[1].bytes, await why(pages[0])).toBe(await spanBytes(lost));
    } finally {
      for (const c of ctxs) await c.close().catch(() => undefined);
    }
  });
});

// Shared by the real-mesh benchmarks: a room of tabs in one headless Chromium, each in its own browser context (its
// own renderer process), the person's tab first (with an optional compute slowdown), every tab with the same link
// delay; waits until each sees all the others. Plus the median the benches report.
import type { Browser, BrowserContext, Page } from '@playwright/test';
import type { Mesh } from '../../../src/mesh/mesh.ts';
import type { StageAssignment } from '../../../src/pipeline/messages.ts';
import type { Session } from '../../../src/pipeline/session.ts';

export interface BenchTabs {
  pages: Page[];
  ids: string[];
  close(): Promise<void>;
}

export async function openBenchTabs(
  browser: Browser,
  baseUrl: string,
  o: {
    n: number;
    roomPrefix: string;
    delayMs: number;
    slowdown: number;
    log?: (line: string) => void;
    timeoutMs?: number;
    ready?: string;
  },
): Promise<BenchTabs> {
  const room = `${o.roomPrefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const contexts: BrowserContext[] = [];
  const close = async (): Promise<void> => {
    for (const c of contexts) await c.close().catch(() => undefined);
  };
  try {
    const pages: Page[] = [];
    for (let i = 0; i < o.n; i++) {
      const ctx = await browser.newContext();
      contexts.push(ctx);
      const page = await ctx.newPage();
      if (o.log) page.on('pageerror', (e) => o.log!(`tab ${i} page error: ${e.message}`));
      const knobs = `linkDelayMs=${o.delayMs}${i === 0 && o.slowdown > 1 ? `&slowdown=${o.slowdown}` : ''}`;
      await page.goto(`${baseUrl}/?room=${room}&name=${i === 0 ? 'person' : `t${i}`}&${knobs}`);
      pages.push(page);
    }
    for (const p of pages) {
      // `ready`: a further window property the bench needs (e.g. the speculative panel's handle)
      await p.waitForFunction(
        ({ k, ready }) => {
          const w = window as unknown as { shoal?: { mesh: Mesh } } & Record<string, unknown>;
          return !!w.shoal && (!ready || !!w[ready]) && w.shoal.mesh.peers().length === k;
        },
        { k: o.n - 1, ready: o.ready ?? null },
        { timeout: o.timeoutMs ?? 120_000, polling: 250 },
      );
    }
    const ids = await Promise.all(
      pages.map((p) => p.evaluate(() => (window as unknown as { shoal: { mesh: Mesh } }).shoal.mesh.peerId)),
    );
    return { pages, ids, close };
  } catch (e) {
    await close();
    throw e;
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The model's layers split evenly over the room's tabs in order (read from the model as `page` opens it). */
export async function evenStages(page: Page, modelUrl: string, ids: string[]): Promise<StageAssignment[]> {
  const L = await page.evaluate(
    async (m) => (await (window as unknown as { shoal: { session: Session } }).shoal.session.openModel(m)).spec.nLayers,
    modelUrl,
  );
  return ids.map((peer, i) => ({
    peer,
    start: Math.floor((i * L) / ids.length),
    end: Math.floor(((i + 1) * L) / ids.length),
  }));
}

// Helpers for multi-tab scenarios on the demo model: a room of n real tabs over two browser contexts, and the
// single-tab CPU engine's greedy answer to compare against.
import { expect } from '@playwright/test';
import type { Browser, BrowserContext, Page } from '@playwright/test';
import { resolve } from 'node:path';
import { createCpuBackend } from '../src/backend/cpu/index.ts';
import { runInfer } from '../src/model/infer.ts';
import { localModelFiles } from '../src/weights/localFiles.ts';
import { openModel } from '../src/weights/model.ts';
import type { Session } from '../src/pipeline/session.ts';
import type { Mesh } from '../src/mesh/mesh.ts';

export type Handle = { mesh: Mesh; session: Session };
export type Win = { shoal: Handle; e2eTurns?: number[][]; e2eTimes?: number[]; e2eTokens?: number[] };
export const DEMO_DIR = resolve(import.meta.dirname, '../public/models/demo');
export const uniqueRoom = (tag: string): string =>
  `${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

export interface Room {
  name: string;
  pages: Page[];
  ids: string[];
  contexts: BrowserContext[];
  close(): Promise<void>;
}

/** n tabs over two browser contexts, on the demo model (`query` adds URL knobs); waits until each sees every other. */
export async function openRoom(browser: Browser, n: number, query = ''): Promise<Room> {
  const contexts = [await browser.newContext(), await browser.newContext()];
  const room = uniqueRoom('room');
  const pages: Page[] = [];
  for (let i = 0; i < n; i++) pages.push(await contexts[i % 2].newPage());
  await Promise.all(
    pages.map((p, i) => p.goto(`/?room=${room}&name=tab${i + 1}&model=/models/demo/${query ? `&${query}` : ''}`)),
  );
  for (const p of pages) await p.waitForFunction(() => !!(window as unknown as { shoal?: unknown }).shoal);
  for (const p of pages)
    await expect
      .poll(() => p.evaluate(() => (window as unknown as Win).shoal.mesh.peers().length), { timeout: 30_000 })
      .toBe(n - 1);
  const ids = await Promise.all(pages.map((p) => p.evaluate(() => (window as unknown as Win).shoal.mesh.peerId)));
  return {
    name: room,
    pages,
    ids,
    contexts,
    close: async () => {
      for (const c of contexts) await c.close();
    },
  };
}

/** The single-tab CPU engine's greedy answer, cut after the first end-of-sequence token as the mesh stops there. */
export async function soloGreedy(ids: number[], steps: number): Promise<number[]> {
  const model = await openModel(localModelFiles(DEMO_DIR));
  const r = await runInfer({ model, backend: createCpuBackend(), ids, steps, logits: 'none' });
  const eos = r.generated.findIndex((t) => model.spec.eosTokenIds.includes(t));
  return eos >= 0 ? r.generated.slice(0, eos + 1) : r.generated;
}

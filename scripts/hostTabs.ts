// `npm start -- --host-tabs N`: N headless tabs of the system Chromium (the one the tests use) that join a room and
// host the API, so a program can call /v1 with no browser opened by hand. Playwright drives them.
import type { BrowserType } from '@playwright/test';
import { chromiumLaunchOptions } from './chromium.ts';

export interface HostTabsOptions {
  /** The page's origin, e.g. http://127.0.0.1:8080. */
  pageUrl: string;
  room: string;
  count: number;
  secret?: string;
  /** Extra query for every tab (e.g. "model=/fixtures/tiny-llama/"). */
  query?: string;
  log?: (line: string) => void;
}

export interface HostTabs {
  readonly count: number;
  close(): Promise<void>;
}

/** Launch the tabs; throws a one-line reason when Chromium or Playwright is missing. */
export async function launchHostTabs(o: HostTabsOptions): Promise<HostTabs> {
  const launch = chromiumLaunchOptions(); // throws "No Chromium found: install it ..." when there is none
  let chromium: BrowserType;
  try {
    ({ chromium } = await import('@playwright/test'));
  } catch {
    throw new Error('host tabs need Playwright (a dev dependency): run `npm install` without --omit=dev');
  }
  const browser = await chromium.launch({ ...launch, headless: true });
  try {
    for (let i = 0; i < o.count; i++) {
      // One context per tab: separate storage, as separate devices would have.
      const context = await browser.newContext();
      const page = await context.newPage();
      const name = `host-${i + 1}`;
      page.on('pageerror', (e) => o.log?.(`${name}: page error: ${e.message}`));
      const q = new URLSearchParams({ room: o.room, host: 'api', name });
      if (o.secret) q.set('secret', o.secret);
      const extra = o.query ? `&${o.query}` : '';
      await page.goto(`${o.pageUrl}/?${q.toString()}${extra}`);
    }
  } catch (e) {
    await browser.close();
    throw e;
  }
  return { count: o.count, close: () => browser.close() };
}

// `npm run bench -- recovery [--tabs 4] [--preset smollm2-135m] [--prompt 64] [--tokens 128] [--lose-at 32]
//   [--stage 2] [--runs 1]`
// Tabs come and go (issue 19), in headless Chromium over real WebRTC: a turn decodes over a chain of tabs, layers
// split evenly; one stage's tab is closed once `--lose-at` tokens have streamed. Measured in the person's tab, on
// the wall clock: detection (close -> the coordinator hears the loss), re-plan (-> the room's next plan adopted),
// load (-> every stage that reloads has its layers), rebuild (-> the next token), and the weight bytes moved;
// against asking again from cold over the remaining tabs (TTFT plus the tokens already streamed).
import { chromium } from '@playwright/test';
import type { Page } from '@playwright/test';
import { chromiumLaunchOptions } from '../chromium.ts';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import { startEngineServer } from '../webgpu-runner.ts';
import { benchModel } from './lib/models.ts';
import { evenStages, openBenchTabs } from './lib/tabs.ts';
import type { StageAssignment } from '../../src/pipeline/messages.ts';

interface Marks {
  startMs: number;
  /** Arrival time of each token. */
  tokens: number[];
  lost?: number;
  plan?: number;
  loaded?: number;
  resumed?: number;
  bytesMoved: number;
  result?: { ids: number[]; restarts: number; stoppedBy: string };
}

/**
 * In-page code, as text (tsx names every function it compiles with a helper the page lacks): start a turn and note
 * when each of its tokens arrives and when the coordinator hears of a loss, adopts a plan, sees every reloading
 * stage loaded, and resumes.
 */
const TURN_IN_PAGE = `async ({ model, ids, steps, stages, cold }) => {
  const now = () => performance.timeOrigin + performance.now();
  const s = window.shoal.session, c = s.coordinator;
  const m = { startMs: now(), tokens: [], bytesMoved: 0 };
  window.benchMarks = m;
  const off = c.on((e) => {
    if (e.type === 'lost' && m.lost === undefined) m.lost = now();
    if (e.type === 'plan' && m.lost !== undefined) { m.plan = now(); m.loaded = undefined; }
    if (e.type === 'progress' && m.plan !== undefined) {
      const done = [...c.progress.values()].every((p) => p.layersLoaded >= p.layersTotal);
      if (done) { m.loaded = now(); m.bytesMoved = [...c.progress.values()].reduce((n, p) => n + p.totalBytes, 0); }
    }
    if (e.type === 'resumed' && m.resumed === undefined) m.resumed = now();
  });
  const r = await s.generateIds(model, ids, { maxTokens: steps, strategy: 'even', stages, cold,
    onText: () => { m.tokens.push(now()); } });
  off();
  m.result = { ids: r.tokens, restarts: r.restarts, stoppedBy: r.stoppedBy };
  return m;
}`;

function turn(
  page: Page,
  args: { model: string; ids: number[]; steps: number; stages?: StageAssignment[]; cold?: boolean },
) {
  return page.evaluate<Marks>(`(${TURN_IN_PAGE})(${JSON.stringify(args)})`);
}

const prompt = (n: number) => Array.from({ length: n }, (_, i) => 260 + ((i * 131) % 1500));
const s = (ms: number | undefined) => (ms === undefined ? 'n/a' : (ms / 1000).toFixed(2));

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), {
    values: ['tabs', 'preset', 'prompt', 'tokens', 'lose-at', 'stage', 'runs'],
    switches: [],
  });
  const nTabs = intFlag(f, 'tabs', 4, 2);
  const promptLen = intFlag(f, 'prompt', 64, 1);
  const tokens = intFlag(f, 'tokens', 128, 2);
  const loseAt = intFlag(f, 'lose-at', 32, 1);
  const lostStage = intFlag(f, 'stage', 2, 1); // 1-based; stage 1 is the person's own tab
  const runs = intFlag(f, 'runs', 1, 1);
  if (lostStage < 2 || lostStage > nTabs) throw new Error(`--stage must be 2..${nTabs} (stage 1 is the person's tab)`);
  const { urlPath } = await benchModel(String(f.preset ?? 'smollm2-135m'), 'bf16');
  const server = await startEngineServer();
  const browser = await chromium.launch({ ...chromiumLaunchOptions(), headless: true });
  try {
    console.log(
      `# ${nTabs} tabs, ${urlPath}, ${promptLen}-token prompt, ${tokens}-token answer, ` +
        `stage ${lostStage} closed after token ${loseAt}; seconds`,
    );
    console.log(
      'run | detection | re-plan | load | rebuild | pause (loss -> next token) | MB moved | ' +
        'restart from cold (TTFT + tokens so far) | pause / restart | exact',
    );
    for (let r = 0; r < runs; r++) {
      const tabs = await openBenchTabs(browser, server.baseUrl, {
        n: nTabs,
        roomPrefix: 'bench-recovery',
        delayMs: 0,
        slowdown: 1,
      });
      const person = tabs.pages[0];
      const stages = await evenStages(person, urlPath, tabs.ids);
      const ids = prompt(promptLen);
      const reference = await turn(person, { model: urlPath, ids, steps: tokens, stages }); // loads every layer
      const run = turn(person, { model: urlPath, ids, steps: tokens, stages });
      await person.waitForFunction(
        (n) => ((window as unknown as { benchMarks?: Marks }).benchMarks?.tokens.length ?? 0) >= n,
        loseAt,
        { polling: 10, timeout: 600_000 },
      );
      const closedAt = Date.now();
      await tabs.pages[lostStage - 1].close();
      const m = await run;
      const nextToken = m.tokens.find((t) => t > closedAt);
      // Asking again from cold over the tabs that remain: every layer loads, the prompt and the tokens so far rerun.
      const cold = await turn(person, { model: urlPath, ids, steps: loseAt + 1, cold: true });
      const restart = cold.tokens.length > loseAt ? cold.tokens[loseAt] - cold.startMs : NaN;
      const pause = nextToken !== undefined ? nextToken - closedAt : undefined;
      const exact = JSON.stringify(m.result?.ids) === JSON.stringify(reference.result?.ids);
      const cells = [
        r + 1,
        s(m.lost !== undefined ? m.lost - closedAt : undefined),
        s(m.plan !== undefined && m.lost !== undefined ? m.plan - m.lost : undefined),
        s(m.loaded !== undefined && m.plan !== undefined ? m.loaded - m.plan : undefined),
        s(nextToken !== undefined && m.loaded !== undefined ? nextToken - m.loaded : undefined),
        s(pause),
        (m.bytesMoved / 1e6).toFixed(1),
        s(restart),
        pause !== undefined ? (pause / restart).toFixed(2) : 'n/a',
        exact ? 'yes' : 'NO',
      ];
      console.log(cells.join(' | '));
      await tabs.close();
    }
  } finally {
    await browser.close();
    await server.close();
  }
});

// `npm run bench -- concurrency [--tabs 4] [--preset smollm2-135m] [--convs 1,2,4] [--prompt 64] [--tokens 64]
//   [--long 512] [--runs 2]`
// Several people on one mesh (issue 18), in headless Chromium over real WebRTC, layers split evenly over the tabs:
// (1) aggregate tokens/s of K conversations at once (each from its own tab, batched where their steps meet at a
// stage) against the same K one after another, with each conversation's TTFT and decode tokens/s; (2) a decoding
// conversation's ms per token alone and while another conversation's long prompt is prefilled in chunks beside it,
// and that prompt's time to first token.
import { chromium } from '@playwright/test';
import type { Page } from '@playwright/test';
import { chromiumLaunchOptions } from '../chromium.ts';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import { startEngineServer } from '../webgpu-runner.ts';
import { benchModel } from './lib/models.ts';
import { evenStages, median, openBenchTabs } from './lib/tabs.ts';
import type { Session } from '../../src/pipeline/session.ts';
import type { StageAssignment } from '../../src/pipeline/messages.ts';

type Win = { shoal: { session: Session }; benchTimes?: number[] };
interface Run {
  tokens: number;
  times: number[];
  startMs: number;
  endMs: number;
}

/**
 * In-page code of one turn, as text: tsx names every function it compiles with a helper that does not exist in the
 * page, so a function with a callback inside cannot be handed to page.evaluate as a function.
 */
const TURN_IN_PAGE = `async ({ model, ids, steps, stages, conv }) => {
  const times = [];
  window.benchTimes = times;
  const startMs = performance.timeOrigin + performance.now();
  const r = await window.shoal.session.generateIds(model, ids, { maxTokens: steps, strategy: 'even', stages, conv,
    onText: () => { times.push(performance.timeOrigin + performance.now()); } });
  return { tokens: r.tokens.length, times, startMs, endMs: performance.timeOrigin + performance.now() };
}`;

/** One turn from `page` on conversation `conv`; token arrival times on the shared wall clock. */
function turn(
  page: Page,
  model: string,
  ids: number[],
  steps: number,
  stages: StageAssignment[],
  conv: string,
): Promise<Run> {
  return page.evaluate<Run>(`(${TURN_IN_PAGE})(${JSON.stringify({ model, ids, steps, stages, conv })})`);
}

const msPerToken = (r: Run, from = -Infinity, to = Infinity): number[] =>
  r.times
    .slice(1)
    .map((t, k) => ({ t0: r.times[k], ms: t - r.times[k] }))
    .filter((g) => g.t0 >= from && g.t0 < to)
    .map((g) => g.ms);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const prompt = (seed: number, n: number) => Array.from({ length: n }, (_, i) => 260 + ((i * 131 + seed * 17) % 1500));

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), {
    values: ['tabs', 'preset', 'convs', 'prompt', 'tokens', 'long', 'runs'],
    switches: [],
  });
  const nTabs = intFlag(f, 'tabs', 4, 2);
  const tokens = intFlag(f, 'tokens', 64, 2);
  const promptLen = intFlag(f, 'prompt', 64, 1);
  const longLen = intFlag(f, 'long', 512, 2);
  const runs = intFlag(f, 'runs', 2, 1);
  const convCounts = String(f.convs ?? '1,2,4')
    .split(',')
    .map(Number)
    .filter((k) => k >= 1 && k <= nTabs);
  const { urlPath } = await benchModel(String(f.preset ?? 'smollm2-135m'), 'bf16');
  const server = await startEngineServer();
  const browser = await chromium.launch({ ...chromiumLaunchOptions(), headless: true });
  try {
    const tabs = await openBenchTabs(browser, server.baseUrl, {
      n: nTabs,
      roomPrefix: 'bench-concurrency',
      delayMs: 0,
      slowdown: 1,
    });
    const stages = await evenStages(tabs.pages[0], urlPath, tabs.ids);
    let n = 0;
    // The first turn loads every layer; one turn from each tab loads its tokenizer (not part of any figure).
    for (const page of tabs.pages) await turn(page, urlPath, prompt(0, 8), 2, stages, `warm-${n++}`);
    console.log(
      `# ${nTabs} tabs, ${urlPath}, ${promptLen}-token prompts, ${tokens}-token answers, ${runs} runs (median)`,
    );
    console.log(
      'conversations | one after another, tok/s | at once, tok/s | speed-up | ' +
        'at once: TTFT per conversation, ms | at once: decode tok/s per conversation',
    );
    for (const k of convCounts) {
      const seq: number[] = [],
        par: number[] = [];
      let last: Run[] = [];
      for (let r = 0; r < runs; r++) {
        let t0 = performance.timeOrigin + performance.now();
        for (let c = 0; c < k; c++) await turn(tabs.pages[c], urlPath, prompt(c, promptLen), tokens, stages, `s${n++}`);
        seq.push((k * tokens * 1000) / (performance.timeOrigin + performance.now() - t0));
        t0 = performance.timeOrigin + performance.now();
        last = await Promise.all(
          Array.from({ length: k }, (_, c) =>
            turn(tabs.pages[c], urlPath, prompt(c, promptLen), tokens, stages, `p${n++}`),
          ),
        );
        par.push((k * tokens * 1000) / (performance.timeOrigin + performance.now() - t0));
      }
      const ttft = last.map((r) => (r.times[0] - r.startMs).toFixed(0)).join(', ');
      const decode = last
        .map((r) => (((r.times.length - 1) * 1000) / (r.times[r.times.length - 1] - r.times[0])).toFixed(1))
        .join(', ');
      const speedup = `${(median(par) / median(seq)).toFixed(2)}x`;
      console.log(`${k} | ${median(seq).toFixed(1)} | ${median(par).toFixed(1)} | ${speedup} | ${ttft} | ${decode}`);
    }
    console.log(
      `\n# decode beside a ${longLen}-token prefill (chunked): ` +
        "conversation A decodes, B's long prompt starts meanwhile",
    );
    console.log('run | A ms/token alone | A ms/token during prefill | ratio | B TTFT alone, ms | B TTFT beside A, ms');
    for (let r = 0; r < runs; r++) {
      const aloneA = await turn(tabs.pages[0], urlPath, prompt(1, 16), tokens * 2, stages, `a${n++}`);
      const aloneB = await turn(tabs.pages[1], urlPath, prompt(2, longLen), 2, stages, `b${n++}`);
      const a = turn(tabs.pages[0], urlPath, prompt(1, 16), tokens * 2, stages, `a${n++}`);
      await tabs.pages[0].waitForFunction(() => ((window as unknown as Win).benchTimes?.length ?? 0) >= 4, undefined, {
        polling: 20,
      });
      const b = await turn(tabs.pages[1], urlPath, prompt(2, longLen), 2, stages, `b${n++}`);
      const during = msPerToken(await a, b.startMs, b.times[0]);
      const solo = mean(msPerToken(aloneA));
      const cells = [
        r + 1,
        solo.toFixed(1),
        `${mean(during).toFixed(1)} (${during.length} tokens)`,
        `${(mean(during) / solo).toFixed(2)}x`,
        (aloneB.times[0] - aloneB.startMs).toFixed(0),
        (b.times[0] - b.startMs).toFixed(0),
      ];
      console.log(cells.join(' | '));
    }
    await tabs.close();
  } finally {
    await browser.close();
    await server.close();
  }
});

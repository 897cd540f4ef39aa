// The speculative bench on a real mesh (issue 8): headless Chromium, one browser context per tab (its own renderer
// process), real WebRTC between tabs, the link delay and the person's compute slowdown set by URL knobs. The
// person's tab runs the draft and the coordinator; the target's three stages run on three other tabs (layout
// 'draft-tab', default) or on the person's tab and two others ('shared'). Runs are interleaved over the modes and
// each figure is the median of --repeat runs, each from an empty prefix (target and draft caches dropped).
import { chromium } from '@playwright/test';
import type { Page } from '@playwright/test';
import { ShoalError } from '../../../src/errors.ts';
import type { Mesh } from '../../../src/mesh/mesh.ts';
import type { StageAssignment } from '../../../src/pipeline/messages.ts';
import type { Session } from '../../../src/pipeline/session.ts';
import type { SpecSession } from '../../../src/speculative/specSession.ts';
import { chromiumLaunchOptions } from '../../chromium.ts';
import { startEngineServer } from '../../webgpu-runner.ts';
import { mdHeader, mdRow } from './table.ts';
import { median, openBenchTabs } from './tabs.ts';

type Win = { shoal: { mesh: Mesh; session: Session }; shoalSpec: SpecSession };

export type Layout = 'draft-tab' | 'shared';

export interface MeshBenchOptions {
  tokens: number;
  delays: number[];
  /** Draft strengths and their generated model folders. */
  pairs: { strength: number; draftDir: string; targetDir: string; nLayers: number }[];
  gammas: (number | 'auto')[];
  repeat: number;
  /** Compute slowdowns of the person's tab (its draft, and its stage in the 'shared' layout). */
  slowdowns: number[];
  layout: Layout;
  prompt: number[];
  /** Parallel: most verification rounds in flight. */
  maxInFlight: number;
  /** Also run parallel mode with this many hedges in flight (0: not run). */
  hedges: number;
  /** Log every round of every speculative run. */
  trace?: boolean;
}

export interface MeshRow {
  strength: number;
  delayMs: number;
  slowdown: number;
  mode: 'target only' | 'sequential spec' | 'parallel spec' | 'parallel hedged';
  gamma: string;
  acceptance: number | null;
  tokens: number;
  ms: number;
  draftMsPerToken: number | null;
  draftedAhead: number | null;
  /** Parallel hedged: hedges sent and those that held the target's token (medians). */
  hedgesSent: number | null;
  hedgeHits: number | null;
}

interface RunOut {
  trace?: string;
  tokens: number[];
  ms: number;
  acceptance: number | null;
  draftMsPerToken: number | null;
  gammas: number[];
  draftedAhead: number | null;
  hedgesSent?: number;
  hedgeHits?: number;
}

/** A run's log line: tokens and time, and in speculative modes acceptance, draft speed and hedges. */
function runSummary(out: RunOut, hedges: number): string {
  const head = `${out.tokens.length} tokens in ${out.ms.toFixed(0)} ms`;
  if (out.acceptance === null) return head;
  const draft = `draft ${out.draftMsPerToken?.toFixed(1)} ms/token, drafted ahead ${out.draftedAhead}`;
  const hedged = hedges > 0 ? `, hedges ${out.hedgeHits}/${out.hedgesSent} hit` : '';
  return `${head}, acceptance ${out.acceptance.toFixed(2)}, ${draft}${hedged}`;
}

/** Three stages of equal layer count, on the given peers. */
function chain(peers: string[], nLayers: number): StageAssignment[] {
  const a = Math.floor(nLayers / 3),
    b = Math.floor((2 * nLayers) / 3);
  return [
    { peer: peers[0], start: 0, end: a },
    { peer: peers[1], start: a, end: b },
    { peer: peers[2], start: b, end: nLayers },
  ];
}

function targetOnly(
  page: Page,
  model: string,
  ids: number[],
  maxTokens: number,
  stages: StageAssignment[],
): Promise<RunOut> {
  return page.evaluate(
    async ({ model, ids, maxTokens, stages }) => {
      const w = window as unknown as Win;
      w.shoal.session.coordinator.adoptHistory([]); // recompute the prompt: every mode pays its prefill
      const t0 = performance.now();
      const r = await w.shoal.session.generateIds(model, ids, { maxTokens, strategy: 'even', stages });
      return {
        tokens: r.tokens,
        ms: performance.now() - t0,
        acceptance: null,
        draftMsPerToken: null,
        gammas: [],
        draftedAhead: null,
      };
    },
    { model, ids, maxTokens, stages },
  );
}

function speculative(
  page: Page,
  model: string,
  draftUrl: string,
  ids: number[],
  maxTokens: number,
  stages: StageAssignment[],
  gamma: number | 'auto',
  parallel: boolean,
  maxInFlight: number,
  hedges: number,
): Promise<RunOut> {
  return page.evaluate(
    async ({ model, draftUrl, ids, maxTokens, stages, gamma, parallel, maxInFlight, hedges }) => {
      const w = window as unknown as Win;
      w.shoal.session.coordinator.adoptHistory([]);
      await w.shoalSpec.resetDrafts();
      const t0 = performance.now();
      const trace: string[] = [];
      const off = w.shoalSpec.on((e) => {
        if (e.type !== 'round') return;
        const rep = e.report;
        const hedge = rep.hedgeTokens > 0 ? `/hedge${rep.hedgeTokens}+${rep.hedgeWaitMs.toFixed(0)}ms` : '';
        trace.push(
          `${(performance.now() - t0).toFixed(0)}:g${rep.gamma}/a${rep.accepted}/e${rep.emitted}` +
            `/rtt${rep.roundTripMs.toFixed(0)}/wait${rep.draftWaitMs.toFixed(0)}/inflight${rep.inFlight}${hedge}`,
        );
      });
      const r = await w.shoalSpec.generateIds(model, ids, {
        maxTokens,
        strategy: 'even',
        stages,
        draft: { url: draftUrl },
        gamma,
        parallel,
        maxInFlight,
        hedges,
      });
      off();
      return {
        tokens: r.tokens,
        ms: performance.now() - t0,
        acceptance: r.acceptanceRate,
        draftMsPerToken: r.draftMsPerToken,
        gammas: r.gammas,
        draftedAhead: r.draftedAhead,
        hedgesSent: r.hedgesSent,
        hedgeHits: r.hedgeHits,
        trace: trace.join(' '),
      };
    },
    { model, draftUrl, ids, maxTokens, stages, gamma, parallel, maxInFlight, hedges },
  );
}

export async function runMeshBench(o: MeshBenchOptions, log: (line: string) => void): Promise<MeshRow[]> {
  const server = await startEngineServer();
  const browser = await chromium.launch({ ...chromiumLaunchOptions(), headless: true });
  const rows: MeshRow[] = [];
  const urls = o.pairs.map((p) => ({ ...p, draftUrl: server.mount(p.draftDir), targetUrl: server.mount(p.targetDir) }));
  const nTabs = o.layout === 'draft-tab' ? 4 : 3;
  try {
    for (const slowdown of o.slowdowns) {
      for (const delayMs of o.delays) {
        const tabs = await openBenchTabs(browser, server.baseUrl, {
          n: nTabs,
          roomPrefix: 'specbench',
          delayMs,
          slowdown,
          ready: 'shoalSpec',
        });
        try {
          const person = tabs.pages[0];
          const stagePeers = o.layout === 'draft-tab' ? tabs.ids.slice(1) : tabs.ids;
          const backend = await person.evaluate(async () => {
            const m = (window as unknown as Win).shoal.mesh;
            for (let i = 0; i < 600 && !m.profileOf(m.peerId); i++) await new Promise((r) => setTimeout(r, 100));
            return m.profileOf(m.peerId)?.backend ?? '?';
          });
          log(`${nTabs} tabs, link delay ${delayMs} ms, person's tab slowdown x${slowdown}, engine ${backend}`);
          for (const p of urls) {
            const stages = chain(stagePeers, p.nLayers);
            type Mode = { mode: MeshRow['mode']; gamma: number | 'auto' | null; parallel: boolean; hedges: number };
            const modes: Mode[] = [{ mode: 'target only', gamma: null, parallel: false, hedges: 0 }];
            for (const g of o.gammas) {
              modes.push(
                { mode: 'sequential spec', gamma: g, parallel: false, hedges: 0 },
                { mode: 'parallel spec', gamma: g, parallel: true, hedges: 0 },
              );
              if (o.hedges > 0) modes.push({ mode: 'parallel hedged', gamma: g, parallel: true, hedges: o.hedges });
            }
            const run = (m: Mode, tokens: number): Promise<RunOut> =>
              m.gamma === null
                ? targetOnly(person, p.targetUrl, o.prompt, tokens, stages)
                : speculative(
                    person,
                    p.targetUrl,
                    p.draftUrl,
                    o.prompt,
                    tokens,
                    stages,
                    m.gamma,
                    m.parallel,
                    o.maxInFlight,
                    m.hedges,
                  );
            // warm-up: loads, first-touch, the draft model (not timed)
            for (const m of modes) await run(m, 4);
            const outs: RunOut[][] = modes.map(() => []);
            for (let r = 0; r < o.repeat; r++) {
              for (const [i, m] of modes.entries()) {
                const out = await run(m, o.tokens);
                outs[i].push(out);
                const gamma = m.gamma ?? '-';
                log(`  strength ${p.strength} ${m.mode} gamma ${gamma} run ${r + 1}: ${runSummary(out, m.hedges)}`);
                if (o.trace && out.trace)
                  log(
                    '    rounds (ms since start: gamma/accepted/emitted/round trip ms/ms waiting for drafts/' +
                      `rounds still in flight[/tokens from a hedge+ms waiting for its reply]): ${out.trace}`,
                  );
              }
            }
            const ref = outs[0][0].tokens;
            for (const [i, m] of modes.entries()) {
              for (const out of outs[i]) {
                if (out.tokens.join() !== ref.join())
                  throw new ShoalError(
                    'ERR_PIPELINE',
                    `greedy output of ${m.mode} (gamma ${m.gamma}) differs from target-only ` +
                      `(strength ${p.strength}, delay ${delayMs} ms): ${out.tokens.join(',')} vs ${ref.join(',')}`,
                  );
              }
              const spec = outs[i].filter((x) => x.acceptance !== null);
              const avgGamma = spec.length
                ? spec.flatMap((x) => x.gammas).reduce((s, x, _, a) => s + x / a.length, 0)
                : 0;
              rows.push({
                strength: p.strength,
                delayMs,
                slowdown,
                mode: m.mode,
                gamma:
                  m.gamma === null ? '-' : m.gamma === 'auto' ? `auto (avg ${avgGamma.toFixed(1)})` : String(m.gamma),
                acceptance: spec.length ? median(spec.map((x) => x.acceptance!)) : null,
                tokens: ref.length,
                ms: median(outs[i].map((x) => x.ms)),
                draftMsPerToken: spec.length ? median(spec.map((x) => x.draftMsPerToken!)) : null,
                draftedAhead: spec.length ? median(spec.map((x) => x.draftedAhead!)) : null,
                hedgesSent: m.hedges > 0 ? median(spec.map((x) => x.hedgesSent ?? 0)) : null,
                hedgeHits: m.hedges > 0 ? median(spec.map((x) => x.hedgeHits ?? 0)) : null,
              });
            }
          }
        } finally {
          await tabs.close();
        }
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
  return rows;
}

/** The markdown table: speed-up against target-only of the same cell, parallel against sequential at the same gamma. */
export function meshTable(rows: MeshRow[]): string[] {
  const lines = [
    mdHeader([
      'draft strength',
      'acceptance',
      'link delay ms',
      'person slowdown',
      'draft ms/token',
      'mode',
      'gamma',
      'tokens/s',
      'ms/token',
      'speed-up vs target-only',
      'parallel vs sequential',
      'hedges hit/sent',
    ]),
  ];
  const cell = (r: MeshRow) => `${r.strength}|${r.delayMs}|${r.slowdown}`;
  for (const r of rows) {
    const base = rows.find((x) => cell(x) === cell(r) && x.mode === 'target only')!;
    const seq =
      r.mode === 'parallel spec' || r.mode === 'parallel hedged'
        ? rows.find(
            (x) =>
              cell(x) === cell(r) && x.mode === 'sequential spec' && x.gamma.split(' ')[0] === r.gamma.split(' ')[0],
          )
        : undefined;
    const tps = (r.tokens * 1000) / r.ms;
    lines.push(
      mdRow([
        r.strength,
        r.acceptance === null ? '-' : r.acceptance.toFixed(2),
        r.delayMs,
        `x${r.slowdown}`,
        r.draftMsPerToken === null ? '-' : r.draftMsPerToken.toFixed(1),
        r.mode,
        r.gamma,
        tps.toFixed(1),
        (r.ms / r.tokens).toFixed(1),
        `${(base.ms / r.ms).toFixed(2)}x`,
        seq ? `${(100 * (seq.ms / r.ms - 1)).toFixed(0)}%` : '-',
        r.hedgesSent === null ? '-' : `${r.hedgeHits}/${r.hedgesSent}`,
      ]),
    );
  }
  // The same gamma is not the fair comparison when the best gamma differs by mode: best against best, per cell.
  lines.push(
    '',
    mdHeader([
      'draft strength',
      'link delay ms',
      'person slowdown',
      'best sequential (gamma: tokens/s)',
      'best parallel (gamma: tokens/s)',
      'best parallel vs target-only',
      'best parallel vs best sequential',
      'best hedged (gamma: tokens/s)',
      'best hedged vs best sequential',
    ]),
  );
  for (const key of [...new Set(rows.map(cell))]) {
    const inCell = rows.filter((x) => cell(x) === key);
    const base = inCell.find((x) => x.mode === 'target only')!;
    const best = (mode: MeshRow['mode']) =>
      inCell.filter((x) => x.mode === mode).sort((a, b) => a.ms / a.tokens - b.ms / b.tokens)[0];
    const seq = best('sequential spec'),
      par = best('parallel spec'),
      hedged = best('parallel hedged');
    if (!seq || !par) continue;
    const tps = (r: MeshRow) => (r.tokens * 1000) / r.ms;
    const h = hedged
      ? `${hedged.gamma}: ${tps(hedged).toFixed(1)} | ${(100 * (seq.ms / hedged.ms - 1)).toFixed(0)}%`
      : '- | -';
    lines.push(
      mdRow([
        base.strength,
        base.delayMs,
        `x${base.slowdown}`,
        `${seq.gamma}: ${tps(seq).toFixed(1)}`,
        `${par.gamma}: ${tps(par).toFixed(1)}`,
        `${(base.ms / par.ms).toFixed(2)}x`,
        `${(100 * (seq.ms / par.ms - 1)).toFixed(0)}%`,
        h,
      ]),
    );
  }
  return lines;
}

// The routing benchmark's engine-side steps, shared by the Node bench and the page (the mesh bench runs them in
// the person's tab through Vite): time a side on turns of several context lengths for the fit, and replay one
// labelled conversation through a Router whose predictor uses the fitted parameters.
import { seededRandom } from '../random.ts';
import { scorerFrom } from './difficulty.ts';
import type { TimedTurn } from './fit.ts';
import { LatencyPredictor } from './predictor.ts';
import type { Side, SideParams } from './predictor.ts';
import { Router } from './router.ts';
import type { RouteSide } from './router.ts';
import type { PolicyConfig } from './rule.ts';
import type { Conversation } from './workload.ts';
import type { PageRouter } from './pageRouter.ts';

/** A side the bench can empty between conversations (each starts cold, as a new conversation does). */
export type BenchSide = RouteSide & { reset(): void };

/** One turn as the bench reports it. */
export interface BenchTurn {
  side: Side;
  latencyMs: number;
  predictedMs: number;
  switchMs: number;
  contextTokens: number;
}

const randomIds = (rand: () => number, n: number, vocab: number): number[] =>
  Array.from({ length: n }, () => 1 + Math.floor(rand() * (vocab - 1)));

const median = (xs: number[]): number => {
  const v = [...xs].sort((x, y) => x - y);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/**
 * Cold contexts of several lengths, each followed by a warm extension (the cached prefix is reused), so the
 * fit sees the fixed, per-token and per-position parts of both prefill and decode. Each shape runs `repeat`
 * times and keeps the median (a GC pause or a busy neighbour on a shared machine is one outlier, not the fit).
 */
export async function timeSide(
  side: BenchSide,
  vocab: number,
  opts: { contexts?: number[]; outTokens?: number; extendTokens?: number; repeat?: number; seed?: number } = {},
): Promise<TimedTurn[]> {
  const rand = seededRandom(opts.seed ?? 99);
  const out = opts.outTokens ?? 17,
    ext = opts.extendTokens ?? 32,
    repeat = opts.repeat ?? 3;
  // untimed warm-up: first-touch of weights, JIT/pipeline compilation (one run left the first shape ~2x slow)
  for (let w = 0; w < 3; w++) {
    side.reset();
    await side.generate(randomIds(rand, 64, vocab), { maxTokens: 2 * out, eos: [] });
  }
  const turns: TimedTurn[] = [];
  for (const n of opts.contexts ?? [1, 160, 480]) {
    const runs: TimedTurn[][] = [[], []];
    for (let r = 0; r < repeat; r++) {
      side.reset();
      const ids = randomIds(rand, n, vocab);
      const cold = await side.generate(ids, { maxTokens: out, eos: [] });
      runs[0].push({
        contextTokens: n,
        cachedTokens: 0,
        outTokens: cold.tokens.length,
        ttftSec: cold.ttftMs / 1000,
        decodeSec: cold.decodeMs / 1000,
      });
      const next = [...ids, ...cold.tokens, ...randomIds(rand, ext, vocab)];
      const cached = side.cachedPrefix(next);
      const warm = await side.generate(next, { maxTokens: out, eos: [] });
      runs[1].push({
        contextTokens: next.length,
        cachedTokens: cached,
        outTokens: warm.tokens.length,
        ttftSec: warm.ttftMs / 1000,
        decodeSec: warm.decodeMs / 1000,
      });
    }
    for (const rs of runs)
      turns.push({
        ...rs[0],
        ttftSec: median(rs.map((t) => t.ttftSec)),
        decodeSec: median(rs.map((t) => t.decodeSec)),
      });
  }
  side.reset();
  return turns;
}

/** Run one labelled conversation (query ids drawn from `seed`, exactly outTokens per answer) under `policy`. */
export async function runConversation(
  sides: Record<Side, BenchSide>,
  params: Record<Side, SideParams>,
  conv: Conversation,
  policy: PolicyConfig,
  seed: number,
  vocab: number,
): Promise<BenchTurn[]> {
  sides.small.reset();
  sides.large.reset();
  const rand = seededRandom(seed);
  let t = 0;
  const fitted: Record<Side, RouteSide> = {
    small: { ...sides.small, params: () => params.small },
    large: { ...sides.large, params: () => params.large },
  };
  const router = new Router(
    fitted,
    scorerFrom('workload', () => conv.turns[t].p),
    new LatencyPredictor(params),
    policy,
    [],
  );
  const out: BenchTurn[] = [];
  for (; t < conv.turns.length; t++) {
    const turn = conv.turns[t];
    const r = await router.turnIds(randomIds(rand, turn.queryTokens, vocab), { maxTokens: turn.outTokens });
    out.push({
      side: r.side,
      latencyMs: r.latencyMs,
      predictedMs: r.predicted[r.side].totalSec * 1000,
      switchMs: r.switchSec * 1000,
      contextTokens: r.contextTokens,
    });
  }
  return out;
}

/** The bench's two sides over a page's router: the small model's engine and the mesh (reset drops their caches). */
export function benchSidesOf(pr: Pick<PageRouter, 'router' | 'local' | 'large'>): Record<Side, BenchSide> {
  return {
    small: { ...pr.router.sides.small, reset: () => pr.local.reset() },
    large: { ...pr.large, reset: () => pr.large.forget() },
  };
}

/** One step of the mesh bench inside the page (one call, no closures: the bench passes data, not code). */
export function pageBenchStep(
  pr: Pick<PageRouter, 'router' | 'local' | 'large'>,
  step:
    | { kind: 'time'; side: Side }
    | { kind: 'run'; conv: Conversation; policy: PolicyConfig; params: Record<Side, SideParams>; seed: number },
): Promise<TimedTurn[] | BenchTurn[]> {
  const sides = benchSidesOf(pr);
  const vocab = pr.local.spec.vocabSize;
  return step.kind === 'time'
    ? timeSide(sides[step.side], vocab)
    : runConversation(sides, step.params, step.conv, step.policy, step.seed, vocab);
}

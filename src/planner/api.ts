// The planner's public API: plan, planAll, simulate, layerCosts. Pure; the same object is exposed by the worker.
import { ShoalError } from '../errors.ts';
import { baseline } from './baselines.ts';
import { evaluatePlan, isValidChain, segmentFits, type Seg } from './costModel.ts';
import { exactDp, exactWork } from './exactDp.ts';
import { heuristic } from './heuristic.ts';
import { layerCosts } from './layerCosts.ts';
import { compileScenario, type Problem } from './scenario.ts';
import { simulateSegs } from './simulate.ts';
import { Tables } from './tables.ts';
import type { Timeline } from './timeline.ts';
import { STRATEGIES, type EngineStage, type Plan, type Scenario, type StrategyName } from './types.ts';

function toPlan(p: Problem, strategy: StrategyName, segs: Seg[], extra: Partial<Plan> = {}): Plan {
  const cost = evaluatePlan(p, segs);
  const plan: Plan = {
    strategy,
    predictedSeconds: cost.objectiveSec,
    stages: segs.map((g) => ({ device: p.devices[g.d].id, first: g.s + 1, last: g.e + 1 })),
    feasible: segs.every((g) => segmentFits(p, g)),
    ...extra,
  };
  if (p.costModel === 'shoal') {
    plan.ttftSeconds = cost.ttftSec;
    plan.perTokenSeconds = cost.perTokenSec;
  }
  return plan;
}

function parseStrategy(strategy: unknown): StrategyName {
  if (typeof strategy !== 'string' || !(STRATEGIES as readonly string[]).includes(strategy)) {
    throw new ShoalError(
      'ERR_BAD_ARGS',
      `unknown strategy ${JSON.stringify(strategy)} (one of: ${STRATEGIES.join(', ')}, or all)`,
    );
  }
  return strategy as StrategyName;
}

/** The csgo strategy: the exact DP while its work estimate is under the scenario's limit, else the heuristic. */
function planCsgo(p: Problem): Plan {
  const T = new Tables(p);
  const exact = exactWork(T) <= p.exactWorkLimit;
  const r = exact ? exactDp(T) : heuristic(T, { budgetMs: p.heuristicBudgetMs });
  if (!isValidChain(p, r.segs))
    throw new ShoalError(
      'ERR_INFEASIBLE_PLAN',
      'internal: the planner produced a chain that does not cover every layer once',
    );
  return toPlan(p, 'csgo', r.segs, { method: exact ? 'exact' : 'heuristic' });
}

function planCompiled(p: Problem, strategy: StrategyName): Plan {
  if (strategy === 'csgo') return planCsgo(p);
  return toPlan(p, strategy, baseline(p, strategy));
}

/** Plan one scenario with one strategy. Throws ERR_BAD_SCENARIO, ERR_BAD_ARGS or ERR_INFEASIBLE_PLAN. */
export function plan(scenario: Scenario, strategy: StrategyName = 'csgo'): Plan {
  return planCompiled(compileScenario(scenario), parseStrategy(strategy));
}

/** Every strategy, in STRATEGIES order. An infeasible csgo plan throws: when nothing fits there is no plan. */
export function planAll(scenario: Scenario): Record<StrategyName, Plan> {
  const p = compileScenario(scenario);
  const out = {} as Record<StrategyName, Plan>;
  for (const s of STRATEGIES) out[s] = planCompiled(p, s);
  return out;
}

/** Convert a plan's stages to the scenario's internal segments, checking it covers every layer once. */
function planSegs(p: Problem, pl: Pick<Plan, 'stages'>): Seg[] {
  if (!pl || !Array.isArray(pl.stages)) throw new ShoalError('ERR_BAD_ARGS', 'plan: stages must be an array');
  const segs = pl.stages.map((st, i) => {
    const d = p.devices.findIndex((dev) => dev.id === st?.device);
    if (d < 0)
      throw new ShoalError(
        'ERR_BAD_ARGS',
        `plan: stages[${i}].device ${JSON.stringify(st?.device)} is not a device of the scenario`,
      );
    if (!Number.isInteger(st.first) || !Number.isInteger(st.last))
      throw new ShoalError('ERR_BAD_ARGS', `plan: stages[${i}].first and .last must be integers`);
    return { d, s: st.first - 1, e: st.last - 1 };
  });
  if (!isValidChain(p, segs))
    throw new ShoalError(
      'ERR_BAD_ARGS',
      `plan: stages must cover layers 1..${p.layers.length} once, contiguously, in order, each device at most once`,
    );
  return segs;
}

export interface Simulation {
  timeline: Timeline;
  ttftSeconds: number;
  perTokenSeconds: number;
  totalSeconds: number;
}

/** Per-device timeline of a plan under the scenario's cost model (what the page draws as "planned"). */
export function simulate(scenario: Scenario, pl: Pick<Plan, 'stages'>): Simulation {
  const p = compileScenario(scenario);
  const r = simulateSegs(p, planSegs(p, pl));
  return { timeline: r.timeline, ttftSeconds: r.ttftSec, perTokenSeconds: r.perTokenSec, totalSeconds: r.totalSec };
}

/** A given chain of stages (a repair after a loss, a plan kept): whether it fits memory, and its predicted times. */
export function evaluate(scenario: Scenario, pl: Pick<Plan, 'stages'>, strategy: StrategyName = 'csgo'): Plan {
  const p = compileScenario(scenario);
  return toPlan(p, parseStrategy(strategy), planSegs(p, pl));
}

/** 1-based inclusive stages -> the engine's 0-based [start, end) ranges. */
export function toEngineStages(pl: Pick<Plan, 'stages'>): EngineStage[] {
  return pl.stages.map((st) => ({ device: st.device, start: st.first - 1, end: st.last }));
}

export { layerCosts };

/** The object the worker exposes; also what Node callers import. */
export const plannerApi = { plan, planAll, simulate, evaluate, layerCosts, toEngineStages };
export type PlannerApi = typeof plannerApi;

// Planner entry point: the API and its types, for the page, the CLI, benchmarks and the worker.
export { plan, planAll, simulate, evaluate, toEngineStages, layerCosts, plannerApi } from './api.ts';
export type { PlannerApi, Simulation } from './api.ts';
export type { LayerCostOptions, ModelCosts } from './layerCosts.ts';
export type {
  Scenario,
  DeviceProfile,
  Plan,
  PlanStage,
  EngineStage,
  LayerCost,
  EdgeCost,
  StrategyName,
  CostModelName,
} from './types.ts';
export { STRATEGIES } from './types.ts';
export type { Interval, IntervalKind, Timeline } from './timeline.ts';

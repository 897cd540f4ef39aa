// What the routing bench needs from an engine (Node bus or real mesh): time each side for the fit, run one
// labelled conversation under a policy with the fitted parameters, and release everything.
import type { BenchTurn } from '../../../src/router/benchRun.ts';
import type { TimedTurn } from '../../../src/router/fit.ts';
import type { Side, SideParams } from '../../../src/router/predictor.ts';
import type { PolicyConfig } from '../../../src/router/rule.ts';
import type { Conversation } from '../../../src/router/workload.ts';

export interface RoutingEngine {
  description: string;
  time(side: Side): Promise<TimedTurn[]>;
  run(conv: Conversation, policy: PolicyConfig, params: Record<Side, SideParams>, seed: number): Promise<BenchTurn[]>;
  close(): Promise<void>;
}

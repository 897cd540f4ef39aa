// An example room for the association view and the bench: 6 person tabs, 3 verifier pipelines of different
// strength, every person closest to the strongest one (so best-link and most-compute pile everyone onto it).
import type { Association, AssocPipeline, AssocUser } from './association.ts';
import { associate, bestLinkAssociation, mostComputeAssociation, randomAssociation, totalRate } from './association.ts';

export function exampleRoom(): { users: AssocUser[]; pipelines: AssocPipeline[] } {
  const pipelines: AssocPipeline[] = [
    { id: 'desk', msPerPass: 12, msPerPosition: 2 },
    { id: 'laptops', msPerPass: 25, msPerPosition: 4 },
    { id: 'phones', msPerPass: 60, msPerPosition: 8 },
  ];
  const users: AssocUser[] = Array.from({ length: 6 }, (_, i) => ({
    id: `person${i + 1}`,
    alpha: [0.8, 0.6, 0.9, 0.7, 0.5, 0.85][i],
    draftMsPerToken: 2 + i,
    linkMs: { desk: 5 + 3 * i, laptops: 15 + 2 * i, phones: 30 + i },
  }));
  return { users, pipelines };
}

export interface StrategyRow {
  strategy: string;
  totalTokensPerSec: number;
  association: Association;
}

/** The matching and the three baselines on a room, best first. */
export function compareStrategies(users: AssocUser[], pipelines: AssocPipeline[]): StrategyRow[] {
  const rows: [string, Association][] = [
    ['matching (best-gain + swaps)', associate(users, pipelines)],
    ['best link', bestLinkAssociation(users, pipelines)],
    ['most compute', mostComputeAssociation(users, pipelines)],
    ['random (seed 1)', randomAssociation(users, pipelines, 1)],
  ];
  return rows.map(([strategy, association]) => ({
    strategy,
    association,
    totalTokensPerSec: totalRate(users, pipelines, association),
  }));
}

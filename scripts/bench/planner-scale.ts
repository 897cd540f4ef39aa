// `npm run bench -- planner-scale`: planning time against the number of devices K (L = 80), exact DP vs heuristic.
import { compileScenario } from '../../src/planner/scenario.ts';
import { Tables } from '../../src/planner/tables.ts';
import { exactDp, exactWork } from '../../src/planner/exactDp.ts';
import { heuristic } from '../../src/planner/heuristic.ts';
import { plan } from '../../src/planner/index.ts';
import { fleetScenario } from '../../src/planner/scaleInstances.ts';

const L = 80;
const time = <T>(f: () => T): [T, number] => {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
};
console.log(`L = ${L} layers, heterogeneous fleets (src/planner/scaleInstances.ts), costModel csgo; times in ms`);
console.log('   K | exact work | exact ms | exact s  | heuristic ms | heuristic s | gap %  | plan() method, ms');
for (const K of [2, 4, 6, 8, 9, 10, 11, 12, 16, 24, 32]) {
  const sc = fleetScenario(K, L);
  const p = compileScenario(sc);
  const T = new Tables(p);
  const work = exactWork(T);
  let exactMs = NaN;
  let exactS = NaN;
  if (K <= 12) {
    const [r, ms] = time(() => exactDp(T));
    [exactMs, exactS] = [ms, r.objectiveSec];
  }
  const [h, hMs] = time(() => heuristic(T, { budgetMs: 400 }));
  const [pl, planMs] = time(() => plan(sc, 'csgo'));
  const gap = ((h.objectiveSec - exactS) / exactS) * 100;
  const cells = [
    String(K).padStart(4),
    work.toExponential(2).padStart(10),
    exactMs.toFixed(1).padStart(8),
    exactS.toFixed(3).padStart(8),
    hMs.toFixed(1).padStart(12),
    h.objectiveSec.toFixed(3).padStart(11),
    Number.isNaN(gap) ? '   -  ' : gap.toFixed(2).padStart(6),
    `${pl.method}, ${planMs.toFixed(1)}`,
  ];
  console.log(cells.join(' | '));
}

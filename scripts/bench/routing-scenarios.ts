// `npm run bench -- routing-scenarios [--params fitted.json]`: the routing rule in the fitted latency model alone (no
// engines, seconds): where can latency-aware beat the best full-coverage static policy at all? Scans the person's
// device speed (the small side's fitted costs scaled by 1..64: x1 is this VM's tab, higher is a slower phone; from
// about x8-x16 the re-prefills on a slow phone make always-large the best full-coverage static policy) and
// conversation length (turns per conversation), calibrating on one synthetic workload and scoring on another.
// Default parameters: fitted by `npm run bench -- routing` (real mesh, 5 ms per send) on the 2-core dev VM;
// --params takes {"small": SideParams, "large": SideParams} from another run.
import { readFileSync } from 'node:fs';
import { calibrate } from '../../src/router/calibrate.ts';
import type { Side, SideParams } from '../../src/router/predictor.ts';
import { replay } from '../../src/router/replay.ts';
import { syntheticWorkload } from '../../src/router/workload.ts';
import { parseFlags, runCli } from '../cli.ts';
import { mdHeader, mdRow } from './lib/table.ts';

const MESH_FITTED: Record<Side, SideParams> = {
  small: {
    fixedSec: 0.0001,
    prefillSecPerToken: 0.000162,
    prefillSecPerPosition: 1.26e-6,
    decodeSecPerToken: 0.00034,
    decodeSecPerPosition: 1.84e-6,
  },
  large: {
    fixedSec: 0.0435,
    prefillSecPerToken: 0.001339,
    prefillSecPerPosition: 8.15e-6,
    decodeSecPerToken: 0.02864,
    decodeSecPerPosition: 8.16e-6,
  },
};

const scaled = (p: SideParams, s: number): SideParams => ({
  fixedSec: p.fixedSec * s,
  prefillSecPerToken: p.prefillSecPerToken * s,
  decodeSecPerToken: p.decodeSecPerToken * s,
  prefillSecPerPosition: (p.prefillSecPerPosition ?? 0) * s,
  decodeSecPerPosition: (p.decodeSecPerPosition ?? 0) * s,
});

await runCli(() => {
  const f = parseFlags(process.argv.slice(2), { values: ['params'], switches: [] });
  const base: Record<Side, SideParams> =
    typeof f.params === 'string'
      ? (JSON.parse(readFileSync(f.params, 'utf8')) as Record<Side, SideParams>)
      : MESH_FITTED;
  console.log(
    mdHeader([
      'turns per conversation',
      'small side slowdown',
      'always-large ms',
      'static ms (theta)',
      'latency-aware ms (alpha, theta)',
      'vs best static, calibration set',
      'vs best static, held-out set',
      'held-out coverage',
      'large calls held-out (aware / always-large)',
    ]),
  );
  for (const [lo, hi] of [
    [2, 8],
    [6, 16],
    [12, 24],
  ]) {
    for (const s of [1, 2, 4, 8, 16, 32, 64]) {
      const params = { small: scaled(base.small, s), large: base.large };
      const calib = syntheticWorkload(120, 5, { minTurns: lo, maxTurns: hi });
      const held = syntheticWorkload(40, 11, { minTurns: lo, maxTurns: hi });
      const aware = calibrate(calib, params, 'latency-aware', { objective: 'latency' });
      const stat = calibrate(calib, params, 'static', { objective: 'latency' });
      const large = (w: typeof calib) => replay(w, { name: 'always-large', alpha: 0, theta: 0 }, params);
      const calBest = Math.min(stat.result.meanLatencySec, large(calib).meanLatencySec);
      const hl = large(held),
        hs = replay(held, stat.policy, params),
        ha = replay(held, aware.policy, params);
      const pc = (a: number, b: number) => `${((a / b - 1) * 100).toFixed(1)}%`;
      const ms = (sec: number) => (sec * 1e3).toFixed(0);
      console.log(
        mdRow([
          `${lo}-${hi}`,
          `x${s}`,
          ms(hl.meanLatencySec),
          `${ms(hs.meanLatencySec)} (${stat.policy.theta})`,
          `${ms(ha.meanLatencySec)} (${aware.policy.alpha}, ${aware.policy.theta})`,
          pc(aware.result.meanLatencySec, calBest),
          pc(ha.meanLatencySec, Math.min(hs.meanLatencySec, hl.meanLatencySec)),
          `${(ha.coverage * 100).toFixed(0)}%`,
          `${ha.largeCalls} / ${hl.largeCalls}`,
        ]),
      );
    }
  }
});

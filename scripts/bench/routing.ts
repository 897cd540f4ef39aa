// `npm run bench -- routing [--engine mesh|node] [--conversations 8] [--turns 2-8] [--workload file.jsonl]
// [--delay-ms 5] [--small-slowdown 1] [--objective latency|largeCalls] [--repeat 2]`: replays a labelled
// multi-turn workload (synthetic unless a JSONL file is given; format in src/router/workload.ts) through real
// engines under every policy and prints mean latency, large-model calls and "needs large" coverage.
// --engine mesh (default; scripts/bench/routingMesh.ts): headless Chromium, one context per tab, real WebRTC; the
// person's tab holds the small model (2 layers) and coordinates, three other tabs hold the large one (12 layers)
// as 3 stages; --delay-ms is added to every send of every tab, --small-slowdown only to the person's tab.
// --engine node (scripts/bench/routingNode.ts): the same over an in-memory bus in one Node thread.
// Steps: time both sides on cold and warm turns of several context lengths and fit the latency model to them
// (src/router/fit.ts); calibrate alpha/theta (latency-aware) and theta (static) on a separate synthetic workload
// with that model, keeping every "needs large" query on the large model; then run the bench workload: every
// conversation under every policy in a rotating order (so drift of a shared machine hits all policies alike),
// each run from empty caches, --repeat times. The "model" column replays the same workload through the fitted
// model alone: how far it is from the measured column says how far calibration can be trusted.
import { existsSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShoalError } from '../../src/errors.ts';
import type { BenchTurn } from '../../src/router/benchRun.ts';
import { calibrate } from '../../src/router/calibrate.ts';
import { fitSideParams } from '../../src/router/fit.ts';
import type { TimedTurn } from '../../src/router/fit.ts';
import { rawTerms } from '../../src/router/predictor.ts';
import type { Side, SideParams } from '../../src/router/predictor.ts';
import { replay } from '../../src/router/replay.ts';
import type { PolicyConfig } from '../../src/router/rule.ts';
import { parseWorkload, syntheticWorkload } from '../../src/router/workload.ts';
import type { Conversation } from '../../src/router/workload.ts';
import { makeModel } from '../make-model.ts';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import type { RoutingEngine } from './lib/routingEngine.ts';
import { nodeEngine } from './lib/routingNode.ts';
import { meshEngine } from './lib/routingMesh.ts';
import { mdHeader, mdRow } from './lib/table.ts';

const SEED = 0,
  SMALL_LAYERS = 2;

async function models(): Promise<{ small: string; large: string }> {
  const root = join(tmpdir(), `shoal-router-bench-demo-${SMALL_LAYERS}`);
  const small = join(root, 'small'),
    large = join(root, 'large');
  if (!existsSync(join(large, 'tokenizer.json'))) {
    // the small one is a plain 2-layer model of the same shape family (strength 1: not a distilled draft)
    await makeModel({
      preset: 'demo',
      role: 'draft',
      draftLayers: SMALL_LAYERS,
      draftStrength: 1,
      seed: SEED,
      out: small,
    });
    await makeModel({ preset: 'demo', seed: SEED, out: large });
  }
  return { small, large };
}

const ms = (p: SideParams) =>
  `fixed ${(p.fixedSec * 1e3).toFixed(1)} ms, ` +
  `prefill ${(p.prefillSecPerToken * 1e3).toFixed(3)} ms/token + ` +
  `${((p.prefillSecPerPosition ?? 0) * 1e6).toFixed(2)} us/token/position, ` +
  `decode ${(p.decodeSecPerToken * 1e3).toFixed(2)} ms/token + ` +
  `${((p.decodeSecPerPosition ?? 0) * 1e6).toFixed(2)} us/token/position`;

/** Mean |predicted - measured| / measured of the fit's own turns (how well the model shape fits the engine). */
function fitError(p: SideParams, turns: TimedTurn[]): number {
  return (
    turns.reduce((s, t) => {
      const r = rawTerms(p, {
        contextTokens: t.contextTokens,
        cachedTokens: t.cachedTokens,
        historyTokens: 0,
        outTokens: t.outTokens,
      });
      const meas = t.ttftSec + t.decodeSec;
      return s + Math.abs(r.fixedSec + r.prefillSec + r.decodeSec - meas) / meas;
    }, 0) / turns.length
  );
}

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), {
    values: [
      'engine',
      'conversations',
      'turns',
      'workload',
      'delay-ms',
      'hop-ms',
      'objective',
      'small-slowdown',
      'repeat',
    ],
    switches: [],
  });
  const engineName = String(f.engine ?? 'mesh');
  if (engineName !== 'mesh' && engineName !== 'node') throw new ShoalError('ERR_BAD_ARGS', '--engine is mesh or node');
  const delayMs = intFlag(f, 'delay-ms', intFlag(f, 'hop-ms', 5, 0), 0);
  const smallSlowdown = Number(f['small-slowdown'] ?? 1);
  if (!(smallSlowdown >= 1))
    throw new ShoalError('ERR_BAD_ARGS', `--small-slowdown must be a number >= 1, got ${String(f['small-slowdown'])}`);
  const objective = String(f.objective ?? 'latency');
  if (objective !== 'latency' && objective !== 'largeCalls')
    throw new ShoalError('ERR_BAD_ARGS', `--objective must be latency or largeCalls, got ${objective}`);
  const repeat = intFlag(f, 'repeat', 2, 1);
  const m = /^(\d+)-(\d+)$/.exec(String(f.turns ?? '2-8'));
  if (!m) throw new ShoalError('ERR_BAD_ARGS', `--turns takes a range like 2-8, got ${String(f.turns)}`);
  const turnsRange = { minTurns: Number(m[1]), maxTurns: Number(m[2]) };
  const workload: Conversation[] =
    typeof f.workload === 'string'
      ? parseWorkload(readFileSync(f.workload, 'utf8'))
      : syntheticWorkload(intFlag(f, 'conversations', 8, 1), 11, turnsRange);
  const dirs = await models();
  const log = (line: string) => process.stderr.write(line + '\n');
  const engine: RoutingEngine =
    engineName === 'node'
      ? await nodeEngine(dirs, { delayMs, smallSlowdown })
      : await meshEngine(dirs, { delayMs, smallSlowdown, log });
  try {
    console.log(`routing bench on ${cpus().length} cores (${cpus()[0]?.model ?? '?'}): ${engine.description}`);
    const timed = { small: await engine.time('small'), large: await engine.time('large') };
    const fitted: Record<Side, SideParams> = { small: fitSideParams(timed.small), large: fitSideParams(timed.large) };
    for (const side of ['small', 'large'] as const)
      for (const t of timed[side])
        log(
          `timed ${side}: context ${t.contextTokens} (${t.cachedTokens} cached), ${t.outTokens} out: ` +
            `ttft ${(t.ttftSec * 1e3).toFixed(1)} ms, decode ${(t.decodeSec * 1e3).toFixed(1)} ms`,
        );
    for (const side of ['small', 'large'] as const) {
      const contexts = timed[side].map((t) => `${t.contextTokens}${t.cachedTokens ? `/${t.cachedTokens} cached` : ''}`);
      const fitErr = (fitError(fitted[side], timed[side]) * 100).toFixed(0);
      console.log(
        `${side} fitted to ${timed[side].length} timed turns (contexts ${contexts.join(', ')}; ` +
          `mean fit error ${fitErr}%): ${ms(fitted[side])}`,
      );
    }

    // calibration: a separate synthetic workload (other seed, same shape), the fitted model
    const calib = syntheticWorkload(200, 5, typeof f.workload === 'string' ? {} : turnsRange);
    const aware = calibrate(calib, fitted, 'latency-aware', { objective });
    const stat = calibrate(calib, fitted, 'static', { objective });
    const alwaysLargeModel = replay(calib, { name: 'always-large', alpha: 0, theta: 0 }, fitted);
    const pc = (a: number, b: number) => `${((a / b - 1) * 100).toFixed(1)}%`;
    const msOf = (sec: number) => (sec * 1e3).toFixed(0);
    const bestOther = Math.min(stat.result.meanLatencySec, alwaysLargeModel.meanLatencySec);
    console.log(
      `calibrated (objective ${objective}, coverage kept at 100%) on 200 synthetic conversations (seed 5): ` +
        `latency-aware alpha ${aware.policy.alpha} theta ${aware.policy.theta} ` +
        `(model: ${msOf(aware.result.meanLatencySec)} ms, ` +
        `${aware.result.largeCalls} large of ${aware.result.turns}); ` +
        `static theta ${stat.policy.theta} (model: ${msOf(stat.result.meanLatencySec)} ms, ` +
        `${stat.result.largeCalls} large); always-large model ${msOf(alwaysLargeModel.meanLatencySec)} ms; ` +
        `latency-aware vs best of those in the model: ${pc(aware.result.meanLatencySec, bestOther)}`,
    );
    // what the rule could gain if a little quality were given up (model only, for context; the goal keeps 100%)
    for (const minCoverage of [0.98, 0.95]) {
      const a = calibrate(calib, fitted, 'latency-aware', { objective, minCoverage });
      const s2 = calibrate(calib, fitted, 'static', { objective, minCoverage });
      const best2 = Math.min(s2.result.meanLatencySec, alwaysLargeModel.meanLatencySec);
      console.log(
        `  (model only, coverage >= ${minCoverage * 100}% instead: latency-aware alpha ${a.policy.alpha} ` +
          `theta ${a.policy.theta} ${msOf(a.result.meanLatencySec)} ms ` +
          `vs static ${msOf(s2.result.meanLatencySec)} ms: ` +
          `${pc(a.result.meanLatencySec, best2)})`,
      );
    }
    const nTurns = workload.reduce((n, c) => n + c.turns.length, 0);
    const nNeed = workload.reduce((n, c) => n + c.turns.filter((t) => t.needsLarge).length, 0);
    const workloadName = typeof f.workload === 'string' ? f.workload : 'synthetic (seed 11)';
    console.log(
      `workload: ${workloadName}, ${workload.length} conversations, ${nTurns} turns ` +
        `(${turnsRange.minTurns}-${turnsRange.maxTurns} per conversation), ${nNeed} need the large model; ` +
        `${repeat} repeat(s), policies interleaved per conversation\n`,
    );

    const policies: PolicyConfig[] = [
      { name: 'always-small', alpha: 0, theta: 0 },
      { name: 'always-large', alpha: 0, theta: 0 },
      stat.policy,
      aware.policy,
    ];
    const runs: BenchTurn[][][] = policies.map(() => []); // [policy][repeat] -> turns in workload order
    for (let rep = 0; rep < repeat; rep++) {
      for (const pi of policies.keys()) runs[pi].push([]);
      for (const [ci, conv] of workload.entries()) {
        for (let k = 0; k < policies.length; k++) {
          const pi = (k + ci + rep) % policies.length;
          const turns = await engine.run(conv, policies[pi], fitted, 1000 + ci);
          runs[pi][rep].push(...turns);
          const sides = turns.map((t) => `${t.side[0]}${t.latencyMs.toFixed(0)}`).join(' ');
          log(`repeat ${rep + 1} conversation ${ci + 1}/${workload.length} ${policies[pi].name}: ${sides} ms`);
        }
      }
    }
    const flat = workload.flatMap((c) => c.turns);
    const rows = policies.map((policy, pi) => {
      const reps = runs[pi];
      const means = reps.map((r) => r.reduce((s, t) => s + t.latencyMs, 0) / r.length);
      const first = reps[0];
      const large = first.filter((t) => t.side === 'large').length;
      const need = flat.filter((t) => t.needsLarge).length;
      const covered = flat.filter((t, i) => t.needsLarge && first[i].side === 'large').length;
      let switches = 0,
        at = 0;
      for (const c of workload) {
        for (let i = 1; i < c.turns.length; i++) if (first[at + i].side !== first[at + i - 1].side) switches++;
        at += c.turns.length;
      }
      const sameSides = reps.every((r) => r.every((t, i) => t.side === first[i].side));
      const model = replay(workload, policy, fitted);
      return {
        name: policy.name,
        meanMs: means.reduce((a, b) => a + b, 0) / means.length,
        minMs: Math.min(...means),
        maxMs: Math.max(...means),
        modelMs: model.meanLatencySec * 1000,
        predictedMs: first.reduce((s, t) => s + t.predictedMs, 0) / first.length,
        large,
        coverage: need ? covered / need : 1,
        switches,
        sameSides,
      };
    });
    console.log(
      mdHeader([
        'policy',
        'mean latency ms (measured)',
        'per-repeat means',
        'mean latency ms (fitted model replay)',
        "router's own prediction ms",
        'large-model calls',
        '"needs large" coverage',
        'side switches',
      ]),
    );
    for (const r of rows)
      console.log(
        mdRow([
          r.name,
          r.meanMs.toFixed(0),
          `${r.minMs.toFixed(0)}..${r.maxMs.toFixed(0)}`,
          r.modelMs.toFixed(0),
          r.predictedMs.toFixed(0),
          `${r.large}/${nTurns}`,
          `${(r.coverage * 100).toFixed(0)}%`,
          `${r.switches}${r.sameSides ? '' : ' (sides differed between repeats)'}`,
        ]),
      );
    const full = rows.filter((r) => r.coverage === 1 && r.name !== 'latency-aware');
    const best = full.reduce((a, b) => (a.meanMs <= b.meanMs ? a : b));
    const ours = rows[3],
      alwaysLarge = rows[1];
    const same = runs[3][0].filter((t, i) => t.side === runs[2][0][i].side).length;
    const noise = same === nTurns ? ' (so any measured difference between the two rows is run-to-run noise)' : '';
    console.log(`\nlatency-aware chose the same side as static on ${same} of ${nTurns} turns${noise}`);
    const bestModelMs = full.find((r) => r.name === best.name)!.modelMs;
    console.log(
      `latency-aware vs best full-coverage static policy (${best.name}): mean latency ` +
        `${pc(ours.meanMs, best.meanMs)} measured, ${pc(ours.modelMs, bestModelMs)} in the model ` +
        `(goal: <= -10% at ${ours.coverage === 1 ? '' : 'NOT '}full coverage); large-model calls ` +
        `${pc(ours.large, alwaysLarge.large)} vs always-large (goal: <= -10%)`,
    );
  } finally {
    await engine.close();
  }
});

// `npm run bench -- routing [--conversations 10] [--workload file.jsonl] [--hop-ms 5] [--objective largeCalls|latency]
// [--small-slowdown 1]`: replays a labelled multi-turn
// workload (synthetic unless a JSONL file is given; format in src/router/workload.ts) through real engines under
// every policy: the small model (demo preset, 2 layers) whole in "this tab", the large one (demo, 12 layers) as
// 3 stages on tabs a|b|c over an in-memory bus with an emulated one-way delay per hop (Node cannot run WebRTC).
// alpha/theta (latency-aware) and theta (static) are calibrated first on a separate synthetic workload with the
// latency model fitted to warm-up turns. Prints mean latency, large-model calls and "needs large" coverage.
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCpuBackend } from '../../src/backend/cpu/index.ts';
import { ShoalError } from '../../src/errors.ts';
import { seededRandom } from '../../src/model/sampler.ts';
import { Coordinator } from '../../src/pipeline/coordinator.ts';
import { MemoryBus, withDelay } from '../../src/pipeline/memoryBus.ts';
import type { StageAssignment } from '../../src/pipeline/messages.ts';
import { StageRunner } from '../../src/pipeline/stageRunner.ts';
import { calibrate } from '../../src/router/calibrate.ts';
import { scorerFrom } from '../../src/router/difficulty.ts';
import { LocalEngine } from '../../src/router/localEngine.ts';
import { LatencyPredictor } from '../../src/router/predictor.ts';
import type { Side, SideParams } from '../../src/router/predictor.ts';
import { replay } from '../../src/router/replay.ts';
import { Router } from '../../src/router/router.ts';
import type { RouteSide, SideRun } from '../../src/router/router.ts';
import type { PolicyConfig } from '../../src/router/rule.ts';
import { localSide } from '../../src/router/sides.ts';
import { parseWorkload, syntheticWorkload } from '../../src/router/workload.ts';
import type { Conversation } from '../../src/router/workload.ts';
import { localModelFiles } from '../../src/weights/localFiles.ts';
import { openModel } from '../../src/weights/model.ts';
import { makeModel } from '../make-model.ts';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import { commonPrefixLength } from '../../src/model/prefix.ts';

const SEED = 0, SMALL_LAYERS = 2, MAX_SEQ = 2048;

async function models(): Promise<{ small: string; large: string }> {
  const root = join(tmpdir(), `shoal-router-bench-demo-${SMALL_LAYERS}`);
  const small = join(root, 'small'), large = join(root, 'large');
  if (!existsSync(join(large, 'tokenizer.json'))) {
    // the small one is a plain 2-layer model of the same shape family (strength 1: not a distilled draft)
    await makeModel({ preset: 'demo', role: 'draft', draftLayers: SMALL_LAYERS, draftStrength: 1, seed: SEED, out: small });
    await makeModel({ preset: 'demo', seed: SEED, out: large });
  }
  return { small, large };
}


/** The large side: a coordinator in tab a driving 3 stage runners; mirrors what the stages hold. */
function pipelineSide(coordinator: Coordinator, params: () => SideParams): RouteSide & { reset(): void } {
  let held: number[] = [];
  return {
    cachedPrefix(ids) {
      const n = commonPrefixLength(held, ids);
      return Math.min(n, Math.max(0, ids.length - 1));
    },
    params,
    async generate(ids, opts): Promise<SideRun> {
      const r = await coordinator.generate([...ids], { maxTokens: opts.maxTokens, eos: opts.eos });
      held = [...ids, ...r.tokens.slice(0, -1)];
      const decodeMs = r.tokens.length > 1 && r.decodeTokensPerSec > 0 ? ((r.tokens.length - 1) * 1000) / r.decodeTokensPerSec : 0;
      return { tokens: r.tokens, stoppedBy: r.stoppedBy, ttftMs: r.ttftMs, decodeMs };
    },
    reset() { held = []; },
  };
}

/** Fit fixed / per-token prefill / per-token decode to warm-up turns on one side. */
async function fit(side: RouteSide, vocab: number): Promise<SideParams> {
  const rand = seededRandom(99);
  const ids = (n: number) => Array.from({ length: n }, () => 1 + Math.floor(rand() * (vocab - 1)));
  const runs: { n: number; r: SideRun }[] = [];
  for (const n of [1, 96, 1, 96]) runs.push({ n, r: await side.generate(ids(n), { maxTokens: 17, eos: [] }) });
  const short = (runs[0].r.ttftMs + runs[2].r.ttftMs) / 2000, long = (runs[1].r.ttftMs + runs[3].r.ttftMs) / 2000;
  const decode = runs.reduce((s, x) => s + x.r.decodeMs, 0) / runs.length / 16 / 1000;
  const prefillSecPerToken = Math.max(0, (long - short) / 95);
  return { fixedSec: Math.max(0, short - prefillSecPerToken), prefillSecPerToken, decodeSecPerToken: decode };
}

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), { values: ['conversations', 'workload', 'hop-ms', 'objective', 'small-slowdown'], switches: [] });
  const hopMs = intFlag(f, 'hop-ms', 5, 0);
  // Emulates a slower device holding the small model (a phone): every small-side run waits (s - 1) x its time.
  const smallSlowdown = Number(f['small-slowdown'] ?? 1);
  if (!(smallSlowdown >= 1)) throw new ShoalError('ERR_BAD_ARGS', `--small-slowdown must be a number >= 1, got ${String(f['small-slowdown'])}`);
  const objective = f.objective === 'latency' ? 'latency' : 'largeCalls';
  if (f.objective !== undefined && f.objective !== 'latency' && f.objective !== 'largeCalls') throw new ShoalError('ERR_BAD_ARGS', `--objective must be largeCalls or latency, got ${String(f.objective)}`);
  const workload: Conversation[] = typeof f.workload === 'string' ? parseWorkload(readFileSync(f.workload, 'utf8')) : syntheticWorkload(intFlag(f, 'conversations', 10, 1), 11);
  const dirs = await models();
  const [smallModel, largeModel] = await Promise.all([openModel(localModelFiles(dirs.small)), openModel(localModelFiles(dirs.large))]);
  const L = largeModel.spec.nLayers;

  const local = await LocalEngine.load(smallModel, createCpuBackend(), MAX_SEQ);
  const bus = new MemoryBus();
  const tabs = ['a', 'b', 'c'];
  for (const id of tabs) new StageRunner({ transport: withDelay(bus.transport(id), hopMs), backend: async () => createCpuBackend(), openModel: async () => largeModel });
  const coordinator = new Coordinator(withDelay(bus.transport('a-ui'), hopMs));
  const stages: StageAssignment[] = [{ peer: 'a', start: 0, end: 4 }, { peer: 'b', start: 4, end: 8 }, { peer: 'c', start: 8, end: L }];
  await coordinator.assign('bench', stages, tabs, MAX_SEQ);

  const fitted: Record<Side, SideParams> = { small: { fixedSec: 0, prefillSecPerToken: 0, decodeSecPerToken: 0 }, large: { fixedSec: 0, prefillSecPerToken: 0, decodeSecPerToken: 0 } };
  const plainSmall = localSide(local, () => null);
  const small: RouteSide = {
    ...plainSmall,
    async generate(ids, opts) {
      const r = await plainSmall.generate(ids, opts);
      if (smallSlowdown > 1) await new Promise((res) => setTimeout(res, (smallSlowdown - 1) * (r.ttftMs + r.decodeMs)));
      return { ...r, ttftMs: r.ttftMs * smallSlowdown, decodeMs: r.decodeMs * smallSlowdown };
    },
  };
  const large = pipelineSide(coordinator, () => fitted.large);
  fitted.small = await fit(small, smallModel.spec.vocabSize);
  fitted.large = await fit(large, largeModel.spec.vocabSize);
  const sides: Record<Side, RouteSide> = { small: { ...small, params: () => fitted.small }, large };
  const ms = (p: SideParams) => `fixed ${(p.fixedSec * 1e3).toFixed(2)} ms, prefill ${(p.prefillSecPerToken * 1e3).toFixed(3)} ms/token, decode ${(p.decodeSecPerToken * 1e3).toFixed(2)} ms/token`;
  console.log(`small: demo preset ${SMALL_LAYERS} layers in this tab, compute slowdown x${smallSlowdown} (${ms(fitted.small)})`);
  console.log(`large: demo preset ${L} layers as 3 stages a|b|c, ${hopMs} ms per hop (${ms(fitted.large)})`);

  const calib = syntheticWorkload(200, 5);
  const aware = calibrate(calib, fitted, 'latency-aware', { objective });
  const stat = calibrate(calib, fitted, 'static', { objective });
  console.log(`calibrated (objective ${objective}, coverage kept at 100%) on 200 synthetic conversations: latency-aware alpha ${aware.policy.alpha} theta ${aware.policy.theta}; static theta ${stat.policy.theta}`);
  const turns = workload.reduce((n, c) => n + c.turns.length, 0);
  console.log(`workload: ${workload.length} conversations, ${turns} turns, ${workload.reduce((n, c) => n + c.turns.filter((t) => t.needsLarge).length, 0)} need the large model\n`);

  const policies: PolicyConfig[] = [
    { name: 'always-small', alpha: 0, theta: 0 }, { name: 'always-large', alpha: 0, theta: 0 }, stat.policy, aware.policy,
  ];
  const rows: { name: string; meanMs: number; large: number; coverage: number; switches: number; simMs: number }[] = [];
  for (const policy of policies) {
    let sumMs = 0, largeCalls = 0, need = 0, covered = 0, switches = 0;
    for (const [ci, conv] of workload.entries()) {
      const rand = seededRandom(1000 + ci);
      let t = 0;
      const router = new Router(sides, scorerFrom('workload', () => conv.turns[t].p), new LatencyPredictor(fitted), policy, []);
      let prev: Side | null = null;
      for (; t < conv.turns.length; t++) {
        const turn = conv.turns[t];
        const query = Array.from({ length: turn.queryTokens }, () => 1 + Math.floor(rand() * (smallModel.spec.vocabSize - 1)));
        const r = await router.turnIds(query, { maxTokens: turn.outTokens });
        sumMs += r.latencyMs;
        if (r.side === 'large') largeCalls++;
        if (turn.needsLarge) { need++; if (r.side === 'large') covered++; }
        if (prev && prev !== r.side) switches++;
        prev = r.side;
      }
    }
    const sim = replay(workload, policy, fitted);
    rows.push({ name: policy.name, meanMs: sumMs / turns, large: largeCalls, coverage: need ? covered / need : 1, switches, simMs: sim.meanLatencySec * 1000 });
  }
  console.log('| policy | mean latency ms (measured) | mean latency ms (latency model) | large-model calls | "needs large" coverage | side switches |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.meanMs.toFixed(1)} | ${r.simMs.toFixed(1)} | ${r.large}/${turns} | ${(r.coverage * 100).toFixed(0)}% | ${r.switches} |`);
  const full = rows.filter((r) => r.coverage === 1 && r.name !== 'latency-aware');
  const best = full.reduce((a, b) => (a.meanMs <= b.meanMs ? a : b));
  const ours = rows.find((r) => r.name === 'latency-aware')!;
  const alwaysLarge = rows.find((r) => r.name === 'always-large')!;
  console.log(`\nlatency-aware vs best full-coverage static policy (${best.name}): mean latency ${((ours.meanMs / best.meanMs - 1) * 100).toFixed(1)}% (negative = faster); large-model calls ${((ours.large / alwaysLarge.large - 1) * 100).toFixed(1)}% vs always-large`);
  local.dispose();
  coordinator.dispose();
});

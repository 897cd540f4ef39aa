// `npm run bench -- speculative [--tokens 64] [--delays 5,20,50] [--strengths 0.065,0.15] [--gammas 1,4,auto]
//  [--repeat 3] [--slowdowns 1,8] [--in-flight 8] [--hedges 6] [--layout draft-tab|shared] [--engine mesh|node]
//  [--trace]`: target-only vs sequential vs parallel speculative decoding, tokens/s, ms per output token, acceptance
// and the draft's ms per token. The defaults are the README's table: acceptance ~0.8 (strength 0.065) and ~0.5
// (0.15), a fast and an 8x slower draft (about 25 minutes).
// --engine mesh (default): a real mesh in headless Chromium (scripts/bench/specMesh.ts): one renderer process per
// tab, real WebRTC, link delay and the person's compute slowdown set by URL knobs; the person's tab holds the draft
// and the coordinator, three other tabs hold the target's stages (--layout shared: the person's tab holds stage 1).
// --engine node: every tab in one Node thread over an in-memory bus (draft and target compute never overlap there,
// so only link time can be hidden); each figure is the fastest of --repeat runs.
import { existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCpuBackend } from '../../src/backend/cpu/index.ts';
import { LocalModel } from '../../src/model/localModel.ts';
import { Coordinator } from '../../src/pipeline/coordinator.ts';
import { MemoryBus, withDelay } from '../../src/pipeline/memoryBus.ts';
import { cpuStageRunner } from '../../src/testing/cpuStage.ts';
import { DEFAULT_HEDGES } from '../../src/speculative/hedge.ts';
import { SpeculativeDecoder } from '../../src/speculative/speculative.ts';
import { localModelFiles } from '../../src/weights/localFiles.ts';
import { openModel } from '../../src/weights/model.ts';
import { makeModel } from '../make-model.ts';
import { ShoalError } from '../../src/errors.ts';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import { meshTable, runMeshBench } from './lib/specMesh.ts';
import { mdHeader, mdRow } from './lib/table.ts';
import type { Layout } from './lib/specMesh.ts';

const PRESET = 'demo',
  DRAFT_LAYERS = 2,
  SEED = 0;
const list = (s: string | boolean | undefined, d: string) =>
  String(s ?? d)
    .split(',')
    .map(Number);

/** Draft/target pair of the demo preset at this strength, generated once into the temp folder. */
async function pair(strength: number): Promise<{ draft: string; target: string }> {
  const root = join(tmpdir(), `shoal-spec-bench-${PRESET}-${DRAFT_LAYERS}-${strength}`);
  const draft = join(root, 'draft'),
    target = join(root, 'target');
  if (!existsSync(join(target, 'tokenizer.json'))) {
    await makeModel({
      preset: PRESET,
      role: 'draft',
      draftLayers: DRAFT_LAYERS,
      draftStrength: strength,
      seed: SEED,
      out: draft,
    });
    await makeModel({
      preset: PRESET,
      role: 'model',
      draftLayers: DRAFT_LAYERS,
      draftStrength: strength,
      seed: SEED,
      out: target,
    });
  }
  return { draft, target };
}

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), {
    values: [
      'tokens',
      'delays',
      'strengths',
      'gammas',
      'repeat',
      'slowdowns',
      'layout',
      'engine',
      'in-flight',
      'hedges',
    ],
    switches: ['trace'],
  });
  const tokens = intFlag(f, 'tokens', 64, 1);
  const delays = list(f.delays, '5,20,50');
  const strengths = list(f.strengths, '0.065,0.15');
  const repeat = intFlag(f, 'repeat', 3, 1);
  const prompt = [257, 117, 416, 10, 260, 403, 261, 267];
  for (const x of [...delays, ...strengths])
    if (!(Number.isFinite(x) && x >= 0))
      throw new ShoalError('ERR_BAD_ARGS', '--delays and --strengths take non-negative numbers');
  const engine = String(f.engine ?? 'mesh');
  if (engine === 'mesh') {
    const gammas = String(f.gammas ?? '1,4,auto')
      .split(',')
      .map((g) => (g === 'auto' ? ('auto' as const) : Number(g)));
    if (gammas.some((g) => g !== 'auto' && !(Number.isInteger(g) && g >= 1)))
      throw new ShoalError('ERR_BAD_ARGS', '--gammas takes positive integers or auto');
    const slowdowns = list(f.slowdowns, '1,8');
    if (slowdowns.some((s) => !(s >= 1))) throw new ShoalError('ERR_BAD_ARGS', '--slowdowns takes factors >= 1');
    const layout = String(f.layout ?? 'draft-tab') as Layout;
    if (layout !== 'draft-tab' && layout !== 'shared')
      throw new ShoalError('ERR_BAD_ARGS', '--layout is draft-tab or shared');
    const pairs = [];
    for (const strength of strengths) {
      const { draft, target } = await pair(strength);
      pairs.push({ strength, draftDir: draft, targetDir: target, nLayers: 12 });
    }
    const where =
      layout === 'draft-tab'
        ? "3 tabs, the person's tab (4th) holds the draft"
        : "the person's tab and 2 others, the person's tab also holds the draft";
    console.log(
      `speculative decoding on a real mesh: headless Chromium on ${cpus().length} cores ` +
        `(${cpus()[0]?.model ?? '?'}), one context per tab, WebRTC; ${PRESET} preset (12 layers) as 3 stages of ` +
        `4 layers on ${where} (${DRAFT_LAYERS} layers) and coordinates; ${tokens} greedy tokens from an ` +
        `${prompt.length}-token prompt (prefill included); median of ${repeat} interleaved runs; the link delay ` +
        `is added to every send of every tab, the slowdown only on the person's tab`,
    );
    const rows = await runMeshBench(
      {
        tokens,
        delays,
        pairs,
        gammas,
        repeat,
        slowdowns,
        layout,
        prompt,
        maxInFlight: intFlag(f, 'in-flight', 8, 1),
        hedges: intFlag(f, 'hedges', DEFAULT_HEDGES, 0),
        trace: f.trace === true,
      },
      (line) => process.stderr.write(line + '\n'),
    );
    for (const line of meshTable(rows)) console.log(line);
    return;
  }
  if (engine !== 'node') throw new ShoalError('ERR_BAD_ARGS', '--engine is mesh or node');
  const gammas = list(f.gammas, '2,4,8');
  /** Fastest of `repeat` runs, each from a cold prefix (the caches are rebuilt from position 0). */
  const timed = async <T>(fn: () => Promise<T>): Promise<{ ms: number; r: T }> => {
    let best: { ms: number; r: T } | null = null;
    for (let i = 0; i < repeat; i++) {
      coordinatorRef!.adoptHistory([]);
      const t0 = performance.now();
      const r = await fn();
      const ms = performance.now() - t0;
      if (!best || ms < best.ms) best = { ms, r };
    }
    return best!;
  };
  let coordinatorRef: Coordinator | null = null;
  console.log(
    `speculative decoding, ${PRESET} preset (12 layers) as 3 stages on tabs a|b|c, draft = ${DRAFT_LAYERS} layers ` +
      `in tab a; ${tokens} greedy tokens; Node CPU engine, one thread; fastest of ${repeat}`,
  );
  console.log(
    mdHeader([
      'draft strength',
      'link delay ms',
      'mode',
      'gamma',
      'acceptance',
      'tokens/s',
      'ms/token',
      'speed-up vs target',
    ]),
  );
  for (const strength of strengths) {
    const { draft: draftDir, target: targetDir } = await pair(strength);
    const draft = await LocalModel.open(await openModel(localModelFiles(draftDir)), createCpuBackend());
    for (const delay of delays) {
      const bus = new MemoryBus();
      for (const id of ['a', 'b', 'c']) cpuStageRunner(withDelay(bus.transport(id), delay), targetDir);
      const coordinator = new Coordinator(withDelay(bus.transport('a-ui'), delay));
      coordinatorRef = coordinator;
      await coordinator.assign(
        targetDir,
        [
          { peer: 'a', start: 0, end: 4 },
          { peer: 'b', start: 4, end: 8 },
          { peer: 'c', start: 8, end: 12 },
        ],
        ['a', 'b', 'c'],
        512,
      );
      // warm the stages (loads, first-touch) and the prefix cache, then time from a cold prefix each run
      await coordinator.generate(prompt, { maxTokens: 2, eos: [] });
      const runs: { mode: string; gamma: string; acc: string; ms: number; ref: number[] }[] = [];
      const { ms: baseMs, r: base } = await timed(() => coordinator.generate(prompt, { maxTokens: tokens, eos: [] }));
      runs.push({ mode: 'target only', gamma: '-', acc: '-', ms: baseMs, ref: base.tokens });
      const spec = new SpeculativeDecoder(coordinator, draft);
      const settings: [boolean, number | 'auto'][] = [];
      for (const parallel of [false, true])
        for (const g of [...(delay === delays[Math.floor(delays.length / 2)] ? gammas : []), 'auto' as const])
          settings.push([parallel, g]);
      for (const [parallel, gamma] of settings) {
        const { ms, r } = await timed(() =>
          spec.generate(prompt, { maxTokens: tokens, eos: [], gamma, parallel, maxSeq: 512 }),
        );
        if (r.tokens.join() !== base.tokens.join())
          throw new Error(
            `speculative output differs from target-only (strength ${strength}, delay ${delay}, gamma ${gamma})`,
          );
        const avgGamma = r.gammas.reduce((s, x) => s + x, 0) / r.gammas.length;
        runs.push({
          mode: parallel ? 'parallel spec' : 'sequential spec',
          gamma: gamma === 'auto' ? `auto (avg ${avgGamma.toFixed(1)})` : String(gamma),
          acc: r.acceptanceRate.toFixed(2),
          ms,
          ref: r.tokens,
        });
      }
      for (const r of runs) {
        const tps = (tokens * 1000) / r.ms;
        const msPerToken = r.ms / tokens;
        const speedUp = `${(baseMs / r.ms).toFixed(2)}x`;
        console.log(mdRow([strength, delay, r.mode, r.gamma, r.acc, tps.toFixed(1), msPerToken.toFixed(1), speedUp]));
      }
      coordinator.dispose();
    }
    draft.dispose();
  }
});

// Association (issue 8 item 6): the example room, matching vs the paper's baselines (model figures, not measured).
{
  const { compareStrategies, exampleRoom } = await import('../../src/speculative/associationExample.ts');
  const { users, pipelines } = exampleRoom();
  console.log(
    '\nassociation, example room (6 people, pipelines desk/laptops/phones; expected tokens/s from the cost model):',
  );
  console.log(mdHeader(['strategy', 'room tokens/s', ...users.map((u) => u.id)]));
  for (const r of compareStrategies(users, pipelines))
    console.log(mdRow([r.strategy, r.totalTokensPerSec.toFixed(0), ...users.map((u) => r.association[u.id])]));
}

// The routing bench's Node engine (--engine node): the small model whole in "this tab" (a LocalEngine), the large
// one as 3 stages a|b|c over an in-memory bus with an emulated one-way delay per send (Node cannot run WebRTC).
// Every tab shares one Node thread, so stage compute never overlaps; the mesh engine is the real thing.
import { createCpuBackend } from '../../../src/backend/cpu/index.ts';
import { Coordinator } from '../../../src/pipeline/coordinator.ts';
import { MemoryBus, withDelay } from '../../../src/pipeline/memoryBus.ts';
import type { StageAssignment } from '../../../src/pipeline/messages.ts';
import { cpuStageRunner } from '../../../src/testing/cpuStage.ts';
import { runConversation, timeSide } from '../../../src/router/benchRun.ts';
import type { BenchSide } from '../../../src/router/benchRun.ts';
import { LocalEngine } from '../../../src/router/localEngine.ts';
import type { Side } from '../../../src/router/predictor.ts';
import type { SideRun } from '../../../src/router/router.ts';
import { localSide } from '../../../src/router/sides.ts';
import { commonPrefixLength } from '../../../src/model/prefix.ts';
import { localModelFiles } from '../../../src/weights/localFiles.ts';
import { openModel } from '../../../src/weights/model.ts';
import type { RoutingEngine } from './routingEngine.ts';

const MAX_SEQ = 2048;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export async function nodeEngine(
  dirs: { small: string; large: string },
  o: { delayMs: number; smallSlowdown: number },
): Promise<RoutingEngine> {
  const [smallModel, largeModel] = await Promise.all([
    openModel(localModelFiles(dirs.small)),
    openModel(localModelFiles(dirs.large)),
  ]);
  const L = largeModel.spec.nLayers;
  const local = await LocalEngine.load(
    smallModel,
    createCpuBackend(),
    MAX_SEQ,
    o.smallSlowdown > 1 ? (ms) => sleep((o.smallSlowdown - 1) * ms) : undefined,
  );
  const bus = new MemoryBus();
  const tabs = ['a', 'b', 'c'];
  for (const id of tabs) cpuStageRunner(withDelay(bus.transport(id), o.delayMs), largeModel);
  const coordinator = new Coordinator(withDelay(bus.transport('a-ui'), o.delayMs));
  const a = Math.floor(L / 3),
    b = Math.floor((2 * L) / 3);
  const stages: StageAssignment[] = [
    { peer: 'a', start: 0, end: a },
    { peer: 'b', start: a, end: b },
    { peer: 'c', start: b, end: L },
  ];
  await coordinator.assign('bench', stages, tabs, MAX_SEQ);
  const noParams = () => ({ fixedSec: 0, prefillSecPerToken: 0, decodeSecPerToken: 0 });
  let held: number[] = [];
  const large: BenchSide = {
    cachedPrefix: (ids) => Math.min(commonPrefixLength(held, ids), Math.max(0, ids.length - 1)),
    params: noParams,
    async generate(ids, opts): Promise<SideRun> {
      const r = await coordinator.generate([...ids], { maxTokens: opts.maxTokens, eos: opts.eos });
      held = [...ids, ...r.tokens.slice(0, -1)];
      const decodeMs =
        r.tokens.length > 1 && r.decodeTokensPerSec > 0 ? ((r.tokens.length - 1) * 1000) / r.decodeTokensPerSec : 0;
      return { tokens: r.tokens, stoppedBy: r.stoppedBy, ttftMs: r.ttftMs, decodeMs };
    },
    reset() {
      held = [];
      coordinator.adoptHistory([]);
    },
  };
  const small: BenchSide = { ...localSide(local, () => null), reset: () => local.reset() };
  const sides: Record<Side, BenchSide> = { small, large };
  const vocab = smallModel.spec.vocabSize;
  return {
    description:
      `Node, in-memory bus: small = ${smallModel.spec.nLayers}-layer model whole in this tab (CPU engine, compute ` +
      `slowdown x${o.smallSlowdown}); large = ${L} layers as 3 stages a|b|c (CPU engine), ${o.delayMs} ms one-way ` +
      `delay per send`,
    async time(side) {
      return timeSide(sides[side], vocab);
    },
    run: (conv, policy, params, seed) => runConversation(sides, params, conv, policy, seed, vocab),
    close() {
      local.dispose();
      coordinator.dispose();
      return Promise.resolve();
    },
  };
}

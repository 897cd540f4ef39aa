// Browser glue: the small model loaded whole into this tab beside the pipeline Session that spreads the large
// one over the mesh, both through the same loader (Session.openModel: Range reads, this tab's loading cap).
import type { Backend } from '../backend/types.ts';
import { ShoalError } from '../errors.ts';
import type { Mesh } from '../mesh/mesh.ts';
import type { StageAssignment } from '../pipeline/messages.ts';
import type { Session } from '../pipeline/session.ts';
import type { StrategyName } from '../planner/types.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { modelBaseUrl } from '../weights/model.ts';
import { payComputeDebt } from '../profile/emulation.ts';
import { EntropyScorer, TransformersScorer } from './difficulty.ts';
import type { DifficultyScorer } from './difficulty.ts';
import { LocalEngine } from './localEngine.ts';
import { LatencyPredictor } from './predictor.ts';
import { Router } from './router.ts';
import type { PolicyConfig } from './rule.ts';
import { localSide, meshSide } from './sides.ts';
import type { MeshSide } from './sides.ts';

export interface PageRouterOptions {
  session: Session;
  mesh: Mesh;
  backend: () => Promise<Backend>;
  smallModel: string;
  largeModel: string;
  policy: PolicyConfig;
  strategy: StrategyName;
  /** Force the large model's stages instead of planning (tests). */
  stages?: StageAssignment[];
  /** Default: the small model's entropy; a string is a text-classification model id or folder. */
  scorer?: DifficultyScorer | string;
  maxSeq?: number;
  /** Called after each small-model forward with its time; default: pay this tab's emulated compute slowdown. */
  afterCompute?: (elapsedMs: number) => Promise<unknown>;
}

export interface PageRouter {
  router: Router;
  local: LocalEngine;
  large: MeshSide;
  tokenizer: Tokenizer | null;
}

export async function createPageRouter(o: PageRouterOptions): Promise<PageRouter> {
  const smallUrl = modelBaseUrl(o.smallModel);
  const [smallModel, largeModel, backend] = await Promise.all([
    o.session.openModel(smallUrl),
    o.session.openModel(modelBaseUrl(o.largeModel)),
    o.backend(),
  ]);
  if (smallModel.spec.vocabSize !== largeModel.spec.vocabSize) {
    throw new ShoalError(
      'ERR_BAD_ARGS',
      `the small model's vocabulary (${smallModel.spec.vocabSize}) differs from the large one's ` +
        `(${largeModel.spec.vocabSize}); pick two models that share a tokenizer`,
    );
  }
  const local = await LocalEngine.load(
    smallModel,
    backend,
    Math.min(smallModel.spec.maxSeqLen, o.maxSeq ?? 2048),
    o.afterCompute ?? ((ms) => payComputeDebt(ms)),
  );
  const large = meshSide(o.session, o.mesh, o.largeModel, largeModel.spec, { strategy: o.strategy, stages: o.stages });
  await large.prepare(16);
  const small = localSide(local, () => o.mesh.profileOf(o.mesh.peerId));
  const scorer =
    typeof o.scorer === 'string' ? new TransformersScorer(o.scorer) : (o.scorer ?? new EntropyScorer(local));
  const predictor = new LatencyPredictor({ small: small.params(), large: large.params() });
  const eos = [...new Set([...smallModel.spec.eosTokenIds, ...largeModel.spec.eosTokenIds])];
  const tokenizer = await o.session.tokenizer(smallUrl).catch(() => null);
  return { router: new Router({ small, large }, scorer, predictor, o.policy, eos), local, large, tokenizer };
}

// The two RouteSides: this tab's LocalEngine (small) and the mesh through the pipeline Session (large). The
// mesh side mirrors what the coordinator's stages hold (context + every answer token but the last) and
// forgets it whenever a new plan is assigned (assignment clears every stage's cache).
import type { Mesh } from '../mesh/mesh.ts';
import type { ModelSpec } from '../model/config.ts';
import type { Session, TurnOptions } from '../pipeline/session.ts';
import type { LocalEngine } from './localEngine.ts';
import { localParams, meshParams } from './predictor.ts';
import type { ProfileLike, SideParams } from './predictor.ts';
import type { RouteSide, SideRun } from './router.ts';
import { commonPrefixLength } from '../model/prefix.ts';

export function localSide(engine: LocalEngine, profile: () => ProfileLike): RouteSide {
  return {
    cachedPrefix: (ids) => engine.cachedPrefix(ids),
    params: () => localParams(engine.spec, profile()),
    async generate(ids, opts): Promise<SideRun> {
      const r = await engine.generate(ids, { maxTokens: opts.maxTokens, eos: opts.eos, onToken: opts.onToken });
      return { tokens: r.tokens, stoppedBy: r.stoppedBy, ttftMs: r.ttftMs, decodeMs: r.decodeMs };
    },
  };
}

export interface MeshSide extends RouteSide {
  /** Plan and load the large model now (so the first large turn is warm and the predictor sees its stages). */
  prepare(promptTokens: number): Promise<void>;
  /** Drop the conversation the stages hold (a new conversation; benchmarks start each run cold). */
  forget(): void;
}

export function meshSide(
  session: Session,
  mesh: Mesh,
  modelLocation: string,
  spec: ModelSpec,
  turn: Omit<TurnOptions, 'maxTokens' | 'onText'>,
): MeshSide {
  let held: number[] = [];
  session.on((e) => {
    if (e.type === 'plan' || e.type === 'peer-left') held = [];
  });
  const params = (): SideParams => {
    const stages = session.coordinator.stages;
    const self = mesh.peerId;
    if (stages.length === 0)
      return meshParams(
        spec,
        [{ peer: self, start: 0, end: spec.nLayers, profile: mesh.profileOf(self), linkToNext: null }],
        self,
      );
    const linksOf = (peer: string) =>
      peer === self ? mesh.linkStats() : (mesh.peers().find((p) => p.peerId === peer)?.links ?? {});
    return meshParams(
      spec,
      stages.map((s, i) => {
        const next = i + 1 < stages.length ? stages[i + 1].peer : self;
        return {
          peer: s.peer,
          start: s.start,
          end: s.end,
          profile: mesh.profileOf(s.peer),
          linkToNext: linksOf(s.peer)[next] ?? null,
        };
      }),
      self,
    );
  };
  return {
    cachedPrefix(ids) {
      const n = commonPrefixLength(held, ids);
      return Math.min(n, Math.max(0, ids.length - 1));
    },
    params,
    forget() {
      held = [];
      session.coordinator.adoptHistory([]);
    },
    async prepare(promptTokens) {
      await session.ensurePlan(modelLocation, promptTokens, { ...turn, maxTokens: 16 });
    },
    async generate(ids, opts): Promise<SideRun> {
      try {
        const r = await session.generateIds(modelLocation, [...ids], {
          ...turn,
          maxTokens: opts.maxTokens,
          onText: opts.onToken ? (_t, toks) => opts.onToken!(toks[toks.length - 1], toks.length - 1) : undefined,
        });
        held = [...ids, ...r.tokens.slice(0, -1)];
        const decodeMs =
          r.tokens.length > 1 && r.decodeTokensPerSec > 0 ? ((r.tokens.length - 1) * 1000) / r.decodeTokensPerSec : 0;
        return { tokens: r.tokens, stoppedBy: r.stoppedBy, ttftMs: r.ttftMs, decodeMs };
      } catch (e) {
        held = [];
        throw e;
      }
    },
  };
}

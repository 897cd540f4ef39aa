// Speculative turns in the page: the target is planned and assigned over the room by the tab's Session, the draft
// runs whole in this tab (a generated draft folder, or the target's own first layers), and the controller drives
// verification rounds through the pipeline.
import type { Backend } from '../backend/types.ts';
import { ShoalError } from '../errors.ts';
import { Emitter } from '../mesh/emitter.ts';
import { LocalModel } from '../model/localModel.ts';
import type { Session, TurnOptions } from '../pipeline/session.ts';
import { modelBaseUrl } from '../weights/model.ts';
import { HedgeCalibrator } from './hedge.ts';
import { SpeculativeDecoder } from './speculative.ts';
import type { RoundReport, SpecResult } from './speculative.ts';

export interface DraftChoice {
  /** A draft model folder sharing the target's tokenizer; absent: the target's own first `layers` layers. */
  url?: string;
  layers?: number;
}

export interface SpecTurnOptions extends Omit<TurnOptions, 'onText'> {
  draft: DraftChoice;
  gamma: number | 'auto';
  parallel: boolean;
  /** Parallel: most verification rounds in flight at once (see SpecOptions.maxInFlight for the defaults). */
  maxInFlight?: number;
  /** Greedy parallel mode: most hedges in flight (see SpecOptions.hedges). */
  hedges?: number;
  /** Tests: corrupt every n-th drafted token (forces rejections). */
  corruptEvery?: number;
}

export type SpecSessionEvent =
  | { type: 'round'; report: RoundReport }
  | { type: 'done'; result: SpecResult }
  | { type: 'start'; parallel: boolean; gamma: number | 'auto' };

export class SpecSession {
  private drafts = new Map<string, Promise<LocalModel>>();
  /** Per draft/target pair: where the target picks the draft's second choice, learnt over every turn. */
  private calibrators = new Map<string, HedgeCalibrator>();
  private readonly events = new Emitter<{ event: [SpecSessionEvent] }>();
  busy = false;
  private abort: AbortController | null = null;

  /** afterCompute: the tab's emulated compute slowdown, paid after each draft step as the stages pay theirs. */
  constructor(
    private readonly session: Session,
    private readonly backend: () => Promise<Backend>,
    private readonly opts: { afterCompute?: (computeMs: number) => Promise<unknown> } = {},
  ) {}

  on(fn: (e: SpecSessionEvent) => void): () => void {
    return this.events.on('event', fn);
  }

  private emit(e: SpecSessionEvent): void {
    this.events.emit('event', e);
  }

  private draftUrl(targetUrl: string, choice: DraftChoice): string {
    return choice.url ? modelBaseUrl(choice.url) : targetUrl;
  }

  private draftKey(targetUrl: string, choice: DraftChoice): string {
    return `${this.draftUrl(targetUrl, choice)}#${choice.layers ?? 'all'}`;
  }

  private calibrator(targetUrl: string, choice: DraftChoice): HedgeCalibrator {
    const key = `${this.draftKey(targetUrl, choice)} for ${targetUrl}`;
    let c = this.calibrators.get(key);
    if (!c) {
      c = new HedgeCalibrator();
      this.calibrators.set(key, c);
    }
    return c;
  }

  private draftModel(targetUrl: string, choice: DraftChoice): Promise<LocalModel> {
    const url = this.draftUrl(targetUrl, choice);
    const key = this.draftKey(targetUrl, choice);
    let d = this.drafts.get(key);
    if (!d) {
      d = (async () =>
        LocalModel.open(await this.session.openModel(url), await this.backend(), {
          layers: choice.layers,
          afterCompute: this.opts.afterCompute,
        }))();
      d.catch(() => this.drafts.delete(key));
      this.drafts.set(key, d);
    }
    return d;
  }

  /** One speculative turn from raw ids (the same plan and prefix reuse as a plain turn). */
  async generateIds(modelLocation: string, ids: number[], opts: SpecTurnOptions): Promise<SpecResult> {
    if (this.busy || this.session.busy)
      throw new ShoalError('ERR_PIPELINE', 'a generation is already running in this tab');
    this.busy = true;
    try {
      const targetUrl = modelBaseUrl(modelLocation);
      const [target, draft] = await Promise.all([
        this.session.openModel(targetUrl),
        this.draftModel(targetUrl, opts.draft),
      ]);
      if (draft.spec.vocabSize !== target.spec.vocabSize)
        throw new ShoalError(
          'ERR_BAD_ARGS',
          `the draft's vocabulary (${draft.spec.vocabSize}) is not the target's (${target.spec.vocabSize}); ` +
            'pick a draft made for this model',
        );
      await this.session.ensurePlan(modelLocation, ids.length, { ...opts });
      const every = opts.corruptEvery;
      this.abort = new AbortController();
      this.emit({ type: 'start', parallel: opts.parallel, gamma: opts.gamma });
      const result = await new SpeculativeDecoder(this.session.coordinator, draft).generate(ids, {
        maxTokens: opts.maxTokens,
        eos: target.spec.eosTokenIds,
        sampling: opts.sampling,
        gamma: opts.gamma,
        parallel: opts.parallel,
        maxInFlight: opts.maxInFlight,
        hedges: opts.hedges,
        calibrator: this.calibrator(targetUrl, opts.draft),
        maxSeq: Math.min(target.spec.maxSeqLen, 4096),
        // A tab holding only the draft (and the coordinator) is idle while a round is verified.
        sharesCompute: this.session.runner.range !== null,
        corruptDraft: every ? (k) => k % every === every - 1 : undefined,
        signal: this.abort.signal,
        onRound: (report) => this.emit({ type: 'round', report }),
      });
      this.emit({ type: 'done', result });
      return result;
    } finally {
      this.busy = false;
      this.abort = null;
    }
  }

  /** Forget what the loaded drafts have cached (benchmarks time every run from an empty prefix). */
  async resetDrafts(): Promise<void> {
    for (const d of this.drafts.values()) (await d).reset();
  }

  /** Stop the speculative turn after the round in flight. */
  stop(): void {
    this.abort?.abort();
  }
}

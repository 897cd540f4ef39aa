// Pipeline messages between tabs (carried as mesh `app` messages on channel "pipeline"), and their validator.
// Activations travel as a binary payload beside the JSON body. The messages are schemas; the types derive from them.
import * as v from 'valibot';
import type { Interval } from '../planner/timeline.ts';
import {
  checkMessage,
  dropUndefinedKeys,
  durationMs,
  finite,
  list,
  positiveInt,
  record,
  text,
  uint,
} from '../wire/schema.ts';

export const PIPELINE_CHANNEL = 'pipeline';
/** Most token ids in one message (prompt, draft, verified tokens). */
export const MAX_IDS = 1 << 16;
export const MAX_INTERVALS = 4096;
const MAX_EOS = 64;
const MAX_STAGES = 256;

const planId = text(64);

/** Layers [start, end), 0-based, on tab `peer`. */
export const StageAssignmentSchema = v.pipe(
  v.object({ peer: text(64), start: uint, end: uint }),
  v.forward(
    v.check((s) => s.end > s.start, 'must be above start'),
    ['end'],
  ),
);
export type StageAssignment = v.InferOutput<typeof StageAssignmentSchema>;

export const SamplingConfigSchema = v.object({ temperature: finite, topP: finite, seed: uint });
export type SamplingConfig = v.InferOutput<typeof SamplingConfigSchema>;

/** Conversations whose KV caches a stage keeps by default (the planner's memory model counts them too). */
export const DEFAULT_MAX_CONVERSATIONS = 4;

/**
 * Two tabs may plan at the same moment: every tab keeps the newest plan, by epoch (one more than the plan it
 * replaces) and then by plan id, so the room converges on one plan whichever assignment arrives first.
 */
export function planIsNewer(a: { epoch: number; planId: string }, b: { epoch: number; planId: string }): boolean {
  return a.epoch > b.epoch || (a.epoch === b.epoch && a.planId > b.planId);
}

/** A conversation: `<owner tab>/<n>`, unique in the room. */
const conv = text(128);

/**
 * A verification pass: return rows from keepFrom on (earlier rows are prompt positions), with logits when sampling.
 * `branch`: an alternative continuation from pos0 (a hedge): every stage computes it and then restores the cache
 * rows it overwrote and its position, so the main line's rounds sent before and after it stay valid.
 */
export const VerifyFlagsSchema = v.pipe(
  v.object({ keepFrom: uint, wantLogits: v.boolean(), branch: v.optional(v.boolean()) }),
  v.transform((f) => {
    if (!f.branch) delete f.branch; // branch: false is no branch
    return f;
  }),
);
export type VerifyFlags = v.InferOutput<typeof VerifyFlagsSchema>;

const IntervalSchema = v.pipe(
  v.object({
    device: text(64),
    kind: v.picklist(['load', 'upload', 'compute', 'send', 'recv', 'idle']),
    startSec: finite,
    endSec: finite,
    // Optional details: one that is malformed is dropped, not the interval.
    layer: v.fallback(v.optional(uint), undefined),
    tokenIndex: v.fallback(v.optional(uint), undefined),
    bytes: v.fallback(v.optional(uint), undefined),
    label: v.fallback(v.optional(text(128)), undefined),
    conv: v.fallback(v.optional(text(512)), undefined),
    source: v.fallback(v.optional(v.picklist(['origin', 'cache', 'peer', 'memory'])), undefined),
  }),
  v.transform((iv) => dropUndefinedKeys(iv)),
) satisfies v.GenericSchema<unknown, Interval>;

const ids = v.pipe(list(uint, MAX_IDS), v.minLength(1, 'must not be empty'));
/**
 * A restarted turn's resume points: entry k is the position stage k computes from (what it and every stage after it
 * still hold is not recomputed); rows before entry k+1 are not sent on.
 */
const resumePoints = list(uint, 256);
const eos = list(uint, MAX_EOS);

export const PipelineMessageSchema = v.variant('kind', [
  /** Coordinator -> every tab of the room: the plan. Tabs not in `stages` drop any stage they hold. */
  v.object({
    kind: v.literal('assign'),
    planId,
    /** One more than the plan it replaces (see planIsNewer). */
    epoch: uint,
    modelUrl: text(2048),
    stages: list(StageAssignmentSchema, MAX_STAGES),
    maxSeq: uint,
    clockOffsetMs: finite,
    runStartMs: finite,
    /** Every tab the plan was made over (each hears progress and timelines). */
    members: list(text(64), MAX_STAGES),
    /** The planner's strategy (a tab that adopts the plan reuses it for the same strategy). */
    strategy: text(64),
    /** Conversations whose caches each stage keeps (the rest are evicted when idle, rebuilt if they come back). */
    maxConversations: positiveInt,
    /** Each weight unit's sha256 as first recorded from the origin: cached and peer bytes are checked against it. */
    hashes: v.optional(record(v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'must be a sha256 in hex')), 4096, 32)),
  }),
  /**
   * A conversation's coordinator -> stage 0: start a turn of `conv` at position pos0 (earlier positions stay cached);
   * its first token is token index0 of the turn (0, or the next one when a turn restarts).
   */
  v.object({
    kind: v.literal('start'),
    planId,
    conv,
    runId: uint,
    pos0: uint,
    index0: uint,
    ids,
    maxTokens: uint,
    eos,
    sampling: SamplingConfigSchema,
    from: v.optional(resumePoints),
  }),
  /**
   * Stage k -> stage k+1: hidden state for positions pos0.. of `conv`, whose tokens go to tab `owner` (payload: f32
   * (T, dim)). `partial`: a prompt chunk before the last (no token follows it). `verify` marks a verification pass;
   * then computeMs is the compute the stages so far spent on it.
   */
  v.object({
    kind: v.literal('act'),
    planId,
    conv,
    owner: text(64),
    partial: v.optional(v.boolean()),
    runId: uint,
    pos0: uint,
    rows: positiveInt,
    index: uint,
    maxTokens: uint,
    eos,
    sampling: SamplingConfigSchema,
    sentAtSec: finite,
    verify: v.optional(VerifyFlagsSchema),
    computeMs: v.optional(durationMs),
    from: v.optional(resumePoints),
  }),
  /**
   * Coordinator -> stage 0 (speculative decoding, issue 8): run ids at pos0 in one pass and answer with the target's
   * prediction at every position from row keepFrom on; nothing is fed back (the speculative controller drives rounds).
   */
  v.pipe(
    v.object({ kind: v.literal('verify'), planId, conv, runId: uint, pos0: uint, ids, verify: VerifyFlagsSchema }),
    v.forward(
      v.check((m) => m.verify.keepFrom < m.ids.length, 'must be below the number of ids'),
      ['verify', 'keepFrom'],
    ),
  ),
  /**
   * Last stage -> coordinator: argmax of each kept row; with wantLogits the payload holds those rows' logits
   * (R, vocab). computeMs: the compute every stage spent on the pass, summed (what a pass of this size costs).
   */
  v.object({
    kind: v.literal('verified'),
    planId,
    conv,
    runId: uint,
    pos0: uint,
    tokens: list(uint, MAX_IDS),
    computeMs: v.optional(durationMs),
  }),
  /** Last stage -> coordinator and stage 0: the sampled token at position `pos` (the index of the token it follows). */
  v.object({
    kind: v.literal('token'),
    planId,
    conv,
    runId: uint,
    index: uint,
    pos: uint,
    token: uint,
    done: v.boolean(),
  }),
  /** Coordinator -> stage 0: stop generating. */
  v.object({ kind: v.literal('stop'), planId, conv, runId: uint }),
  /** Coordinator -> every stage: the conversation's turn is over (its caches may be evicted when memory is short). */
  v.object({ kind: v.literal('end'), planId, conv }),
  /**
   * A stage -> the conversation's coordinator: this stage holds only `held` positions of the conversation (its cache
   * was evicted, or the layers moved here), fewer than the step needs: restart the turn from position 0.
   */
  v.object({ kind: v.literal('resync'), planId, conv, runId: uint, held: uint }),
  /** Coordinator -> every stage, before a restart: how many positions of the conversation do you hold? */
  v.object({ kind: v.literal('heldQuery'), planId, conv, runId: uint }),
  /** A stage's answer (its cache may have been kept through a re-plan: the restart need not recompute it). */
  v.object({ kind: v.literal('heldReply'), planId, conv, runId: uint, held: uint }),
  /** Coordinator -> all: drop weights and caches (Run from cold). */
  /** `cache`: empty the persistent weight caches too (a true cold start); else memory only. */
  v.object({ kind: v.literal('drop'), cache: v.optional(v.boolean()) }),
  /** Any stage -> coordinator: load progress, with the bytes that came from each source. */
  v.object({
    kind: v.literal('progress'),
    planId,
    loadedBytes: uint,
    totalBytes: uint,
    layersLoaded: uint,
    layersTotal: uint,
    bySource: v.optional(v.object({ origin: uint, cache: uint, peer: uint })),
  }),
  /**
   * Any stage -> the plan's tabs: recorded intervals (on the planning tab's clock, seconds from runStartMs) and the
   * steps queued at the stage now.
   */
  v.object({
    kind: v.literal('timeline'),
    planId,
    intervals: list(IntervalSchema, MAX_INTERVALS),
    queued: v.optional(uint),
  }),
  /** Any tab -> coordinator: something failed on this tab (in one conversation's turn, when conv is given). */
  v.object({ kind: v.literal('error'), planId, message: text(2000), conv: v.optional(conv), runId: v.optional(uint) }),
  /** Clock sync: t0 = sender's clock; reply carries the receiver's clock t1. */
  v.object({ kind: v.literal('clock'), t0: finite }),
  v.object({ kind: v.literal('clockReply'), t0: finite, t1: finite }),
]);

export type PipelineMessage = v.InferOutput<typeof PipelineMessageSchema>;

/** Validate a pipeline body from a peer. Returns an error string instead of throwing. */
export function parsePipelineMessage(x: unknown): PipelineMessage | string {
  const res = checkMessage(PipelineMessageSchema, x, 'pipeline message');
  return res.ok ? res.value : res.reason;
}

/** How a tab talks to the others: the mesh in the page, an in-memory bus in unit tests. */
export interface Transport {
  readonly selfId: string;
  /** Deliver to `to` (which may be this tab itself). Resolves when handed to the link (backpressure). */
  send(to: string, msg: PipelineMessage, payload?: Float32Array): Promise<void>;
  onMessage(handler: (from: string, msg: PipelineMessage, payload: Float32Array | undefined) => void): () => void;
}

// Mesh wire protocol: the versioned discriminated union of messages between tabs, as a schema; the types derive
// from it. Everything that arrives from a peer passes parseMessage() before any handler sees it.
import * as v from 'valibot';
import { DeviceProfileSchema, LinkStatsSchema, type LinkStats } from '../profile/types.ts';
import { checkMessage, finite, nonEmptyText, parseOrNull, positiveInt, record, text, uint } from '../wire/schema.ts';

/** Bumped on any incompatible change; a hello with another version is refused. */
export const PROTOCOL_VERSION = 2;
/** Longest peer id / name / app channel name, in characters. */
export const MAX_ID_CHARS = 64;
export const MAX_NAME_CHARS = 64;
export const MAX_CHANNEL_CHARS = 64;
/** Most entries in a `links` message. */
export const MAX_LINKS = 256;

export const MeshMessageSchema = v.variant('type', [
  /**
   * First message on every link: who I am, which protocol I speak, and the session of my app-message stream to you
   * (the same session on a re-dialled link means: resume, I still hold what you have not acknowledged).
   */
  v.object({
    type: v.literal('hello'),
    v: v.pipe(
      uint,
      v.value(PROTOCOL_VERSION, (i) => `protocol version ${String(i.input)} is not ${PROTOCOL_VERSION}`),
    ),
    peerId: nonEmptyText(MAX_ID_CHARS),
    name: text(MAX_NAME_CHARS),
    session: nonEmptyText(MAX_ID_CHARS),
  }),
  /** My device profile (sent after profiling, and again whenever it changes). */
  v.object({ type: v.literal('profile'), profile: DeviceProfileSchema }),
  /** Liveness: a peer silent for HEARTBEAT_TIMEOUT_MS is gone. */
  v.object({ type: v.literal('heartbeat'), t: finite }),
  /** RTT probe; with a binary payload it is also a throughput probe. `t` is the sender's clock. */
  v.object({ type: v.literal('ping'), id: uint, t: finite }),
  v.object({ type: v.literal('pong'), id: uint, t: finite, bytes: uint }),
  /** Per-link measurements seen from the sender's side, shared with the room. */
  v.object({ type: v.literal('links'), links: record(LinkStatsSchema, MAX_LINKS, MAX_ID_CHARS) }),
  /**
   * Messages other modules define (the pipeline): `channel` names the registered type, `body` is validated by it.
   * `seq` numbers them per peer session so a re-dialled link can resend what was lost and the receiver drop repeats.
   */
  v.object({
    type: v.literal('app'),
    channel: nonEmptyText(MAX_CHANNEL_CHARS),
    body: v.optional(v.unknown()),
    seq: positiveInt,
  }),
  /** Cumulative acknowledgement: every app message up to `seq` has been delivered. */
  v.object({ type: v.literal('ack'), seq: uint }),
]);

export type MeshMessage = v.InferOutput<typeof MeshMessageSchema>;
export type MeshMessageType = MeshMessage['type'];

export function parseLinkStats(x: unknown): LinkStats | null {
  return parseOrNull(LinkStatsSchema, x);
}

/** Validate a decoded JSON value as a MeshMessage. Returns an error string instead of throwing. */
export function parseMessage(x: unknown): MeshMessage | string {
  const res = checkMessage(MeshMessageSchema, x, 'message');
  return res.ok ? res.value : res.reason;
}

/** Control messages jump the send queue (ahead of bulk frames) so liveness survives a big transfer. */
export function isControl(msg: MeshMessage): boolean {
  return msg.type === 'heartbeat' || msg.type === 'ping' || msg.type === 'pong' || msg.type === 'ack';
}

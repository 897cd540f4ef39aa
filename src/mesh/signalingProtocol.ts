// Signaling protocol between a tab and the server (JSON text over one WebSocket): rooms, peer roster,
// and relayed simple-peer signals. Shared by the browser client and the Node server; both validate against the
// schemas below, and the message types derive from them.
import * as v from 'valibot';
import { checkMessage, isPlainObject, parseOrNull, text } from '../wire/schema.ts';

export const SIGNALING_VERSION = 1;
export const SIGNAL_PATH = '/signal';
/** Largest signaling message, bytes (an SDP offer is a few KiB). */
export const MAX_SIGNAL_MESSAGE_BYTES = 64 * 1024;
export const MAX_ROOM_CHARS = 64;
export const MAX_PEER_ID_CHARS = 64;
export const MAX_NAME_CHARS = 64;
export const MAX_SECRET_CHARS = 256;

/** What a server error code means is up to the server; these are the ones this one sends. */
export type SignalingErrorCode =
  | 'bad-json'
  | 'too-big'
  | 'bad-message'
  | 'unknown-type'
  | 'not-joined'
  | 'already-joined'
  | 'bad-secret'
  | 'room-full'
  | 'no-such-peer'
  | 'rate-limited';

/** Room names and ids: 1-`max` of [A-Za-z0-9_.-]. */
const id = (max: number) => {
  const rule = `must be 1-${max} of [A-Za-z0-9_.-]`;
  return v.pipe(v.string(rule), v.minLength(1, rule), v.maxLength(max, rule), v.regex(/^[\w.-]+$/, rule));
};
const peerId = id(MAX_PEER_ID_CHARS);
/** simple-peer signal data: a JSON object, passed on as it is. */
const signalData = v.custom<object>(isPlainObject, 'must be an object');

export const RosterEntrySchema = v.object({ peerId, name: text(MAX_NAME_CHARS) });
export type RosterEntry = v.InferOutput<typeof RosterEntrySchema>;

export const ClientMessageSchema = v.variant('type', [
  v.object({
    type: v.literal('join'),
    v: v.literal(SIGNALING_VERSION, `must be ${SIGNALING_VERSION}`),
    room: id(MAX_ROOM_CHARS),
    peerId,
    name: text(MAX_NAME_CHARS),
    secret: v.optional(text(MAX_SECRET_CHARS)),
  }),
  /** Relay simple-peer signal `data` to peer `to` in my room; `linkId` names the link attempt. */
  v.object({ type: v.literal('signal'), to: peerId, linkId: id(MAX_PEER_ID_CHARS), data: signalData }),
]);
export type ClientMessage = v.InferOutput<typeof ClientMessageSchema>;

export const ServerMessageSchema = v.variant('type', [
  v.object({ type: v.literal('joined'), room: v.string(), peerId, peers: v.array(RosterEntrySchema) }),
  v.object({ type: v.literal('peer-joined'), peer: RosterEntrySchema }),
  v.object({ type: v.literal('peer-left'), peerId }),
  v.object({ type: v.literal('signal'), from: peerId, linkId: id(MAX_PEER_ID_CHARS), data: signalData }),
  // Any code string is taken (a newer server may send one this client does not know).
  v.object({
    type: v.literal('error'),
    code: v.custom<SignalingErrorCode>((c) => typeof c === 'string'),
    message: v.string(),
  }),
]);
export type ServerMessage = v.InferOutput<typeof ServerMessageSchema>;

/** Validate a client message; returns [code, reason] when it is refused. */
export function parseClientMessage(x: unknown): ClientMessage | [SignalingErrorCode, string] {
  const res = checkMessage(ClientMessageSchema, x, 'message');
  if (!res.ok) return [res.unknownKind ? 'unknown-type' : 'bad-message', res.reason];
  const m = res.value;
  if (m.type === 'join' && m.secret === '') delete m.secret; // an empty secret is no secret
  return m;
}

/** Validate a server message on the client (a compromised or buggy server must not crash the tab). */
export function parseServerMessage(x: unknown): ServerMessage | null {
  return parseOrNull(ServerMessageSchema, x);
}

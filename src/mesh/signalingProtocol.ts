// Signaling protocol between a tab and the server (JSON text over one WebSocket): rooms, peer roster,
// and relayed simple-peer signals. Shared by the browser client and the Node server; both validate.

export const SIGNALING_VERSION = 1;
export const SIGNAL_PATH = '/signal';
/** Largest signaling message, bytes (an SDP offer is a few KiB). */
export const MAX_SIGNAL_MESSAGE_BYTES = 64 * 1024;
export const MAX_ROOM_CHARS = 64;
export const MAX_PEER_ID_CHARS = 64;
export const MAX_NAME_CHARS = 64;
export const MAX_SECRET_CHARS = 256;

export interface RosterEntry { peerId: string; name: string }

export type ClientMessage =
  | { type: 'join'; v: number; room: string; peerId: string; name: string; secret?: string }
  /** Relay simple-peer signal `data` to peer `to` in my room; `linkId` names the link attempt. */
  | { type: 'signal'; to: string; linkId: string; data: unknown };

export type ServerMessage =
  | { type: 'joined'; room: string; peerId: string; peers: RosterEntry[] }
  | { type: 'peer-joined'; peer: RosterEntry }
  | { type: 'peer-left'; peerId: string }
  | { type: 'signal'; from: string; linkId: string; data: unknown }
  | { type: 'error'; code: SignalingErrorCode; message: string };

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

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const idOk = (x: unknown, max: number): x is string => typeof x === 'string' && x.length > 0 && x.length <= max && /^[\w.-]+$/.test(x);

/** Validate a client message; returns [code, reason] when it is refused. */
export function parseClientMessage(x: unknown): ClientMessage | [SignalingErrorCode, string] {
  if (!isObj(x)) return ['bad-message', 'message must be a JSON object'];
  if (x.type === 'join') {
    if (x.v !== SIGNALING_VERSION) return ['bad-message', `join.v must be ${SIGNALING_VERSION}`];
    if (!idOk(x.room, MAX_ROOM_CHARS)) return ['bad-message', `join.room must be 1-${MAX_ROOM_CHARS} of [A-Za-z0-9_.-]`];
    if (!idOk(x.peerId, MAX_PEER_ID_CHARS)) return ['bad-message', `join.peerId must be 1-${MAX_PEER_ID_CHARS} of [A-Za-z0-9_.-]`];
    if (typeof x.name !== 'string' || x.name.length > MAX_NAME_CHARS) return ['bad-message', `join.name must be a string of at most ${MAX_NAME_CHARS}`];
    if (x.secret !== undefined && (typeof x.secret !== 'string' || x.secret.length > MAX_SECRET_CHARS)) return ['bad-message', 'join.secret must be a short string'];
    const m: ClientMessage = { type: 'join', v: x.v, room: x.room, peerId: x.peerId, name: x.name };
    if (typeof x.secret === 'string' && x.secret !== '') m.secret = x.secret;
    return m;
  }
  if (x.type === 'signal') {
    if (!idOk(x.to, MAX_PEER_ID_CHARS)) return ['bad-message', 'signal.to must be a peer id'];
    if (!idOk(x.linkId, MAX_PEER_ID_CHARS)) return ['bad-message', 'signal.linkId must be an id'];
    if (!isObj(x.data)) return ['bad-message', 'signal.data must be an object'];
    return { type: 'signal', to: x.to, linkId: x.linkId, data: x.data };
  }
  return ['unknown-type', `unknown message type ${JSON.stringify(String(x.type).slice(0, 32))}`];
}

/** Validate a server message on the client (a compromised or buggy server must not crash the tab). */
export function parseServerMessage(x: unknown): ServerMessage | null {
  if (!isObj(x)) return null;
  const entry = (e: unknown): RosterEntry | null =>
    isObj(e) && idOk(e.peerId, MAX_PEER_ID_CHARS) && typeof e.name === 'string' && e.name.length <= MAX_NAME_CHARS ? { peerId: e.peerId, name: e.name } : null;
  switch (x.type) {
    case 'joined': {
      if (typeof x.room !== 'string' || !idOk(x.peerId, MAX_PEER_ID_CHARS) || !Array.isArray(x.peers)) return null;
      const peers = x.peers.map(entry);
      return peers.every((p) => p !== null) ? { type: 'joined', room: x.room, peerId: x.peerId, peers: peers as RosterEntry[] } : null;
    }
    case 'peer-joined': {
      const peer = entry(x.peer);
      return peer ? { type: 'peer-joined', peer } : null;
    }
    case 'peer-left':
      return idOk(x.peerId, MAX_PEER_ID_CHARS) ? { type: 'peer-left', peerId: x.peerId } : null;
    case 'signal':
      return idOk(x.from, MAX_PEER_ID_CHARS) && idOk(x.linkId, MAX_PEER_ID_CHARS) && isObj(x.data) ? { type: 'signal', from: x.from, linkId: x.linkId, data: x.data } : null;
    case 'error':
      return typeof x.code === 'string' && typeof x.message === 'string' ? { type: 'error', code: x.code as SignalingErrorCode, message: x.message } : null;
    default:
      return null;
  }
}

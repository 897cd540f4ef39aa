// Mesh wire protocol: the versioned discriminated union of messages between tabs, and its validator.
// Everything that arrives from a peer passes parseMessage() before any handler sees it.
import { parseDeviceProfile, type DeviceProfile, type LinkStats } from '../profile/types.ts';

/** Bumped on any incompatible change; a hello with another version is refused. */
export const PROTOCOL_VERSION = 2;
/** Longest peer id / name / app channel name, in characters. */
export const MAX_ID_CHARS = 64;
export const MAX_NAME_CHARS = 64;
export const MAX_CHANNEL_CHARS = 64;

export type MeshMessage =
  /**
   * First message on every link: who I am, which protocol I speak, and the session of my app-message stream to you
   * (the same session on a re-dialled link means: resume, I still hold what you have not acknowledged).
   */
  | { type: 'hello'; v: number; peerId: string; name: string; session: string }
  /** My device profile (sent after profiling, and again whenever it changes). */
  | { type: 'profile'; profile: DeviceProfile }
  /** Liveness: a peer silent for HEARTBEAT_TIMEOUT_MS is gone. */
  | { type: 'heartbeat'; t: number }
  /** RTT probe; with a binary payload it is also a throughput probe. `t` is the sender's clock. */
  | { type: 'ping'; id: number; t: number }
  | { type: 'pong'; id: number; t: number; bytes: number }
  /** Per-link measurements seen from the sender's side, shared with the room. */
  | { type: 'links'; links: Record<string, LinkStats> }
  /**
   * Messages other modules define (the pipeline): `channel` names the registered type, `body` is validated by it.
   * `seq` numbers them per peer session so a re-dialled link can resend what was lost and the receiver drop repeats.
   */
  | { type: 'app'; channel: string; body: unknown; seq: number }
  /** Cumulative acknowledgement: every app message up to `seq` has been delivered. */
  | { type: 'ack'; seq: number };

export type MeshMessageType = MeshMessage['type'];

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStr = (x: unknown, max: number): x is string => typeof x === 'string' && x.length > 0 && x.length <= max;
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isUint = (x: unknown): x is number => isNum(x) && Number.isInteger(x) && x >= 0;

export function parseLinkStats(x: unknown): LinkStats | null {
  if (!isObj(x)) return null;
  const { rttMs, bytesPerSec } = x;
  if (rttMs !== null && !(isNum(rttMs) && rttMs >= 0)) return null;
  if (bytesPerSec !== null && !(isNum(bytesPerSec) && bytesPerSec >= 0)) return null;
  return { rttMs: rttMs as number | null, bytesPerSec: bytesPerSec as number | null };
}

/** Validate a decoded JSON value as a MeshMessage. Returns an error string instead of throwing. */
export function parseMessage(x: unknown): MeshMessage | string {
  if (!isObj(x)) return 'message is not an object';
  switch (x.type) {
    case 'hello':
      if (!isUint(x.v)) return 'hello.v must be a version number';
      if (x.v !== PROTOCOL_VERSION) return `hello: protocol version ${x.v} is not ${PROTOCOL_VERSION}`;
      if (!isStr(x.peerId, MAX_ID_CHARS)) return 'hello.peerId must be a short string';
      if (typeof x.name !== 'string' || x.name.length > MAX_NAME_CHARS) return 'hello.name must be a short string';
      if (!isStr(x.session, MAX_ID_CHARS)) return 'hello.session must be a short string';
      return { type: 'hello', v: x.v, peerId: x.peerId, name: x.name, session: x.session };
    case 'profile': {
      const profile = parseDeviceProfile(x.profile);
      return profile ? { type: 'profile', profile } : 'profile: malformed device profile';
    }
    case 'heartbeat':
      return isNum(x.t) ? { type: 'heartbeat', t: x.t } : 'heartbeat.t must be a number';
    case 'ping':
      return isUint(x.id) && isNum(x.t) ? { type: 'ping', id: x.id, t: x.t } : 'ping needs id and t';
    case 'pong':
      return isUint(x.id) && isNum(x.t) && isUint(x.bytes) ? { type: 'pong', id: x.id, t: x.t, bytes: x.bytes } : 'pong needs id, t and bytes';
    case 'links': {
      if (!isObj(x.links)) return 'links.links must be an object';
      const links: Record<string, LinkStats> = {};
      const entries = Object.entries(x.links);
      if (entries.length > 256) return 'links: too many entries';
      for (const [k, v] of entries) {
        const s = parseLinkStats(v);
        if (!s || k.length > MAX_ID_CHARS) return `links: bad entry ${JSON.stringify(k.slice(0, MAX_ID_CHARS))}`;
        links[k] = s;
      }
      return { type: 'links', links };
    }
    case 'app':
      if (!isStr(x.channel, MAX_CHANNEL_CHARS)) return 'app.channel must be a short string';
      if (!isUint(x.seq) || x.seq < 1) return 'app.seq must be a positive integer';
      return { type: 'app', channel: x.channel, body: x.body, seq: x.seq };
    case 'ack':
      return isUint(x.seq) ? { type: 'ack', seq: x.seq } : 'ack.seq must be a non-negative integer';
    default:
      return `unknown message type ${JSON.stringify(String(x.type).slice(0, 32))}`;
  }
}

/** Control messages jump the send queue (ahead of bulk frames) so liveness survives a big transfer. */
export function isControl(msg: MeshMessage): boolean {
  return msg.type === 'heartbeat' || msg.type === 'ping' || msg.type === 'pong' || msg.type === 'ack';
}

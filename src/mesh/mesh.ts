// The mesh a tab lives in: joins its room through signaling and keeps one PeerLink to every other tab
// (lower peer id initiates), re-signals dead links, validates app messages by channel, shares profiles.
import { Emitter } from './emitter.ts';
import { PeerLink, PROBE_BYTES } from './link.ts';
import { SignalingClient, type SignalingState } from './signalingClient.ts';
import { SIGNAL_PATH, type RosterEntry } from './signalingProtocol.ts';
import type { MeshMessage } from './protocol.ts';
import { NO_EMULATION } from '../profile/emulation.ts';
import type { DeviceProfile, EmulationKnobs, LinkStats } from '../profile/types.ts';

/** Wait before re-dialling a peer whose link died, growing per failure up to the max. */
export const RELINK_MIN_MS = 300;
export const RELINK_MAX_MS = 5000;
/** How often each tab shares its per-link measurements with the room. */
export const LINK_SHARE_INTERVAL_MS = 3000;

export type AppMessage = Extract<MeshMessage, { type: 'app' }>;

export interface PeerInfo {
  peerId: string;
  name: string;
  state: 'open';
  /** This tab's measurements of its link to that peer. */
  link: LinkStats;
  /** That peer's own profile, once it has sent one. */
  profile: DeviceProfile | null;
  /** That peer's measurements of its links (peerId -> stats). */
  links: Record<string, LinkStats>;
}

export type MeshReport = { kind: 'bad-message' | 'link-error' | 'signaling-error' | 'unknown-channel'; peerId: string | null; detail: string };

export type MeshEvents = {
  message: [from: string, msg: AppMessage, binary: Uint8Array | null];
  'peer-joined': [peer: PeerInfo];
  'peer-left': [peerId: string, reason: string];
  profile: [peerId: string, profile: DeviceProfile];
  report: [report: MeshReport];
  signaling: [state: SignalingState];
};

export interface MeshOptions {
  room: string;
  name: string;
  peerId?: string;
  secret?: string;
  /** ws(s)://host/signal; defaults to the page's own origin. */
  signalUrl?: string;
  /** STUN/TURN servers; none are needed between tabs on one LAN. */
  iceServers?: RTCIceServer[];
  knobs?: EmulationKnobs;
  WebSocketImpl?: typeof WebSocket;
}

/** Validates the body of an app message on one channel; return null (or throw) to drop it. */
export type ChannelValidator = (body: unknown, binary: Uint8Array | null) => unknown;

export function randomPeerId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function defaultSignalUrl(loc: Location = location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}${SIGNAL_PATH}`;
}

export class Mesh extends Emitter<MeshEvents> {
  readonly peerId: string;
  readonly name: string;
  readonly room: string;
  readonly knobs: EmulationKnobs;
  private signaling: SignalingClient;
  private roster = new Map<string, string>(); // peerId -> name, as the signaling server sees the room
  private links = new Map<string, PeerLink>();
  private profiles = new Map<string, DeviceProfile>();
  private remoteLinks = new Map<string, Record<string, LinkStats>>();
  private channels = new Map<string, ChannelValidator>();
  private relinkFailures = new Map<string, number>();
  private relinkTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private ownProfile: DeviceProfile | null = null;
  private shareTimer: ReturnType<typeof setInterval>;
  private iceServers: RTCIceServer[];
  private closed = false;
  /** Messages dropped as malformed, hostile or for an unknown channel. */
  droppedMessages = 0;

  constructor(opts: MeshOptions) {
    super();
    this.peerId = opts.peerId ?? randomPeerId();
    this.name = opts.name;
    this.room = opts.room;
    this.knobs = opts.knobs ?? NO_EMULATION;
    this.iceServers = opts.iceServers ?? [];
    this.signaling = new SignalingClient({
      url: opts.signalUrl ?? defaultSignalUrl(),
      room: opts.room,
      peerId: this.peerId,
      name: opts.name,
      secret: opts.secret,
      WebSocketImpl: opts.WebSocketImpl,
    });
    this.signaling.on('joined', (peers) => {
      this.roster = new Map(peers.map((p) => [p.peerId, p.name]));
      for (const p of peers) this.dialIfMine(p.peerId);
    });
    this.signaling.on('peer-joined', (p) => {
      this.roster.set(p.peerId, p.name);
      this.relinkFailures.delete(p.peerId);
      this.dialIfMine(p.peerId);
    });
    this.signaling.on('peer-left', (id) => {
      this.roster.delete(id);
      this.links.get(id)?.markSuspect();
    });
    this.signaling.on('signal', (from, linkId, data) => this.onSignal(from, linkId, data));
    this.signaling.on('error', (code, message) => this.report('signaling-error', null, `${code}: ${message}`));
    this.signaling.on('state', (s) => this.emit('signaling', s));
    this.shareTimer = setInterval(() => this.shareLinks(), LINK_SHARE_INTERVAL_MS);
  }

  get signalingState(): SignalingState {
    return this.signaling.state;
  }

  /** Peers with an open link, with what we know of them. */
  peers(): PeerInfo[] {
    const out: PeerInfo[] = [];
    for (const [id, l] of this.links) {
      if (l.state !== 'open') continue;
      out.push({ peerId: id, name: l.remoteName, state: 'open', link: l.stats(), profile: this.profiles.get(id) ?? null, links: this.remoteLinks.get(id) ?? {} });
    }
    return out.sort((a, b) => (a.peerId < b.peerId ? -1 : 1));
  }

  /** The room as the signaling server sees it (peers we may not have a link to yet). */
  roomRoster(): RosterEntry[] {
    return [...this.roster].map(([peerId, name]) => ({ peerId, name }));
  }

  profileOf(peerId: string): DeviceProfile | null {
    return peerId === this.peerId ? this.ownProfile : (this.profiles.get(peerId) ?? null);
  }

  /** Accept app messages on `channel`; the validator sees every body first (and may normalise it). */
  registerChannel(channel: string, validate: ChannelValidator = (b) => b): void {
    this.channels.set(channel, validate);
  }

  /** Send an app message (plus optional binary, e.g. an encoded tensor); resolves when handed to the link. */
  send(peerId: string, msg: AppMessage, binary?: Uint8Array): Promise<void> {
    const link = this.links.get(peerId);
    if (!link || link.state !== 'open') return Promise.reject(new Error(`no open link to peer ${peerId}`));
    return link.send({ type: 'app', channel: msg.channel, body: msg.body }, binary);
  }

  broadcast(msg: AppMessage, binary?: Uint8Array): Promise<void> {
    return Promise.all(this.peers().map((p) => this.send(p.peerId, msg, binary))).then(() => undefined);
  }

  /** Publish this tab's profile to everyone now and to every peer that joins later. */
  setProfile(profile: DeviceProfile): void {
    this.ownProfile = profile;
    for (const l of this.links.values()) if (l.state === 'open') l.send({ type: 'profile', profile }).catch(() => undefined);
  }

  /** Measure throughput (and RTT) to one peer with a probe of `bytes`. */
  measureLink(peerId: string, bytes = PROBE_BYTES): Promise<LinkStats> {
    const link = this.links.get(peerId);
    if (!link || link.state !== 'open') return Promise.reject(new Error(`no open link to peer ${peerId}`));
    return link.probe(bytes);
  }

  linkStats(): Record<string, LinkStats> {
    const out: Record<string, LinkStats> = {};
    for (const [id, l] of this.links) if (l.state === 'open') out[id] = l.stats();
    return out;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.shareTimer);
    for (const t of this.relinkTimers.values()) clearTimeout(t);
    for (const l of [...this.links.values()]) l.destroy('mesh closed');
    this.signaling.close();
  }

  private report(kind: MeshReport['kind'], peerId: string | null, detail: string): void {
    if (kind === 'bad-message' || kind === 'unknown-channel') this.droppedMessages++;
    this.emit('report', { kind, peerId, detail });
  }

  /** Deterministic initiator: of two peers, the lower id dials, so exactly one offer is made per pair. */
  private dialIfMine(peerId: string): void {
    if (this.closed || peerId === this.peerId || !(this.peerId < peerId) || this.links.has(peerId) || this.relinkTimers.has(peerId)) return;
    this.createLink(peerId, randomPeerId(), true);
  }

  private onSignal(from: string, linkId: string, data: unknown): void {
    if (this.closed || from === this.peerId) return;
    const link = this.links.get(from);
    if (link && link.linkId === linkId) return link.signal(data);
    const isOffer = typeof data === 'object' && data !== null && (data as { type?: unknown }).type === 'offer';
    // A new offer from the peer that dials us replaces whatever link we had (it re-signalled after a blip).
    if (isOffer && from < this.peerId) {
      link?.destroy('replaced by a new offer');
      this.createLink(from, linkId, false).signal(data);
    }
    // Anything else belongs to a link attempt that no longer exists: ignore it.
  }

  private createLink(peerId: string, linkId: string, initiator: boolean): PeerLink {
    const link: PeerLink = new PeerLink(
      { selfId: this.peerId, selfName: this.name, remoteId: peerId, linkId, initiator, iceServers: this.iceServers, knobs: this.knobs },
      {
        sendSignal: (data) => this.signaling.send(peerId, linkId, data),
        onOpen: (name) => {
          this.relinkFailures.delete(peerId);
          if (this.ownProfile) link.send({ type: 'profile', profile: this.ownProfile }).catch(() => undefined);
          link.probe().catch(() => undefined);
          this.emit('peer-joined', { peerId, name, state: 'open', link: link.stats(), profile: this.profiles.get(peerId) ?? null, links: {} });
        },
        onMessage: (msg, binary) => this.onLinkMessage(peerId, msg, binary),
        onReport: (kind, detail) => this.report(kind, peerId, detail),
        onClose: (reason, wasOpen) => {
          if (this.links.get(peerId) === link) this.links.delete(peerId);
          if (wasOpen) {
            this.profiles.delete(peerId);
            this.remoteLinks.delete(peerId);
            this.emit('peer-left', peerId, reason);
          }
          this.scheduleRelink(peerId, wasOpen);
        },
      },
    );
    this.links.set(peerId, link);
    return link;
  }

  private scheduleRelink(peerId: string, wasOpen: boolean): void {
    if (this.closed || !this.roster.has(peerId) || !(this.peerId < peerId) || this.relinkTimers.has(peerId)) return;
    const failures = wasOpen ? 0 : (this.relinkFailures.get(peerId) ?? 0) + 1;
    this.relinkFailures.set(peerId, failures);
    const waitMs = Math.min(RELINK_MAX_MS, RELINK_MIN_MS * 2 ** failures);
    this.relinkTimers.set(
      peerId,
      setTimeout(() => {
        this.relinkTimers.delete(peerId);
        this.dialIfMine(peerId);
      }, waitMs),
    );
  }

  private onLinkMessage(from: string, msg: MeshMessage, binary: Uint8Array | null): void {
    switch (msg.type) {
      case 'profile':
        if (msg.profile.peerId !== from) return this.report('bad-message', from, `profile claims peer ${msg.profile.peerId}`);
        this.profiles.set(from, msg.profile);
        this.emit('profile', from, msg.profile);
        return;
      case 'links':
        this.remoteLinks.set(from, msg.links);
        return;
      case 'app': {
        const validate = this.channels.get(msg.channel);
        if (!validate) return this.report('unknown-channel', from, `app message on unregistered channel ${JSON.stringify(msg.channel)}`);
        let body: unknown;
        try {
          body = validate(msg.body, binary);
        } catch (e) {
          body = null;
          this.report('bad-message', from, `channel ${msg.channel}: ${String(e)}`);
          return;
        }
        if (body === null || body === undefined) return this.report('bad-message', from, `channel ${msg.channel}: body refused by its validator`);
        this.emit('message', from, { type: 'app', channel: msg.channel, body }, binary);
        return;
      }
      default:
        this.report('bad-message', from, `unexpected ${msg.type} message`);
    }
  }

  private shareLinks(): void {
    const links = this.linkStats();
    for (const l of this.links.values()) if (l.state === 'open') l.send({ type: 'links', links }).catch(() => undefined);
  }
}

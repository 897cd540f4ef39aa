// The mesh a tab lives in: joins its room through signaling and keeps one PeerLink to every other tab
// (lower peer id initiates), re-signals dead links, validates app messages by channel, shares profiles.
// App messages are delivered reliably across re-dials (delivery.ts): a peer whose link dies while it is still in the
// room is 'reconnecting' for RECONNECT_GRACE_MS, messages to it wait, and the new link resends what was not
// acknowledged.
import { ShoalError } from '../errors.ts';
import { PeerDelivery, type Outgoing } from './delivery.ts';
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
/**
 * How long a peer whose link died, but which the signaling server still lists, may take to come back on a new link
 * before it is declared gone. A closed tab leaves the room at once and skips this; a frozen one is gone after
 * HEARTBEAT_TIMEOUT_MS plus this.
 */
export const RECONNECT_GRACE_MS = 4000;

/** What other modules send and receive: a registered channel and its body (the mesh adds sequencing). */
export type AppMessage = { type: 'app'; channel: string; body: unknown };

export interface PeerInfo {
  peerId: string;
  name: string;
  /** 'reconnecting': the link died but the peer is still in the room; messages to it wait for the new link. */
  state: 'open' | 'reconnecting';
  /** This tab's measurements of its link to that peer. */
  link: LinkStats;
  /** That peer's own profile, once it has sent one. */
  profile: DeviceProfile | null;
  /** That peer's measurements of its links (peerId -> stats). */
  links: Record<string, LinkStats>;
}

export type MeshReport = {
  kind: 'bad-message' | 'link-error' | 'signaling-error' | 'unknown-channel';
  peerId: string | null;
  detail: string;
};

export type MeshEvents = {
  message: [from: string, msg: AppMessage, binary: Uint8Array | null];
  'peer-joined': [peer: PeerInfo];
  'peer-left': [peerId: string, reason: string];
  /** A member's link died (reconnecting) or came back (open); peer-joined / peer-left bracket these. */
  'peer-link': [peerId: string, state: 'open' | 'reconnecting'];
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
  /** Peers that have opened a link and not been declared gone (peerId -> name), reconnecting ones included. */
  private members = new Map<string, string>();
  private deliveries = new Map<string, PeerDelivery>();
  private graceTimers = new Map<string, ReturnType<typeof setTimeout>>();
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
      if (this.graceTimers.has(id)) this.peerGone(id, 'left the room while reconnecting');
    });
    this.signaling.on('signal', (from, linkId, data) => this.onSignal(from, linkId, data));
    this.signaling.on('error', (code, message) => this.report('signaling-error', null, `${code}: ${message}`));
    this.signaling.on('state', (s) => this.emit('signaling', s));
    this.shareTimer = setInterval(() => this.shareLinks(), LINK_SHARE_INTERVAL_MS);
  }

  get signalingState(): SignalingState {
    return this.signaling.state;
  }

  /** Peers in the mesh (open, or reconnecting after a blip), with what we know of them. */
  peers(): PeerInfo[] {
    const out: PeerInfo[] = [];
    for (const [id, name] of this.members) {
      const l = this.links.get(id);
      const open = l?.state === 'open';
      out.push({
        peerId: id,
        name,
        state: open ? 'open' : 'reconnecting',
        link: open ? l.stats() : { rttMs: null, bytesPerSec: null },
        profile: this.profiles.get(id) ?? null,
        links: this.remoteLinks.get(id) ?? {},
      });
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

  /**
   * Send an app message (plus optional binary, e.g. an encoded tensor) to a member; resolves when first handed to a
   * link (at once if the link is open, else when the peer is back), rejects if the peer is declared gone first.
   * Delivery is in order and exactly once while the peer stays a member, across link re-dials.
   */
  send(peerId: string, msg: AppMessage, binary?: Uint8Array): Promise<void> {
    const d = this.members.has(peerId) ? this.deliveries.get(peerId) : undefined;
    if (!d) return Promise.reject(new ShoalError('ERR_PEER_GONE', `no link to peer ${peerId}`));
    let q: ReturnType<PeerDelivery['enqueue']>;
    try {
      q = d.enqueue(msg.channel, msg.body, binary);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const link = this.links.get(peerId);
    if (link?.state === 'open') this.transmit(link, q.out);
    return q.sent;
  }

  /** Messages to `peerId` not yet acknowledged (bytes), e.g. to see a transfer waiting out a reconnect. */
  pendingBytes(peerId: string): number {
    return this.deliveries.get(peerId)?.pendingBytes ?? 0;
  }

  broadcast(msg: AppMessage, binary?: Uint8Array): Promise<void> {
    return Promise.all(this.peers().map((p) => this.send(p.peerId, msg, binary))).then(() => undefined);
  }

  /** Publish this tab's profile to everyone now and to every peer that joins later. */
  setProfile(profile: DeviceProfile): void {
    this.ownProfile = profile;
    for (const l of this.links.values()) {
      if (l.state !== 'open') continue;
      l.send({ type: 'profile', profile }).catch(() => undefined);
      // The probe at link open ran while this tab was profiling (its busiest moment): measure again now. Tabs choose
      // between a peer and the origin for weights by these figures.
      l.probe().catch(() => undefined);
    }
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
    for (const t of this.graceTimers.values()) clearTimeout(t);
    this.graceTimers.clear();
    for (const l of [...this.links.values()]) l.destroy('mesh closed');
    for (const d of this.deliveries.values()) d.fail('mesh closed');
    this.signaling.close();
  }

  private report(kind: MeshReport['kind'], peerId: string | null, detail: string): void {
    if (kind === 'bad-message' || kind === 'unknown-channel') this.droppedMessages++;
    this.emit('report', { kind, peerId, detail });
  }

  /** Deterministic initiator: of two peers, the lower id dials, so exactly one offer is made per pair. */
  private dialIfMine(peerId: string): void {
    if (
      this.closed ||
      peerId === this.peerId ||
      !(this.peerId < peerId) ||
      this.links.has(peerId) ||
      this.relinkTimers.has(peerId)
    )
      return;
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
      {
        selfId: this.peerId,
        selfName: this.name,
        remoteId: peerId,
        linkId,
        initiator,
        iceServers: this.iceServers,
        knobs: this.knobs,
        session: () => this.deliveryFor(peerId).outSession,
      },
      {
        sendSignal: (data) => this.signaling.send(peerId, linkId, data),
        onOpen: (name, session) => this.onLinkOpen(link, name, session),
        onMessage: (msg, binary) => this.onLinkMessage(peerId, msg, binary),
        onReport: (kind, detail) => this.report(kind, peerId, detail),
        onClose: (reason, wasOpen) => {
          if (this.links.get(peerId) === link) this.links.delete(peerId);
          if (wasOpen && this.members.has(peerId) && !this.graceTimers.has(peerId)) {
            if (!this.closed && this.roster.has(peerId)) this.startGrace(peerId, reason);
            else this.peerGone(peerId, reason);
          }
          if (!this.members.has(peerId)) this.deliveries.delete(peerId);
          this.scheduleRelink(peerId, wasOpen);
        },
      },
    );
    this.links.set(peerId, link);
    return link;
  }

  private deliveryFor(peerId: string): PeerDelivery {
    let d = this.deliveries.get(peerId);
    if (!d) this.deliveries.set(peerId, (d = new PeerDelivery(randomPeerId())));
    return d;
  }

  private onLinkOpen(link: PeerLink, name: string, session: string): void {
    const peerId = link.remoteId;
    this.relinkFailures.delete(peerId);
    const d = this.deliveryFor(peerId);
    let resumed = this.members.has(peerId);
    this.clearGrace(peerId);
    // The peer declared us gone while we were apart and forgot our stream: we forget its, and it rejoins as new.
    if (d.peerSession(session) === 'restart' && resumed) {
      this.forgetMember(peerId, 'the peer restarted its session', d);
      resumed = false;
    }
    this.members.set(peerId, name);
    if (this.ownProfile) link.send({ type: 'profile', profile: this.ownProfile }).catch(() => undefined);
    link.probe().catch(() => undefined);
    // What the dead link did not get acknowledged goes first, in order; the receiver drops what it already has.
    for (const out of d.pending()) this.transmit(link, out);
    if (resumed) this.emit('peer-link', peerId, 'open');
    else
      this.emit('peer-joined', {
        peerId,
        name,
        state: 'open',
        link: link.stats(),
        profile: this.profiles.get(peerId) ?? null,
        links: {},
      });
  }

  private transmit(link: PeerLink, out: Outgoing): void {
    link
      .send({ type: 'app', channel: out.channel, body: out.body, seq: out.seq }, out.binary)
      .then(out.handed, () => undefined);
  }

  private startGrace(peerId: string, reason: string): void {
    this.graceTimers.set(
      peerId,
      setTimeout(
        () => this.peerGone(peerId, `${reason}; no new link within ${RECONNECT_GRACE_MS} ms`),
        RECONNECT_GRACE_MS,
      ),
    );
    this.emit('peer-link', peerId, 'reconnecting');
  }

  private clearGrace(peerId: string): void {
    const t = this.graceTimers.get(peerId);
    if (t !== undefined) clearTimeout(t);
    this.graceTimers.delete(peerId);
  }

  /** The peer is gone for good: unsent messages fail, its state goes, and the app hears peer-left. */
  private peerGone(peerId: string, reason: string): void {
    if (!this.members.has(peerId)) return;
    const d = this.deliveries.get(peerId);
    this.deliveries.delete(peerId);
    this.forgetMember(peerId, reason, d);
  }

  private forgetMember(peerId: string, reason: string, d: PeerDelivery | undefined): void {
    this.clearGrace(peerId);
    this.members.delete(peerId);
    d?.fail(`peer ${peerId} left: ${reason}`);
    this.profiles.delete(peerId);
    this.remoteLinks.delete(peerId);
    this.emit('peer-left', peerId, reason);
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
        if (msg.profile.peerId !== from)
          return this.report('bad-message', from, `profile claims peer ${msg.profile.peerId}`);
        this.profiles.set(from, msg.profile);
        this.emit('profile', from, msg.profile);
        return;
      case 'links':
        this.remoteLinks.set(from, msg.links);
        return;
      case 'ack':
        this.deliveries.get(from)?.ack(msg.seq);
        return;
      case 'app': {
        const d = this.deliveries.get(from);
        if (!d) return this.report('bad-message', from, 'app message from a peer with no delivery session');
        const receipt = d.receive(msg.seq);
        this.links
          .get(from)
          ?.send({ type: 'ack', seq: d.deliveredSeq })
          .catch(() => undefined);
        if (receipt.kind === 'duplicate') return;
        if (receipt.kind === 'gap')
          this.report(
            'link-error',
            from,
            `${receipt.lost} message(s) from this peer never arrived ` +
              `(sequence ${msg.seq - receipt.lost}..${msg.seq - 1})`,
          );
        const validate = this.channels.get(msg.channel);
        if (!validate)
          return this.report(
            'unknown-channel',
            from,
            `app message on unregistered channel ${JSON.stringify(msg.channel)}`,
          );
        let body: unknown;
        try {
          body = validate(msg.body, binary);
        } catch (e) {
          body = null;
          this.report('bad-message', from, `channel ${msg.channel}: ${String(e)}`);
          return;
        }
        if (body === null || body === undefined)
          return this.report('bad-message', from, `channel ${msg.channel}: body refused by its validator`);
        this.emit('message', from, { type: 'app', channel: msg.channel, body }, binary);
        return;
      }
      default:
        this.report('bad-message', from, `unexpected ${msg.type} message`);
    }
  }

  private shareLinks(): void {
    const links = this.linkStats();
    for (const l of this.links.values())
      if (l.state === 'open') l.send({ type: 'links', links }).catch(() => undefined);
  }
}

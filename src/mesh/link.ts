// One WebRTC link to one peer (simple-peer): framed sends with backpressure and emulated delay/bandwidth,
// reassembly, heartbeats and ping/RTT/throughput probes. One lifecycle, one destroy(reason) teardown path.
import SimplePeer from 'simple-peer';
import { Reassembler, encodeFrames } from './codec.ts';
import { PROTOCOL_VERSION, isControl, type MeshMessage } from './protocol.ts';
import { Pacer, sleep } from '../profile/emulation.ts';
import type { EmulationKnobs, LinkStats } from '../profile/types.ts';

/** Stop handing frames to the data channel while this many bytes are queued in it. */
export const MAX_BUFFERED_BYTES = 1024 * 1024;
/** ...and resume once it has drained to this. */
export const LOW_BUFFERED_BYTES = 256 * 1024;
export const BUFFER_POLL_MS = 2;
export const HEARTBEAT_INTERVAL_MS = 500;
/** Silence after which a peer is gone (tab closed or frozen); 3 s is the promise, this leaves room for the check. */
export const HEARTBEAT_TIMEOUT_MS = 2000;
/** Silence after which a peer the signaling server says has left is gone (a live one heartbeats every 500 ms). */
export const SUSPECT_TIMEOUT_MS = 1000;
export const WATCHDOG_INTERVAL_MS = 200;
export const CONNECT_TIMEOUT_MS = 15_000;
export const PING_INTERVAL_MS = 1000;
/** Default size of the throughput probe sent when a link opens, bytes. */
export const PROBE_BYTES = 512 * 1024;
/** Weight of a new RTT sample in the running average. */
const RTT_EWMA = 0.3;
/** How far behind the emulated link cap (?linkBps) a link may fall and still catch up in a burst, ms (see Pacer). */
const LINK_PACE_CREDIT_MS = 1000;

export type LinkState = 'connecting' | 'open' | 'closed';

export interface LinkHandlers {
  sendSignal(data: unknown): void;
  /** The peer said hello: its name and the session of its app-message stream to us. */
  onOpen(name: string, session: string): void;
  onMessage(msg: MeshMessage, binary: Uint8Array | null): void;
  onReport(kind: 'bad-message' | 'link-error', detail: string): void;
  onClose(reason: string, wasOpen: boolean): void;
}

export interface LinkOptions {
  selfId: string;
  selfName: string;
  remoteId: string;
  linkId: string;
  initiator: boolean;
  iceServers: RTCIceServer[];
  knobs: EmulationKnobs;
  /** The session of this tab's app-message stream to that peer, asked for when the channel opens. */
  session(): string;
}

interface Outgoing {
  frame: Uint8Array;
  notBeforeMs: number;
  done?: () => void;
}

export class PeerLink {
  state: LinkState = 'connecting';
  readonly linkId: string;
  readonly remoteId: string;
  readonly openedAtMs: number | null = null;
  rttMs: number | null = null;
  bytesPerSec: number | null = null;
  bytesSent = 0;
  bytesReceived = 0;
  dropped = 0;

  private peer: SimplePeer.Instance;
  private reasm = new Reassembler();
  private control: Outgoing[] = [];
  private bulk: Outgoing[] = [];
  private pumping = false;
  private nextMsgId = 1;
  private nextPingId = 1;
  private probes = new Map<number, { bytes: number; resolve: (s: LinkStats) => void }>();
  private lastHeardMs = performance.now();
  private createdMs = performance.now();
  private lastTickMs = performance.now();
  private suspect = false;
  private helloSent = false;
  private timers: ReturnType<typeof setInterval>[] = [];
  private pacer: Pacer;

  constructor(
    private opts: LinkOptions,
    private h: LinkHandlers,
  ) {
    this.linkId = opts.linkId;
    this.remoteId = opts.remoteId;
    this.pacer = new Pacer(opts.knobs.linkBytesPerSec, LINK_PACE_CREDIT_MS);
    this.peer = new SimplePeer({ initiator: opts.initiator, trickle: true, config: { iceServers: opts.iceServers } });
    this.peer.on('signal', (data) => this.state !== 'closed' && h.sendSignal(data));
    this.peer.on('connect', () => this.sendHello());
    this.peer.on('data', (d: Uint8Array) => this.onData(d));
    this.peer.on('error', (e: Error & { code?: string }) =>
      this.destroy(`link error ${e.code ?? ''} ${e.message}`.trim()),
    );
    this.peer.on('close', () => this.destroy('data channel closed'));
    this.timers.push(setInterval(() => this.watchdog(), WATCHDOG_INTERVAL_MS));
    this.timers.push(
      setInterval(
        () => this.state === 'open' && this.sendNow({ type: 'heartbeat', t: Date.now() }),
        HEARTBEAT_INTERVAL_MS,
      ),
    );
    this.timers.push(
      setInterval(
        () => this.state === 'open' && this.sendNow({ type: 'ping', id: this.nextPingId++, t: performance.now() }),
        PING_INTERVAL_MS,
      ),
    );
  }

  /** Feed a relayed signal (offer/answer/candidate) from the remote peer. */
  signal(data: unknown): void {
    if (this.state === 'closed') return;
    try {
      this.peer.signal(data as SimplePeer.SignalData);
    } catch (e) {
      this.h.onReport('link-error', `bad signal from ${this.remoteId}: ${String(e)}`);
    }
  }

  /** Queue a message; resolves once its last frame has been handed to the data channel. */
  send(msg: MeshMessage, binary?: Uint8Array): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new Error(`link to ${this.remoteId} is closed`));
    const frames = encodeFrames(this.nextMsgId++ >>> 0, msg, binary);
    const queue = isControl(msg) && !binary ? this.control : this.bulk;
    const notBeforeMs = performance.now() + this.opts.knobs.linkDelayMs;
    return new Promise((resolve) => {
      frames.forEach((frame, i) =>
        queue.push({ frame, notBeforeMs, done: i === frames.length - 1 ? resolve : undefined }),
      );
      void this.pump();
    });
  }

  /** Send a `bytes`-long probe and time its echo: link throughput (bytes/s) and RTT as seen from this side. */
  probe(bytes = PROBE_BYTES): Promise<LinkStats> {
    const id = this.nextPingId++;
    return new Promise((resolve) => {
      this.probes.set(id, { bytes, resolve });
      this.send({ type: 'ping', id, t: performance.now() }, new Uint8Array(bytes)).catch(() => {
        this.probes.delete(id);
        resolve(this.stats());
      });
    });
  }

  stats(): LinkStats {
    return { rttMs: this.rttMs, bytesPerSec: this.bytesPerSec };
  }

  /** The signaling server says this peer left: a live peer would still be heard from within SUSPECT_TIMEOUT_MS. */
  markSuspect(): void {
    this.suspect = true;
    this.watchdog();
  }

  destroy(reason: string): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    for (const t of this.timers) clearInterval(t);
    this.control.length = 0;
    for (const o of this.bulk) o.done?.();
    this.bulk.length = 0;
    for (const p of this.probes.values()) p.resolve(this.stats());
    this.probes.clear();
    this.reasm.clear();
    try {
      this.peer.destroy();
    } catch {
      // already torn down
    }
    this.h.onClose(reason, wasOpen);
  }

  /** A method, not a field read, so TypeScript does not narrow `state` across awaits. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  /**
   * Our hello goes first, exactly once: on 'connect', or earlier if the peer's hello arrives before simple-peer says
   * connected here (it can), so that nothing we send in reply overtakes it and is refused as "before hello".
   */
  private sendHello(): void {
    if (this.helloSent) return;
    this.helloSent = true;
    this.sendNow({
      type: 'hello',
      v: PROTOCOL_VERSION,
      peerId: this.opts.selfId,
      name: this.opts.selfName,
      session: this.opts.session(),
    });
  }

  private sendNow(msg: MeshMessage): void {
    this.send(msg).catch(() => undefined);
  }

  private watchdog(): void {
    if (this.state === 'closed') return;
    const now = performance.now();
    // If this tab's own main thread stalled (a long task, CPU starvation), frames from the peer may be queued
    // behind this very timer: skip one verdict so they are counted first. A frozen *peer* never stalls us.
    const stalled = now - this.lastTickMs > 3 * WATCHDOG_INTERVAL_MS;
    this.lastTickMs = now;
    if (stalled) return;
    if (this.state === 'connecting') {
      if (now - this.createdMs > CONNECT_TIMEOUT_MS) this.destroy('connect timeout');
      else if (this.suspect) this.destroy('peer left the room before the link opened');
      return;
    }
    const limit = this.suspect ? SUSPECT_TIMEOUT_MS : HEARTBEAT_TIMEOUT_MS;
    if (now - this.lastHeardMs > limit) this.destroy(`no heartbeat for ${Math.round(now - this.lastHeardMs)} ms`);
  }

  private onData(d: Uint8Array): void {
    try {
      this.lastHeardMs = performance.now();
      this.bytesReceived += d.byteLength;
      const res = this.reasm.push(d instanceof Uint8Array ? d : new Uint8Array(d));
      if (!res) return;
      if (!res.ok) {
        this.dropped++;
        this.h.onReport('bad-message', `from ${this.remoteId}: ${res.error}`);
        return;
      }
      this.handle(res.msg, res.binary);
    } catch (e) {
      // Nothing a peer sends may throw out of here.
      this.dropped++;
      this.h.onReport('bad-message', `from ${this.remoteId}: handler failed: ${String(e)}`);
    }
  }

  private handle(msg: MeshMessage, binary: Uint8Array | null): void {
    switch (msg.type) {
      case 'hello':
        if (msg.peerId !== this.remoteId) {
          this.h.onReport('bad-message', `hello from ${this.remoteId} claims to be ${msg.peerId}`);
          this.destroy('peer id mismatch');
          return;
        }
        if (this.state === 'connecting') {
          this.sendHello();
          this.state = 'open';
          (this as { openedAtMs: number | null }).openedAtMs = performance.now();
          this.h.onOpen(msg.name, msg.session);
        }
        return;
      case 'heartbeat':
        return;
      case 'ping':
        this.sendNow({ type: 'pong', id: msg.id, t: msg.t, bytes: binary?.length ?? 0 });
        return;
      case 'pong': {
        const elapsedMs = performance.now() - msg.t;
        const probe = this.probes.get(msg.id);
        if (probe) {
          this.probes.delete(msg.id);
          // The probe's time minus one plain round trip is the time its bytes spent on the wire.
          const wireMs = Math.max(elapsedMs - (this.rttMs ?? 0), elapsedMs * 0.1, 0.1);
          this.bytesPerSec = probe.bytes / (wireMs / 1000);
          probe.resolve(this.stats());
        } else if (msg.bytes === 0) {
          this.rttMs = this.rttMs === null ? elapsedMs : this.rttMs + RTT_EWMA * (elapsedMs - this.rttMs);
        }
        return;
      }
      default:
        if (this.state !== 'open') {
          this.h.onReport('bad-message', `${msg.type} from ${this.remoteId} before hello`);
          return;
        }
        this.h.onMessage(msg, binary);
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.state !== 'closed' && (this.control.length || this.bulk.length)) {
        const out = (this.control.length ? this.control : this.bulk).shift()!;
        const delayMs = out.notBeforeMs - performance.now();
        if (delayMs > 1) await sleep(delayMs);
        const paceMs = this.pacer.reserve(out.frame.length);
        if (paceMs > 1) await sleep(paceMs);
        if (this.peer.bufferSize + out.frame.length > MAX_BUFFERED_BYTES) {
          while (!this.isClosed() && this.peer.bufferSize > LOW_BUFFERED_BYTES) await sleep(BUFFER_POLL_MS);
        }
        if (this.isClosed()) break;
        try {
          this.peer.send(out.frame);
          this.bytesSent += out.frame.length;
        } catch (e) {
          this.destroy(`send failed: ${String(e)}`);
          break;
        }
        out.done?.();
      }
    } finally {
      this.pumping = false;
    }
  }
}

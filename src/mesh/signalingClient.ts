// Browser side of signaling: one WebSocket to the server, join a room, relay signals; reconnects with
// backoff after a network blip and re-joins under the same peer id (links re-signal through it).
import { Emitter } from './emitter.ts';
import {
  SIGNALING_VERSION,
  parseServerMessage,
  type RosterEntry,
  type SignalingErrorCode,
} from './signalingProtocol.ts';

export const RECONNECT_MIN_MS = 250;
export const RECONNECT_MAX_MS = 5000;
/** Errors after which reconnecting cannot help: stop and tell the user. */
const FATAL: SignalingErrorCode[] = ['bad-secret', 'room-full'];

export type SignalingState = 'connecting' | 'joined' | 'disconnected' | 'failed';

export type SignalingEvents = {
  joined: [peers: RosterEntry[]];
  'peer-joined': [peer: RosterEntry];
  'peer-left': [peerId: string];
  signal: [from: string, linkId: string, data: unknown];
  error: [code: string, message: string];
  state: [state: SignalingState];
};

export interface SignalingClientOptions {
  url: string;
  room: string;
  peerId: string;
  name: string;
  secret?: string;
  /** WebSocket constructor (the browser's by default; tests in Node pass `ws`). */
  WebSocketImpl?: typeof WebSocket;
}

export class SignalingClient extends Emitter<SignalingEvents> {
  state: SignalingState = 'connecting';
  private ws: WebSocket | null = null;
  private backoffMs = RECONNECT_MIN_MS;
  private closed = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private opts: SignalingClientOptions) {
    super();
    this.connect();
  }

  send(to: string, linkId: string, data: unknown): void {
    if (this.ws?.readyState === 1) this.ws.send(JSON.stringify({ type: 'signal', to, linkId, data }));
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.ws?.close();
    this.setState('disconnected');
  }

  private setState(s: SignalingState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  private connect(): void {
    if (this.closed) return;
    this.setState('connecting');
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    let ws: WebSocket;
    try {
      ws = new Impl(this.opts.url);
    } catch (e) {
      this.emit('error', 'connect', String(e));
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const join: Record<string, unknown> = {
        type: 'join',
        v: SIGNALING_VERSION,
        room: this.opts.room,
        peerId: this.opts.peerId,
        name: this.opts.name,
      };
      if (this.opts.secret) join.secret = this.opts.secret;
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.state !== 'failed') this.scheduleReconnect();
    };
    ws.onerror = () => undefined; // onclose follows
  }

  private scheduleReconnect(): void {
    if (this.closed || this.state === 'failed') return;
    this.setState('disconnected');
    this.retryTimer = setTimeout(() => this.connect(), this.backoffMs);
    this.backoffMs = Math.min(RECONNECT_MAX_MS, this.backoffMs * 2);
  }

  private onMessage(raw: unknown): void {
    let value: unknown;
    try {
      value = JSON.parse(String(raw));
    } catch {
      this.emit('error', 'bad-json', 'server sent non-JSON');
      return;
    }
    const msg = parseServerMessage(value);
    if (!msg) {
      this.emit('error', 'bad-message', 'server sent a malformed message');
      return;
    }
    switch (msg.type) {
      case 'joined':
        this.backoffMs = RECONNECT_MIN_MS;
        this.setState('joined');
        this.emit('joined', msg.peers);
        return;
      case 'peer-joined':
        this.emit('peer-joined', msg.peer);
        return;
      case 'peer-left':
        this.emit('peer-left', msg.peerId);
        return;
      case 'signal':
        this.emit('signal', msg.from, msg.linkId, msg.data);
        return;
      case 'error':
        this.emit('error', msg.code, msg.message);
        if (FATAL.includes(msg.code)) {
          this.setState('failed');
          this.ws?.close();
        }
        return;
    }
  }
}

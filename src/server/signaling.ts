// WebSocket signaling with rooms (Node, `ws`): validates every message, rate-limits each connection,
// relays simple-peer signals only between members of one room, optional room secret.
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import {
  MAX_SIGNAL_MESSAGE_BYTES,
  SIGNAL_PATH,
  parseClientMessage,
  type RosterEntry,
  type ServerMessage,
  type SignalingErrorCode,
} from '../mesh/signalingProtocol.ts';
import { WS_PING_INTERVAL_MS, frameBytes, pathOf, pingRound, sameSecret, sha256 as hash } from './wsShared.ts';

/** Messages per second a connection may send on average, and the burst it may save up (ICE trickle is bursty). */
export const RATE_PER_SEC = 50;
export const RATE_BURST = 200;
/** Refused messages (bad, unknown, over rate) a connection may send before it is closed. */
export const MAX_STRIKES = 50;
export const MAX_PEERS_PER_ROOM = 64;
export const MAX_ROOMS = 10_000;
export { WS_PING_INTERVAL_MS };

export interface SignalingOptions {
  /** When set, every join must present this secret (in addition to any per-room secret). */
  secret?: string;
  path?: string;
  log?: (line: string) => void;
}

interface Client {
  ws: WebSocket;
  room: string | null;
  peerId: string | null;
  name: string;
  tokens: number;
  lastRefillMs: number;
  strikes: number;
  alive: boolean;
}

interface Room {
  secretHash: Buffer | null;
  peers: Map<string, Client>;
}

export class SignalingServer {
  readonly path: string;
  private wss: WebSocketServer;
  private rooms = new Map<string, Room>();
  private clients = new Set<Client>();
  private pingTimer: ReturnType<typeof setInterval>;
  private opts: SignalingOptions;
  /** Counters for tests and the console: refused messages by code. */
  readonly refused: Partial<Record<SignalingErrorCode, number>> = {};

  constructor(opts: SignalingOptions = {}) {
    this.opts = opts;
    this.path = opts.path ?? SIGNAL_PATH;
    // maxPayload: ws closes the connection (1009) on a bigger frame before buffering it.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_SIGNAL_MESSAGE_BYTES, perMessageDeflate: false });
    this.wss.on('connection', (ws) => this.onConnection(ws));
    this.pingTimer = setInterval(() => this.pingAll(), WS_PING_INTERVAL_MS);
    this.pingTimer.unref?.();
  }

  /** Handle an HTTP upgrade if it is for the signaling path; returns false (and leaves the socket alone) otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (pathOf(req) !== this.path) return false;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
    return true;
  }

  /** Listen for upgrades on an http(s) server (other upgrade listeners, e.g. Vite HMR, keep working). */
  attach(server: HttpServer): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleUpgrade(req, socket, head);
    });
  }

  roomSizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, r] of this.rooms) out[name] = r.peers.size;
    return out;
  }

  close(): void {
    clearInterval(this.pingTimer);
    for (const c of this.clients) c.ws.terminate();
    this.wss.close();
  }

  private onConnection(ws: WebSocket): void {
    const c: Client = {
      ws,
      room: null,
      peerId: null,
      name: '',
      tokens: RATE_BURST,
      lastRefillMs: Date.now(),
      strikes: 0,
      alive: true,
    };
    this.clients.add(c);
    ws.on('pong', () => (c.alive = true));
    ws.on('message', (data, isBinary) => this.onMessage(c, data, isBinary));
    ws.on('close', () => this.onClose(c));
    ws.on('error', () => ws.terminate()); // e.g. frame over maxPayload: the socket closes, nobody else is affected
  }

  private onMessage(c: Client, data: RawData, isBinary: boolean): void {
    try {
      if (!this.takeToken(c)) return this.refuse(c, 'rate-limited', `over ${RATE_PER_SEC} messages/s`);
      const bytes = frameBytes(data);
      if (isBinary) return this.refuse(c, 'bad-message', 'signaling messages are JSON text');
      if (bytes.length > MAX_SIGNAL_MESSAGE_BYTES)
        return this.refuse(c, 'too-big', `message over ${MAX_SIGNAL_MESSAGE_BYTES} bytes`);
      let value: unknown;
      try {
        value = JSON.parse(bytes.toString('utf8'));
      } catch {
        return this.refuse(c, 'bad-json', 'message is not JSON');
      }
      const msg = parseClientMessage(value);
      if (Array.isArray(msg)) return this.refuse(c, msg[0], msg[1]);
      if (msg.type === 'join') {
        if (c.room) return this.refuse(c, 'already-joined', 'this connection already joined a room');
        if (this.opts.secret !== undefined && !sameSecret(hash(this.opts.secret), msg.secret))
          return this.refuse(c, 'bad-secret', 'wrong or missing secret', true);
        let room = this.rooms.get(msg.room);
        if (room && room.secretHash && !sameSecret(room.secretHash, msg.secret))
          return this.refuse(c, 'bad-secret', `wrong or missing secret for room ${msg.room}`, true);
        if (!room) {
          if (this.rooms.size >= MAX_ROOMS) return this.refuse(c, 'room-full', 'too many rooms on this server', true);
          // The first member sets the room's secret (none if it gave none); it lasts while the room has members.
          room = { secretHash: msg.secret ? hash(msg.secret) : null, peers: new Map() };
          this.rooms.set(msg.room, room);
        }
        const old = room.peers.get(msg.peerId);
        if (!old && room.peers.size >= MAX_PEERS_PER_ROOM)
          return this.refuse(c, 'room-full', `room ${msg.room} has ${MAX_PEERS_PER_ROOM} peers`, true);
        if (old) {
          // Same tab reconnecting after a blip before we noticed its old socket die: the new socket wins.
          old.room = null;
          old.ws.close(4000, 'replaced by a newer connection');
        }
        c.room = msg.room;
        c.peerId = msg.peerId;
        c.name = msg.name;
        const peers: RosterEntry[] = [...room.peers.values()]
          .filter((p) => p.peerId !== msg.peerId)
          .map((p) => ({ peerId: p.peerId!, name: p.name }));
        room.peers.set(msg.peerId, c);
        this.send(c, { type: 'joined', room: msg.room, peerId: msg.peerId, peers });
        if (!old)
          for (const p of room.peers.values())
            if (p !== c) this.send(p, { type: 'peer-joined', peer: { peerId: msg.peerId, name: msg.name } });
        this.opts.log?.(`signal: ${msg.peerId} joined ${msg.room} (${room.peers.size} peers)`);
        return;
      }
      // signal
      if (!c.room || !c.peerId) return this.refuse(c, 'not-joined', 'join a room first');
      const target = this.rooms.get(c.room)?.peers.get(msg.to);
      if (!target || target === c) return this.refuse(c, 'no-such-peer', `no peer ${msg.to} in room ${c.room}`);
      this.send(target, { type: 'signal', from: c.peerId, linkId: msg.linkId, data: msg.data });
    } catch (e) {
      // Never let one connection's bad input take the process down.
      this.opts.log?.(`signal: internal error ${String(e)}`);
    }
  }

  private takeToken(c: Client): boolean {
    const now = Date.now();
    c.tokens = Math.min(RATE_BURST, c.tokens + ((now - c.lastRefillMs) / 1000) * RATE_PER_SEC);
    c.lastRefillMs = now;
    if (c.tokens < 1) return false;
    c.tokens -= 1;
    return true;
  }

  private refuse(c: Client, code: SignalingErrorCode, message: string, close = false): void {
    this.refused[code] = (this.refused[code] ?? 0) + 1;
    c.strikes++;
    // Past the strike limit, or for a refused join, the connection is closed; everyone else is untouched.
    if (code !== 'rate-limited' || c.strikes % 20 === 1) this.send(c, { type: 'error', code, message });
    if (close) c.ws.close(4001, code);
    else if (c.strikes > MAX_STRIKES) c.ws.close(4002, 'too many refused messages');
  }

  private send(c: Client, msg: ServerMessage): void {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(msg));
  }

  private onClose(c: Client): void {
    this.clients.delete(c);
    if (!c.room || !c.peerId) return;
    const room = this.rooms.get(c.room);
    if (!room || room.peers.get(c.peerId) !== c) return;
    room.peers.delete(c.peerId);
    for (const p of room.peers.values()) this.send(p, { type: 'peer-left', peerId: c.peerId });
    if (room.peers.size === 0) this.rooms.delete(c.room);
    this.opts.log?.(`signal: ${c.peerId} left ${c.room}`);
  }

  private pingAll(): void {
    pingRound(this.clients);
  }
}

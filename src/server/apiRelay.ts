// The OpenAI-compatible API (issue 22): /v1/models, /v1/chat/completions and /v1/completions, each request relayed
// to a host tab of its room that runs it on the mesh like a typed prompt. Per room a few requests run at once
// (concurrent conversations on the mesh), more wait in a queue, past that 429; no host tab, 503.
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import {
  API_HOST_PATH,
  MAX_HOST_MESSAGE_BYTES,
  parseHostMessage,
  type HostMessage,
  type HostModel,
  type ServerToHost,
} from '../api/hostProtocol.ts';
import {
  badRequest,
  errorBody,
  parseApiRequest,
  type ApiError,
  type ApiKind,
  type ApiTurnRequest,
} from '../api/openai.ts';
import { respondTo, type TurnSink } from './apiResponse.ts';
import { WS_PING_INTERVAL_MS, frameBytes, pathOf, pingRound, sameSecret, sha256 } from './wsShared.ts';

/** Requests of one room running on its mesh at once (a stage keeps caches for 4 conversations by default). */
export const DEFAULT_MAX_IN_FLIGHT = 4;
/** Requests of one room waiting for a slot; one more is answered 429. */
export const DEFAULT_MAX_QUEUED = 32;
/** A request whose host tab says nothing for this long fails (a hung tab must not hold a slot forever). */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
export const MAX_BODY_BYTES = 1024 * 1024;
/** Requests waiting when a room's last host tab leaves wait this long for one to come back (a reload) before 503. */
export const HOST_GRACE_MS = 10_000;
/** A host tab must say hello this soon after connecting. */
const HELLO_TIMEOUT_MS = 10_000;
const ROOM_RULE = /^[\w.-]{1,64}$/;

export interface ApiRelayOptions {
  /** The server's room secret: a host tab must present it (as a tab joining signaling does). */
  secret?: string;
  /** When set, every /v1 request must carry `Authorization: Bearer <token>` (the API is exposed beyond loopback). */
  token?: string;
  maxInFlight?: number;
  maxQueued?: number;
  idleTimeoutMs?: number;
  log?: (line: string) => void;
}

interface Host {
  ws: WebSocket;
  room: string | null;
  name: string;
  models: HostModel[];
  turns: Map<string, Turn>;
  alive: boolean;
}

interface Turn {
  id: string;
  room: string;
  req: ApiTurnRequest;
  model: HostModel;
  host: Host | null;
  sink: TurnSink;
  started: boolean;
  /** The server asked the host to end it (client gone, stop string); its done/failed frees the slot. */
  cancelled: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

interface Room {
  hosts: Set<Host>;
  running: number;
  queue: Turn[];
  /** Running while the room has no host tab and requests wait for one. */
  grace: ReturnType<typeof setTimeout> | null;
}

export class ApiRelay {
  private readonly wss: WebSocketServer;
  private readonly rooms = new Map<string, Room>();
  private readonly hosts = new Set<Host>();
  private readonly pingTimer: ReturnType<typeof setInterval>;
  private nextId = 0;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  /** Where a person opens a host tab (for the 503's message), e.g. "http://127.0.0.1:8080". */
  pageUrl = 'http://127.0.0.1:8080';

  constructor(private readonly opts: ApiRelayOptions = {}) {
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_HOST_MESSAGE_BYTES, perMessageDeflate: false });
    this.wss.on('connection', (ws) => this.onHost(ws));
    this.pingTimer = setInterval(() => this.pingHosts(), WS_PING_INTERVAL_MS);
    this.pingTimer.unref?.();
  }

  /** Host tabs per room (tests, the console). */
  hostCount(room = 'default'): number {
    return this.rooms.get(room)?.hosts.size ?? 0;
  }

  /** Requests running and waiting in a room. */
  load(room = 'default'): { running: number; queued: number } {
    const r = this.rooms.get(room);
    return { running: r?.running ?? 0, queued: r?.queue.length ?? 0 };
  }

  attach(server: HttpServer): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (pathOf(req) === API_HOST_PATH)
        this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
    });
  }

  close(): void {
    clearInterval(this.pingTimer);
    for (const r of this.rooms.values()) if (r.grace) clearTimeout(r.grace);
    for (const h of this.hosts) h.ws.terminate();
    this.wss.close();
  }

  /** The HTTP side: true when the request was for /v1 (answered here), false to pass it on. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const path = pathOf(req);
    if (path !== '/v1' && !path.startsWith('/v1/')) return false;
    void this.route(req, res, path).catch((e: unknown) => {
      this.opts.log?.(`api: internal error ${String(e)}`);
      sendError(res, { status: 500, type: 'server_error', message: 'internal error' });
    });
    return true;
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (this.opts.token !== undefined && !sameSecret(sha256(this.opts.token), bearer(req)))
      return sendError(res, {
        status: 401,
        type: 'authentication_error',
        code: 'invalid_api_key',
        message: 'this API needs "Authorization: Bearer <token>" (the token `npm start` printed)',
      });
    const kind: ApiKind | null =
      path === '/v1/chat/completions' ? 'chat' : path === '/v1/completions' ? 'completion' : null;
    if (path === '/v1/models' && req.method === 'GET') return this.listModels(req, res);
    if (!kind) return sendError(res, { status: 404, type: 'invalid_request_error', message: `no endpoint ${path}` });
    if (req.method !== 'POST')
      return sendError(res, { status: 405, type: 'invalid_request_error', message: `${path} takes POST` });
    const body = await readJson(req);
    if (!('json' in body)) return sendError(res, body);
    const parsed = parseApiRequest(kind, body.json);
    if ('status' in parsed) return sendError(res, parsed);
    const room = roomOf(req, parsed.user);
    if (typeof room !== 'string') return sendError(res, room);
    const r = this.rooms.get(room);
    if (!r || r.hosts.size === 0) return sendError(res, this.noHost(room));
    const model = findModel(r, parsed.model);
    if (!model)
      return sendError(
        res,
        badRequest(
          `unknown model "${parsed.model}"; this room serves ${modelIds(r).join(', ')}`,
          'model',
          'model_not_found',
        ),
      );
    if (r.running >= this.maxInFlight && r.queue.length >= this.maxQueued)
      return sendError(res, {
        status: 429,
        type: 'rate_limit_error',
        message: `room ${room} has ${r.running} requests running and ${r.queue.length} waiting; try again shortly`,
      });
    const turn: Turn = {
      id: `r${++this.nextId}`,
      room,
      req: parsed,
      model,
      host: null,
      sink: respondTo(res, parsed, model.id, () => this.cancel(turn)),
      started: false,
      cancelled: false,
      timer: null,
    };
    r.queue.push(turn);
    this.pump(room);
  }

  private listModels(req: IncomingMessage, res: ServerResponse): void {
    const room = roomOf(req, undefined);
    if (typeof room !== 'string') return sendError(res, room);
    const r = this.rooms.get(room);
    if (!r || r.hosts.size === 0) return sendError(res, this.noHost(room));
    const data = modelIds(r).map((id) => ({ id, object: 'model', created: 0, owned_by: 'shoal' }));
    sendJson(res, 200, { object: 'list', data });
  }

  private noHost(room: string): ApiError {
    const page = this.pageUrl;
    return {
      status: 503,
      type: 'server_error',
      code: 'no_host_tab',
      message:
        `no tab hosts the API in room ${room}: start the server with \`npm start -- --host-tabs 1\`, ` +
        `or open ${page}/?room=${room}&host=api in a browser`,
    };
  }

  /** Start waiting requests while the room has free slots. */
  private pump(room: string): void {
    const r = this.rooms.get(room);
    if (!r) return;
    while (r.running < this.maxInFlight && r.queue.length > 0) {
      const turn = r.queue.shift()!;
      const hosts = [...r.hosts].filter((h) => h.models.some((m) => m.id === turn.model.id));
      if (hosts.length === 0) {
        this.fail(turn, this.noHost(room));
        continue;
      }
      // The least busy host tab coordinates it (every host shares the same mesh, so this spreads coordination).
      const host = hosts.reduce((a, b) => (b.turns.size < a.turns.size ? b : a));
      r.running++;
      turn.host = host;
      host.turns.set(turn.id, turn);
      this.touch(turn);
      const t = turn.req;
      send(host, {
        type: 'request',
        id: turn.id,
        kind: t.kind,
        location: turn.model.location,
        ...(t.messages ? { messages: t.messages } : { prompt: t.prompt ?? '' }),
        maxTokens: t.maxTokens,
        temperature: t.temperature,
        topP: t.topP,
        seed: t.seed,
        stop: t.stop,
      });
    }
  }

  /** The client left or a stop string came: the host ends the turn (its done frees the slot); a queued one goes. */
  private cancel(turn: Turn): void {
    if (turn.cancelled) return;
    turn.cancelled = true;
    if (!turn.host) {
      const r = this.rooms.get(turn.room);
      if (r) r.queue = r.queue.filter((t) => t !== turn);
      return;
    }
    send(turn.host, { type: 'cancel', id: turn.id });
  }

  private touch(turn: Turn): void {
    if (turn.timer) clearTimeout(turn.timer);
    const ms = this.opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    turn.timer = setTimeout(() => {
      if (turn.host) send(turn.host, { type: 'cancel', id: turn.id });
      this.fail(turn, { status: 504, type: 'server_error', message: `the host tab sent nothing for ${ms / 1000} s` });
    }, ms);
    turn.timer.unref?.();
  }

  /** The turn is over: its slot goes to the next waiting request. */
  private release(turn: Turn): void {
    if (turn.timer) clearTimeout(turn.timer);
    turn.timer = null;
    if (!turn.host) return;
    turn.host.turns.delete(turn.id);
    turn.host = null;
    const r = this.rooms.get(turn.room);
    if (r) {
      r.running--;
      this.pump(turn.room);
    }
  }

  private fail(turn: Turn, e: ApiError): void {
    this.release(turn);
    turn.sink.failed(e);
  }

  private onHost(ws: WebSocket): void {
    const host: Host = { ws, room: null, name: '', models: [], turns: new Map(), alive: true };
    this.hosts.add(host);
    const hello = setTimeout(() => host.room === null && ws.close(4001, 'no hello'), HELLO_TIMEOUT_MS);
    hello.unref?.();
    ws.on('pong', () => (host.alive = true));
    ws.on('message', (data, isBinary) => this.onHostMessage(host, data, isBinary));
    ws.on('close', () => {
      clearTimeout(hello);
      this.onHostGone(host);
    });
    ws.on('error', () => ws.terminate());
  }

  private onHostMessage(host: Host, data: RawData, isBinary: boolean): void {
    let msg: HostMessage | string;
    try {
      msg = isBinary ? 'relay messages are JSON text' : parseHostMessage(JSON.parse(frameBytes(data).toString('utf8')));
    } catch {
      msg = 'message is not JSON';
    }
    if (typeof msg === 'string') {
      this.opts.log?.(`api: refused a message from host ${host.name || '(new)'}: ${msg}`);
      if (host.room === null) refuse(host, msg);
      return;
    }
    if (msg.type === 'hello') return this.onHello(host, msg);
    const turn = host.turns.get(msg.id);
    if (!turn) return; // a turn already ended here (cancelled, timed out): its late messages mean nothing
    this.touch(turn);
    switch (msg.type) {
      case 'started':
        turn.started = true;
        turn.sink.started(msg.promptTokens);
        break;
      case 'delta':
        if (turn.sink.delta(msg.text)) this.cancel(turn); // a stop string: the rest is not wanted
        break;
      case 'done':
        this.release(turn);
        turn.sink.done(msg.finish, msg.promptTokens, msg.completionTokens);
        break;
      case 'failed':
        this.fail(turn, {
          status: msg.status,
          type: msg.status < 500 ? 'invalid_request_error' : 'server_error',
          message: msg.message,
          code: msg.code,
        });
        break;
    }
  }

  private onHello(host: Host, msg: Extract<HostMessage, { type: 'hello' }>): void {
    if (host.room !== null) return refuse(host, 'this connection already said hello');
    if (this.opts.secret !== undefined && !sameSecret(sha256(this.opts.secret), msg.secret))
      return refuse(host, 'wrong or missing room secret');
    host.room = msg.room;
    host.name = msg.name;
    host.models = msg.models;
    let r = this.rooms.get(msg.room);
    if (!r) this.rooms.set(msg.room, (r = { hosts: new Set(), running: 0, queue: [], grace: null }));
    r.hosts.add(host);
    if (r.grace) clearTimeout(r.grace);
    r.grace = null;
    send(host, { type: 'welcome', room: msg.room });
    this.opts.log?.(`api: ${msg.name} hosts room ${msg.room} (${msg.models.map((m) => m.id).join(', ')})`);
    this.pump(msg.room);
  }

  /** A host tab left: its turns that had not started run elsewhere; the others end with an error. */
  private onHostGone(host: Host): void {
    this.hosts.delete(host);
    if (host.room === null) return;
    const r = this.rooms.get(host.room);
    r?.hosts.delete(host);
    const turns = [...host.turns.values()];
    for (const turn of turns) {
      this.release(turn);
      if (!turn.started && !turn.cancelled && r) r.queue.unshift(turn);
      else
        turn.sink.failed({
          status: 502,
          type: 'server_error',
          message: `host tab ${host.name} left while answering; ask again`,
        });
    }
    if (r && r.hosts.size === 0) this.awaitHost(host.room, r);
    else this.pump(host.room);
    this.opts.log?.(`api: ${host.name} stopped hosting room ${host.room}`);
  }

  /** The room's last host left: its waiting requests get HOST_GRACE_MS for one to come back, then 503. */
  private awaitHost(room: string, r: Room): void {
    const end = (): void => {
      r.grace = null;
      if (r.hosts.size > 0) return;
      for (const turn of r.queue.splice(0)) turn.sink.failed(this.noHost(room));
      if (r.running === 0) this.rooms.delete(room);
    };
    if (r.queue.length === 0) return end();
    r.grace ??= setTimeout(end, HOST_GRACE_MS);
    r.grace.unref?.();
  }

  private pingHosts(): void {
    pingRound(this.hosts);
  }
}

function bearer(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  return m ? m[1].trim() : undefined;
}

/** The room: a `shoal-room` header, else the body's `user`, else "default". */
function roomOf(req: IncomingMessage, user: string | undefined): string | ApiError {
  const header = req.headers['shoal-room'];
  const room = (Array.isArray(header) ? header[0] : header) ?? user ?? 'default';
  return ROOM_RULE.test(room)
    ? room
    : badRequest(`room "${room.slice(0, 64)}" must be 1-64 of [A-Za-z0-9_.-] (shoal-room header or user field)`);
}

function modelIds(r: Room): string[] {
  return [...new Set([...r.hosts].flatMap((h) => h.models.map((m) => m.id)))];
}

function findModel(r: Room, name: string): HostModel | undefined {
  for (const h of r.hosts) {
    const m = h.models.find((x) => x.id === name || x.location === name);
    if (m) return m;
  }
  return undefined;
}

function send(host: Host, msg: ServerToHost): void {
  if (host.ws.readyState === host.ws.OPEN) host.ws.send(JSON.stringify(msg));
}

function refuse(host: Host, message: string): void {
  send(host, { type: 'refused', message });
  host.ws.close(4001, 'refused');
}

async function readJson(req: IncomingMessage): Promise<{ json: unknown } | ApiError> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY_BYTES)
      return { status: 413, type: 'invalid_request_error', message: `the body is over ${MAX_BODY_BYTES} bytes` };
    chunks.push(c);
  }
  try {
    return { json: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch {
    return badRequest('the body is not valid JSON');
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.end();
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(body));
}

export function sendError(res: ServerResponse, e: ApiError): void {
  sendJson(res, e.status, errorBody(e));
}

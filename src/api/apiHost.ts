// A tab that hosts the API for its room: it connects to the server's relay, and runs each request it is handed on
// the mesh as a conversation of its own (exactly the path a typed prompt takes), streaming the text back.
import { errorMessage } from '../errors.ts';
import type { Session, TurnResult } from '../pipeline/session.ts';
import type { StrategyName } from '../planner/types.ts';
import { isHubRepoId, modelBaseUrl } from '../weights/model.ts';
import {
  API_HOST_PATH,
  API_HOST_VERSION,
  parseServerToHost,
  type HostMessage,
  type HostModel,
  type RelayRequest,
} from './hostProtocol.ts';

/** A stage's KV cache never holds more positions than this (Session.ensurePlan caps maxSeq the same way). */
export const MAX_CONTEXT_TOKENS = 4096;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 10_000;

/** How the page shows one API turn (the chat panel draws it like a typed one). */
export interface ApiTurnView {
  update(text: string): void;
  end(summary: string): void;
  fail(message: string): void;
}

export interface ApiHostOptions {
  session: Session;
  room: string;
  name: string;
  secret?: string;
  /** The model this tab serves (the chat's choice): a folder URL, a path, or a Hub repo id. */
  model: () => string;
  strategy: () => StrategyName;
  /** The relay's WebSocket URL (default: this page's server). */
  url?: string;
  onTurn?: (prompt: string) => ApiTurnView;
  onStatus?: (line: string) => void;
}

/** The id clients name the model by: a Hub repo id as is, else the folder's last path segment ("demo"). */
export function modelIdOf(location: string): string {
  if (isHubRepoId(location)) return location;
  const parts = location.split(/[?#]/)[0].split('/').filter(Boolean);
  return parts[parts.length - 1] ?? location;
}

/** Text of the tokens so far that is safe to send: not ending inside a multi-byte character. */
function settled(text: string): string {
  return text.replace(/\uFFFD+$/, '');
}

export class ApiHost {
  private ws: WebSocket | null = null;
  private closed = false;
  private backoffMs = RECONNECT_MIN_MS;
  private served = '';
  /** Request id -> the conversation slot it runs in; slots are reused so histories stay bounded. */
  private readonly running = new Map<string, string>();
  private readonly cancelled = new Set<string>();
  private readonly freeSlots: number[] = [];
  private slots = 0;

  constructor(private readonly opts: ApiHostOptions) {}

  start(): void {
    this.closed = false;
    void this.connect();
  }

  stop(): void {
    this.closed = true;
    this.ws?.close();
  }

  /** The chat's model changed: say so to the relay (by reconnecting with the new hello). */
  refresh(): void {
    if (this.opts.model() !== this.served) this.ws?.close();
  }

  private relayUrl(): string {
    if (this.opts.url) return this.opts.url;
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${API_HOST_PATH}`;
  }

  private async describe(): Promise<HostModel> {
    const location = this.opts.model();
    const model = await this.opts.session.openModel(modelBaseUrl(location));
    return {
      id: modelIdOf(location),
      location,
      contextTokens: Math.min(model.spec.maxSeqLen, MAX_CONTEXT_TOKENS),
    };
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let model: HostModel;
    try {
      model = await this.describe();
    } catch (e) {
      this.opts.onStatus?.(`API host: the model could not be opened (${errorMessage(e)}); retrying`);
      return this.retry();
    }
    const ws = new WebSocket(this.relayUrl());
    this.ws = ws;
    this.served = model.location;
    ws.onopen = () => {
      const hello: HostMessage = {
        type: 'hello',
        v: API_HOST_VERSION,
        room: this.opts.room,
        name: this.opts.name,
        models: [model],
        ...(this.opts.secret ? { secret: this.opts.secret } : {}),
      };
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      // Turns in flight cannot report any more: end them (the relay has already failed or re-queued them).
      for (const id of this.running.keys()) this.cancel(id);
      this.opts.onStatus?.('API host: disconnected from the server; reconnecting');
      this.retry();
    };
  }

  private retry(): void {
    if (this.closed) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(RECONNECT_MAX_MS, this.backoffMs * 2);
    setTimeout(() => void this.connect(), wait);
  }

  private send(msg: HostMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private onMessage(data: unknown): void {
    let msg;
    try {
      msg = parseServerToHost(JSON.parse(String(data)));
    } catch {
      msg = 'not JSON';
    }
    if (typeof msg === 'string')
      return this.opts.onStatus?.(`API host: ignored a bad message from the server (${msg})`);
    switch (msg.type) {
      case 'welcome':
        this.backoffMs = RECONNECT_MIN_MS;
        this.opts.onStatus?.(`API host: serving ${modelIdOf(this.served)} for room ${msg.room}`);
        break;
      case 'refused':
        this.opts.onStatus?.(`API host: the server refused this tab (${msg.message})`);
        this.closed = true;
        break;
      case 'cancel':
        this.cancel(msg.id);
        break;
      case 'request':
        void this.run(msg);
        break;
    }
  }

  private cancel(id: string): void {
    this.cancelled.add(id);
    const conv = this.running.get(id);
    if (conv) this.opts.session.stop(conv);
  }

  private takeSlot(): string {
    return `api-${this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.slots++}`;
  }

  private async run(req: RelayRequest): Promise<void> {
    const conv = this.takeSlot();
    this.running.set(req.id, conv);
    const view = this.opts.onTurn?.(req.messages ? (req.messages.at(-1)?.content ?? '') : (req.prompt ?? ''));
    try {
      const r = await this.generate(req, conv, view);
      if (r) view?.end(`API · ${r.tokens.length} tokens · ${r.decodeTokensPerSec.toFixed(1)} tok/s · ${r.stoppedBy}`);
    } catch (e) {
      const message = errorMessage(e);
      view?.fail(message);
      this.send({ type: 'failed', id: req.id, status: 500, message });
    } finally {
      this.running.delete(req.id);
      this.cancelled.delete(req.id);
      this.freeSlots.push(Number(conv.slice(4)));
    }
  }

  /** Tokenize, check the context, run, stream; null when the request was refused (already reported). */
  private async generate(req: RelayRequest, conv: string, view?: ApiTurnView): Promise<TurnResult | null> {
    const session = this.opts.session;
    const url = modelBaseUrl(req.location);
    const [tok, model] = await Promise.all([session.tokenizer(url), session.openModel(url)]);
    const ids = req.messages
      ? tok.applyChatTemplate(req.messages, { addGenerationPrompt: true })
      : tok.encode(req.prompt ?? '');
    const context = Math.min(model.spec.maxSeqLen, MAX_CONTEXT_TOKENS);
    const refuse = (message: string, code: string): null => {
      view?.fail(message);
      this.send({ type: 'failed', id: req.id, status: 400, message, code });
      return null;
    };
    if (ids.length === 0) return refuse('the prompt is empty', 'empty_prompt');
    if (ids.length >= context)
      return refuse(
        `the prompt is ${ids.length} tokens; this model's context is ${context} tokens`,
        'context_length_exceeded',
      );
    this.send({ type: 'started', id: req.id, promptTokens: ids.length });
    const eos = new Set(model.spec.eosTokenIds);
    let sent = '';
    const text = (tokens: number[]): string => tok.decode(tokens.filter((t) => !eos.has(t)));
    const flush = (full: string): void => {
      if (!full.startsWith(sent) || full.length === sent.length) return;
      this.send({ type: 'delta', id: req.id, text: full.slice(sent.length) });
      sent = full;
    };
    if (this.cancelled.has(req.id)) {
      this.send({ type: 'done', id: req.id, finish: 'stop', promptTokens: ids.length, completionTokens: 0 });
      return null;
    }
    const r = await session.generateIds(req.location, ids, {
      maxTokens: Math.min(req.maxTokens, context - ids.length),
      strategy: this.opts.strategy(),
      sampling: { temperature: req.temperature, topP: req.topP, seed: req.seed },
      conv,
      // The session has decoded the tokens already; only an end-of-sequence token (the last one) must not show.
      onText: (soFar, tokens) => {
        if (eos.has(tokens[tokens.length - 1])) return;
        const full = settled(soFar);
        flush(full);
        view?.update(full);
      },
    });
    if (r.stoppedBy === 'lost') throw new Error('a tab holding layers left and the mesh could not recover the turn');
    const full = text(r.tokens);
    flush(full);
    view?.update(full);
    const finish = r.stoppedBy === 'maxTokens' || r.stoppedBy === 'context' ? 'length' : 'stop';
    this.send({ type: 'done', id: req.id, finish, promptTokens: ids.length, completionTokens: r.tokens.length });
    return r;
  }
}

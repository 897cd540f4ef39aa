// Weights between the tabs of a room: each tab announces the units it holds (in its cache or in memory, with their
// hashes) and serves cached ones on request, in chunks over the mesh; a tab fetches a unit from several peers at
// once, a few chunks in flight per peer, so that pipeline messages on the same links never wait behind a layer.
import * as v from 'valibot';
import { ShoalError, errorMessage } from '../errors.ts';
import type { Mesh } from '../mesh/mesh.ts';
import { checkMessage, list, positiveInt, text, uint } from '../wire/schema.ts';
import type { LayerCache } from './layerCache.ts';

export const WEIGHTS_CHANNEL = 'weights';
/** Bytes per request. Small enough that a pipeline message queued behind a window of them waits a few ms on a LAN. */
export const CHUNK_BYTES = 128 * 1024;
/** Chunks in flight per peer: enough to fill a link's round trip, few enough to keep its queue short. */
export const WINDOW = 4;
/** A chunk not answered in this long: that peer is dropped for this unit (its chunks go to the others). */
export const CHUNK_TIMEOUT_MS = 15_000;
const MAX_UNITS = 4096;
const MAX_MODELS = 16;

/** A unit a tab holds: in its cache (it can serve it), in its stage's memory (a re-plan need not move it), or both. */
export interface Holding {
  sha256: string;
  cached: boolean;
  memory: boolean;
}

const sha = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'must be a sha256 in hex'));
const unit = text(32);
const model = text(4096);

const WeightsMessageSchema = v.variant('kind', [
  /** A tab's holdings, sent to every peer when they change and to each peer that joins. */
  v.object({
    kind: v.literal('holdings'),
    cachedBytes: uint,
    models: list(
      v.object({
        model,
        units: list(v.object({ unit, sha256: sha, cached: v.boolean(), memory: v.boolean() }), MAX_UNITS),
      }),
      MAX_MODELS,
    ),
  }),
  /** Bytes [offset, offset + length) of a cached unit, please. */
  v.object({
    kind: v.literal('want'),
    reqId: uint,
    model,
    unit,
    offset: uint,
    length: v.pipe(positiveInt, v.maxValue(CHUNK_BYTES, `must be at most ${CHUNK_BYTES}`)),
  }),
  /** The bytes asked for (binary payload). */
  v.object({ kind: v.literal('piece'), reqId: uint }),
  /** Not here (evicted, corrupt, never held). */
  v.object({ kind: v.literal('refuse'), reqId: uint, reason: text(256) }),
]);
type WeightsMessage = v.InferOutput<typeof WeightsMessageSchema>;

export interface PeerHoldings {
  cachedBytes: number;
  models: Map<string, Map<string, Holding>>;
}

interface Pending {
  peer: string;
  offset: number;
  length: number;
  timer: ReturnType<typeof setTimeout>;
  settle: (bytes: Uint8Array | null, why?: string) => void;
}

export interface PeerShareOptions {
  /** Fault injection for tests (?corruptServe): flip a byte in every chunk served. */
  corruptServe?: boolean;
}

export class PeerShare {
  private readonly peers = new Map<string, PeerHoldings>();
  /** Units this tab holds in memory (loaded by its stage), per model: their hashes. */
  private readonly memory = new Map<string, Map<string, string>>();
  private readonly pending = new Map<number, Pending>();
  /** Bytes/s each peer delivered in the last unit fetched from it (what a link really does for weights). */
  private readonly observed = new Map<string, number>();
  private nextReq = 1;
  private announceTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly listeners = new Set<() => void>();

  private cache: LayerCache | null = null;

  constructor(
    private readonly mesh: Mesh,
    private readonly opts: PeerShareOptions = {},
  ) {
    mesh.registerChannel(WEIGHTS_CHANNEL, (body) => {
      const r = checkMessage(WeightsMessageSchema, body, 'weights message');
      if (!r.ok) throw new Error(r.reason); // the mesh drops and reports it
      return r.value;
    });
    mesh.on('message', (from, msg, binary) => {
      if (msg.channel === WEIGHTS_CHANNEL) this.onMessage(from, msg.body as WeightsMessage, binary);
    });
    mesh.on('peer-joined', (p) => void this.sendHoldings(p.peerId));
    mesh.on('peer-left', (peerId) => {
      this.peers.delete(peerId);
      for (const [id, p] of this.pending) if (p.peer === peerId) this.settle(id, null, 'the peer left');
      this.changed();
    });
    for (const p of mesh.peers()) void this.sendHoldings(p.peerId);
  }

  /** The tab's cache, once open: its entries are announced and served from then on. */
  useCache(cache: LayerCache): void {
    this.cache = cache;
    cache.on('changed', () => this.announce());
    this.announce();
  }

  /** Called whenever any tab's holdings change (the peers table, the planner's inputs). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  /**
   * A cold run empties every tab's memory and caches: what peers announced before is void until they announce
   * again (so no tab asks a peer for a unit it is deleting).
   */
  forgetPeers(): void {
    for (const h of this.peers.values()) {
      h.cachedBytes = 0;
      h.models.clear();
    }
    this.changed();
  }

  /** The rate a peer last delivered a unit at, bytes/s (undefined before any). */
  observedRate(peerId: string): number | undefined {
    return this.observed.get(peerId);
  }

  /** What a peer announced (undefined before its first announcement). */
  holdingsOf(peerId: string): PeerHoldings | undefined {
    return this.peers.get(peerId);
  }

  /** Peers whose cache holds `unit` of `model` (they can serve it), each with the hash it announced. */
  holders(modelId: string, u: string): { peerId: string; sha256: string }[] {
    const out: { peerId: string; sha256: string }[] = [];
    for (const [peerId, h] of this.peers) {
      const got = h.models.get(modelId)?.get(u);
      if (got?.cached) out.push({ peerId, sha256: got.sha256 });
    }
    return out;
  }

  /** This tab's holdings of a model: its cache entries and the units its stage holds in memory. */
  own(modelId: string): Map<string, Holding> {
    const out = new Map<string, Holding>();
    for (const e of this.cache?.entries() ?? []) {
      const cut = e.key.lastIndexOf('#');
      if (e.key.slice(0, cut) === modelId)
        out.set(e.key.slice(cut + 1), { sha256: e.sha256, cached: true, memory: false });
    }
    for (const [u, s] of this.memory.get(modelId) ?? [])
      out.set(u, { sha256: s, cached: out.get(u)?.sha256 === s, memory: true });
    return out;
  }

  /** The units this tab's stage now holds in memory (replaces the previous set for that model). */
  setMemory(modelId: string, units: Map<string, string>): void {
    if (units.size) this.memory.set(modelId, new Map(units));
    else this.memory.delete(modelId);
    this.announce();
  }

  /** Every hash this tab knows for a model's units: its own first, then what peers announced. */
  knownHashes(modelId: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const h of this.peers.values()) for (const [u, x] of h.models.get(modelId) ?? []) out[u] ??= x.sha256;
    for (const [u, x] of this.own(modelId)) out[u] = x.sha256;
    return out;
  }

  /** Tell every peer what this tab holds now (coalesced: a load changes it once per unit). */
  announce(): void {
    this.changed();
    if (this.announceTimer) return;
    this.announceTimer = setTimeout(() => {
      this.announceTimer = null;
      for (const p of this.mesh.peers()) void this.sendHoldings(p.peerId);
    }, 50);
  }

  private holdingsMessage(): WeightsMessage {
    const models = new Set<string>([...this.memory.keys()]);
    for (const e of this.cache?.entries() ?? []) models.add(e.key.slice(0, e.key.lastIndexOf('#')));
    return {
      kind: 'holdings',
      cachedBytes: this.cache?.usedBytes() ?? 0,
      models: [...models].slice(0, MAX_MODELS).map((m) => ({
        model: m,
        units: [...this.own(m)].map(([u, h]) => ({ unit: u, ...h })),
      })),
    };
  }

  private async sendHoldings(peerId: string): Promise<void> {
    await this.send(peerId, this.holdingsMessage()).catch(() => undefined);
  }

  private send(to: string, body: WeightsMessage, binary?: Uint8Array): Promise<void> {
    return this.mesh.send(to, { type: 'app', channel: WEIGHTS_CHANNEL, body }, binary);
  }

  private onMessage(from: string, msg: WeightsMessage, binary: Uint8Array | null): void {
    switch (msg.kind) {
      case 'holdings':
        this.peers.set(from, {
          cachedBytes: msg.cachedBytes,
          models: new Map(msg.models.map((m) => [m.model, new Map(m.units.map(({ unit: u, ...h }) => [u, h]))])),
        });
        this.changed();
        return;
      case 'want':
        void this.serve(from, msg);
        return;
      case 'piece': {
        const p = this.pending.get(msg.reqId);
        if (!p || p.peer !== from) return;
        if (!binary || binary.length !== p.length) this.settle(msg.reqId, null, 'a chunk of the wrong size');
        else this.settle(msg.reqId, binary);
        return;
      }
      case 'refuse': {
        const p = this.pending.get(msg.reqId);
        if (p && p.peer === from) this.settle(msg.reqId, null, msg.reason);
      }
    }
  }

  /** Answer a peer's request from the cache (never from memory: the GPU holds the weights in another form). */
  private async serve(from: string, msg: Extract<WeightsMessage, { kind: 'want' }>): Promise<void> {
    const data = await this.cache?.readRange(`${msg.model}#${msg.unit}`, msg.offset, msg.length);
    if (!data) {
      await this.send(from, { kind: 'refuse', reqId: msg.reqId, reason: `${msg.unit} is not cached here` }).catch(
        () => undefined,
      );
      return;
    }
    if (this.opts.corruptServe) data[data.length >> 1] ^= 0x5a;
    await this.send(from, { kind: 'piece', reqId: msg.reqId }, data).catch(() => undefined);
  }

  private settle(reqId: number, bytes: Uint8Array | null, why?: string): void {
    const p = this.pending.get(reqId);
    if (!p) return;
    this.pending.delete(reqId);
    clearTimeout(p.timer);
    p.settle(bytes, why);
  }

  /**
   * A unit's `total` bytes from these peers, chunk by chunk: each chunk goes to the peer with the fewest in flight
   * (at most WINDOW each), so faster peers take more. A peer that refuses, times out or leaves is dropped and its
   * chunks go to the others; with none left this rejects and the caller goes to the origin. The caller checks the
   * hash of the whole.
   */
  fetch(modelId: string, u: string, total: number, peers: string[]): Promise<Uint8Array> {
    const out = new Uint8Array(total);
    const todo: number[] = [];
    for (let o = 0; o < total; o += CHUNK_BYTES) todo.push(o);
    const alive = new Set(peers);
    const inFlight = new Map<string, number>(peers.map((p) => [p, 0]));
    const got = new Map<string, number>(peers.map((p) => [p, 0]));
    const t0 = performance.now();
    let done = 0;
    const reasons: string[] = [];
    return new Promise<Uint8Array>((resolve, reject) => {
      const fail = (peer: string, offset: number, why: string) => {
        todo.push(offset);
        if (alive.delete(peer)) reasons.push(`${peer}: ${why}`);
        for (const [id, p] of this.pending) if (p.peer === peer) this.settle(id, null, why);
        pump();
      };
      const pump = () => {
        if (done === total) return;
        if (alive.size === 0) {
          for (const [id, p] of this.pending) if (!alive.has(p.peer)) this.settle(id, null);
          reject(new ShoalError('ERR_PEER_GONE', `no peer could send ${u} (${reasons.join('; ') || 'none asked'})`));
          return;
        }
        while (todo.length) {
          const peer = [...alive]
            .filter((p) => inFlight.get(p)! < WINDOW)
            .sort((a, b) => inFlight.get(a)! - inFlight.get(b)!)[0];
          if (!peer) return;
          const offset = todo.shift()!;
          const length = Math.min(CHUNK_BYTES, total - offset);
          const reqId = this.nextReq++;
          inFlight.set(peer, inFlight.get(peer)! + 1);
          const settle = (bytes: Uint8Array | null, why = 'no answer') => {
            inFlight.set(peer, inFlight.get(peer)! - 1);
            if (!alive.has(peer)) return todo.includes(offset) ? undefined : void todo.push(offset);
            if (!bytes) return fail(peer, offset, why);
            out.set(bytes, offset);
            done += length;
            got.set(peer, got.get(peer)! + length);
            if (done === total) {
              const sec = Math.max(1e-3, (performance.now() - t0) / 1000);
              for (const [p, n] of got) if (n > 0) this.observed.set(p, n / sec);
              resolve(out);
            } else pump();
          };
          const timer = setTimeout(() => this.settle(reqId, null, 'timed out'), CHUNK_TIMEOUT_MS);
          this.pending.set(reqId, { peer, offset, length, timer, settle });
          this.send(peer, { kind: 'want', reqId, model: modelId, unit: u, offset, length }).catch((e: unknown) =>
            this.settle(reqId, null, errorMessage(e)),
          );
        }
      };
      pump();
    });
  }
}

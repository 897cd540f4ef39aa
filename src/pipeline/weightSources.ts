// A tab's sources of weights for the pipeline: its persistent cache, the layers its peers hold, and the reader each
// model loads through; the unit hashes a plan carries; the per-unit load rates the planner sees for every tab.
import { errorMessage } from '../errors.ts';
import type { Mesh } from '../mesh/mesh.ts';
import type { UnitRates } from '../planner/types.ts';
import { LayerCache } from '../weights/layerCache.ts';
import { EMBED_UNIT, HEAD_UNIT, layerUnit, type LoadUnit, type ModelSource } from '../weights/model.ts';
import { PeerShare, type Holding } from '../weights/peerShare.ts';
import { unitReader, type UnitFetched } from '../weights/unitFetcher.ts';
import type { TabInfo } from './scenario.ts';

/**
 * What reading a cached unit costs, bytes/s: an OPFS read plus its sha256, a few hundred MB/s on a laptop. A
 * conservative constant, not a measurement: the planner only needs it to be far above any network.
 */
export const CACHE_BYTES_PER_SEC = 300e6;
/** A link not yet measured: what a LAN data channel moves at least. */
const UNMEASURED_LINK_BYTES_PER_SEC = 5e6;

export interface WeightSourcesOptions {
  mesh: Mesh;
  /** Keep a persistent cache (default on; ?cache=off). */
  cache?: boolean;
  /** Fetch layers from peers that hold them (default on; ?p2p=off). */
  peers?: boolean;
  /** Fault injection for tests: serve corrupted bytes to peers (?corruptServe=1). */
  corruptServe?: boolean;
  /** This tab's own origin rate, bytes/s (its profile, or the emulation cap). */
  originBytesPerSec(): number;
  onNotice(message: string): void;
  onFetched?(modelUrl: string, f: UnitFetched): void;
}

export class WeightSources {
  readonly share: PeerShare;
  cache: LayerCache | null = null;
  /** Resolves once the cache is open (or known to be unavailable). */
  readonly ready: Promise<void>;
  private readonly ids = new Map<string, string>();
  private readonly planHashes = new Map<string, Record<string, string>>();
  /** Hashes of the units this tab's stage loaded, per model id (its memory holdings are a subset). */
  private readonly loaded = new Map<string, Map<LoadUnit, string>>();

  constructor(private readonly opts: WeightSourcesOptions) {
    this.share = new PeerShare(opts.mesh, { corruptServe: opts.corruptServe });
    this.ready = (opts.cache === false ? Promise.resolve(null) : LayerCache.open())
      .catch((e: unknown) => {
        opts.onNotice(`the weight cache could not open (${errorMessage(e)}); layers load from the network`);
        return null;
      })
      .then((cache) => {
        if (!cache) return;
        this.cache = cache;
        cache.on('notice', (n) => opts.onNotice(n.message));
        this.share.useCache(cache);
      });
  }

  /** Route a freshly opened model's loads through cache, peers and origin. */
  async attach(modelUrl: string, model: ModelSource): Promise<void> {
    await this.ready;
    const modelId = await model.identity();
    this.ids.set(modelUrl, modelId);
    model.reader = unitReader({
      modelId,
      cache: this.cache,
      share: this.opts.peers === false ? null : this.share,
      planHash: (u) => this.planHashes.get(modelUrl)?.[u],
      peersFor: (u) => this.peersFor(modelId, u),
      onFetched: (f) => {
        let m = this.loaded.get(modelId);
        if (!m) this.loaded.set(modelId, (m = new Map<LoadUnit, string>()));
        m.set(f.unit, f.sha256);
        this.opts.onFetched?.(modelUrl, f);
      },
      onNotice: (msg) => this.opts.onNotice(msg),
    });
  }

  /** Peers that cache `u`, when their links beat this tab's origin. */
  private peersFor(modelId: string, u: LoadUnit): string[] {
    const origin = this.opts.originBytesPerSec();
    const links = this.opts.mesh.linkStats();
    return this.share
      .holders(modelId, u)
      .map((h) => h.peerId)
      .filter((p) => this.linkRate(p, links[p]?.bytesPerSec) > origin);
  }

  /** What a peer's link moves, bytes/s: as it last delivered weights, else as measured, else a LAN's least. */
  private linkRate(peerId: string, measured: number | null | undefined): number {
    return this.share.observedRate(peerId) ?? measured ?? UNMEASURED_LINK_BYTES_PER_SEC;
  }

  /** The hashes a plan for this model carries: what this tab and its peers recorded when the units first came. */
  hashesFor(modelUrl: string): Record<string, string> {
    const id = this.ids.get(modelUrl);
    return id ? this.share.knownHashes(id) : {};
  }

  adoptPlan(modelUrl: string, hashes: Record<string, string> | undefined): void {
    this.planHashes.set(modelUrl, hashes ?? {});
  }

  /** This tab's stage now holds `units` of the model (none: dropped); peers and planners hear of it. */
  stageHolds(modelUrl: string, units: LoadUnit[]): void {
    const id = this.ids.get(modelUrl);
    if (!id) return;
    const hashes = this.loaded.get(id) ?? new Map<LoadUnit, string>();
    const held = new Map(units.filter((u) => hashes.has(u)).map((u) => [u, hashes.get(u)!]));
    this.share.setMemory(id, held);
  }

  /** Drop every tab's memory holdings record for all models (Run from cold). */
  dropped(): void {
    for (const id of this.ids.values()) this.share.setMemory(id, new Map());
  }

  /**
   * For each tab: the units it gets faster than from the origin. Held in memory: no time. In its cache: a cache
   * read. In a peer's cache: that link, when it beats the origin (with p2p on). `dropping`: what a cold run empties
   * before it loads (memory, or memory and caches), which then counts for nothing.
   */
  unitRates(
    modelUrl: string,
    model: ModelSource,
    tabs: TabInfo[],
    originOf: (t: TabInfo) => number,
    dropping: 'nothing' | 'memory' | 'all' = 'nothing',
  ): Map<string, UnitRates> {
    const id = this.ids.get(modelUrl);
    const out = new Map<string, UnitRates>();
    if (!id || dropping === 'all') return out;
    const self = this.opts.mesh.peerId;
    const holdings = new Map<string, Map<string, Holding>>(
      tabs.map((t) => [
        t.peerId,
        t.peerId === self ? this.share.own(id) : (this.share.holdingsOf(t.peerId)?.models.get(id) ?? new Map()),
      ]),
    );
    for (const t of tabs) {
      const rates: UnitRates = {};
      const origin = originOf(t);
      for (const u of model.units()) {
        const mine = holdings.get(t.peerId)!.get(u);
        const inMemory = mine?.memory && dropping === 'nothing';
        let rate = inMemory ? Infinity : mine?.cached ? CACHE_BYTES_PER_SEC : 0;
        if (!rate && this.opts.peers !== false)
          for (const [q, h] of holdings)
            if (q !== t.peerId && h.get(u)?.cached)
              rate = Math.max(rate, t.links[q]?.bytesPerSec ?? UNMEASURED_LINK_BYTES_PER_SEC);
        if (rate > origin) setRate(rates, u, rate);
      }
      out.set(t.peerId, rates);
    }
    return out;
  }

  /** Resolves once every cache write started so far is committed (or given up). */
  async settled(): Promise<void> {
    await this.ready;
    await this.cache?.settled();
  }

  async clearCache(): Promise<void> {
    await this.ready;
    await this.cache?.clear();
  }
}

function setRate(rates: UnitRates, u: LoadUnit, rate: number): void {
  if (u === EMBED_UNIT) rates.embedding = rate;
  else if (u === HEAD_UNIT) rates.head = rate;
  else (rates.layers ??= {})[Number(u.slice(u.indexOf(':') + 1))] = rate;
}

/** The units a stage over layers [start, end) of an n-layer model holds. */
export function stageUnits(range: { start: number; end: number }, nLayers: number): LoadUnit[] {
  const units: LoadUnit[] = [];
  if (range.start === 0) units.push(EMBED_UNIT);
  for (let l = range.start; l < range.end; l++) units.push(layerUnit(l));
  if (range.end === nLayers) units.push(HEAD_UNIT);
  return units;
}

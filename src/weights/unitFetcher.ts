// Where a tab gets each unit of weights: its own cache, then peers that hold it (when predicted faster than the
// origin), then the origin. Every byte from the cache or a peer is checked against the unit's sha256 (the plan's,
// else the one recorded with it); a mismatch is reported, that source skipped, and the unit comes from the origin.
import { errorMessage } from '../errors.ts';
import { concatBytes, sha256Hex, splitBytes } from './digest.ts';
import type { LayerCache } from './layerCache.ts';
import type { LoadUnit, UnitReader } from './model.ts';
import type { PeerShare } from './peerShare.ts';

export type UnitSource = 'cache' | 'peer' | 'origin';

export interface UnitFetched {
  unit: LoadUnit;
  source: UnitSource;
  bytes: number;
  sha256: string;
  /** The peers it came from (source 'peer'). */
  peers?: string[];
}

export interface UnitFetcherDeps {
  modelId: string;
  cache: LayerCache | null;
  share: PeerShare | null;
  /** The hash the current plan names for a unit, if any. */
  planHash(unit: LoadUnit): string | undefined;
  /** Peers worth asking for a unit (they cache it and are predicted faster than the origin); [] for none. */
  peersFor(unit: LoadUnit): string[];
  onFetched(f: UnitFetched): void;
  /** Something the page should say (a corrupt entry, a peer that sent wrong bytes). */
  onNotice(message: string): void;
}

const cacheKey = (modelId: string, unit: LoadUnit) => `${modelId}#${unit}`;

/** A UnitReader over cache, peers and origin (see the header). Peers that sent bad bytes are skipped from then on. */
export function unitReader(deps: UnitFetcherDeps): UnitReader {
  const badPeers = new Set<string>();
  return async (unit, spans, origin) => {
    const total = spans.reduce((s, x) => s + x.end - x.begin, 0);
    const lengths = spans.map((x) => x.end - x.begin);
    const done = (bytes: Uint8Array, source: 'cache' | 'peer', sha: string, peers?: string[]) => {
      deps.onFetched({ unit, source, bytes: total, sha256: sha, ...(peers ? { peers } : {}) });
      return { parts: splitBytes(bytes, lengths), from: { source, ...(peers ? { peers } : {}) } };
    };
    const key = cacheKey(deps.modelId, unit);
    const cached = await deps.cache?.get(key, deps.planHash(unit)).catch(() => null);
    if (cached) return done(cached, 'cache', deps.cache!.entry(key)!.sha256);

    const peers = deps.share ? deps.peersFor(unit).filter((p) => !badPeers.has(p)) : [];
    if (peers.length) {
      const got = await fromPeers(deps, unit, total, peers, badPeers);
      if (got) return done(got.bytes, 'peer', got.sha, peers);
    }
    const parts = await origin();
    const bytes = concatBytes(parts);
    const sha = await sha256Hex(bytes);
    const want = deps.planHash(unit);
    if (want && want !== sha)
      deps.onNotice(`${unit} from the origin does not match the hash the plan names: the origin's bytes are used`);
    void deps.cache?.put(key, bytes, sha);
    deps.onFetched({ unit, source: 'origin', bytes: total, sha256: sha });
    return { parts, from: { source: 'origin' as const } };
  };
}

/** The unit from peers, checked; null (and the peers reported) when they fail or send wrong bytes. */
async function fromPeers(
  deps: UnitFetcherDeps,
  unit: LoadUnit,
  total: number,
  peers: string[],
  badPeers: Set<string>,
): Promise<{ bytes: Uint8Array; sha: string } | null> {
  const share = deps.share!;
  // The plan's hash when it names one; else every asked peer must have announced the same hash.
  const announced = new Set(
    share
      .holders(deps.modelId, unit)
      .filter((h) => peers.includes(h.peerId))
      .map((h) => h.sha256),
  );
  const want = deps.planHash(unit) ?? (announced.size === 1 ? [...announced][0] : undefined);
  if (!want) return null;
  let bytes: Uint8Array;
  try {
    bytes = await share.fetch(deps.modelId, unit, total, peers);
  } catch (e) {
    deps.onNotice(`${unit}: peers could not send it (${errorMessage(e)}); fetching it from the origin`);
    return null;
  }
  const sha = await sha256Hex(bytes);
  if (sha !== want) {
    for (const p of peers) badPeers.add(p);
    const who = peers.length > 1 ? 'those peers are' : 'that peer is';
    deps.onNotice(
      `${unit} from ${peers.join(', ')} does not match its hash: discarded, ${who} skipped; from the origin`,
    );
    return null;
  }
  void deps.cache?.put(cacheKey(deps.modelId, unit), bytes, sha);
  return { bytes, sha };
}

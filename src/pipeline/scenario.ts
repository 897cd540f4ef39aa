// Build the planner's scenario from live tab profiles ("shoal" cost model), and turn its plan into stage assignments.
import type { DeviceProfile as TabProfile, LinkStats } from '../profile/types.ts';
import type { DeviceProfile, Plan, Scenario, WeightBytes } from '../planner/types.ts';
import type { StageAssignment } from './messages.ts';

/** What the planner assumes for a tab that has not shared a profile yet (a slow CPU tab). */
export const FALLBACK_PROFILE = { flops: 1e9, loadBytesPerSec: 10e6, memoryBytes: 1e9, linkBytesPerSec: 10e6 };
/** Links not yet measured: a LAN data channel moves a few MB/s at least. */
const DEFAULT_LINK_BYTES_PER_SEC = 5e6;

export interface TabInfo {
  peerId: string;
  profile: TabProfile | null;
  /** This tab's measured links to the others (peerId -> stats), as it shares them. */
  links: Record<string, LinkStats>;
}

function bestLinkRate(links: Record<string, LinkStats>, fallback: number): number {
  const rates = Object.values(links)
    .map((l) => l.bytesPerSec)
    .filter((x): x is number => typeof x === 'number' && x > 0);
  return rates.length ? Math.min(...rates) : fallback;
}

function meanRttSec(links: Record<string, LinkStats>): number {
  const rtts = Object.values(links)
    .map((l) => l.rttMs)
    .filter((x): x is number => typeof x === 'number' && x >= 0);
  return rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length / 2000 : 0.001;
}

export function tabDevice(t: TabInfo): DeviceProfile {
  const p = t.profile;
  const link = bestLinkRate(t.links, p?.emulation.linkBytesPerSec ?? DEFAULT_LINK_BYTES_PER_SEC);
  const dev: DeviceProfile = {
    id: t.peerId,
    flops: p ? Math.max(1e6, p.matmulGflops * 1e9) : FALLBACK_PROFILE.flops,
    loadBytesPerSec: p ? Math.max(1e3, p.loadBytesPerSec) : FALLBACK_PROFILE.loadBytesPerSec,
    memoryBytes: p ? p.memoryBytes : FALLBACK_PROFILE.memoryBytes,
    uplinkBytesPerSec: link,
    downlinkBytesPerSec: link,
    latencySec: meanRttSec(t.links) + (p?.emulation.linkDelayMs ?? 0) / 1000,
  };
  if (p?.uploadBytesPerSec) dev.uploadBytesPerSec = p.uploadBytesPerSec;
  return dev;
}

/**
 * The planner's view of the room. Memory reserves the KV of `conversations` conversations of this turn's length at
 * once (the stages keep that many caches; more are evicted when idle and rebuilt if they come back).
 */
export function buildScenario(
  config: Record<string, unknown>,
  bytesPerParam: number,
  tabs: TabInfo[],
  promptTokens: number,
  decodeTokens: number,
  conversations = 1,
  weightBytes?: WeightBytes,
): Scenario {
  return {
    costModel: 'shoal',
    promptTokens: Math.max(1, promptTokens),
    decodeTokens,
    contextTokens: Math.max(1, conversations) * (Math.max(1, promptTokens) + decodeTokens),
    model: { config, bytesPerParam, ...(weightBytes ? { weightBytes } : {}) },
    devices: tabs.map(tabDevice),
  };
}

export function planToAssignments(plan: Pick<Plan, 'stages'>): StageAssignment[] {
  return plan.stages.map((s) => ({ peer: s.device, start: s.first - 1, end: s.last }));
}

/**
 * After a loss: the broken plan with each lost tab's layers given to the surviving stage upstream of them (the one
 * downstream where no stage upstream survives), so only the lost layers move. Null when no stage survives.
 */
export function repairPlan(stages: StageAssignment[], alive: ReadonlySet<string>): StageAssignment[] | null {
  const out: StageAssignment[] = [];
  let orphanStart: number | null = null; // lost layers ahead of the first survivor
  for (const s of stages) {
    if (alive.has(s.peer)) {
      out.push({ ...s, start: orphanStart ?? s.start });
      orphanStart = null;
    } else if (out.length > 0) out[out.length - 1] = { ...out[out.length - 1], end: s.end };
    else orphanStart ??= s.start;
  }
  return out.length > 0 ? out : null;
}

/** Engine ranges as the planner's 1-based inclusive stages (to evaluate or simulate a plan that is not its own). */
export function assignmentsToPlan(stages: StageAssignment[]): Pick<Plan, 'stages'> {
  return { stages: stages.map((s) => ({ device: s.peer, first: s.start + 1, last: s.end })) };
}

// Which verifier pipeline each person's tab uses when a room holds several of each (the association problem of
// PAPERS.md section 3, scaled to a room). Pure: a best-gain start, then improving moves and swaps, against the
// paper's baselines (random, best link, most compute). No reinforcement learning: the utility is explicit.
import { ShoalError } from '../errors.ts';
import { seededRandom } from '../model/sampler.ts';
import { bestSequential } from './draftLength.ts';

export interface AssocUser {
  id: string;
  /** The user's draft: per-token acceptance against the target and ms per drafted token on this device. */
  alpha: number;
  draftMsPerToken: number;
  /** Round trip to each pipeline (ms, link and hops; Infinity when unreachable). */
  linkMs: Record<string, number>;
}

export interface AssocPipeline {
  id: string;
  /** Target compute per verified position when serving one user alone (ms). */
  msPerPosition: number;
  /** Fixed compute per verification pass (ms). */
  msPerPass: number;
}

export type Association = Record<string, string>; // user id -> pipeline id

const GAMMA_MAX = 16;

/**
 * Expected tokens/s of one user on a pipeline that serves `load` users: each pass waits behind the others' passes
 * (round-robin sharing of the pipeline's compute), and the user picks its best draft length for that round time.
 */
export function userRate(u: AssocUser, p: AssocPipeline, load: number): number {
  const link = u.linkMs[p.id];
  if (!(link >= 0 && Number.isFinite(link))) return 0;
  const costs = {
    alpha: u.alpha,
    draftMsPerToken: u.draftMsPerToken,
    roundTripMs: (positions: number) => link + load * (p.msPerPass + p.msPerPosition * positions),
  };
  return bestSequential(costs, 1, GAMMA_MAX).tokensPerSec;
}

/** The room's total expected tokens/s under an association. */
export function totalRate(users: AssocUser[], pipelines: AssocPipeline[], a: Association): number {
  const load = new Map<string, number>();
  for (const u of users) if (a[u.id]) load.set(a[u.id], (load.get(a[u.id]) ?? 0) + 1);
  let total = 0;
  for (const u of users) {
    const p = pipelines.find((x) => x.id === a[u.id]);
    if (p) total += userRate(u, p, load.get(p.id)!);
  }
  return total;
}

function check(users: AssocUser[], pipelines: AssocPipeline[]): void {
  if (pipelines.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'association needs at least one verifier pipeline');
  for (const u of users)
    if (!(u.alpha >= 0 && u.alpha <= 1) || !(u.draftMsPerToken >= 0))
      throw new ShoalError('ERR_BAD_ARGS', `user ${u.id}: alpha must be in [0, 1] and draftMsPerToken >= 0`);
}

/** Best-gain start: repeatedly add the (user, pipeline) pair that raises the total the most. */
export function bestGainStart(users: AssocUser[], pipelines: AssocPipeline[]): Association {
  check(users, pipelines);
  const a: Association = {};
  const left = new Set(users.map((u) => u.id));
  while (left.size > 0) {
    let best: { user: string; pipe: string; total: number } | null = null;
    for (const uid of left) {
      for (const p of pipelines) {
        const total = totalRate(users, pipelines, { ...a, [uid]: p.id });
        if (!best || total > best.total) best = { user: uid, pipe: p.id, total };
      }
    }
    a[best!.user] = best!.pipe;
    left.delete(best!.user);
  }
  return a;
}

/** Improving moves (one user changes pipeline) and swaps (two users trade), until none raises the total. */
export function improve(
  users: AssocUser[],
  pipelines: AssocPipeline[],
  start: Association,
  maxPasses = 100,
): Association {
  let a = { ...start };
  let cur = totalRate(users, pipelines, a);
  for (let pass = 0; pass < maxPasses; pass++) {
    let improved = false;
    for (const u of users) {
      for (const p of pipelines) {
        if (a[u.id] === p.id) continue;
        const b = { ...a, [u.id]: p.id };
        const t = totalRate(users, pipelines, b);
        if (t > cur + 1e-9) {
          a = b;
          cur = t;
          improved = true;
        }
      }
    }
    for (let i = 0; i < users.length; i++) {
      for (let j = i + 1; j < users.length; j++) {
        const ui = users[i].id,
          uj = users[j].id;
        if (a[ui] === a[uj]) continue;
        const b = { ...a, [ui]: a[uj], [uj]: a[ui] };
        const t = totalRate(users, pipelines, b);
        if (t > cur + 1e-9) {
          a = b;
          cur = t;
          improved = true;
        }
      }
    }
    if (!improved) break;
  }
  return a;
}

/** The matching: best-gain start plus improving moves and swaps. */
export function associate(users: AssocUser[], pipelines: AssocPipeline[]): Association {
  return improve(users, pipelines, bestGainStart(users, pipelines));
}

export function randomAssociation(users: AssocUser[], pipelines: AssocPipeline[], seed = 1): Association {
  check(users, pipelines);
  const rand = seededRandom(seed);
  return Object.fromEntries(users.map((u) => [u.id, pipelines[Math.floor(rand() * pipelines.length)].id]));
}

/** Each user takes the pipeline with its shortest round trip (the paper's best-signal server). */
export function bestLinkAssociation(users: AssocUser[], pipelines: AssocPipeline[]): Association {
  check(users, pipelines);
  return Object.fromEntries(
    users.map((u) => [
      u.id,
      pipelines.reduce((b, p) => ((u.linkMs[p.id] ?? Infinity) < (u.linkMs[b.id] ?? Infinity) ? p : b)).id,
    ]),
  );
}

/** Everyone takes the fastest pipeline (the paper's most-compute server). */
export function mostComputeAssociation(users: AssocUser[], pipelines: AssocPipeline[]): Association {
  check(users, pipelines);
  const fastest = pipelines.reduce((b, p) =>
    p.msPerPass + p.msPerPosition * 5 < b.msPerPass + b.msPerPosition * 5 ? p : b,
  );
  return Object.fromEntries(users.map((u) => [u.id, fastest.id]));
}

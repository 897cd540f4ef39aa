// Labelled multi-turn workloads for calibration and the routing benchmark: JSONL, one conversation per line,
// {"id": "c1", "turns": [{"p": 0.3, "needsLarge": false, "queryTokens": 24, "outTokens": 32}, ...]}.
import { ShoalError } from '../errors.ts';
import { seededRandom } from '../model/sampler.ts';

export interface WorkloadTurn {
  /** Difficulty score the scorer gave this query, in [0, 1]. */
  p: number;
  /** Ground truth: only the large model answers this one well enough. */
  needsLarge: boolean;
  queryTokens: number;
  outTokens: number;
}

export interface Conversation {
  id: string;
  turns: WorkloadTurn[];
}

const MAX_TOKENS_PER_TURN = 1 << 16;

export function parseWorkload(jsonl: string): Conversation[] {
  const out: Conversation[] = [];
  for (const [i, raw] of jsonl.split('\n').entries()) {
    const line = raw.trim();
    if (!line) continue;
    const where = `workload line ${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new ShoalError('ERR_BAD_ARGS', `${where} is not JSON`);
    }
    const o = v as { id?: unknown; turns?: unknown };
    if (typeof o !== 'object' || o === null || !Array.isArray(o.turns) || o.turns.length === 0)
      throw new ShoalError('ERR_BAD_ARGS', `${where}: expected {"id": ..., "turns": [...]} with at least one turn`);
    const turns = o.turns.map((t: unknown, j: number): WorkloadTurn => {
      const x = t as Record<string, unknown>;
      const tok = (k: string): number => {
        const n = x?.[k];
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_TOKENS_PER_TURN)
          throw new ShoalError(
            'ERR_BAD_ARGS',
            `${where} turn ${j + 1}: ${k} must be an integer in 1..${MAX_TOKENS_PER_TURN}`,
          );
        return n;
      };
      if (typeof x?.p !== 'number' || !(x.p >= 0 && x.p <= 1))
        throw new ShoalError('ERR_BAD_ARGS', `${where} turn ${j + 1}: p must be a number in [0, 1]`);
      if (typeof x.needsLarge !== 'boolean')
        throw new ShoalError('ERR_BAD_ARGS', `${where} turn ${j + 1}: needsLarge must be true or false`);
      return { p: x.p, needsLarge: x.needsLarge, queryTokens: tok('queryTokens'), outTokens: tok('outTokens') };
    });
    out.push({ id: typeof o.id === 'string' ? o.id : `c${out.length + 1}`, turns });
  }
  if (out.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'the workload has no conversations');
  return out;
}

export function formatWorkload(convs: Conversation[]): string {
  return convs.map((c) => JSON.stringify(c)).join('\n') + '\n';
}

export interface SyntheticOptions {
  /** Turns per conversation, drawn uniformly from minTurns..maxTurns (default 2..8). */
  minTurns?: number;
  maxTurns?: number;
}

/**
 * A synthetic workload: conversations of 2..8 turns (or opts' range); about 30% of queries need the large model.
 * The scorer is imperfect on purpose: p of "needs large" queries is high (0.55..1), of the others spread over
 * 0..0.8, so a threshold that keeps every hard query also sends some easy ones to the large model. Queries are
 * 8..96 tokens, answers 8..64.
 */
export function syntheticWorkload(nConversations: number, seed = 1, opts: SyntheticOptions = {}): Conversation[] {
  const minTurns = opts.minTurns ?? 2,
    maxTurns = opts.maxTurns ?? 8;
  if (!(Number.isInteger(minTurns) && Number.isInteger(maxTurns) && minTurns >= 1 && maxTurns >= minTurns))
    throw new ShoalError(
      'ERR_BAD_ARGS',
      `turns per conversation must be integers with 1 <= min <= max, got ${minTurns}..${maxTurns}`,
    );
  const rand = seededRandom(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const convs: Conversation[] = [];
  for (let c = 0; c < nConversations; c++) {
    const turns: WorkloadTurn[] = [];
    const n = int(minTurns, maxTurns);
    for (let t = 0; t < n; t++) {
      const needsLarge = rand() < 0.3;
      const p = needsLarge ? 0.55 + 0.45 * rand() : 0.8 * rand();
      turns.push({ p: Math.round(p * 1000) / 1000, needsLarge, queryTokens: int(8, 96), outTokens: int(8, 64) });
    }
    convs.push({ id: `c${c + 1}`, turns });
  }
  return convs;
}

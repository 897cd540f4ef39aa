// Association of person tabs to verifier pipelines: the matching never ends below its start, and on constructed
// rooms it beats the random, best-link and most-compute baselines.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AssocPipeline, AssocUser } from './association.ts';
import {
  associate,
  bestGainStart,
  bestLinkAssociation,
  improve,
  mostComputeAssociation,
  randomAssociation,
  totalRate,
} from './association.ts';

const pipe = (id: string, msPerPass: number, msPerPosition: number): AssocPipeline => ({
  id,
  msPerPass,
  msPerPosition,
});
const user = (id: string, alpha: number, linkMs: Record<string, number>, draftMsPerToken = 2): AssocUser => ({
  id,
  alpha,
  draftMsPerToken,
  linkMs,
});

describe('association', () => {
  it('improving moves and swaps never end below their start (random rooms)', () => {
    const room = fc.record({
      pipes: fc.array(fc.record({ pass: fc.integer({ min: 1, max: 60 }), pos: fc.integer({ min: 0, max: 10 }) }), {
        minLength: 1,
        maxLength: 4,
      }),
      users: fc.array(
        fc.record({
          alpha: fc.double({ min: 0, max: 0.95, noNaN: true }),
          draft: fc.integer({ min: 1, max: 20 }),
          links: fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 4, maxLength: 4 }),
        }),
        { minLength: 1, maxLength: 7 },
      ),
      seed: fc.integer({ min: 0, max: 1000 }),
    });
    fc.assert(
      fc.property(room, ({ pipes, users, seed }) => {
        const ps = pipes.map((p, i) => pipe(`p${i}`, p.pass, p.pos));
        const us = users.map((u, i) =>
          user(`u${i}`, u.alpha, Object.fromEntries(ps.map((p, j) => [p.id, u.links[j]])), u.draft),
        );
        for (const start of [
          bestGainStart(us, ps),
          randomAssociation(us, ps, seed),
          bestLinkAssociation(us, ps),
          mostComputeAssociation(us, ps),
        ]) {
          expect(totalRate(us, ps, improve(us, ps, start))).toBeGreaterThanOrEqual(totalRate(us, ps, start) - 1e-9);
        }
        const a = associate(us, ps);
        expect(Object.keys(a).sort()).toEqual(us.map((u) => u.id).sort());
        expect(totalRate(us, ps, a)).toBeGreaterThanOrEqual(totalRate(us, ps, bestGainStart(us, ps)) - 1e-9);
      }),
      { numRuns: 150, seed: 8 },
    );
  });

  it('a room where everyone is closest to the strongest pipeline: spreading the load beats every baseline', () => {
    const ps = [pipe('desk', 12, 2), pipe('laptops', 25, 4), pipe('phones', 60, 8)];
    const us = Array.from({ length: 6 }, (_, i) => user(`u${i}`, 0.8, { desk: 5 + i, laptops: 15 + i, phones: 30 }));
    const matched = totalRate(us, ps, associate(us, ps));
    for (const [name, a] of [
      ['best link', bestLinkAssociation(us, ps)],
      ['most compute', mostComputeAssociation(us, ps)],
    ] as const) {
      expect(matched, name).toBeGreaterThan(totalRate(us, ps, a) * 1.05);
    }
    // random can land on a good split by luck: compare with its mean, and never below any draw
    const randoms = Array.from({ length: 20 }, (_, s) => totalRate(us, ps, randomAssociation(us, ps, s + 1)));
    expect(matched).toBeGreaterThan((randoms.reduce((x, y) => x + y, 0) / randoms.length) * 1.05);
    expect(matched).toBeGreaterThanOrEqual(Math.max(...randoms) - 1e-9);
    // both strong pipelines are used
    expect(new Set(Object.values(associate(us, ps))).size).toBeGreaterThanOrEqual(2);
  });

  it('a room with a far strong pipeline: best link and most compute each lose to the matching', () => {
    const ps = [pipe('cloudish', 5, 1), pipe('local', 30, 5)];
    const us = [
      user('near1', 0.6, { cloudish: 120, local: 4 }),
      user('near2', 0.6, { cloudish: 120, local: 6 }),
      user('far1', 0.9, { cloudish: 20, local: 80 }),
      user('far2', 0.9, { cloudish: 25, local: 90 }),
      user('mid', 0.7, { cloudish: 40, local: 35 }),
    ];
    const matched = totalRate(us, ps, associate(us, ps));
    expect(matched).toBeGreaterThan(totalRate(us, ps, mostComputeAssociation(us, ps)));
    expect(matched).toBeGreaterThanOrEqual(totalRate(us, ps, bestLinkAssociation(us, ps)));
    expect(matched).toBeGreaterThan(totalRate(us, ps, randomAssociation(us, ps, 1)));
  });

  it('rejects bad input with a clear error', () => {
    expect(() => associate([user('u', 2, {})], [pipe('p', 1, 1)])).toThrow(/alpha/);
    expect(() => associate([], [])).toThrow(/pipeline/);
  });
});

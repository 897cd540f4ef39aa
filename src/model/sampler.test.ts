// The sampler: greedy is argmax; seeded sampling draws token k from draw k of the seed, so a resumed turn is exact.
import { describe, expect, it } from 'vitest';
import { seededDraw, seededRandom } from '../random.ts';
import { Sampler, argmax } from './sampler.ts';

describe('seededDraw', () => {
  it('equals the k-th value of the sequential generator', () => {
    for (const seed of [0, 1, 42, 0xffffffff]) {
      const rand = seededRandom(seed);
      for (let k = 0; k < 50; k++) expect(seededDraw(seed, k)).toBe(rand());
    }
  });
});

describe('Sampler', () => {
  const rows = Array.from({ length: 20 }, (_, r) =>
    Float32Array.from({ length: 16 }, (_, i) => Math.sin(r * 7 + i * 3)),
  );

  it('greedy takes the argmax', () => {
    const s = new Sampler();
    for (const row of rows) expect(s.sample(row)).toBe(argmax(row));
  });

  it('resumed at token k samples what an uninterrupted run samples', () => {
    const opts = { temperature: 1.3, topP: 0.9, seed: 7 };
    const whole = new Sampler(opts);
    const all = rows.map((r) => whole.sample(r));
    const resumed = new Sampler(opts);
    expect(rows.slice(9).map((r, i) => resumed.sample(r, 9 + i))).toEqual(all.slice(9));
    expect(new Set(all).size, 'not a constant').toBeGreaterThan(1);
  });
});

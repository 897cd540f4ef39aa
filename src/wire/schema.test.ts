// The shared wire-schema pieces: their limits, and a check that explains a refusal and never throws.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as v from 'valibot';
import {
  checkMessage,
  dropUndefinedKeys,
  durationMs,
  finite,
  nonEmptyText,
  parseOrNull,
  record,
  text,
  uint,
} from './schema.ts';

const ok = (schema: v.GenericSchema, x: unknown) => v.safeParse(schema, x).success;

describe('wire schema pieces', () => {
  it('numbers: finite, integers, durations', () => {
    for (const x of [0, -1.5, 1e300]) expect(ok(finite, x)).toBe(true);
    for (const x of [NaN, Infinity, '1', null]) expect(ok(finite, x)).toBe(false);
    for (const x of [0, 7, 2 ** 53]) expect(ok(uint, x)).toBe(true);
    for (const x of [-1, 1.5, NaN, Infinity, '3']) expect(ok(uint, x)).toBe(false);
    // the computeMs rule: a duration, not negative, finite, under an hour
    for (const x of [0, 4.5, 3_599_999]) expect(ok(durationMs, x)).toBe(true);
    for (const x of [-1, -0.001, 3_600_000, 1e9, Infinity, NaN, 'x']) expect(ok(durationMs, x)).toBe(false);
  });

  it('strings and maps keep their limits', () => {
    expect(ok(text(3), '')).toBe(true);
    expect(ok(text(3), 'abcd')).toBe(false);
    expect(ok(nonEmptyText(3), '')).toBe(false);
    const map = record(uint, 2, 3);
    expect(ok(map, { a: 1, bb: 2 })).toBe(true);
    expect(ok(map, { a: 1, b: 2, c: 3 })).toBe(false); // too many entries
    expect(ok(map, { abcd: 1 })).toBe(false); // key too long
    expect(ok(map, [1])).toBe(false); // an array is not a map
    expect(ok(map, null)).toBe(false);
  });

  it('dropUndefinedKeys removes only undefined values', () => {
    expect(Object.keys(dropUndefinedKeys({ a: 1, b: undefined, c: null, d: 0 }))).toEqual(['a', 'c', 'd']);
  });
});

describe('checkMessage', () => {
  const Msg = v.variant('kind', [
    v.object({ kind: v.literal('a'), n: uint, inner: v.object({ s: text(4) }) }),
    v.pipe(
      v.object({ kind: v.literal('b'), lo: uint, hi: uint }),
      v.forward(
        v.check((m) => m.hi > m.lo, 'must be above lo'),
        ['hi'],
      ),
    ),
  ]);

  it('returns the value, without unknown keys', () => {
    expect(checkMessage(Msg, { kind: 'a', n: 1, inner: { s: 'x', junk: 1 }, extra: 2 }, 'msg')).toEqual({
      ok: true,
      value: { kind: 'a', n: 1, inner: { s: 'x' } },
    });
  });

  it('explains a refusal by kind and field', () => {
    const reason = (x: unknown) => {
      const r = checkMessage(Msg, x, 'msg');
      return r.ok ? null : [r.reason, r.unknownKind];
    };
    expect(reason([])).toEqual(['msg is not an object', false]);
    expect(reason(null)).toEqual(['msg is not an object', false]);
    expect(reason({ kind: 'zz' })).toEqual(['unknown msg kind "zz"', true]);
    expect(reason({})).toEqual(['unknown msg kind "undefined"', true]);
    expect(reason({ kind: 'a', n: -1, inner: { s: '' } })).toEqual(['a.n: must be a non-negative integer', false]);
    expect(reason({ kind: 'a', n: 1, inner: { s: 'toolong' } })).toEqual([
      'a.inner.s: must be a string of at most 4 characters',
      false,
    ]);
    expect(reason({ kind: 'a', n: 1 })).toEqual(['a.inner: is missing', false]);
    expect(reason({ kind: 'b', lo: 2, hi: 2 })).toEqual(['b.hi: must be above lo', false]);
  });

  it('keeps a reason short whatever arrived', () => {
    const r = checkMessage(Msg, { kind: 'x'.repeat(100_000) }, 'msg');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason.length).toBeLessThan(100);
  });

  it('never throws, whatever it is given', () => {
    const odd: unknown[] = [
      Object.create(null),
      { kind: Object.create(null) as unknown },
      { kind: Symbol('k') },
      { kind: 'a', n: 1n },
    ];
    for (const x of odd) expect(() => checkMessage(Msg, x, 'msg')).not.toThrow();
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withBigInt: true, withMap: true }), (x) => {
        expect(checkMessage(Msg, x, 'msg').ok).toBe(false);
        expect(parseOrNull(Msg, x)).toBeNull();
      }),
      { numRuns: 500 },
    );
  });
});

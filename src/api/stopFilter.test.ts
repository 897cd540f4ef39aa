// Stop strings over streamed text: cut before the first one, however the text is split into pieces.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { StopFilter } from './stopFilter.ts';

function run(stops: string[], pieces: string[]): { out: string; stopped: boolean } {
  const f = new StopFilter(stops);
  let out = '';
  for (const p of pieces) out += f.push(p);
  out += f.flush();
  return { out, stopped: f.stopped };
}

describe('StopFilter', () => {
  it('passes text through when there are no stop strings', () => {
    expect(run([], ['ab', 'c'])).toEqual({ out: 'abc', stopped: false });
  });

  it('cuts before a stop string split across pieces and drops the rest', () => {
    expect(run(['END'], ['hello E', 'N', 'D and more', 'x'])).toEqual({ out: 'hello ', stopped: true });
  });

  it('sends a held prefix that did not become a stop string', () => {
    const f = new StopFilter(['\n\n']);
    expect(f.push('a\n')).toBe('a');
    expect(f.push('b')).toBe('\nb');
    expect(f.flush()).toBe('');
  });

  it('stops at the earliest of several stop strings', () => {
    expect(run(['yz', 'b'], ['xyzab'])).toEqual({ out: 'x', stopped: true });
  });

  it('equals cutting the whole text at the first stop, for any split', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', 'b', 'c'), maxLength: 30 }),
        fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'c'), minLength: 1, maxLength: 3 }), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.array(fc.nat(30), { maxLength: 6 }),
        (text, stops, cuts) => {
          const at = [...new Set(cuts.map((c) => Math.min(c, text.length)))].sort((a, b) => a - b);
          const pieces = [0, ...at, text.length].slice(1).map((end, i, ends) => text.slice(i ? ends[i - 1] : 0, end));
          const first = Math.min(...stops.map((s) => (text.includes(s) ? text.indexOf(s) : Infinity)));
          const got = run(stops, pieces);
          expect(got.out).toBe(Number.isFinite(first) ? text.slice(0, first) : text);
          expect(got.stopped).toBe(Number.isFinite(first));
        },
      ),
    );
  });
});

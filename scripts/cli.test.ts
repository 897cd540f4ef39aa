// The flag parser every CLI shares (node:util parseArgs underneath): what it accepts and the one-line errors it gives.
import { describe, expect, it } from 'vitest';
import { intFlag, parseFlags } from './cli.ts';

const known = { values: ['out', 'seed'], switches: ['json', 'help'] } as const;

describe('parseFlags', () => {
  it('takes --name value, --name=value (any text, a leading - included) and switches; -h is --help', () => {
    expect(parseFlags(['--out', 'a=b', '--seed=-1', '--json'], known)).toEqual({ out: 'a=b', seed: '-1', json: true });
    expect(parseFlags(['--seed', '-1', '-h'], known)).toEqual({ seed: '-1', help: true });
    expect(parseFlags(['--seed=--x'], known)).toEqual({ seed: '--x' });
    expect(parseFlags([], known)).toEqual({});
  });

  it.each([
    [['--bogus'], /^unknown flag --bogus \(known: --out --seed --json --help\); usage$/],
    [['-x'], /^unknown flag -x /],
    [['pos'], /^unexpected argument "pos"; usage$/],
    [['--', 'x'], /^unexpected argument "--"/],
    [['--out'], /^--out needs a value; usage$/],
    [['--out', '--json'], /^--out needs a value/],
    [['--json=yes'], /^--json takes no value/],
  ])('rejects %j in one line', (argv, message) => {
    expect(() => parseFlags(argv, known, '; usage')).toThrow(message);
  });

  it('reads integers with a floor', () => {
    const f = parseFlags(['--seed', '7'], known);
    expect(intFlag(f, 'seed', 0)).toBe(7);
    expect(intFlag(f, 'out', 3)).toBe(3);
    const negative = parseFlags(['--seed', '-1'], known);
    expect(() => intFlag(negative, 'seed', 0)).toThrow(/--seed must be an integer >= 0 \(got -1\)/);
  });
});

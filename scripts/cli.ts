// Shared command-line plumbing: --flag value parsing and the "one line on stderr, non-zero exit" error rule.
import { ShoalError, errorMessage, isShoalError } from '../src/errors.ts';

export type Flags = Record<string, string | true>;

/** Parse `--name value` and bare `--switch` flags; rejects anything not in `known`. */
export function parseFlags(argv: string[], known: { values: string[]; switches: string[] }): Flags {
  const out: Flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new ShoalError('ERR_BAD_ARGS', `unexpected argument "${a}"`);
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    if (known.switches.includes(name)) out[name] = true;
    else if (known.values.includes(name)) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new ShoalError('ERR_BAD_ARGS', `--${name} needs a value`);
      out[name] = v;
    } else throw new ShoalError('ERR_BAD_ARGS', `unknown flag --${name} (known: ${[...known.values, ...known.switches].map((f) => '--' + f).join(' ')})`);
  }
  return out;
}

export function intFlag(flags: Flags, name: string, fallback: number, min = 0): number {
  const v = flags[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < min) throw new ShoalError('ERR_BAD_ARGS', `--${name} must be an integer >= ${min} (got ${String(v)})`);
  return n;
}

/** Run a CLI main: bad input prints one line and exits 1; an unexpected bug keeps its stack. */
export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (isShoalError(e)) process.stderr.write(`error: ${errorMessage(e)}\n`);
    else process.stderr.write(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  }
}

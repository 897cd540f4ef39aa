// Shared command-line plumbing: flags parsed by node:util parseArgs, checked into one-line errors, and the "one line on
// stderr, non-zero exit" error rule.
import { parseArgs } from 'node:util';
import { ShoalError, errorMessage, isShoalError } from '../src/errors.ts';

/** Parsed flags: a value flag's text, a switch's true; absent when not given. */
export type Flags<V extends string, S extends string> = { [K in V]?: string } & { [K in S]?: true };
/** Any parsed flags, by name. */
export type FlagValues = Partial<Record<string, string | true>>;

/**
 * Parse `--name value`, `--name=value` and bare `--switch` flags (a `help` switch also answers to -h). Anything else is
 * an ERR_BAD_ARGS with one line: an unknown flag (the known ones listed), a positional, a missing value (a value flag
 * followed by another flag or nothing), a value given to a switch. `hint` is appended to each message (a usage line).
 * parseArgs' own strict mode is not used: it rejects a value that starts with '-' (`--seed -1`) before we can say why.
 */
export function parseFlags<const V extends string, const S extends string = never>(
  argv: string[],
  known: { values: readonly V[]; switches: readonly S[] },
  hint = '',
): Flags<V, S> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const name of known.values) options[name] = { type: 'string' };
  for (const name of known.switches) options[name] = { type: 'boolean', ...(name === 'help' ? { short: 'h' } : {}) };
  const bad = (message: string) => new ShoalError('ERR_BAD_ARGS', message + hint);
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const out: Record<string, string | true> = {};
  for (const t of tokens) {
    if (t.kind === 'positional') throw bad(`unexpected argument "${t.value}"`);
    if (t.kind === 'option-terminator') throw bad('unexpected argument "--"');
    const option = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (!option) {
      const all = [...known.values, ...known.switches].map((f) => '--' + f).join(' ');
      throw bad(`unknown flag ${t.rawName} (known: ${all})`);
    }
    if (option.type === 'boolean') {
      if (t.value !== undefined) throw bad(`${t.rawName} takes no value`);
      out[t.name] = true;
    } else {
      const missing = t.value === undefined || (!t.inlineValue && t.value.startsWith('--'));
      if (missing) throw bad(`${t.rawName} needs a value`);
      out[t.name] = t.value;
    }
  }
  return out as Flags<V, S>;
}

export function intFlag(flags: FlagValues, name: string, fallback: number, min = 0): number {
  const v = flags[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < min)
    throw new ShoalError('ERR_BAD_ARGS', `--${name} must be an integer >= ${min} (got ${String(v)})`);
  return n;
}

/** Run a CLI main: bad input prints one line and exits 1; an unexpected bug keeps its stack. */
export async function runCli(main: () => Promise<void> | void): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (isShoalError(e)) process.stderr.write(`error: ${errorMessage(e)}\n`);
    else process.stderr.write(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  }
}

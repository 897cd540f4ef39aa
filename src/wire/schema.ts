// Shared pieces of the wire schemas (mesh, signaling, pipeline, device profiles), on valibot: the building blocks
// with their limits, and one parse step that never throws and explains a refusal as "<kind>.<field>: <rule>".
// valibot was chosen over zod/mini for its smaller bundle and faster validation (figures in the commit message).
import * as v from 'valibot';

/** A duration a peer reports may not reach an hour, ms. */
export const MAX_DURATION_MS = 3_600_000;
/** Longest refusal reason, characters: reasons quote what arrived, and a peer controls that. */
const MAX_REASON_CHARS = 200;

/** A JSON object: not null, not an array (valibot's object() and record() also take arrays). */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export const plainObject = v.custom<Record<string, unknown>>(isPlainObject, 'must be an object');

// Each rule carries its message on every step (not one v.message() around it, which copies the config per field).

/** A finite number (JSON has no NaN or Infinity, but an object built in this tab might). */
const FINITE = 'must be a finite number';
export const finite = v.pipe(v.number(FINITE), v.finite(FINITE));

/** A finite number at least `min`. */
export const atLeast = (min: number) => {
  const rule = `must be a finite number >= ${min}`;
  return v.pipe(v.number(rule), v.finite(rule), v.minValue(min, rule));
};

export const nonNegative = atLeast(0);

const UINT = 'must be a non-negative integer';
export const uint = v.pipe(v.number(UINT), v.integer(UINT), v.minValue(0, UINT));

const POSITIVE_INT = 'must be a positive integer';
export const positiveInt = v.pipe(v.number(POSITIVE_INT), v.integer(POSITIVE_INT), v.minValue(1, POSITIVE_INT));

/** A duration a peer reports, ms: finite, not negative, under an hour. */
const DURATION = 'must be a duration in ms: finite, not negative, under an hour';
export const durationMs = v.pipe(
  v.number(DURATION),
  v.finite(DURATION),
  v.minValue(0, DURATION),
  v.ltValue(MAX_DURATION_MS, DURATION),
);

/** A string of at most `max` characters (may be empty). */
export const text = (max: number) => {
  const rule = `must be a string of at most ${max} characters`;
  return v.pipe(v.string(rule), v.maxLength(max, rule));
};

/** A string of 1 to `max` characters. */
export const nonEmptyText = (max: number) => {
  const rule = `must be a string of 1-${max} characters`;
  return v.pipe(v.string(rule), v.minLength(1, rule), v.maxLength(max, rule));
};

/** A list of at most `max` items. */
export const list = <T extends v.GenericSchema>(item: T, max: number) =>
  v.pipe(v.array(item), v.maxLength(max, `must be a list of at most ${max} items`));

/** An object used as a map: at most `max` entries, keys of at most `maxKey` characters. */
export const record = <T extends v.GenericSchema>(value: T, max: number, maxKey: number) =>
  v.pipe(
    plainObject,
    v.maxEntries(max, `must have at most ${max} entries`),
    v.record(v.pipe(v.string(), v.maxLength(maxKey, `keys must be at most ${maxKey} characters`)), value),
  );

/**
 * For an object with lenient fields (v.fallback(v.optional(x), undefined): kept when valid, dropped when not): remove
 * the keys a malformed value left as undefined, as if they had not been sent.
 */
export function dropUndefinedKeys<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

const CONFIG: v.Config<v.BaseIssue<unknown>> = {
  abortEarly: true,
  abortPipeEarly: true,
  // Only for schemas without a message of their own (literals, booleans, missing keys).
  message: (issue) =>
    issue.received === 'undefined' ? 'is missing' : `expected ${String(issue.expected)}, got ${issue.received}`,
};

/** A union of object schemas told apart by the literal value of one key (`type`, `kind`). */
type Variant = v.VariantSchema<string, v.VariantOptions<string>, v.ErrorMessage<v.VariantIssue> | undefined>;

const optionsCache = new WeakMap<Variant, Map<unknown, v.GenericSchema>>();

/** A variant's options by their key's literal: one lookup instead of trying each option's key in turn. */
function optionsByKind(schema: Variant): Map<unknown, v.GenericSchema> {
  let byKind = optionsCache.get(schema);
  if (!byKind) {
    byKind = new Map();
    for (const option of schema.options) {
      const literal = (option as { entries?: Record<string, { literal?: unknown }> }).entries?.[schema.key]?.literal;
      if (literal === undefined) throw new Error(`a variant option has no literal ${schema.key}`);
      byKind.set(literal, option);
    }
    optionsCache.set(schema, byKind);
  }
  return byKind;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string; unknownKind: boolean };

const refuse = (reason: string, unknownKind = false): { ok: false; reason: string; unknownKind: boolean } => ({
  ok: false,
  reason: reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}...` : reason,
  unknownKind,
});

/** A value a peer sent, shown in a reason: at most 32 characters, never a throw (whatever its prototype). */
const show = (x: unknown) =>
  JSON.stringify((typeof x === 'object' && x !== null ? Object.prototype.toString.call(x) : String(x)).slice(0, 32));

/**
 * Validate a message from outside this tab against a variant. Never throws. A refusal's reason reads
 * "<what> is not an object", "unknown <what> <key> "x"" (then unknownKind is set) or "<kind>.<field path>: <rule>".
 */
export function checkMessage<S extends Variant>(schema: S, x: unknown, what: string): Checked<v.InferOutput<S>> {
  if (!isPlainObject(x)) return refuse(`${what} is not an object`);
  const kind = x[schema.key];
  const option = optionsByKind(schema).get(kind);
  if (!option) return refuse(`unknown ${what} ${schema.key} ${show(kind)}`, true);
  const res = v.safeParse(option, x, CONFIG);
  if (res.success) return { ok: true, value: res.output as v.InferOutput<S> };
  const path = v.getDotPath(res.issues[0]);
  return refuse(`${String(kind)}${path ? `.${path}` : ''}: ${res.issues[0].message}`);
}

/** Validate a JSON object against `schema`: the value, or null when anything is off. Never throws. */
export function parseOrNull<S extends v.GenericSchema>(schema: S, x: unknown): v.InferOutput<S> | null {
  if (!isPlainObject(x)) return null;
  const res = v.safeParse(schema, x, CONFIG);
  return res.success ? res.output : null;
}

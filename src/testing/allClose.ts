// Shared numeric comparison for tests (Node and browser): |got - ref| <= atol + rtol*|ref|, with the first mismatches.

export interface CloseReport {
  ok: boolean;
  maxAbsErr: number;
  mismatches: string[];
  count: number;
}

export function allClose(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  atol: number,
  rtol: number,
  label = '',
): CloseReport {
  const mismatches: string[] = [];
  let maxAbsErr = 0;
  let count = 0;
  if (got.length !== ref.length)
    return { ok: false, maxAbsErr: Infinity, count: 1, mismatches: [`${label} length ${got.length} != ${ref.length}`] };
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i] - ref[i]);
    if (!(err <= atol + rtol * Math.abs(ref[i]))) {
      count++;
      if (mismatches.length < 5)
        mismatches.push(`${label}[${i}]: got ${got[i]}, want ${ref[i]} (err ${err.toExponential(2)})`);
    }
    if (err > maxAbsErr || Number.isNaN(err)) maxAbsErr = Number.isNaN(err) ? Infinity : err;
  }
  return { ok: count === 0, maxAbsErr, mismatches, count };
}

/** Throwing form for tests: the message lists the first mismatches. */
export function assertAllClose(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  atol: number,
  rtol: number,
  label = '',
): void {
  const r = allClose(got, ref, atol, rtol, label);
  if (!r.ok)
    throw new Error(
      `${label}: ${r.count} values out of tolerance (atol ${atol}, rtol ${rtol}); max err ${r.maxAbsErr}\n  ` +
        r.mismatches.join('\n  '),
    );
}

export interface FixtureCase {
  input_ids: number[];
  logits: number[][];
  hidden_after_layer: Record<string, number[]>;
  greedy: number[];
}

export const FIXTURE_NAMES = ['tiny-llama', 'tiny-qwen2'] as const;

/** GGUF fixtures (folder/quant: model-QUANT.gguf checked against expected-QUANT.json), on both engines. */
export const QUANT_FIXTURE_NAMES = ['tiny-q-llama/Q8_0', 'tiny-q-llama/Q4_K_M'] as const;

// f32 <-> bf16/f16 conversions: exhaustive round trips over every 16-bit pattern, and nearest-even
// rounding checked against the neighbouring representable values.
import { describe, expect, it } from 'vitest';
import { bf16ToF32, decodeToF32, f16BitsToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.ts';

const ALL16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** Deterministic f32 values spread over many binades, with every mantissa pattern likely. */
function randomF32(n: number, seed: number): Float32Array {
  const bits = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    bits[i] = s;
  }
  return new Float32Array(bits.buffer);
}

/** `h` must be a nearest representable value to x, and on a tie the one with an even last bit. */
function checkNearestEven(x: number, h: number, decode: (h: number) => number, maxFinite: number): string | null {
  if (Number.isNaN(x)) return Number.isNaN(decode(h)) ? null : `NaN -> ${h}`;
  const sign = h & 0x8000;
  const mag = h & 0x7fff;
  const got = decode(h);
  if (Math.abs(x) > maxFinite && !Number.isFinite(got)) return null; // overflow: checked separately
  const err = Math.abs(got - x);
  for (const nb of [mag - 1, mag + 1]) {
    if (nb < 0) continue;
    const v = decode(sign | nb);
    if (!Number.isFinite(v)) continue;
    const e = Math.abs(v - x);
    if (e < err || (e === err && (mag & 1) === 1))
      return `x=${x}: got ${got} (0x${h.toString(16)}), neighbour ${v} is ${e === err ? 'as close, even' : 'closer'}`;
  }
  if (Object.is(x, -0) || (x < 0 && got === 0)) return sign ? null : `${x} lost its sign`;
  return null;
}

/**
 * Every 16-bit pattern decodes and re-encodes to itself; a NaN (all exponent bits, a nonzero mantissa) may come
 * back as another NaN.
 */
function expectRoundTrips(
  decode: (h: Uint16Array) => Float32Array,
  encode: (x: Float32Array) => Uint16Array,
  exponentMask: number,
  mantissaMask: number,
): void {
  const back = encode(decode(ALL16));
  for (let h = 0; h < 65536; h++) {
    const isNan = (h & exponentMask) === exponentMask && (h & mantissaMask) !== 0;
    if (isNan) expect(Number.isNaN(decode(Uint16Array.of(back[h]))[0])).toBe(true);
    else if (back[h] !== h) throw new Error(`0x${h.toString(16)} -> 0x${back[h].toString(16)}`);
  }
}

describe('bf16', () => {
  it('round-trips every bf16 bit pattern exactly (NaNs stay NaN)', () => {
    expectRoundTrips(bf16ToF32, f32ToBf16, 0x7f80, 0x7f);
  });

  it('rounds to nearest, ties to even', () => {
    const decode = (h: number) => bf16ToF32(Uint16Array.of(h))[0];
    const xs = randomF32(200_000, 7);
    const hs = f32ToBf16(xs);
    for (let i = 0; i < xs.length; i++) {
      const why = checkNearestEven(xs[i], hs[i], decode, 3.3895313892515355e38);
      if (why) throw new Error(why);
    }
    // Exact ties: 1 + 2^-8 sits halfway between 1 and 1 + 2^-7 -> 1 (even); 1 + 3*2^-8 -> 1 + 2^-6.
    expect(Array.from(f32ToBf16(Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8))))).toEqual([
      0x3f80, 0x3f82, 0xbf80,
    ]);
    // The largest f32 rounds up past the largest bf16 to Inf.
    expect(f32ToBf16(Float32Array.of(3.4028234663852886e38))[0]).toBe(0x7f80);
  });
});

describe('f16', () => {
  it('decodes every f16 bit pattern to its IEEE value', () => {
    const v = f16ToF32(ALL16);
    expect(v[0x3c00]).toBe(1);
    expect(v[0xc000]).toBe(-2);
    expect(v[0x7bff]).toBe(65504);
    expect(v[0x0001]).toBe(2 ** -24); // smallest subnormal
    expect(v[0x03ff]).toBe(1023 * 2 ** -24); // largest subnormal
    expect(v[0x0400]).toBe(2 ** -14); // smallest normal
    expect(v[0x7c00]).toBe(Infinity);
    expect(v[0xfc00]).toBe(-Infinity);
    expect(Number.isNaN(v[0x7e00])).toBe(true);
    expect(Object.is(v[0x8000], -0)).toBe(true);
  });

  it('decodes through its table exactly as value by value', () => {
    const v = f16ToF32(ALL16);
    for (let h = 0; h < 65536; h++)
      if (!Object.is(v[h], Math.fround(f16BitsToF32(h)))) throw new Error(`0x${h.toString(16)}`);
  });

  it('round-trips every f16 bit pattern exactly (NaNs stay NaN)', () => {
    expectRoundTrips(f16ToF32, f32ToF16, 0x7c00, 0x3ff);
  });

  it('rounds to nearest even across normals, subnormals and overflow', () => {
    const table = f16ToF32(ALL16);
    const decode = (h: number) => table[h];
    // Random bit patterns scaled into f16's range so most land in normals and subnormals.
    const xs = randomF32(200_000, 11).map((x) =>
      Number.isFinite(x) ? (x % 1) * 2 ** ((Math.abs(x * 1e7) % 44) - 28) : x,
    );
    const hs = f32ToF16(xs);
    for (let i = 0; i < xs.length; i++) {
      const why = checkNearestEven(xs[i], hs[i], decode, 65504);
      if (why) throw new Error(why);
    }
    const cases: Array<[number, number]> = [
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal -> 0 (even)
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between subnormals 1 and 2 -> 2 (even)
      [1023.5 * 2 ** -24, 0x0400], // tie at the top of the subnormals rolls into the smallest normal
      [1 + 2 ** -11, 0x3c00], // tie -> even
      [1 + 3 * 2 ** -11, 0x3c02],
      [65519, 0x7bff],
      [65520, 0x7c00], // tie between 65504 and 65536 (Inf) -> even, which is Inf
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [2 ** -30, 0x0000],
      [-(2 ** -30), 0x8000],
    ];
    const got = f32ToF16(Float32Array.from(cases.map((c) => c[0])));
    cases.forEach(([x, want], i) => expect(got[i], `f32ToF16(${x})`).toBe(want));
  });
});

describe('decodeToF32', () => {
  it('decodes file bytes of each dtype at any byte offset, into a fresh array', () => {
    const x = Float32Array.of(1, -2.5, 0.1, 65504, -0);
    const encoded = {
      F32: new Uint8Array(x.buffer),
      F16: new Uint8Array(f32ToF16(x).buffer),
      BF16: new Uint8Array(f32ToBf16(x).buffer),
    };
    for (const [dtype, bytes] of Object.entries(encoded) as [keyof typeof encoded, Uint8Array][]) {
      const want = dtype === 'F32' ? x : dtype === 'F16' ? f16ToF32(f32ToF16(x)) : bf16ToF32(f32ToBf16(x));
      for (const offset of [0, 1, 2, 3]) {
        const file = new Uint8Array(bytes.length + offset);
        file.set(bytes, offset);
        const got = decodeToF32(dtype, file.subarray(offset));
        expect(Array.from(got), `${dtype} at +${offset}`).toEqual(Array.from(want));
        expect(got.buffer).not.toBe(file.buffer);
      }
    }
  });
});

// WebAssembly SIMD elementwise ops with an exponential: SiLU(g) * u (the MLP's gate) and softmax (attention's scores),
// assembled into the gemm module (gemmWat.ts). In JavaScript, Math.exp over every gate value was a twentieth of a
// decode step. exp is Cephes' expf (range reduction by ln 2 in two parts, a degree-6 polynomial, 2^n by exponent
// bits): within about 1e-7 relative of the true value on [-87.3, 88.3], to which its input is clamped.
import { get } from './watOps.ts';

const splat = (v: number): string => `(f32x4.splat (f32.const ${Number.isFinite(v) ? v : v > 0 ? 'inf' : '-inf'}))`;
const mul = (a: string, b: string): string => `(f32x4.mul ${a} ${b})`;
const add = (a: string, b: string): string => `(f32x4.add ${a} ${b})`;

/** $exp4(x): e^x per lane. */
function expFunc(): string {
  const poly = [1.98756915e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
  let p = splat(poly[0]);
  for (const c of poly.slice(1)) p = add(mul(p, get('x')), splat(c));
  return `
  (func $exp4 (param $x v128) (result v128) (local $n v128)
    (local.set $x (f32x4.min (f32x4.max ${get('x')} ${splat(-87.3)}) ${splat(88.3)}))
    (local.set $n (f32x4.floor ${add(mul(get('x'), splat(1.4426950408889634)), splat(0.5))}))
    (local.set $x (f32x4.sub (f32x4.sub ${get('x')} ${mul(get('n'), splat(0.693359375))})
      ${mul(get('n'), splat(-2.1219444e-4))}))
    ${mul(
      add(add(mul(p, mul(get('x'), get('x'))), get('x')), splat(1)),
      `(i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s ${get('n')}) (v128.const i32x4 127 127 127 127)) (i32.const 23))`,
    )}
  )`;
}

/** silu_mul(g, u, n): g[i] = g[i] / (1 + e^-g[i]) * u[i], in place; n a multiple of 4. */
function siluMulFunc(): string {
  return `
  (func (export "silu_mul") (param $g i32) (param $u i32) (param $n i32) (local $end i32) (local $v v128)
    (local.set $end (i32.add ${get('g')} (i32.shl ${get('n')} (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u ${get('g')} ${get('end')}))
      (local.set $v (v128.load ${get('g')}))
      (v128.store ${get('g')} ${mul(
        `(f32x4.div ${get('v')} ${add(splat(1), `(call $exp4 (f32x4.neg ${get('v')}))`)})`,
        `(v128.load ${get('u')})`,
      )})
      (local.set $g (i32.add ${get('g')} (i32.const 16)))
      (local.set $u (i32.add ${get('u')} (i32.const 16)))
      (br $l)))
  )`;
}

/** softmax(s, n): s = e^(s - max) / sum over the n floats at s, in place; n a multiple of 4 (pad with -Infinity). */
function softmaxFunc(): string {
  const lanes = (op: string, v: string): string =>
    `(${op} (${op} (f32x4.extract_lane 0 ${v}) (f32x4.extract_lane 1 ${v})) ` +
    `(${op} (f32x4.extract_lane 2 ${v}) (f32x4.extract_lane 3 ${v})))`;
  const loop = (body: string): string => `(local.set $p ${get('s')})
    (block $done (loop $l
      (br_if $done (i32.ge_u ${get('p')} ${get('end')}))
      ${body}
      (local.set $p (i32.add ${get('p')} (i32.const 16)))
      (br $l)))`;
  return `
  (func (export "softmax") (param $s i32) (param $n i32) (local $p i32) (local $end i32) (local $m v128) (local $e v128)
    (local $acc v128)
    (local.set $end (i32.add ${get('s')} (i32.shl ${get('n')} (i32.const 2))))
    (local.set $m ${splat(-Infinity)})
    ${loop(`(local.set $m (f32x4.max ${get('m')} (v128.load ${get('p')})))`)}
    (local.set $m (f32x4.splat ${lanes('f32.max', get('m'))}))
    ${loop(`(local.set $e (call $exp4 (f32x4.sub (v128.load ${get('p')}) ${get('m')})))
      (v128.store ${get('p')} ${get('e')})
      (local.set $acc ${add(get('acc'), get('e'))})`)}
    (local.set $acc (f32x4.div ${splat(1)} (f32x4.splat ${lanes('f32.add', get('acc'))})))
    ${loop(`(v128.store ${get('p')} ${mul(`(v128.load ${get('p')})`, get('acc'))})`)}
  )`;
}

/** The exponential ops of the gemm module. */
export function activationFuncs(): string {
  return expFunc() + siluMulFunc() + softmaxFunc();
}

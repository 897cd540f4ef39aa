// The WebAssembly SIMD gemm kernels, as WebAssembly text generated here (the source of truth; scripts/build-wasm.ts
// assembles it into gemmWasm.ts). y (T, N) = x (T, K) . W^T with W (N, K) row-major, f32 or bf16 weights, f32 sums.
// Four weight rows per pass share each 8-float load of x; bf16 stays bf16 in memory (half the bytes per token) and is
// widened in-register (u16 << 16 is the f32 bit pattern).

import { activationFuncs } from './activationWat.ts';
import { attentionFuncs } from './attentionWat.ts';
import { get, hsum, madd, ZERO4 } from './watOps.ts';
import { quantDeqFuncs } from './quantDeqWat.ts';
import { quantIntDotFuncs } from './quantIntWat.ts';
import { quantDotFuncs } from './quantWat.ts';

type WeightKind = 'f32' | 'bf16';

/** Byte address of element `k` of weight row r. */
const wAddr = (r: number, kind: WeightKind): string =>
  `(i32.add ${get(`w${r}`)} (i32.shl ${get('k')} (i32.const ${kind === 'f32' ? 2 : 1})))`;

/** Accumulate 8 products of row r at k (x's 8 floats are in $xl, $xh). */
function simdStep(r: number, kind: WeightKind, relaxed: boolean): string {
  const mac = madd(relaxed);
  if (kind === 'f32')
    return `${mac(`a${r}`, get('xl'), `(v128.load ${wAddr(r, kind)})`)}
      ${mac(`b${r}`, get('xh'), `(v128.load offset=16 ${wAddr(r, kind)})`)}`;
  return `(local.set $wv (v128.load ${wAddr(r, kind)}))
      ${mac(`a${r}`, get('xl'), `(i32x4.shl (i32x4.extend_low_i16x8_u ${get('wv')}) (i32.const 16))`)}
      ${mac(`b${r}`, get('xh'), `(i32x4.shl (i32x4.extend_high_i16x8_u ${get('wv')}) (i32.const 16))`)}`;
}

function scalarStep(r: number, kind: WeightKind): string {
  const w =
    kind === 'f32'
      ? `(f32.load ${wAddr(r, kind)})`
      : `(f32.reinterpret_i32 (i32.shl (i32.load16_u ${wAddr(r, kind)}) (i32.const 16)))`;
  return `(local.set $s${r} (f32.add ${get(`s${r}`)} (f32.mul ${get('xs')} ${w})))`;
}

/** $rowsR_kind(x, w, y, T, K, N, n): rows n..n+R-1 of W against every row of x. */
function rowsFunc(R: number, kind: WeightKind, relaxed: boolean): string {
  const rs = Array.from({ length: R }, (_, r) => r);
  const rowBytes = `(i32.shl ${get('K')} (i32.const ${kind === 'f32' ? 2 : 1}))`;
  return `
  (func $rows${R}_${kind}
    (param $x i32) (param $w i32) (param $y i32) (param $T i32) (param $K i32) (param $N i32) (param $n i32)
    (local $t i32) (local $k i32) (local $K8 i32) (local $xo i32) (local $yo i32) (local $xs f32)
    (local $xl v128) (local $xh v128) (local $wv v128)
    ${rs.map((r) => `(local $w${r} i32) (local $a${r} v128) (local $b${r} v128) (local $s${r} f32)`).join(' ')}
    (local.set $K8 (i32.and ${get('K')} (i32.const -8)))
    (local.set $w0 (i32.add ${get('w')} (i32.mul ${get('n')} ${rowBytes})))
    ${rs
      .slice(1)
      .map((r) => `(local.set $w${r} (i32.add ${get(`w${r - 1}`)} ${rowBytes}))`)
      .join('\n    ')}
    (local.set $t (i32.const 0))
    (block $tdone (loop $tloop
      (br_if $tdone (i32.ge_u ${get('t')} ${get('T')}))
      (local.set $xo (i32.add ${get('x')} (i32.shl (i32.mul ${get('t')} ${get('K')}) (i32.const 2))))
      ${rs.map((r) => `(local.set $a${r} ${ZERO4}) (local.set $b${r} ${ZERO4})`).join(' ')}
      (local.set $k (i32.const 0))
      (block $kdone (loop $kloop
        (br_if $kdone (i32.ge_u ${get('k')} ${get('K8')}))
        (local.set $xl (v128.load (i32.add ${get('xo')} (i32.shl ${get('k')} (i32.const 2)))))
        (local.set $xh (v128.load offset=16 (i32.add ${get('xo')} (i32.shl ${get('k')} (i32.const 2)))))
        ${rs.map((r) => simdStep(r, kind, relaxed)).join('\n        ')}
        (local.set $k (i32.add ${get('k')} (i32.const 8)))
        (br $kloop)))
      ${rs.map((r) => `(local.set $s${r} ${hsum(`(f32x4.add ${get(`a${r}`)} ${get(`b${r}`)})`)})`).join('\n      ')}
      (block $tail (loop $tailloop
        (br_if $tail (i32.ge_u ${get('k')} ${get('K')}))
        (local.set $xs (f32.load (i32.add ${get('xo')} (i32.shl ${get('k')} (i32.const 2)))))
        ${rs.map((r) => scalarStep(r, kind)).join('\n        ')}
        (local.set $k (i32.add ${get('k')} (i32.const 1)))
        (br $tailloop)))
      (local.set $yo
        (i32.add ${get('y')} (i32.shl (i32.add (i32.mul ${get('t')} ${get('N')}) ${get('n')}) (i32.const 2))))
      ${rs.map((r) => `(f32.store offset=${4 * r} ${get('yo')} ${get(`s${r}`)})`).join('\n      ')}
      (local.set $t (i32.add ${get('t')} (i32.const 1)))
      (br $tloop)))
  )`;
}

function gemmFunc(kind: WeightKind): string {
  return `
  (func (export "gemm_${kind}")
    (param $x i32) (param $w i32) (param $y i32) (param $T i32) (param $K i32) (param $N i32)
    (local $n i32)
    (block $done4 (loop $loop4
      (br_if $done4 (i32.gt_u (i32.add ${get('n')} (i32.const 4)) ${get('N')}))
      (call $rows4_${kind} ${get('x')} ${get('w')} ${get('y')} ${get('T')} ${get('K')} ${get('N')} ${get('n')})
      (local.set $n (i32.add ${get('n')} (i32.const 4)))
      (br $loop4)))
    (block $done1 (loop $loop1
      (br_if $done1 (i32.ge_u ${get('n')} ${get('N')}))
      (call $rows1_${kind} ${get('x')} ${get('w')} ${get('y')} ${get('T')} ${get('K')} ${get('N')} ${get('n')})
      (local.set $n (i32.add ${get('n')} (i32.const 1)))
      (br $loop1)))
  )`;
}

const F32_HIGH16 = '(v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)';

/**
 * gemv_<kind>(x, w, y, K, N, xd): y (N) = W (N, K) . x for one position (decode), one row at a time so the weights
 * stream from memory in address order (four rows abreast, as gemm does, read 9 GB/s out of cache against 14-19 GB/s
 * in order here: scripts/bench/gemv.ts). Four accumulators over 32 values a step. For bf16, x is first laid out in
 * xd (K floats of scratch) with each 8 values as evens then odds: a u32 lane of the weights holds an even value in
 * its low half and the next odd one in its high half, so `shl 16` and `and 0xffff0000` give their f32 bit patterns
 * with one op each, no widening.
 */
function gemvFunc(kind: WeightKind, relaxed: boolean): string {
  const bf = kind === 'bf16';
  const wStep = bf ? 64 : 128; // bytes of weights per 32 values
  const xl = (off: number): string => `(v128.load offset=${off} ${get('xi')})`;
  const wl = (off: number): string => `(v128.load offset=${off} ${get('p')})`;
  const mac = madd(relaxed);
  // 8 values at byte offset o of the current step (x at 2*o for bf16, w at o; f32: both at o)
  const eight = (o: number, a1: string, a2: string): string =>
    bf
      ? `(local.set $wv ${wl(o)})
        ${mac(a1, `(i32x4.shl ${get('wv')} (i32.const 16))`, xl(2 * o))}
        ${mac(a2, `(v128.and ${get('wv')} ${F32_HIGH16})`, xl(2 * o + 16))}`
      : `${mac(a1, wl(o), xl(o))}
        ${mac(a2, wl(o + 16), xl(o + 16))}`;
  const unit = bf ? 16 : 32; // bytes of weights per 8 values
  const scalarW = bf
    ? `(f32.reinterpret_i32 (i32.shl (i32.load16_u ${get('p')}) (i32.const 16)))`
    : `(f32.load ${get('p')})`;
  const deinterleave = bf
    ? `(local.set $xi ${get('x')})
    (local.set $k ${get('xd')})
    (block $ddone (loop $dloop
      (br_if $ddone (i32.ge_u ${get('xi')} ${get('x8')}))
      (local.set $wv (v128.load offset=16 ${get('xi')}))
      (v128.store ${get('k')}
        (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (v128.load ${get('xi')}) ${get('wv')}))
      (v128.store offset=16 ${get('k')}
        (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (v128.load ${get('xi')}) ${get('wv')}))
      (local.set $xi (i32.add ${get('xi')} (i32.const 32)))
      (local.set $k (i32.add ${get('k')} (i32.const 32)))
      (br $dloop)))`
    : '';
  const xs = bf ? 'xd' : 'x';
  return `
  (func (export "gemv_${kind}")
    (param $x i32) (param $w i32) (param $y i32) (param $K i32) (param $N i32) (param $xd i32)
    (local $n i32) (local $k i32) (local $p i32) (local $xi i32) (local $x32 i32) (local $x8 i32) (local $xend i32)
    (local $wv v128) (local $a v128) (local $b v128) (local $c v128) (local $e v128) (local $s f32)
    (local.set $x32 (i32.add ${get(xs)} (i32.shl (i32.and ${get('K')} (i32.const -32)) (i32.const 2))))
    (local.set $x8 (i32.add ${get('x')} (i32.shl (i32.and ${get('K')} (i32.const -8)) (i32.const 2))))
    (local.set $xend (i32.add ${get('x')} (i32.shl ${get('K')} (i32.const 2))))
    ${deinterleave}
    ${bf ? `(local.set $x8 (i32.add ${get('xd')} (i32.sub ${get('x8')} ${get('x')})))` : ''}
    (local.set $p ${get('w')})
    (block $ndone (loop $nloop
      (br_if $ndone (i32.ge_u ${get('n')} ${get('N')}))
      (local.set $a ${ZERO4}) (local.set $b ${ZERO4}) (local.set $c ${ZERO4}) (local.set $e ${ZERO4})
      (local.set $xi ${get(xs)})
      (block $d32 (loop $l32
        (br_if $d32 (i32.ge_u ${get('xi')} ${get('x32')}))
        ${eight(0, 'a', 'b')}
        ${eight(unit, 'c', 'e')}
        ${eight(2 * unit, 'a', 'b')}
        ${eight(3 * unit, 'c', 'e')}
        (local.set $p (i32.add ${get('p')} (i32.const ${wStep})))
        (local.set $xi (i32.add ${get('xi')} (i32.const 128)))
        (br $l32)))
      (block $d8 (loop $l8
        (br_if $d8 (i32.ge_u ${get('xi')} ${get('x8')}))
        ${eight(0, 'a', 'b')}
        (local.set $p (i32.add ${get('p')} (i32.const ${unit})))
        (local.set $xi (i32.add ${get('xi')} (i32.const 32)))
        (br $l8)))
      (local.set $s ${hsum(`(f32x4.add (f32x4.add ${get('a')} ${get('b')}) (f32x4.add ${get('c')} ${get('e')}))`)})
      ;; the last K % 8 values, against x as given
      (local.set $k (i32.add ${get('x')} (i32.shl (i32.and ${get('K')} (i32.const -8)) (i32.const 2))))
      (block $d1 (loop $l1
        (br_if $d1 (i32.ge_u ${get('k')} ${get('xend')}))
        (local.set $s (f32.add ${get('s')} (f32.mul (f32.load ${get('k')}) ${scalarW})))
        (local.set $p (i32.add ${get('p')} (i32.const ${bf ? 2 : 4})))
        (local.set $k (i32.add ${get('k')} (i32.const 4)))
        (br $l1)))
      (f32.store (i32.add ${get('y')} (i32.shl ${get('n')} (i32.const 2))) ${get('s')})
      (local.set $n (i32.add ${get('n')} (i32.const 1)))
      (br $nloop)))
  )`;
}

/** The whole module: an exported, growable memory (up to 4 GiB), gemm_f32 / gemm_bf16, gemv_f32 / gemv_bf16, the
 * block dots qdot_* (quantWat.ts), their int8-activation twins qdoti_* (quantIntWat.ts), the dequantizers deq_*
 * (quantDeqWat.ts), attn_scores / attn_values (attentionWat.ts) and silu_mul / softmax (activationWat.ts).
 * `relaxed`: the float kernels' multiply-adds as `f32x4.relaxed_madd` (relaxed SIMD: Chromium since 114; Node 20
 * only behind a flag). */
export function gemmWat(opts: { relaxed?: boolean } = {}): string {
  const relaxed = opts.relaxed ?? false;
  const kinds: WeightKind[] = ['f32', 'bf16'];
  const floatKernels = (k: WeightKind): string =>
    rowsFunc(4, k, relaxed) + rowsFunc(1, k, relaxed) + gemmFunc(k) + gemvFunc(k, relaxed);
  return `(module
  (memory (export "memory") 1 65536)
  ${kinds.map(floatKernels).join('\n')}
  ${quantDotFuncs()}
  ${quantIntDotFuncs()}
  ${quantDeqFuncs()}
  ${attentionFuncs(relaxed)}
  ${activationFuncs()}
)
`;
}

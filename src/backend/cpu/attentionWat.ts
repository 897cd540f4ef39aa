// WebAssembly SIMD attention for one query head against the KV cache held in the wasm heap: the scores q.K[p] and
// the weighted sum of V rows, assembled into the gemm module (gemmWat.ts). The softmax between them stays in
// JavaScript (Math.exp, exact as the reference); at a few hundred positions of context these two loops were a third
// of a decode step in plain JavaScript (docs/benchmarks.md).

import { get, hsum, madd, ZERO4 } from './watOps.ts';

/**
 * attn_scores(q, k, stride, D, n, scale, s): s[p] = scale * (q . K_p) for p < n, K_p at k + p*stride bytes, D floats
 * each (D a multiple of 4). Four accumulators over 16 floats a step, so the adds never wait on each other.
 */
function scoresFunc(mac: ReturnType<typeof madd>): string {
  const ld = (base: string, off: number): string => `(v128.load offset=${off} ${get(base)})`;
  const sum4 = `(f32x4.add (f32x4.add ${get('a')} ${get('b')}) (f32x4.add ${get('c')} ${get('e')}))`;
  return `
  (func (export "attn_scores")
    (param $q i32) (param $k i32) (param $stride i32) (param $D i32) (param $n i32) (param $scale f32) (param $s i32)
    (local $p i32) (local $qi i32) (local $ki i32) (local $qend i32) (local $q16 i32)
    (local $a v128) (local $b v128) (local $c v128) (local $e v128)
    (local.set $qend (i32.add ${get('q')} (i32.shl ${get('D')} (i32.const 2))))
    (local.set $q16 (i32.add ${get('q')} (i32.shl (i32.and ${get('D')} (i32.const -16)) (i32.const 2))))
    (block $pdone (loop $ploop
      (br_if $pdone (i32.ge_u ${get('p')} ${get('n')}))
      (local.set $a ${ZERO4}) (local.set $b ${ZERO4}) (local.set $c ${ZERO4}) (local.set $e ${ZERO4})
      (local.set $qi ${get('q')})
      (local.set $ki ${get('k')})
      (block $d16 (loop $l16
        (br_if $d16 (i32.ge_u ${get('qi')} ${get('q16')}))
        ${mac('a', ld('qi', 0), ld('ki', 0))}
        ${mac('b', ld('qi', 16), ld('ki', 16))}
        ${mac('c', ld('qi', 32), ld('ki', 32))}
        ${mac('e', ld('qi', 48), ld('ki', 48))}
        (local.set $qi (i32.add ${get('qi')} (i32.const 64)))
        (local.set $ki (i32.add ${get('ki')} (i32.const 64)))
        (br $l16)))
      (block $d4 (loop $l4
        (br_if $d4 (i32.ge_u ${get('qi')} ${get('qend')}))
        ${mac('a', ld('qi', 0), ld('ki', 0))}
        (local.set $qi (i32.add ${get('qi')} (i32.const 16)))
        (local.set $ki (i32.add ${get('ki')} (i32.const 16)))
        (br $l4)))
      (f32.store (i32.add ${get('s')} (i32.shl ${get('p')} (i32.const 2))) (f32.mul ${get('scale')} ${hsum(sum4)}))
      (local.set $k (i32.add ${get('k')} ${get('stride')}))
      (local.set $p (i32.add ${get('p')} (i32.const 1)))
      (br $ploop)))
  )`;
}

/**
 * attn_values(w, v, stride, D, n, out): out[0..D) = sum_p w[p] * V_p, V_p at v + p*stride bytes (D a multiple of 4).
 * Columns go 16 at a time (four accumulators held across every position), then 4 at a time.
 */
function valuesFunc(mac: ReturnType<typeof madd>): string {
  const ld = (off: number): string => `(v128.load offset=${off} ${get('vp')})`;
  const outAt = `(i32.add ${get('out')} (i32.shl ${get('i')} (i32.const 2)))`;
  const pass = (width: 16 | 4): string => {
    const accs = width === 16 ? ['a', 'b', 'c', 'e'] : ['a'];
    return `(block $done${width} (loop $cols${width}
        (br_if $done${width} (i32.gt_u (i32.add ${get('i')} (i32.const ${width})) ${get('D')}))
        ${accs.map((x) => `(local.set $${x} ${ZERO4})`).join(' ')}
        (local.set $vp (i32.add ${get('v')} (i32.shl ${get('i')} (i32.const 2))))
        (local.set $p (i32.const 0))
        (block $pdone${width} (loop $p${width}
          (br_if $pdone${width} (i32.ge_u ${get('p')} ${get('n')}))
          (local.set $ws (f32x4.splat (f32.load (i32.add ${get('w')} (i32.shl ${get('p')} (i32.const 2))))))
          ${accs.map((x, j) => mac(x, get('ws'), ld(16 * j))).join('\n          ')}
          (local.set $vp (i32.add ${get('vp')} ${get('stride')}))
          (local.set $p (i32.add ${get('p')} (i32.const 1)))
          (br $p${width})))
        ${accs.map((x, j) => `(v128.store offset=${16 * j} ${outAt} ${get(x)})`).join('\n        ')}
        (local.set $i (i32.add ${get('i')} (i32.const ${width})))
        (br $cols${width})))`;
  };
  return `
  (func (export "attn_values")
    (param $w i32) (param $v i32) (param $stride i32) (param $D i32) (param $n i32) (param $out i32)
    (local $i i32) (local $p i32) (local $vp i32) (local $ws v128)
    (local $a v128) (local $b v128) (local $c v128) (local $e v128)
    ${pass(16)}
    ${pass(4)}
  )`;
}

/** The attention functions of the gemm module (`relaxed`: fused multiply-adds, gemmWat.ts `madd`). */
export function attentionFuncs(relaxed = false): string {
  return scoresFunc(madd(relaxed)) + valuesFunc(madd(relaxed));
}

// One seeded generator for the whole project (mulberry32): reproducible sampling, searches, tests and generated files.

/** 32-bit unsigned integers from a seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Floats in [0, 1) from a seed. */
export function seededRandom(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/** mulberry32's state advances by this constant per draw, so draw k of a seed is reachable without the k before it. */
const MULBERRY_STEP = 0x6d2b79f5;

/**
 * Draw k (0-based) of seededRandom(seed), computed directly: a sampler addressed by token index is stateless, so a
 * turn restarted or recovered at token k draws exactly what an uninterrupted run would have.
 */
export function seededDraw(seed: number, k: number): number {
  return seededRandom((seed + Math.imul(k, MULBERRY_STEP)) >>> 0)();
}

// Assemble the gemm kernels' WebAssembly text with wabt (a dev dependency: only the build script and tests use it).
import wabtInit from 'wabt';
import { gemmWat } from '../src/backend/cpu/gemmWat.ts';

/** The module's bytes; `relaxed`: its relaxed-SIMD variant (gemmWat.ts). */
export async function assembleGemm(relaxed = false): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat('gemm.wat', gemmWat({ relaxed }), { simd: true, relaxed_simd: relaxed });
  try {
    mod.validate();
    return new Uint8Array(mod.toBinary({ log: false, write_debug_names: false }).buffer);
  } finally {
    mod.destroy();
  }
}

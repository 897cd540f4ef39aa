// Assemble the gemm kernels' WebAssembly text with wabt (a dev dependency: only the build script and tests use it).
import wabtInit from 'wabt';
import { gemmWat } from '../src/backend/cpu/gemmWat.ts';

export async function assembleGemm(): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat('gemm.wat', gemmWat(), { simd: true });
  try {
    mod.validate();
    return new Uint8Array(mod.toBinary({ log: false, write_debug_names: false }).buffer);
  } finally {
    mod.destroy();
  }
}

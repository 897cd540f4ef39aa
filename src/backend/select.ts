// Pick the engine for this tab: WebGPU when the browser offers it, else the CPU reference, and say why.
import { createCpuBackend } from './cpu/index.ts';
import { wasmSimdSupported } from './cpu/wasmGemm.ts';
import type { Backend } from './types.ts';
import { createWebGpuBackend } from './webgpu/index.ts';
import type { WebGpuBackendOptions } from './webgpu/index.ts';
import { errorMessage } from '../errors.ts';

export interface BackendChoice {
  backend: Backend;
  /** True when WebGPU was wanted but the CPU backend runs instead. */
  fellBack: boolean;
  reason?: string;
}

export async function createBestBackend(
  opts: WebGpuBackendOptions & { preferCpu?: boolean; cpuActivations?: 'f32' | 'int8' } = {},
): Promise<BackendChoice> {
  // int8 activations need the SIMD engine; without it the JS reference runs exact f32
  const createCpu = () => createCpuBackend({ activations: wasmSimdSupported() ? opts.cpuActivations : 'f32' });
  if (opts.preferCpu) return { backend: createCpu(), fellBack: false };
  try {
    const gpu = await createWebGpuBackend(opts);
    if (gpu) return { backend: gpu, fellBack: false };
    return {
      backend: createCpu(),
      fellBack: true,
      reason: 'WebGPU is not available here (no navigator.gpu or no adapter): running on the CPU backend',
    };
  } catch (e) {
    return {
      backend: createCpu(),
      fellBack: true,
      reason: `WebGPU could not start (${errorMessage(e)}): running on the CPU backend`,
    };
  }
}

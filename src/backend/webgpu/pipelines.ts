// Compute pipelines, built once per (kernel, dtypes, fused flags) with explicit bind group layouts so optional
// inputs can be bound to a dummy buffer and switched off by a constant.
import type { WeightDtype } from '../../weights/types.ts';
import { buildShader } from './shaderGen.ts';
import gemvSrc from './kernels/gemv.wgsl?raw';
import gemvRowsSrc from './kernels/gemv_rows.wgsl?raw';
import gemvSubgroupSrc from './kernels/gemv_subgroup.wgsl?raw';
import tiledSrc from './kernels/matmul_tiled.wgsl?raw';
import rmsnormSrc from './kernels/rmsnorm.wgsl?raw';
import embedSrc from './kernels/embed.wgsl?raw';
import argmaxSrc from './kernels/argmax.wgsl?raw';
import ropeSrc from './kernels/rope_cache.wgsl?raw';
import attentionSrc from './kernels/attention.wgsl?raw';

/** Binding kinds after binding 0, which is always the uniform params slice. */
type Slot = 'read' | 'rw';

export interface Kernel {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  id: number;
}

/**
 * Decode kernels: subgroup (one subgroup per row, subgroupAdd; needs the 'subgroups' feature), gemv (4 rows per
 * workgroup, shared-memory reduction), rows (one invocation per row, for CPU adapters without subgroups).
 * Prefill: tiled.
 */
export type GemvKind = 'subgroup' | 'gemv' | 'rows';
export type MatmulKind = GemvKind | 'tiled';

export interface MatmulVariant {
  kind: MatmulKind;
  w: WeightDtype;
  wUp?: WeightDtype; // gate-up: the second weight
  bias?: WeightDtype;
  norm?: WeightDtype;
  residual: boolean;
}

/** One pipeline cache per device: backends created on the same device (tests, benchmarks) compile once. */
const byDevice = new WeakMap<GPUDevice, Pipelines>();
export function pipelinesFor(device: GPUDevice): Pipelines {
  let p = byDevice.get(device);
  if (!p) byDevice.set(device, (p = new Pipelines(device)));
  return p;
}

export class Pipelines {
  private readonly cache = new Map<string, Kernel>();
  private nextId = 1;
  constructor(private readonly device: GPUDevice) {}

  private get(key: string, slots: Slot[], code: () => string): Kernel {
    let k = this.cache.get(key);
    if (k) return k;
    const layout = this.device.createBindGroupLayout({
      label: key,
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
        ...slots.map((s, i) => ({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: s === 'rw' ? ('storage' as const) : ('read-only-storage' as const) },
        })),
      ],
    });
    const module = this.device.createShaderModule({ label: key, code: code() });
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    });
    k = { pipeline, layout, id: this.nextId++ };
    this.cache.set(key, k);
    return k;
  }

  /** Bindings: 1 x, 2 y, 3 residual, 4 w, 5 w_up, 6 bias, 7 norm_w (absent ones get a dummy buffer). */
  matmul(v: MatmulVariant): Kernel {
    const key = `matmul:${v.kind}:${v.w}:${v.wUp ?? '-'}:${v.bias ?? '-'}:${v.norm ?? '-'}:${v.residual}`;
    return this.get(key, ['read', 'rw', 'read', 'read', 'read', 'read', 'read'], () =>
      buildShader({
        consts: { HAS_NORM: !!v.norm, HAS_BIAS: !!v.bias, HAS_RESIDUAL: v.residual, GATE_UP: !!v.wUp },
        weights: [
          { name: 'w', binding: 4, dtype: v.w },
          { name: 'w_up', binding: 5, dtype: v.wUp ?? 'F32' },
          { name: 'bias', binding: 6, dtype: v.bias ?? 'F32' },
          { name: 'norm_w', binding: 7, dtype: v.norm ?? 'F32' },
        ],
        body: { tiled: tiledSrc, rows: gemvRowsSrc, gemv: gemvSrc, subgroup: gemvSubgroupSrc }[v.kind],
      }),
    );
  }

  /** Bindings: 1 x, 2 y, 3 norm_w. */
  rmsNorm(w: WeightDtype): Kernel {
    return this.get(`rmsnorm:${w}`, ['read', 'rw', 'read'], () =>
      buildShader({ weights: [{ name: 'norm_w', binding: 3, dtype: w }], body: rmsnormSrc }),
    );
  }

  /** Bindings: 1 ids, 2 y, 3 table. */
  embed(w: WeightDtype): Kernel {
    return this.get(`embed:${w}`, ['read', 'rw', 'read'], () =>
      buildShader({ weights: [{ name: 'table', binding: 3, dtype: w }], body: embedSrc }),
    );
  }

  /** Bindings: 1 x, 2 y. */
  argmax(): Kernel {
    return this.get('argmax', ['read', 'rw'], () => argmaxSrc);
  }

  /** Bindings: 1 q, 2 k, 3 v, 4 qOut, 5 cache, 6 cosSin, 7 q_norm, 8 k_norm. */
  rope(qNorm?: WeightDtype, kNorm?: WeightDtype): Kernel {
    return this.get(
      `rope:${qNorm ?? '-'}:${kNorm ?? '-'}`,
      ['read', 'read', 'read', 'rw', 'rw', 'read', 'read', 'read'],
      () =>
        buildShader({
          consts: { HAS_QKNORM: !!qNorm },
          weights: [
            { name: 'q_norm', binding: 7, dtype: qNorm ?? 'F32' },
            { name: 'k_norm', binding: 8, dtype: kNorm ?? 'F32' },
          ],
          body: ropeSrc,
        }),
    );
  }

  /** Bindings: 1 q, 2 cache, 3 y. */
  attention(): Kernel {
    return this.get('attention', ['read', 'read', 'rw'], () => attentionSrc);
  }
}

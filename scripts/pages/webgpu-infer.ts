// In-page engine entry for scripts/webgpu-runner.ts, the engine benchmark and e2e/webgpu-*.spec.ts: runInfer from
// src/model/infer.ts on a model URL with the WebGPU backend (or the CPU one, to compare in the same browser).
import { createCpuBackend } from '../../src/backend/cpu/index.ts';
import { createBestBackend } from '../../src/backend/select.ts';
import type { Backend } from '../../src/backend/types.ts';
import { kernelBench } from './webgpu-kernel-bench.ts';
import type { OpShape } from './webgpu-kernel-bench.ts';
import { quantLayoutBench } from './quant-layout-bench.ts';
import type { LayoutBenchArgs } from './quant-layout-bench.ts';
import type { GemvKind } from '../../src/backend/webgpu/pipelines.ts';
import { requestWebGpuDevice } from '../../src/backend/webgpu/device.ts';
import { errorMessage } from '../../src/errors.ts';
import { loadStages, parseStages, runChain, runInfer } from '../../src/model/infer.ts';
import type { InferResult } from '../../src/model/infer.ts';
import type { LogitsMode } from '../../src/model/stage.ts';
import { openModelAt } from '../../src/weights/locate.ts';
import { measureReadBandwidth } from '../bench/lib/readBandwidth.ts';

export interface PageInferArgs {
  model: string; // URL (absolute or on this page's origin): a model folder or a .gguf file
  ids: number[];
  steps: number;
  stages?: string;
  logits?: LogitsMode;
  backend?: 'webgpu' | 'cpu';
  /** The CPU engine's activations for block-quantized weights (default f32, exact). */
  activations?: 'f32' | 'int8';
  /** Test knob: pretend storage bindings are this small, so big matrices split. */
  maxBindingBytesOverride?: number;
}

export type PageInferReply =
  | { ok: true; result: InferResult; fellBack: boolean; reason?: string; weightBytes?: number }
  | { ok: false; code: string; message: string };

/** One device for every run on this page, so pipelines compile once (SwiftShader compiles slowly). */
let sharedDevice: GPUDevice | undefined;

async function shoalInfer(args: PageInferArgs): Promise<PageInferReply> {
  let backend: Backend | undefined;
  try {
    let fellBack = false;
    let reason: string | undefined;
    let failure: Error | undefined;
    if (args.backend === 'cpu') backend = createCpuBackend({ activations: args.activations });
    else {
      const choice = await createBestBackend({
        onFailure: (e) => {
          failure = e;
        },
        maxBindingBytesOverride: args.maxBindingBytesOverride,
        device: (sharedDevice ??= (await requestWebGpuDevice()) ?? undefined),
      });
      ({ backend, fellBack, reason } = choice);
    }
    const model = await openModelAt(args.model);
    const stages = args.stages ? parseStages(args.stages, model.spec.nLayers) : undefined;
    const result = await runInfer({ model, backend, ids: args.ids, steps: args.steps, stages, logits: args.logits });
    if (failure) throw failure;
    return { ok: true, result, fellBack, reason };
  } catch (e) {
    const code = typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'ERR_BACKEND';
    return { ok: false, code, message: errorMessage(e) };
  } finally {
    backend?.destroy();
  }
}

export interface PageBranchArgs {
  model: string;
  ids: number[];
  at: number;
  alt: number[];
}
export type PageBranchReply =
  { ok: true; branch: number[][]; pathRef: number[][]; main: number[][] } | { ok: false; message: string };

/**
 * A stage branch on WebGPU (speculative hedges): prefill all but the last two ids, branch at `at` with `alt`, end
 * the branch, then run the last two ids. Returns the branch's logits, the same path's logits on a fresh WebGPU
 * stage (no branch), and the main line's last two rows (which must match the fixtures as if no branch ran).
 */
async function shoalBranch(args: PageBranchArgs): Promise<PageBranchReply> {
  const backend = (await createBestBackend({ device: (sharedDevice ??= (await requestWebGpuDevice()) ?? undefined) }))
    .backend;
  try {
    if (backend.name !== 'webgpu') throw new Error('no WebGPU here');
    const model = await openModelAt(args.model);
    const V = model.spec.vocabSize,
      L = model.spec.nLayers,
      n = args.ids.length;
    const ranges = [
      { start: 0, end: 1 },
      { start: 1, end: L },
    ];
    const rows = (x: Float32Array) =>
      Array.from({ length: x.length / V }, (_, r) => Array.from(x.subarray(r * V, (r + 1) * V)));
    const stages = await loadStages(model, backend, ranges, 64);
    await runChain(stages, Int32Array.from(args.ids.slice(0, n - 2)), { logits: 'none', argmax: false });
    for (const s of stages) await s.beginBranch(args.at, args.alt.length);
    const branch = (await runChain(stages, Int32Array.from(args.alt), { logits: 'all', argmax: false })).logits!;
    for (const s of stages) await s.endBranch();
    const main = (await runChain(stages, Int32Array.from(args.ids.slice(n - 2)), { logits: 'all', argmax: false }))
      .logits!;
    const fresh = await loadStages(model, backend, ranges, 64);
    const path = (
      await runChain(fresh, Int32Array.from([...args.ids.slice(0, args.at), ...args.alt]), {
        logits: 'all',
        argmax: false,
      })
    ).logits!;
    return { ok: true, branch: rows(branch), pathRef: rows(path.subarray(args.at * V)), main: rows(main) };
  } catch (e) {
    return { ok: false, message: errorMessage(e) };
  } finally {
    backend.destroy();
  }
}

async function shoalKernelBench(shape: OpShape, gemvKind?: GemvKind): Promise<Record<string, number>> {
  return kernelBench(shape, (sharedDevice ??= (await requestWebGpuDevice()) ?? undefined), gemvKind);
}

async function shoalQuantLayoutBench(args: LayoutBenchArgs): Promise<Record<string, number>> {
  return quantLayoutBench((sharedDevice ??= (await requestWebGpuDevice()) ?? undefined)!, args);
}

(window as unknown as { shoalInfer: typeof shoalInfer }).shoalInfer = shoalInfer;
(window as unknown as { shoalQuantLayoutBench: typeof shoalQuantLayoutBench }).shoalQuantLayoutBench =
  shoalQuantLayoutBench;
(window as unknown as { shoalReadBandwidth: typeof measureReadBandwidth }).shoalReadBandwidth = measureReadBandwidth;
(window as unknown as { shoalKernelBench: typeof shoalKernelBench }).shoalKernelBench = shoalKernelBench;
(window as unknown as { shoalBranch: typeof shoalBranch }).shoalBranch = shoalBranch;

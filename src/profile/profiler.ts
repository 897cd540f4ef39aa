// Profile this tab for the planner: backend, adapter info and limits, matmul/gemv GFLOP/s on the model's
// shapes, usable memory, weight-loading and GPU upload throughput, all under the tab's emulation knobs.
import { parseConfig } from '../model/config.ts';
import { httpModelFiles } from '../weights/model.ts';
import { errorMessage } from '../errors.ts';
import { gpuUploadBytesPerSec } from './computeProbe.ts';
import { engineGflops } from './engineProbe.ts';
import { createCpuBackend } from '../backend/cpu/index.ts';
import { createWebGpuBackend } from '../backend/webgpu/index.ts';
import type { Backend } from '../backend/types.ts';
import { measureLoad } from './loadProbe.ts';
import { wasmSimdSupported } from '../backend/cpu/wasmGemm.ts';
import type { AdapterSummary, DeviceProfile, EmulationKnobs, ProbeShape } from './types.ts';

/** Shapes used when the model's config cannot be read: SmolLM2-135M's (dim 576, hiddenDim 1536). */
export const DEFAULT_DIM = 576;
export const DEFAULT_HIDDEN_DIM = 1536;
/** Longest the WebGPU engine probe may take before the tab settles for its CPU figures. */
export const GPU_PROBE_DEADLINE_MS = 30_000;
/** Longest the weight-loading probe may take (it reads a few MB; a slower source counts as 0 B/s, i.e. unusable). */
export const LOAD_PROBE_DEADLINE_MS = 30_000;

/** A software adapter (SwiftShader and other fallback adapters) that emulates a GPU on the CPU. */
export function isCpuEmulatedAdapter(adapter: GPUAdapter): boolean {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return (
    info?.isFallbackAdapter === true || /swiftshader/i.test(`${info?.architecture ?? ''} ${info?.description ?? ''}`)
  );
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Rows of the prefill-like matmul probe (a prompt chunk). */
export const PROBE_ROWS = 32;
/** Share of the device's RAM one tab may plan to use, and the fallback when the browser will not say. */
export const MEMORY_SHARE = 0.5;
export const FALLBACK_DEVICE_MEMORY_BYTES = 4 * 1024 ** 3;
/** The adapter limits the engine and planner care about. */
const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBuffersPerShaderStage',
] as const;

export interface ProfileOptions {
  peerId: string;
  name: string;
  modelUrl: string;
  knobs: EmulationKnobs;
  /** 'cpu' forces a CPU profile even where WebGPU exists. */
  backend?: 'auto' | 'cpu';
  /** Progress lines for the UI. */
  onStep?: (step: string) => void;
}

export async function requestGpu(): Promise<{ adapter: GPUAdapter; device: GPUDevice } | null> {
  const gpu = typeof navigator !== 'undefined' ? navigator.gpu : undefined;
  if (!gpu) return null;
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return null;
    const device = await adapter.requestDevice();
    return { adapter, device };
  } catch {
    return null;
  }
}

function adapterSummary(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const k of LIMIT_NAMES) limits[k] = Number(adapter.limits[k]);
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    limits,
    features: [...adapter.features].map(String).slice(0, 64),
  };
}

/**
 * Memory this tab may use: a share of device RAM (navigator.deviceMemory, GiB, rounded by the browser), capped on a
 * CPU tab by where its weights live (the WebAssembly heap, at most 4 GiB per engine; else the JS heap) and by the
 * emulation knob.
 */
export function usableMemoryBytes(backend: 'webgpu' | 'cpu', knobs: EmulationKnobs): number {
  const nav = typeof navigator !== 'undefined' ? (navigator as Navigator & { deviceMemory?: number }) : undefined;
  const deviceBytes = nav?.deviceMemory ? nav.deviceMemory * 1024 ** 3 : FALLBACK_DEVICE_MEMORY_BYTES;
  let bytes = deviceBytes * MEMORY_SHARE;
  const heap = (globalThis.performance as Performance & { memory?: { jsHeapSizeLimit?: number } }).memory
    ?.jsHeapSizeLimit;
  if (backend === 'cpu') {
    if (wasmSimdSupported()) bytes = Math.min(bytes, WASM_WEIGHTS_MAX_BYTES);
    else if (heap) bytes = Math.min(bytes, heap * 0.75);
  }
  if (knobs.memoryBytes !== null) bytes = Math.min(bytes, knobs.memoryBytes);
  return Math.round(bytes);
}

/** What a CPU engine's WebAssembly heap can hold for weights: wasm32's 4 GiB less room for scratch. */
const WASM_WEIGHTS_MAX_BYTES = 3.75 * 1024 ** 3;

async function modelShapes(modelUrl: string): Promise<{ dim: number; hiddenDim: number }> {
  try {
    const spec = parseConfig(JSON.parse(await httpModelFiles(modelUrl).text('config.json')));
    return { dim: spec.dim, hiddenDim: spec.hiddenDim };
  } catch {
    return { dim: DEFAULT_DIM, hiddenDim: DEFAULT_HIDDEN_DIM };
  }
}

/** One engine's GFLOP/s at the model's matmul and gemv shapes; the backend is destroyed afterwards. */
async function measureEngine(b: Backend, matmulShape: ProbeShape, gemvShape: ProbeShape, knobs: EmulationKnobs) {
  try {
    return {
      name: b.name,
      matmul: await engineGflops(b, matmulShape, knobs),
      gemv: await engineGflops(b, gemvShape, knobs),
    };
  } finally {
    b.destroy();
  }
}

/** Weight-loading speed in bytes/s, 0 when the probe fails or misses its deadline (the source is unusable). */
/** How long a tab reuses its measured load rate across reloads: the probe reads 4 MB that weights then need not. */
export const LOAD_PROBE_REUSE_MS = 60 * 60 * 1000;

async function loadProbe(opts: ProfileOptions, step: (what: string) => void): Promise<number> {
  const key = `shoal:load-probe:${opts.modelUrl}:${opts.knobs.loadBytesPerSec ?? ''}`;
  const kept = recall(key);
  if (kept !== null) return kept;
  try {
    const r = await withDeadline(
      measureLoad(opts.modelUrl, opts.knobs.loadBytesPerSec),
      LOAD_PROBE_DEADLINE_MS,
      'the load probe',
    );
    remember(key, r.bytesPerSec);
    return r.bytesPerSec;
  } catch (e) {
    step(`weight loading failed: ${errorMessage(e)}`);
    return 0;
  }
}

export async function profileDevice(opts: ProfileOptions): Promise<DeviceProfile> {
  const step = opts.onStep ?? (() => undefined);
  const { dim, hiddenDim } = await modelShapes(opts.modelUrl);
  // Every probe has a deadline: a stuck GPU process or server must not leave the tab without a profile.
  const gpu =
    opts.backend === 'cpu'
      ? null
      : await withDeadline(requestGpu(), GPU_PROBE_DEADLINE_MS, 'the WebGPU adapter').catch(() => null);
  const matmulShape: ProbeShape = { rows: PROBE_ROWS, inner: dim, cols: hiddenDim };
  const gemvShape: ProbeShape = { rows: 1, inner: dim, cols: hiddenDim };
  // Measure each engine this tab could run on with the model's own shapes; the faster one runs the stages.
  const measure = (b: Backend) => measureEngine(b, matmulShape, gemvShape, opts.knobs);
  let uploadBytesPerSec: number | null = null;
  step(`compute (cpu engine, ${dim}x${hiddenDim})`);
  const results = [await measure(createCpuBackend())];
  if (gpu) {
    try {
      // After the deadline the CPU figures stand alone.
      await withDeadline(
        (async () => {
          step('GPU upload');
          uploadBytesPerSec = await gpuUploadBytesPerSec(gpu.device);
          if (isCpuEmulatedAdapter(gpu.adapter)) {
            // A fallback adapter (SwiftShader) runs WebGPU on these same cores: measured 6-20x slower than the CPU
            // engine (npm run bench -- engine), and compiling its pipelines stalls the page long enough to miss
            // heartbeats. The CPU engine runs the stages.
            step('webgpu adapter is CPU-emulated: using the CPU engine');
            return;
          }
          step(`compute (webgpu engine, ${dim}x${hiddenDim})`);
          const wg = await createWebGpuBackend({ device: gpu.device });
          if (wg) results.push(await measure(wg));
        })(),
        GPU_PROBE_DEADLINE_MS,
        'the WebGPU probe',
      );
    } catch (e) {
      step(`webgpu probe failed: ${errorMessage(e)}`);
    } finally {
      gpu.device.destroy();
    }
  }
  const best = results.reduce((a, b) => (b.matmul > a.matmul ? b : a));
  const backend = best.name;
  const matmulGflops = best.matmul;
  const gemvGflops = best.gemv;
  if (backend === 'cpu') uploadBytesPerSec = null;
  step('weight loading');
  const loadBytesPerSec = await loadProbe(opts, step);
  return {
    peerId: opts.peerId,
    name: opts.name,
    backend,
    adapter: gpu ? adapterSummary(gpu.adapter) : null,
    matmulGflops,
    gemvGflops,
    matmulShape,
    gemvShape,
    memoryBytes: usableMemoryBytes(backend, opts.knobs),
    loadBytesPerSec,
    uploadBytesPerSec,
    modelUrl: opts.modelUrl,
    emulation: opts.knobs,
    measuredAt: Date.now(),
  };
}

/** A load rate this browser measured for the same source and cap within LOAD_PROBE_REUSE_MS, else null. */
function recall(key: string): number | null {
  try {
    const v = JSON.parse(globalThis.localStorage?.getItem(key) ?? 'null') as { at: number; bps: number } | null;
    return v && Date.now() - v.at < LOAD_PROBE_REUSE_MS && v.bps > 0 ? v.bps : null;
  } catch {
    return null;
  }
}

function remember(key: string, bps: number): void {
  try {
    globalThis.localStorage?.setItem(key, JSON.stringify({ at: Date.now(), bps }));
  } catch {
    // storage full or refused: the next reload measures again
  }
}

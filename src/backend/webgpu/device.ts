// WebGPU adapter/device setup: request only the limits we use (capped at what the adapter offers) and route
// device loss and uncaptured errors to one failure path with a human message.
import { ShoalError, errorMessage } from '../../errors.ts';

/** The limits the kernels depend on; each is requested at the adapter's maximum. */
export const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** What the kernels need at the very least: 8 storage bindings (ropeAndCache), 256 invocations, 16 KiB shared. */
const REQUIRED: Record<(typeof WANTED_LIMITS)[number], number> = {
  maxStorageBufferBindingSize: 1 << 20,
  maxBufferSize: 1 << 20,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupsPerDimension: 65535,
};

export interface GpuContext {
  device: GPUDevice;
  maxBindingBytes: number;
  maxBufferBytes: number;
  maxWorkgroupsPerDim: number;
  adapterInfo: string;
}

/** navigator.gpu when this JS realm has WebGPU, else undefined (Node, old browsers, insecure contexts). */
export function gpuApi(): GPU | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu;
}

/** Create a device, or null when WebGPU is absent or no adapter is offered. */
export async function requestGpuContext(onFailure: (err: ShoalError) => void, existing?: GPUDevice): Promise<GpuContext | null> {
  let device = existing;
  let adapterInfo = 'external device';
  if (!device) {
    const gpu = gpuApi();
    if (!gpu) return null;
    let adapter: GPUAdapter | null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    } catch {
      return null;
    }
    if (!adapter) return null;
    const requiredLimits: Record<string, number> = {};
    for (const name of WANTED_LIMITS) {
      const offered = adapter.limits[name];
      if (offered < REQUIRED[name]) {
        throw new ShoalError('ERR_WEBGPU_UNAVAILABLE', `this GPU offers ${name}=${offered}, below the ${REQUIRED[name]} Shoal needs`);
      }
      requiredLimits[name] = offered;
    }
    const info = adapter.info;
    adapterInfo = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
    try {
      device = await adapter.requestDevice({ requiredLimits });
    } catch (e) {
      throw new ShoalError('ERR_WEBGPU_UNAVAILABLE', `could not create a WebGPU device: ${errorMessage(e)}`, { cause: e });
    }
  }
  const dev = device;
  dev.lost.then((info) => {
    if (info.reason === 'destroyed') return; // we destroyed it on purpose
    onFailure(new ShoalError('ERR_DEVICE_LOST', `the GPU device was lost (${info.message || 'no reason given'}); reload the page to start again`));
  }).catch(() => undefined);
  dev.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    onFailure(new ShoalError('ERR_BACKEND', `WebGPU error: ${err.message}`));
  });
  return {
    device: dev,
    maxBindingBytes: dev.limits.maxStorageBufferBindingSize,
    maxBufferBytes: dev.limits.maxBufferSize,
    maxWorkgroupsPerDim: dev.limits.maxComputeWorkgroupsPerDimension,
    adapterInfo,
  };
}

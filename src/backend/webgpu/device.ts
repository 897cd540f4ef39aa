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
  /** A CPU implementation of WebGPU (SwiftShader, lavapipe, WARP): kernels without barriers run faster there. */
  cpuAdapter: boolean;
  /** The device has the 'subgroups' feature. */
  subgroups: boolean;
  /** True when we created the device (then destroy() may destroy it). */
  ownsDevice: boolean;
  /** Stop reporting this device's failures to our handler (the device may live on with another backend). */
  detach(): void;
}

/** navigator.gpu when this JS realm has WebGPU, else undefined (Node, old browsers, insecure contexts). */
export function gpuApi(): GPU | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu;
}

const CPU_ADAPTER = /swiftshader|llvmpipe|lavapipe|microsoft basic render|warp/i;

/** Describe an adapter in one line for logs and benchmark headers. */
function describe(info: GPUAdapterInfo | undefined): string {
  return [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'unknown adapter';
}

/**
 * A device with the limits we use raised to what the adapter offers, or null when WebGPU is absent or no
 * adapter is offered. Throws ERR_WEBGPU_UNAVAILABLE when the adapter is below what the kernels need.
 */
export async function requestWebGpuDevice(): Promise<GPUDevice | null> {
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
      throw new ShoalError(
        'ERR_WEBGPU_UNAVAILABLE',
        `this GPU offers ${name}=${offered}, below the ${REQUIRED[name]} Shoal needs`,
      );
    }
    requiredLimits[name] = offered;
  }
  try {
    // Subgroups only when offered: the decode gemv uses them, and falls back to other kernels without.
    const requiredFeatures: GPUFeatureName[] = adapter.features.has('subgroups') ? ['subgroups'] : [];
    return await adapter.requestDevice({ label: describe(adapter.info), requiredLimits, requiredFeatures });
  } catch (e) {
    throw new ShoalError('ERR_WEBGPU_UNAVAILABLE', `could not create a WebGPU device: ${errorMessage(e)}`, {
      cause: e,
    });
  }
}

/** Wrap a device (ours, or one the caller passes in) with its limits and one failure path. */
export async function requestGpuContext(
  onFailure: (err: ShoalError) => void,
  existing?: GPUDevice,
): Promise<GpuContext | null> {
  const device = existing ?? (await requestWebGpuDevice());
  if (!device) return null;
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const adapterInfo = info ? describe(info) : device.label || 'unknown adapter';
  const dev = device;
  let attached = true;
  dev.lost
    .then((info) => {
      if (!attached || info.reason === 'destroyed') return; // we destroyed it on purpose
      onFailure(
        new ShoalError(
          'ERR_DEVICE_LOST',
          `the GPU device was lost (${info.message || 'no reason given'}); reload the page to start again`,
        ),
      );
    })
    .catch(() => undefined);
  const onError = (ev: Event) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    onFailure(new ShoalError('ERR_BACKEND', `WebGPU error: ${err.message}`));
  };
  dev.addEventListener('uncapturederror', onError);
  return {
    device: dev,
    maxBindingBytes: dev.limits.maxStorageBufferBindingSize,
    maxBufferBytes: dev.limits.maxBufferSize,
    maxWorkgroupsPerDim: dev.limits.maxComputeWorkgroupsPerDimension,
    adapterInfo,
    cpuAdapter:
      CPU_ADAPTER.test(adapterInfo) || !!(info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter,
    subgroups: device.features.has('subgroups'),
    ownsDevice: !existing,
    detach() {
      attached = false;
      dev.removeEventListener('uncapturederror', onError);
    },
  };
}

// Device and link profile records: what the planner sees of a tab, shared with the room over the mesh.

export type ComputeBackendKind = 'webgpu' | 'cpu';

/** Shapes a throughput probe ran on (the model's own: dim -> hiddenDim). */
export interface ProbeShape { rows: number; inner: number; cols: number } // (rows, inner) x (inner, cols)

export interface EmulationKnobs {
  /** Compute slowdown factor (>= 1): after each compute step wait (slowdown - 1) x its time. */
  slowdown: number;
  /** Cap on weight-loading bytes/s; null = none. */
  loadBytesPerSec: number | null;
  /** Extra one-way delay on every data-channel frame this tab sends, ms. */
  linkDelayMs: number;
  /** Cap on data-channel bytes/s this tab sends (per link); null = none. */
  linkBytesPerSec: number | null;
  /** Cap on the memory this tab reports as usable, bytes; null = none. */
  memoryBytes: number | null;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** The limits the engine and planner care about (bytes or counts). */
  limits: Record<string, number>;
  features: string[];
}

export interface DeviceProfile {
  peerId: string;
  name: string;
  backend: ComputeBackendKind;
  adapter: AdapterSummary | null;
  /** Measured matmul (prefill-like) throughput on the model's shapes, GFLOP/s, emulation included. */
  matmulGflops: number;
  /** Measured gemv (decode-like) throughput, GFLOP/s. */
  gemvGflops: number;
  matmulShape: ProbeShape;
  gemvShape: ProbeShape;
  /** Memory this tab may use for weights + KV cache, bytes. */
  memoryBytes: number;
  /** Measured Range-request weight-loading throughput from the model source, bytes/s. */
  loadBytesPerSec: number;
  /** Host -> GPU upload bandwidth, bytes/s (null on a CPU tab). */
  uploadBytesPerSec: number | null;
  /** Where the load probe read from. */
  modelUrl: string;
  emulation: EmulationKnobs;
  /** ms since epoch when the profile was measured. */
  measuredAt: number;
}

/** One directed link as measured by its sender. */
export interface LinkStats {
  rttMs: number | null;
  bytesPerSec: number | null;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const num = (x: unknown, min = 0): x is number => typeof x === 'number' && Number.isFinite(x) && x >= min;
const str = (x: unknown, max = 256): x is string => typeof x === 'string' && x.length <= max;
const numOrNull = (x: unknown): boolean => x === null || num(x);

function parseShape(x: unknown): ProbeShape | null {
  if (!isObj(x)) return null;
  const { rows, inner, cols } = x;
  return num(rows, 1) && num(inner, 1) && num(cols, 1) ? { rows, inner, cols } : null;
}

function parseKnobs(x: unknown): EmulationKnobs | null {
  if (!isObj(x)) return null;
  if (!num(x.slowdown, 1) || !num(x.linkDelayMs)) return null;
  if (!numOrNull(x.loadBytesPerSec) || !numOrNull(x.linkBytesPerSec) || !numOrNull(x.memoryBytes)) return null;
  return {
    slowdown: x.slowdown,
    loadBytesPerSec: x.loadBytesPerSec as number | null,
    linkDelayMs: x.linkDelayMs,
    linkBytesPerSec: x.linkBytesPerSec as number | null,
    memoryBytes: x.memoryBytes as number | null,
  };
}

function parseAdapter(x: unknown): AdapterSummary | null | undefined {
  if (x === null) return null;
  if (!isObj(x)) return undefined;
  if (!str(x.vendor) || !str(x.architecture) || !str(x.device) || !str(x.description)) return undefined;
  if (!isObj(x.limits) || !Array.isArray(x.features) || x.features.length > 128 || !x.features.every((f) => str(f, 64))) return undefined;
  const limits: Record<string, number> = {};
  const entries = Object.entries(x.limits);
  if (entries.length > 64) return undefined;
  for (const [k, v] of entries) {
    if (!num(v) || k.length > 64) return undefined;
    limits[k] = v;
  }
  return { vendor: x.vendor, architecture: x.architecture, device: x.device, description: x.description, limits, features: x.features as string[] };
}

/** Validate a profile received from a peer; null when anything is off (it is then dropped and reported). */
export function parseDeviceProfile(x: unknown): DeviceProfile | null {
  if (!isObj(x)) return null;
  if (!str(x.peerId, 64) || !str(x.name, 64) || (x.backend !== 'webgpu' && x.backend !== 'cpu')) return null;
  const adapter = parseAdapter(x.adapter);
  const matmulShape = parseShape(x.matmulShape);
  const gemvShape = parseShape(x.gemvShape);
  const emulation = parseKnobs(x.emulation);
  if (adapter === undefined || !matmulShape || !gemvShape || !emulation) return null;
  if (!num(x.matmulGflops) || !num(x.gemvGflops) || !num(x.memoryBytes) || !num(x.loadBytesPerSec) || !numOrNull(x.uploadBytesPerSec)) return null;
  if (!str(x.modelUrl, 2048) || !num(x.measuredAt)) return null;
  return {
    peerId: x.peerId,
    name: x.name,
    backend: x.backend,
    adapter,
    matmulGflops: x.matmulGflops,
    gemvGflops: x.gemvGflops,
    matmulShape,
    gemvShape,
    memoryBytes: x.memoryBytes,
    loadBytesPerSec: x.loadBytesPerSec,
    uploadBytesPerSec: x.uploadBytesPerSec as number | null,
    modelUrl: x.modelUrl,
    emulation,
    measuredAt: x.measuredAt,
  };
}

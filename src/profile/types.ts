// Device and link profile records: what the planner sees of a tab, shared with the room over the mesh. The records
// are schemas (a profile from a peer is validated against them); the types derive from them.
import * as v from 'valibot';
import { atLeast, list, nonNegative, parseOrNull, record, text } from '../wire/schema.ts';

export const ComputeBackendKindSchema = v.picklist(['webgpu', 'cpu']);
export type ComputeBackendKind = v.InferOutput<typeof ComputeBackendKindSchema>;

/** Shapes a throughput probe ran on (the model's own: dim -> hiddenDim): (rows, inner) x (inner, cols). */
export const ProbeShapeSchema = v.object({ rows: atLeast(1), inner: atLeast(1), cols: atLeast(1) });
export type ProbeShape = v.InferOutput<typeof ProbeShapeSchema>;

const nonNegativeOrNull = v.nullable(nonNegative);

export const EmulationKnobsSchema = v.object({
  /** Compute slowdown factor (>= 1): after each compute step wait (slowdown - 1) x its time. */
  slowdown: atLeast(1),
  /** Cap on weight-loading bytes/s; null = none. */
  loadBytesPerSec: nonNegativeOrNull,
  /** Extra one-way delay on every data-channel frame this tab sends, ms. */
  linkDelayMs: nonNegative,
  /** Cap on data-channel bytes/s this tab sends (per link); null = none. */
  linkBytesPerSec: nonNegativeOrNull,
  /** Cap on the memory this tab reports as usable, bytes; null = none. */
  memoryBytes: nonNegativeOrNull,
});
export type EmulationKnobs = v.InferOutput<typeof EmulationKnobsSchema>;

export const AdapterSummarySchema = v.object({
  vendor: text(256),
  architecture: text(256),
  device: text(256),
  description: text(256),
  /** The limits the engine and planner care about (bytes or counts). */
  limits: record(nonNegative, 64, 64),
  features: list(text(64), 128),
});
export type AdapterSummary = v.InferOutput<typeof AdapterSummarySchema>;

export const DeviceProfileSchema = v.object({
  peerId: text(64),
  name: text(64),
  backend: ComputeBackendKindSchema,
  adapter: v.nullable(AdapterSummarySchema),
  /** Measured matmul (prefill-like) throughput on the model's shapes, GFLOP/s, emulation included. */
  matmulGflops: nonNegative,
  /** Measured gemv (decode-like) throughput, GFLOP/s. */
  gemvGflops: nonNegative,
  matmulShape: ProbeShapeSchema,
  gemvShape: ProbeShapeSchema,
  /** Memory this tab may use for weights + KV cache, bytes. */
  memoryBytes: nonNegative,
  /** Measured Range-request weight-loading throughput from the model source, bytes/s. */
  loadBytesPerSec: nonNegative,
  /** Host -> GPU upload bandwidth, bytes/s (null on a CPU tab). */
  uploadBytesPerSec: nonNegativeOrNull,
  /** Where the load probe read from. */
  modelUrl: text(2048),
  emulation: EmulationKnobsSchema,
  /** ms since epoch when the profile was measured. */
  measuredAt: nonNegative,
});
export type DeviceProfile = v.InferOutput<typeof DeviceProfileSchema>;

/** One directed link as measured by its sender. */
export const LinkStatsSchema = v.object({ rttMs: nonNegativeOrNull, bytesPerSec: nonNegativeOrNull });
export type LinkStats = v.InferOutput<typeof LinkStatsSchema>;

/** Validate a profile received from a peer; null when anything is off (it is then dropped and reported). */
export function parseDeviceProfile(x: unknown): DeviceProfile | null {
  return parseOrNull(DeviceProfileSchema, x);
}

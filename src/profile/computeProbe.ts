// Probe helpers: GPU upload bandwidth, and the rest taken after each timed compute run (engineProbe.ts times the
// engine's own kernels).
import { sleep } from './emulation.ts';

/**
 * Idle time after each timed run, as a multiple of the run, debt included (untimed). On a busy machine the
 * OS scheduler favours threads that slept (SwiftShader's workers live in the shared GPU process), so a tab
 * paying a 4x slowdown debt measured ~40% faster raw runs than its back-to-back twin. Resting every tab the
 * same way up to a 4x slowdown keeps the comparison fair.
 */
export const REST_FACTOR = 3;

export async function rest(runMs: number, debtMs: number): Promise<void> {
  const restMs = REST_FACTOR * runMs - debtMs;
  if (restMs > 1) await sleep(restMs);
}

/** Host -> GPU upload bandwidth (writeBuffer until the queue drains), bytes/s. */
export async function gpuUploadBytesPerSec(
  device: GPUDevice,
  totalBytes = 32 * 1024 * 1024,
  chunkBytes = 8 * 1024 * 1024,
): Promise<number> {
  const buf = device.createBuffer({ size: chunkBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const data = new Uint8Array(chunkBytes);
  try {
    device.queue.writeBuffer(buf, 0, data); // warm-up
    await device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    for (let sent = 0; sent < totalBytes; sent += chunkBytes) device.queue.writeBuffer(buf, 0, data);
    await device.queue.onSubmittedWorkDone();
    return totalBytes / Math.max(1e-6, (performance.now() - t0) / 1000);
  } finally {
    buf.destroy();
  }
}

// Records dispatches and copies between reads and replays them into ONE command encoder and ONE queue.submit.
// Uniform params and small host uploads go into a per-flush arena written with a single writeBuffer right before
// the submit; bind groups are cached by their buffers, so a steady decode loop allocates nothing on the GPU.
import { ShoalError } from '../../errors.ts';
import type { Kernel } from './pipelines.ts';

const UNIFORM_ALIGN = 256; // minUniformBufferOffsetAlignment's largest allowed value
const UNIFORM_BYTES = 32; // every kernel's Params struct fits 8 words
const MAX_BIND_GROUPS_CACHED = 4096;

type Cmd =
  | { kind: 'dispatch'; kernel: Kernel; buffers: GPUBuffer[]; uniformOffset: number; grid: [number, number, number] }
  // src null: the arena
  | { kind: 'copy'; src: GPUBuffer | null; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number };

export class Recorder {
  private cmds: Cmd[] = [];
  private arenaHost = new Uint8Array(64 * 1024);
  private arenaUsed = 0;
  private arenaGpu: GPUBuffer | null = null;
  private arenaGeneration = 0;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  dispatches = 0;
  submits = 0;

  constructor(private readonly device: GPUDevice) {}

  get pending(): boolean {
    return this.cmds.length > 0;
  }

  private reserve(bytes: number): number {
    const off = Math.ceil(this.arenaUsed / UNIFORM_ALIGN) * UNIFORM_ALIGN;
    const end = off + bytes;
    if (end > this.arenaHost.byteLength) {
      const grown = new Uint8Array(Math.max(end, this.arenaHost.byteLength * 2));
      grown.set(this.arenaHost.subarray(0, this.arenaUsed));
      this.arenaHost = grown;
    }
    this.arenaUsed = end;
    return off;
  }

  /** Queue one dispatch. `params` are the kernel's uniform words (u32 or f32 views over one ArrayBuffer). */
  dispatch(kernel: Kernel, buffers: GPUBuffer[], params: ArrayBuffer, grid: [number, number?, number?]): void {
    if (params.byteLength > UNIFORM_BYTES)
      throw new ShoalError('ERR_BACKEND', 'internal: kernel params exceed 32 bytes');
    const off = this.reserve(UNIFORM_BYTES);
    this.arenaHost.set(new Uint8Array(params), off);
    this.cmds.push({
      kind: 'dispatch',
      kernel,
      buffers,
      uniformOffset: off,
      grid: [grid[0], grid[1] ?? 1, grid[2] ?? 1],
    });
    this.dispatches++;
  }

  /** Queue a host->device upload into `dst` (through the arena, so it is ordered with the recorded work). */
  upload(dst: GPUBuffer, bytes: Uint8Array): void {
    const size = Math.ceil(bytes.byteLength / 4) * 4;
    const off = this.reserve(size);
    this.arenaHost.set(bytes, off);
    this.arenaHost.fill(0, off + bytes.byteLength, off + size);
    this.cmds.push({ kind: 'copy', src: null, srcOffset: off, dst, dstOffset: 0, size });
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.cmds.push({ kind: 'copy', src, srcOffset, dst, dstOffset, size });
  }

  private id(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(b, id);
    }
    return id;
  }

  private bindGroup(cmd: Extract<Cmd, { kind: 'dispatch' }>, arena: GPUBuffer): GPUBindGroup {
    let key = `${cmd.kernel.id}:${this.arenaGeneration}:${cmd.uniformOffset}`;
    for (const b of cmd.buffers) key += `:${this.id(b)}`;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      if (this.bindGroups.size >= MAX_BIND_GROUPS_CACHED) this.bindGroups.clear();
      bg = this.device.createBindGroup({
        layout: cmd.kernel.layout,
        entries: [
          { binding: 0, resource: { buffer: arena, offset: cmd.uniformOffset, size: UNIFORM_BYTES } },
          ...cmd.buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ],
      });
      this.bindGroups.set(key, bg);
    }
    return bg;
  }

  /** Encode everything recorded (plus `extra`, e.g. a copy to a staging buffer) and submit it once. */
  flush(extra?: (enc: GPUCommandEncoder) => void): void {
    if (this.cmds.length === 0 && !extra) return;
    if (this.arenaUsed > 0 && (!this.arenaGpu || this.arenaGpu.size < this.arenaUsed)) {
      this.arenaGpu?.destroy();
      this.arenaGpu = this.device.createBuffer({
        label: 'shoal-arena',
        size: Math.max(this.arenaHost.byteLength, 64 * 1024),
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      this.arenaGeneration++;
      this.bindGroups.clear();
    }
    const arena = this.arenaGpu;
    if (arena && this.arenaUsed > 0)
      this.device.queue.writeBuffer(arena, 0, this.arenaHost, 0, Math.ceil(this.arenaUsed / 4) * 4);
    const enc = this.device.createCommandEncoder({ label: 'shoal-step' });
    let pass: GPUComputePassEncoder | null = null;
    for (const cmd of this.cmds) {
      if (cmd.kind === 'dispatch') {
        if (!pass) pass = enc.beginComputePass();
        pass.setPipeline(cmd.kernel.pipeline);
        pass.setBindGroup(0, this.bindGroup(cmd, arena!));
        pass.dispatchWorkgroups(cmd.grid[0], cmd.grid[1], cmd.grid[2]);
      } else {
        if (pass) {
          pass.end();
          pass = null;
        }
        enc.copyBufferToBuffer(cmd.src ?? arena!, cmd.srcOffset, cmd.dst, cmd.dstOffset, cmd.size);
      }
    }
    if (pass) pass.end();
    extra?.(enc);
    this.device.queue.submit([enc.finish()]);
    this.submits++;
    this.cmds = [];
    this.arenaUsed = 0;
  }

  destroy(): void {
    this.cmds = [];
    this.bindGroups.clear();
    this.arenaGpu?.destroy();
    this.arenaGpu = null;
  }
}

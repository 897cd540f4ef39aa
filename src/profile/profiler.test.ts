// What a tab offers the planner: a share of device RAM, capped by where a CPU tab keeps its weights and by the knob.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NO_EMULATION } from './emulation.ts';
import { usableMemoryBytes } from './profiler.ts';

const GiB = 1024 ** 3;

describe('usableMemoryBytes', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('caps a CPU tab at what one WebAssembly heap holds (4 GiB, less scratch), not a GPU tab', () => {
    vi.stubGlobal('navigator', { deviceMemory: 32 });
    expect(usableMemoryBytes('cpu', NO_EMULATION)).toBe(Math.round(3.75 * GiB));
    expect(usableMemoryBytes('webgpu', NO_EMULATION)).toBeGreaterThan(4 * GiB);
  });

  it('honours the memory knob below every other cap', () => {
    vi.stubGlobal('navigator', { deviceMemory: 8 });
    const knobs = { ...NO_EMULATION, memoryBytes: 512 * 1024 ** 2 };
    expect(usableMemoryBytes('cpu', knobs)).toBe(512 * 1024 ** 2);
    expect(usableMemoryBytes('webgpu', knobs)).toBe(512 * 1024 ** 2);
  });
});

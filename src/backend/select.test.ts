// Backend choice in Node, which really has no WebGPU: the CPU backend runs and the reason says so.
import { describe, expect, it } from 'vitest';
import { createBestBackend } from './select.ts';
import { createWebGpuBackend } from './webgpu/index.ts';

describe('createBestBackend', () => {
  it('returns null from createWebGpuBackend and falls back to the CPU backend with a reason', async () => {
    expect(await createWebGpuBackend()).toBeNull();
    const choice = await createBestBackend();
    expect(choice.backend.name).toBe('cpu');
    expect(choice.fellBack).toBe(true);
    expect(choice.reason).toMatch(/WebGPU is not available/);
  });

  it('does not call it a fallback when the CPU was asked for', async () => {
    const choice = await createBestBackend({ preferCpu: true });
    expect(choice).toMatchObject({ fellBack: false });
    expect(choice.backend.name).toBe('cpu');
  });
});

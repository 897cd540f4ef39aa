// Device profiles from peers: a well-formed one passes unchanged, anything off (limits included) is dropped.
import { describe, expect, it } from 'vitest';
import { parseDeviceProfile, type DeviceProfile } from './types.ts';

const sampleProfile: DeviceProfile = {
  peerId: 'tab-a',
  name: 'Laptop',
  backend: 'webgpu',
  adapter: {
    vendor: 'acme',
    architecture: 'rdna',
    device: '',
    description: 'Acme GPU',
    limits: { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 },
    features: ['shader-f16'],
  },
  matmulGflops: 900,
  gemvGflops: 40,
  matmulShape: { rows: 64, inner: 256, cols: 688 },
  gemvShape: { rows: 1, inner: 256, cols: 688 },
  memoryBytes: 2e9,
  loadBytesPerSec: 5e7,
  uploadBytesPerSec: 8e9,
  modelUrl: 'http://localhost:5173/models/tiny',
  emulation: { slowdown: 2, loadBytesPerSec: null, linkDelayMs: 20, linkBytesPerSec: 1e6, memoryBytes: null },
  measuredAt: 1.7e12,
};

describe('parseDeviceProfile', () => {
  it('passes a well-formed profile unchanged (a CPU tab has no adapter and no upload figure)', () => {
    expect(parseDeviceProfile(sampleProfile)).toEqual(sampleProfile);
    const cpu = { ...sampleProfile, backend: 'cpu', adapter: null, uploadBytesPerSec: null };
    expect(parseDeviceProfile(cpu)).toEqual(cpu);
    expect(parseDeviceProfile({ ...sampleProfile, extra: 1 })).toEqual(sampleProfile);
  });

  it('drops a profile with anything off', () => {
    const e = sampleProfile.emulation;
    const a = sampleProfile.adapter!;
    const manyLimits = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`l${i}`, 1]));
    const bad: unknown[] = [
      null,
      [],
      'x',
      { ...sampleProfile, backend: 'tpu' },
      { ...sampleProfile, peerId: 'x'.repeat(65) },
      { ...sampleProfile, matmulGflops: -1 },
      { ...sampleProfile, gemvGflops: Infinity },
      { ...sampleProfile, memoryBytes: '1e9' },
      { ...sampleProfile, uploadBytesPerSec: undefined },
      { ...sampleProfile, adapter: undefined },
      { ...sampleProfile, matmulShape: { rows: 0, inner: 256, cols: 688 } },
      { ...sampleProfile, modelUrl: 'x'.repeat(2049) },
      { ...sampleProfile, emulation: { ...e, slowdown: 0.5 } },
      { ...sampleProfile, emulation: { ...e, linkDelayMs: -1 } },
      { ...sampleProfile, emulation: { ...e, memoryBytes: undefined } },
      { ...sampleProfile, adapter: { ...a, limits: [1, 2] } },
      { ...sampleProfile, adapter: { ...a, limits: { x: -1 } } },
      { ...sampleProfile, adapter: { ...a, limits: manyLimits } },
      { ...sampleProfile, adapter: { ...a, features: Array.from({ length: 129 }, () => 'f') } },
      { ...sampleProfile, adapter: { ...a, features: ['x'.repeat(65)] } },
    ];
    for (const x of bad) expect(parseDeviceProfile(x)).toBeNull();
  });
});

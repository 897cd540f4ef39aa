// Device profiles from peers: a well-formed one passes unchanged, anything off (limits included) is dropped.
import { describe, expect, it } from 'vitest';
import { cpuProfile, sampleProfile } from '../testing/profiles.ts';
import { parseDeviceProfile } from './types.ts';

describe('parseDeviceProfile', () => {
  it('passes a well-formed profile unchanged (a CPU tab has no adapter and no upload figure)', () => {
    expect(parseDeviceProfile(sampleProfile)).toEqual(sampleProfile);
    expect(parseDeviceProfile(cpuProfile)).toEqual(cpuProfile);
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

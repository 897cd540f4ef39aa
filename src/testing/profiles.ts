// Well-formed device profiles for the validator tests (profile/types.test.ts checks them field by field).
import type { DeviceProfile } from '../profile/types.ts';

/** A WebGPU tab's profile. */
export const sampleProfile: DeviceProfile = {
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

/** A CPU tab's profile: no adapter and no upload figure. */
export const cpuProfile: DeviceProfile = { ...sampleProfile, backend: 'cpu', adapter: null, uploadBytesPerSec: null };

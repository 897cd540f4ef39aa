// Identical devices (every profile field equal) form one class: the DP then tracks how many of each class are
// used instead of which ones, so four identical tabs cost 5 states instead of 16 (PAPERS.md: "identical devices").
import type { DeviceProfile } from './types.ts';

export interface DeviceClasses {
  /** Device indices of each class, ascending; members[c][0] is the representative the tables use. */
  members: number[][];
  /** Mixed-radix stride of each class in the state index: state = sum_c count_c * stride_c. */
  stride: number[];
  /** Number of states: prod_c (size_c + 1). Infinity when it would overflow. */
  nStates: number;
}

function key(d: DeviceProfile): string {
  return [
    d.flops,
    d.loadBytesPerSec,
    d.memoryBytes,
    d.uplinkBytesPerSec,
    d.downlinkBytesPerSec,
    d.uploadBytesPerSec ?? -1,
    d.latencySec ?? 0,
    // Two tabs alike but holding different layers are not interchangeable.
    JSON.stringify(d.unitBytesPerSec ?? null, (_, v: unknown) => (v === Infinity ? 'inf' : v)),
  ].join(',');
}

export function deviceClasses(devices: DeviceProfile[]): DeviceClasses {
  const byKey = new Map<string, number[]>();
  devices.forEach((d, i) => {
    const k = key(d);
    const list = byKey.get(k);
    if (list) list.push(i);
    else byKey.set(k, [i]);
  });
  const members = [...byKey.values()];
  const stride: number[] = [];
  let n = 1;
  for (const m of members) {
    stride.push(n);
    n *= m.length + 1;
    if (n > Number.MAX_SAFE_INTEGER) n = Infinity;
  }
  return { members, stride, nStates: n };
}

/** Counts per class of one state index. */
export function stateCounts(cls: DeviceClasses, state: number, out: Int32Array): void {
  for (let c = 0; c < cls.members.length; c++) out[c] = Math.floor(state / cls.stride[c]) % (cls.members[c].length + 1);
}

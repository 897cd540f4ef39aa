// The safetensors writer against the project's reader: layout, padding, sharding and the index.
import { describe, expect, it } from 'vitest';
import type { HostTensor } from './types.ts';
import { parseSafetensorsHeader, readSafetensorsHeader } from './safetensors.ts';
import { memorySource } from './source.ts';
import { planShards, safetensorsLayout, shardFileName, shardIndex, writeSafetensors } from './writer.ts';

function tensor(name: string, dtype: HostTensor['dtype'], shape: number[], fill: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1) * (dtype === 'F32' ? 4 : 2);
  return { name, dtype, shape, data: Uint8Array.from({ length: n }, (_, i) => (fill + i) & 0xff) };
}

describe('writeSafetensors', () => {
  const tensors = [
    tensor('b.weight', 'F32', [3, 5], 1),
    tensor('a.weight', 'BF16', [7], 2),
    tensor('c', 'F16', [1, 1, 3], 3),
  ];

  it('writes a file the reader accepts, tensors in the given order and bytes intact', async () => {
    const file = writeSafetensors(tensors, { format: 'pt', note: 'test' });
    const header = await readSafetensorsHeader(memorySource('x.safetensors', file));
    expect(header.metadata).toEqual({ format: 'pt', note: 'test' });
    expect([...header.tensors.keys()]).toEqual(['b.weight', 'a.weight', 'c']);
    let at = header.dataOffset;
    for (const t of tensors) {
      const info = header.tensors.get(t.name)!;
      expect(info.dtype).toBe(t.dtype);
      expect(info.shape).toEqual(t.shape);
      expect(info.begin).toBe(at); // back to back in the given order
      expect(file.subarray(info.begin, info.end)).toEqual(t.data);
      at = info.end;
    }
    expect(at).toBe(file.length);
  });

  it('pads the JSON header with spaces to a multiple of 8', () => {
    for (let extra = 0; extra < 9; extra++) {
      const file = writeSafetensors([tensor('t' + 'x'.repeat(extra), 'F32', [2], 0)]);
      const n = Number(new DataView(file.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      const text = new TextDecoder().decode(file.subarray(8, 8 + n));
      expect(text).toMatch(/^\{.*\} *$/);
      expect(() => parseSafetensorsHeader('x', file.subarray(8, 8 + n), file.length)).not.toThrow();
    }
  });

  it('rejects data of the wrong length and duplicate names', () => {
    const bad = { ...tensor('t', 'F32', [4], 0), data: new Uint8Array(15) };
    expect(() => writeSafetensors([bad])).toThrow(/needs 16/);
    expect(() => writeSafetensors([tensor('t', 'F32', [1], 0), tensor('t', 'F32', [1], 0)])).toThrow(/duplicate/);
  });
});

describe('sharding', () => {
  const entries = [4, 4, 10, 1, 1, 1].map((n, i) => ({ name: `t${i}`, dtype: 'F32' as const, shape: [n] }));

  it('fills shards up to the limit, never splits a tensor, gives an oversized tensor its own shard', () => {
    const shards = planShards(entries, 32); // bytes: 16, 16, 40, 4, 4, 4
    expect(shards.map((s) => s.map((e) => e.name))).toEqual([['t0', 't1'], ['t2'], ['t3', 't4', 't5']]);
    expect(planShards(entries, 1e9)).toHaveLength(1);
    expect(planShards([], 10)).toEqual([[]]);
  });

  it('writes a Hugging Face index: every tensor mapped to its shard, total_size = data bytes', () => {
    const shards = planShards(entries, 32);
    const index = shardIndex(shards);
    expect(index.metadata.total_size).toBe(84);
    expect(index.weight_map).toEqual({
      t0: 'model-00001-of-00003.safetensors',
      t1: 'model-00001-of-00003.safetensors',
      t2: 'model-00002-of-00003.safetensors',
      t3: 'model-00003-of-00003.safetensors',
      t4: 'model-00003-of-00003.safetensors',
      t5: 'model-00003-of-00003.safetensors',
    });
    expect(shardFileName(0, 12)).toBe('model-00001-of-00012.safetensors');
  });

  it('layout offsets match the header written by writeSafetensors', () => {
    const { header, offsets, dataBytes } = safetensorsLayout(entries);
    expect(dataBytes).toBe(84);
    expect(offsets[2]).toEqual({ name: 't2', begin: 32, end: 72 });
    expect(header.length % 8).toBe(0);
  });
});

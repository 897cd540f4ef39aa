// Bad safetensors files give their own clear error, read from disk and over HTTP from a real local server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShoalError } from '../errors.ts';
import { fileSource } from './fileSource.ts';
import { readSafetensorsHeader } from './safetensors.ts';
import { httpSource, type ByteSource } from './source.ts';
import { serveDir, type TestServer } from './testServer.ts';

/** Hand-made file bytes: the length prefix (overridable, to lie), the header text, then `dataBytes` bytes. */
function craft(header: string | object, dataBytes: number, lengthPrefix?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthPrefix ?? BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 0; i < dataBytes; i++) out[8 + json.length + i] = i & 0xff;
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

// Each bad file and the message that must name its problem (and nothing else's).
const BAD: Record<string, { bytes: Uint8Array; message: RegExp }> = {
  'short.safetensors': { bytes: new Uint8Array([1, 2, 3]), message: /3 bytes, too short for the 8-byte header length/ },
  'len-past-end.safetensors': {
    bytes: craft('{}', 0, 1_000_000n),
    message: /header length 1000000 runs past the end of the file \(10 bytes\)/,
  },
  'huge-len.safetensors': {
    bytes: craft('{}', 0, 0xffff_ffff_ffff_fff0n),
    message: /header length 18446744073709551600 runs past the end/,
  },
  'bad-json.safetensors': { bytes: craft('{"w": {"dtype": "F32", ', 0), message: /header is not valid JSON/ },
  'not-object.safetensors': { bytes: craft('[1, 2]', 0), message: /header must be a JSON object/ },
  'unknown-dtype.safetensors': {
    bytes: craft({ w: { dtype: 'Q4_K', shape: [2], data_offsets: [0, 8] } }, 8),
    message: /tensor "w": dtype "Q4_K" is not supported \(supported: F32, F16, BF16\)/,
  },
  'out-of-range.safetensors': {
    bytes: craft({ w: f32([250], 0, 1000) }, 16),
    message: /tensor "w": data_offsets \[0, 1000\] are out of range \(the data section holds 16 bytes/,
  },
  'reversed-offsets.safetensors': {
    bytes: craft({ w: f32([0], 12, 8) }, 16),
    message: /tensor "w": data_offsets \[12, 8\] are out of range/,
  },
  'bad-offsets.safetensors': {
    bytes: craft({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 16),
    message: /tensor "w": data_offsets \[0\] must be \[begin, end\]/,
  },
  'bad-shape.safetensors': {
    bytes: craft({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 16),
    message: /tensor "w": shape \[-1\] must be a list of non-negative integers/,
  },
  'overlap.safetensors': {
    bytes: craft({ a: f32([4], 0, 16), b: f32([4], 8, 24) }, 24),
    message: /tensors "a" \[0, 16\] and "b" \[8, 24\] overlap/,
  },
  'size-mismatch.safetensors': {
    bytes: craft({ w: f32([4], 0, 12) }, 16),
    message: /tensor "w": shape \[4\] x F32 \(4 bytes\) = 16 bytes, but data_offsets \[0, 12\] span 12 bytes/,
  },
};

let dir: string;
let server: TestServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-st-'));
  for (const [name, { bytes }] of Object.entries(BAD)) writeFileSync(join(dir, name), bytes);
  writeFileSync(
    join(dir, 'good.safetensors'),
    craft(
      {
        __metadata__: { format: 'pt' },
        b: { dtype: 'BF16', shape: [2, 3], data_offsets: [16, 28] },
        a: f32([2, 2], 0, 16),
      },
      28,
    ),
  );
  server = await serveDir(dir);
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const SOURCES: [string, (name: string) => ByteSource][] = [
  ['disk', (name) => fileSource(join(dir, name))],
  ['http', (name) => httpSource(server.url + name)],
];

describe.each(SOURCES)('readSafetensorsHeader from %s', (_kind, open) => {
  it('parses a valid header into absolute offsets, allowing __metadata__', async () => {
    const src = open('good.safetensors');
    const h = await readSafetensorsHeader(src);
    const headerLen = JSON.stringify({
      __metadata__: { format: 'pt' },
      b: { dtype: 'BF16', shape: [2, 3], data_offsets: [16, 28] },
      a: f32([2, 2], 0, 16),
    }).length;
    expect(h.dataOffset).toBe(8 + headerLen);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect([...h.tensors.keys()].sort()).toEqual(['a', 'b']);
    expect(h.tensors.get('a')).toEqual({
      name: 'a',
      dtype: 'F32',
      shape: [2, 2],
      begin: h.dataOffset,
      end: h.dataOffset + 16,
    });
    expect(h.tensors.get('b')).toEqual({
      name: 'b',
      dtype: 'BF16',
      shape: [2, 3],
      begin: h.dataOffset + 16,
      end: h.dataOffset + 28,
    });
    // The bytes at those offsets are the data we wrote (i & 0xff from the start of the data section).
    const b = await src.read(h.tensors.get('b')!.begin, 12);
    expect([...b]).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27]);
  });

  for (const [name, { message }] of Object.entries(BAD)) {
    it(`rejects ${name} with its own message`, async () => {
      const err = await readSafetensorsHeader(open(name)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ShoalError);
      expect((err as ShoalError).code).toBe('ERR_BAD_SAFETENSORS');
      expect((err as ShoalError).message).toMatch(message);
      expect((err as ShoalError).message).toContain(name); // names the file
    });
  }

  it('gives a distinct message for every bad file', async () => {
    const messages = await Promise.all(
      Object.keys(BAD).map((n) =>
        readSafetensorsHeader(open(n)).catch((e: Error) => e.message.replace(/^.*?safetensors: /, '')),
      ),
    );
    expect(new Set(messages).size).toBe(Object.keys(BAD).length);
  });
});

it('reads a small header over HTTP with a single Range request', async () => {
  const before = server.count('/good.safetensors');
  await readSafetensorsHeader(httpSource(server.url + 'good.safetensors'));
  expect(server.count('/good.safetensors') - before).toBe(1);
  expect(server.requests.at(-1)?.range).toBe('bytes=0-65535');
});

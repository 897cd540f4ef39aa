// Codec: round-trip properties (messages, binary, tensors), frame limits, and fuzzing the decoder with
// random, truncated and corrupted frames: it must never throw and never accept a damaged message.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FRAME_CHUNK_BYTES,
  FRAME_HEADER_BYTES,
  MAX_FRAME_BYTES,
  Reassembler,
  decodeTensor,
  encodeFrames,
  encodeTensor,
  type DecodeResult,
} from './codec.ts';
import { crc32 } from './crc32.ts';
import type { MeshMessage } from './protocol.ts';

const appMsg = fc.record({
  type: fc.constant('app' as const),
  channel: fc.string({ minLength: 1, maxLength: 64 }),
  seq: fc.integer({ min: 1, max: 2 ** 31 }),
  body: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown),
});
const ctrlMsg = fc.oneof(
  fc.record({ type: fc.constant('heartbeat' as const), t: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  fc.record({
    type: fc.constant('ping' as const),
    id: fc.nat(),
    t: fc.double({ noNaN: true, noDefaultInfinity: true }),
  }),
  fc.record({
    type: fc.constant('pong' as const),
    id: fc.nat(),
    t: fc.double({ noNaN: true, noDefaultInfinity: true }),
    bytes: fc.nat(),
  }),
  fc.record({ type: fc.constant('ack' as const), seq: fc.nat() }),
);
const anyMsg: fc.Arbitrary<MeshMessage> = fc.oneof(appMsg, ctrlMsg);
// Sizes around frame boundaries matter most.
const binary = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 300 }),
  fc.integer({ min: FRAME_CHUNK_BYTES - 200, max: 3 * FRAME_CHUNK_BYTES + 200 }).map((n) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 2654435761) >>> 24;
    return b;
  }),
);

function feed(r: Reassembler, frames: Uint8Array[]): DecodeResult[] {
  const out: DecodeResult[] = [];
  for (const f of frames) {
    const res = r.push(f);
    if (res) out.push(res);
  }
  return out;
}

describe('crc32', () => {
  it('matches the standard check value and continues across chunks', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    const a = new Uint8Array([1, 2, 3]);
    const b = new Uint8Array([4, 5]);
    expect(crc32(b, crc32(a))).toBe(crc32(new Uint8Array([1, 2, 3, 4, 5])));
  });
});

describe('frames', () => {
  it('round-trips any message and binary payload through frames of at most 64 KiB', () => {
    fc.assert(
      fc.property(anyMsg, binary, fc.nat(), (msg, bin, msgId) => {
        const frames = encodeFrames(msgId, msg, bin);
        for (const f of frames) expect(f.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
        const results = feed(new Reassembler(), frames);
        expect(results).toHaveLength(1);
        const r = results[0];
        if (!r.ok) throw new Error(r.error);
        expect(r.msg).toEqual(JSON.parse(JSON.stringify(msg))); // JSON semantics: -0 arrives as 0
        if (bin && bin.length) expect(Buffer.from(r.binary!).equals(Buffer.from(bin))).toBe(true);
        else expect(r.binary).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('splits a 5 MB payload into full frames and reassembles it exactly', () => {
    const bin = new Uint8Array(5_000_000);
    crypto.getRandomValues(bin.subarray(0, 65536));
    for (let i = 65536; i < bin.length; i++) bin[i] = bin[i - 65536] ^ (i & 0xff);
    const frames = encodeFrames(7, { type: 'app', seq: 1, channel: 'x', body: { n: 1 } }, bin);
    expect(frames.length).toBe(Math.ceil((bin.length + 4 + 40) / FRAME_CHUNK_BYTES));
    expect(frames.slice(0, -1).every((f) => f.length === MAX_FRAME_BYTES)).toBe(true);
    const [r] = feed(new Reassembler(), frames);
    expect(r.ok && Buffer.from(r.binary!).equals(Buffer.from(bin))).toBe(true);
  });

  it('reassembles interleaved messages', () => {
    const a = encodeFrames(
      1,
      { type: 'app', seq: 1, channel: 'a', body: 1 },
      new Uint8Array(FRAME_CHUNK_BYTES * 2).fill(1),
    );
    const b = encodeFrames(
      2,
      { type: 'app', seq: 1, channel: 'b', body: 2 },
      new Uint8Array(FRAME_CHUNK_BYTES * 2).fill(2),
    );
    const order = [a[0], b[0], a[1], b[1], b[2], a[2]];
    const res = feed(new Reassembler(), order);
    expect(res.map((r) => r.ok && (r.msg as { channel: string }).channel)).toEqual(['b', 'a']);
  });

  it('rejects a flipped bit anywhere (CRC or header checks), without throwing', () => {
    const frames = encodeFrames(
      3,
      { type: 'app', seq: 1, channel: 'c', body: { k: [1, 2, 3] } },
      new Uint8Array(100_000).fill(7),
    );
    fc.assert(
      fc.property(fc.nat(frames.length - 1), fc.nat(), fc.integer({ min: 0, max: 7 }), (fi, pos, bit) => {
        const copy = frames.map((f) => f.slice());
        const f = copy[fi];
        f[pos % f.length] ^= 1 << bit;
        const res = feed(new Reassembler(), copy);
        expect(res.some((r) => r.ok)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on random or truncated frames (fuzz)', () => {
    const good = encodeFrames(9, { type: 'app', seq: 1, channel: 'f', body: 'hello' }, new Uint8Array(150_000).fill(3));
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }),
            fc.uint8Array({ minLength: FRAME_HEADER_BYTES, maxLength: FRAME_HEADER_BYTES + 64 }).map((b) => {
              b[0] = 0x48; // valid magic + version so the deeper checks run
              b[1] = 0x53;
              b[2] = 1;
              return b;
            }),
            fc.tuple(fc.nat(good.length - 1), fc.nat()).map(([i, cut]) => good[i].slice(0, cut % (good[i].length + 1))),
            fc.nat(good.length - 1).map((i) => good[i]),
          ),
          { maxLength: 12 },
        ),
        (frames) => {
          const r = new Reassembler();
          for (const f of frames) {
            const res = r.push(f);
            if (res && res.ok) expect(res.msg.type).toBe('app');
          }
          expect(r.pendingMessages).toBeLessThanOrEqual(8);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('drops well-framed payloads with hostile JSON or unknown types', () => {
    const enc = new TextEncoder();
    const bad = [
      '{"type":"nope"}',
      '[1,2]',
      'not json',
      '{"type":"app","channel":""}',
      '{"type":"hello","v":99,"peerId":"a","name":"b"}',
      '{"type":"profile","profile":{"peerId":1}}',
    ];
    for (const s of bad) {
      const json = enc.encode(s);
      const payload = new Uint8Array(4 + json.length);
      new DataView(payload.buffer).setUint32(0, json.length, true);
      payload.set(json, 4);
      // Frame it by hand: the encoder would refuse to produce these.
      const f = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
      const dv = new DataView(f.buffer);
      dv.setUint16(0, 0x5348, true);
      dv.setUint8(2, 1);
      dv.setUint32(12, 1, true);
      dv.setUint32(16, payload.length, true);
      dv.setUint32(20, crc32(payload), true);
      f.set(payload, FRAME_HEADER_BYTES);
      const res = new Reassembler().push(f);
      expect(res && !res.ok, s).toBe(true);
    }
  });

  it('bounds the partial messages a sender can open', () => {
    const r = new Reassembler();
    for (let id = 0; id < 20; id++)
      r.push(
        encodeFrames(id, { type: 'app', seq: 1, channel: 'p', body: 0 }, new Uint8Array(FRAME_CHUNK_BYTES * 2))[0],
      );
    expect(r.pendingMessages).toBeLessThanOrEqual(8);
  });
});

describe('tensors', () => {
  const shape = fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 0, maxLength: 4 });
  it('round-trips f32 and i32 tensors bit-exactly', () => {
    fc.assert(
      fc.property(shape, fc.boolean(), fc.integer(), (dims, isF32, seed) => {
        const n = dims.reduce((a, b) => a * b, 1);
        const data = isF32 ? new Float32Array(n) : new Int32Array(n);
        for (let i = 0; i < n; i++) data[i] = isF32 ? Math.sin(seed + i) * 1e3 : (seed * 31 + i) | 0;
        const t = decodeTensor(encodeTensor({ dtype: isF32 ? 'f32' : 'i32', shape: dims, data }));
        if (typeof t === 'string') throw new Error(t);
        expect(t.shape).toEqual(dims);
        expect(Array.from(t.data)).toEqual(Array.from(data));
      }),
    );
  });

  it('decodes a tensor sent at an odd offset inside a message', () => {
    const t = encodeTensor({ dtype: 'f32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    const frames = encodeFrames(1, { type: 'app', seq: 1, channel: 'act', body: { pos: 5 } }, t);
    const [r] = feed(new Reassembler(), frames);
    if (!r.ok) throw new Error(r.error);
    const back = decodeTensor(r.binary!);
    expect(typeof back !== 'string' && Array.from(back.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('never throws on random or truncated tensor bytes', () => {
    const good = encodeTensor({ dtype: 'i32', shape: [3, 4], data: new Int32Array(12).fill(5) });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 100 }),
          fc.nat(good.length).map((n) => good.slice(0, n)),
        ),
        (b) => {
          const t = decodeTensor(b);
          if (typeof t !== 'string') expect(t.data.length).toBe(t.shape.reduce((x, y) => x * y, 1));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

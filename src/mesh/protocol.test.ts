// Mesh and signaling validators: what a peer or the signaling server sends is refused, with a reason that names the
// message and field (and, for the server, the right code), whenever it is malformed; never a throw.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_LINKS, PROTOCOL_VERSION, isControl, parseLinkStats, parseMessage, type MeshMessage } from './protocol.ts';
import { SIGNALING_VERSION, parseClientMessage, parseServerMessage } from './signalingProtocol.ts';
import { cpuProfile } from '../testing/profiles.ts';

describe('mesh messages', () => {
  const good: MeshMessage[] = [
    { type: 'hello', v: PROTOCOL_VERSION, peerId: 'a', name: '', session: 's1' },
    { type: 'profile', profile: cpuProfile },
    { type: 'heartbeat', t: 12.5 },
    { type: 'ping', id: 3, t: 1 },
    { type: 'pong', id: 3, t: 1, bytes: 65536 },
    { type: 'links', links: { b: { rttMs: 4, bytesPerSec: null }, c: { rttMs: null, bytesPerSec: 1e6 } } },
    { type: 'app', channel: 'pipeline', body: { kind: 'drop' }, seq: 1 },
    { type: 'ack', seq: 0 },
  ];

  it('passes every well-formed message unchanged', () => {
    for (const m of good) expect(parseMessage(m)).toEqual(m);
    expect(good.filter(isControl).map((m) => m.type)).toEqual(['heartbeat', 'ping', 'pong', 'ack']);
  });

  it('refuses malformed messages with a reason naming the field', () => {
    const cases: [unknown, RegExp][] = [
      [null, /not an object/],
      [[good[0]], /not an object/],
      [{ type: 'nope' }, /unknown message type "nope"/],
      [{ ...good[0], v: PROTOCOL_VERSION + 1 }, new RegExp(`protocol version ${PROTOCOL_VERSION + 1} is not`)],
      [{ ...good[0], v: 'two' }, /hello\.v: must be a non-negative integer/],
      [{ ...good[0], peerId: '' }, /hello\.peerId/],
      [{ ...good[0], name: 'x'.repeat(65) }, /hello\.name/],
      [{ type: 'profile', profile: { ...cpuProfile, memoryBytes: -1 } }, /profile\.profile\.memoryBytes/],
      [{ type: 'heartbeat', t: Infinity }, /heartbeat\.t: must be a finite number/],
      [{ type: 'ping', id: -1, t: 0 }, /ping\.id/],
      [{ type: 'pong', id: 1, t: 0 }, /pong\.bytes: is missing/],
      [{ type: 'links', links: [] }, /links\.links: must be an object/],
      [{ type: 'links', links: { b: { rttMs: -1, bytesPerSec: null } } }, /links\.links\.b\.rttMs/],
      [{ type: 'links', links: { ['k'.repeat(65)]: { rttMs: 1, bytesPerSec: 1 } } }, /links\.links/],
      [{ type: 'app', channel: '', body: 1, seq: 1 }, /app\.channel/],
      [{ type: 'app', channel: 'c', body: 1, seq: 0 }, /app\.seq: must be a positive integer/],
      [{ type: 'ack', seq: 1.5 }, /ack\.seq/],
    ];
    for (const [x, why] of cases) expect(parseMessage(x)).toMatch(why);
    const stats = { rttMs: 1, bytesPerSec: 1 };
    const many = Object.fromEntries(Array.from({ length: MAX_LINKS + 1 }, (_, i) => [`p${i}`, stats]));
    expect(parseMessage({ type: 'links', links: many })).toMatch(/at most 256 entries/);
  });

  it('parseLinkStats takes measurements or nulls', () => {
    expect(parseLinkStats({ rttMs: null, bytesPerSec: 5 })).toEqual({ rttMs: null, bytesPerSec: 5 });
    for (const x of [{ rttMs: 1 }, { rttMs: NaN, bytesPerSec: 1 }, [], null]) expect(parseLinkStats(x)).toBeNull();
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ type: fc.constantFrom(...good.map((m) => m.type)) })), (x) => {
        const r = parseMessage(x);
        expect(typeof r === 'string' || typeof r === 'object').toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('signaling messages', () => {
  const join = { type: 'join', v: SIGNALING_VERSION, room: 'room-1', peerId: 'tab.a', name: 'A' };

  it('passes well-formed client messages; an empty secret is no secret', () => {
    expect(parseClientMessage(join)).toEqual(join);
    expect(parseClientMessage({ ...join, secret: 's3' })).toEqual({ ...join, secret: 's3' });
    expect(parseClientMessage({ ...join, secret: '' })).toEqual(join);
    const signal = { type: 'signal', to: 'tab.b', linkId: 'l1', data: { type: 'offer', sdp: 'v=0' } };
    expect(parseClientMessage(signal)).toEqual(signal);
  });

  it('refuses malformed client messages with the right code', () => {
    const cases: [unknown, string, RegExp][] = [
      [null, 'bad-message', /not an object/],
      [[], 'bad-message', /not an object/],
      [{ type: 'leave' }, 'unknown-type', /unknown message type "leave"/],
      [{ ...join, v: 2 }, 'bad-message', /join\.v: must be 1/],
      [{ ...join, room: 'a room' }, 'bad-message', /join\.room: must be 1-64 of \[A-Za-z0-9_.-\]/],
      [{ ...join, room: 'r'.repeat(65) }, 'bad-message', /join\.room/],
      [{ ...join, peerId: '' }, 'bad-message', /join\.peerId/],
      [{ ...join, name: 7 }, 'bad-message', /join\.name/],
      [{ ...join, secret: 's'.repeat(257) }, 'bad-message', /join\.secret/],
      [{ type: 'signal', to: 'b', linkId: 'l', data: [] }, 'bad-message', /signal\.data: must be an object/],
      [{ type: 'signal', to: 'b/c', linkId: 'l', data: {} }, 'bad-message', /signal\.to/],
    ];
    for (const [x, code, why] of cases) {
      const r = parseClientMessage(x);
      expect(Array.isArray(r)).toBe(true);
      expect((r as [string, string])[0]).toBe(code);
      expect((r as [string, string])[1]).toMatch(why);
    }
  });

  it('passes well-formed server messages and drops malformed ones', () => {
    const good = [
      { type: 'joined', room: 'r', peerId: 'a', peers: [{ peerId: 'b', name: 'B' }] },
      { type: 'peer-joined', peer: { peerId: 'b', name: '' } },
      { type: 'peer-left', peerId: 'b' },
      { type: 'signal', from: 'b', linkId: 'l', data: { candidate: {} } },
      { type: 'error', code: 'room-full', message: 'full' },
      { type: 'error', code: 'some-future-code', message: 'a newer server' },
    ];
    for (const m of good) expect(parseServerMessage(m)).toEqual(m);
    const bad = [
      null,
      [],
      { type: 'hello' },
      { type: 'joined', room: 'r', peerId: 'a', peers: [null] },
      { type: 'joined', room: 'r', peerId: 'a', peers: {} },
      { type: 'peer-joined', peer: { peerId: 'b c', name: '' } },
      { type: 'peer-left', peerId: '' },
      { type: 'signal', from: 'b', linkId: 'l', data: 'x' },
      { type: 'error', code: 1, message: 'x' },
    ];
    for (const x of bad) expect(parseServerMessage(x)).toBeNull();
  });
});

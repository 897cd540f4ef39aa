// The pipeline message validator: well-formed messages pass unchanged, malformed ones are refused with a reason that
// names the message kind and field, and the limits hold (durations, list lengths, cross-field rules).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_IDS, parsePipelineMessage, type PipelineMessage } from './messages.ts';

const sampling = { temperature: 0.7, topP: 0.9, seed: 42 };
const conv = 'a/0';
const act: Extract<PipelineMessage, { kind: 'act' }> = {
  kind: 'act',
  planId: 'p1',
  conv,
  owner: 'a',
  runId: 3,
  pos0: 10,
  rows: 2,
  index: 1,
  maxTokens: 16,
  eos: [2],
  sampling,
  sentAtSec: 1.25,
};
const iv0 = { device: 'a', kind: 'compute', startSec: 0.5, endSec: 0.75 } as const;
const good: PipelineMessage[] = [
  {
    kind: 'assign',
    planId: 'p1',
    epoch: 1,
    modelUrl: '/m',
    stages: [{ peer: 'a', start: 0, end: 2 }],
    maxSeq: 256,
    clockOffsetMs: -4,
    runStartMs: 1e12,
    members: ['a'],
    strategy: 'balanced',
    maxConversations: 4,
  },
  { kind: 'start', planId: 'p1', conv, runId: 3, pos0: 0, index0: 0, ids: [1, 5], maxTokens: 16, eos: [], sampling },
  act,
  { ...act, verify: { keepFrom: 1, wantLogits: true, branch: true }, computeMs: 12.5 },
  { kind: 'verify', planId: 'p1', conv, runId: 3, pos0: 4, ids: [7, 8, 9], verify: { keepFrom: 2, wantLogits: false } },
  { kind: 'verified', planId: 'p1', conv, runId: 3, pos0: 4, tokens: [8], computeMs: 0 },
  { kind: 'token', planId: 'p1', conv, runId: 3, index: 0, pos: 2, token: 9, done: true },
  { kind: 'stop', planId: 'p1', conv, runId: 3 },
  { kind: 'drop' },
  { kind: 'progress', planId: 'p1', loadedBytes: 10, totalBytes: 20, layersLoaded: 1, layersTotal: 2 },
  {
    kind: 'timeline',
    planId: 'p1',
    intervals: [{ ...iv0, layer: 1, tokenIndex: 0, label: 'pass' }],
  },
  { kind: 'error', planId: 'p1', message: 'out of memory' },
  { kind: 'clock', t0: 100 },
  { kind: 'clockReply', t0: 100, t1: 250.5 },
];

describe('parsePipelineMessage', () => {
  it('passes every well-formed message unchanged', () => {
    for (const m of good) expect(parsePipelineMessage(JSON.parse(JSON.stringify(m)))).toEqual(m);
  });

  it('refuses malformed messages with a reason naming the kind and field', () => {
    const cases: [unknown, RegExp][] = [
      [null, /pipeline message is not an object/],
      [{ kind: 'zzz' }, /unknown pipeline message kind "zzz"/],
      [{ ...act, rows: 0 }, /act\.rows: must be a positive integer/],
      [{ ...act, sampling: { ...sampling, seed: -1 } }, /act\.sampling\.seed/],
      [{ ...act, eos: Array.from({ length: 65 }, () => 2) }, /act\.eos: must be a list of at most 64/],
      [{ ...act, verify: { keepFrom: 0 } }, /act\.verify\.wantLogits: is missing/],
      [{ ...act, verify: { keepFrom: 0, wantLogits: false, branch: 'yes' } }, /act\.verify\.branch/],
      [{ ...good[0], stages: [{ peer: 'a', start: 2, end: 2 }] }, /assign\.stages\.0\.end: must be above start/],
      [{ ...good[1], ids: [] }, /start\.ids: must not be empty/],
      [{ ...good[1], ids: Array.from({ length: MAX_IDS + 1 }, () => 1) }, /start\.ids/],
      [{ ...good[4], verify: { keepFrom: 3, wantLogits: false } }, /verify\.verify\.keepFrom: must be below/],
      [{ ...good[6], done: 1 }, /token\.done/],
      [{ ...good[10], intervals: [{ ...iv0, kind: 'nap' }] }, /timeline\.intervals\.0\.kind/],
      [{ kind: 'error', planId: 'p1', message: 'x'.repeat(2001) }, /error\.message/],
      [{ kind: 'clockReply', t0: 1 }, /clockReply\.t1: is missing/],
    ];
    for (const [x, why] of cases) expect(parsePipelineMessage(x)).toMatch(why);
  });

  it('computeMs is a duration: finite, not negative, under an hour', () => {
    for (const base of [good[3], good[5]]) {
      for (const computeMs of [0, 4.5, 3_599_999]) {
        expect(parsePipelineMessage({ ...base, computeMs })).toEqual({ ...base, computeMs });
      }
      for (const computeMs of [-1, Infinity, NaN, 'x', 3_600_000, 1e9]) {
        expect(parsePipelineMessage({ ...base, computeMs })).toMatch(/computeMs: must be a duration/);
      }
    }
  });

  it('a malformed optional detail of an interval is dropped, not the interval; branch: false is no branch', () => {
    const iv = { device: 'a', kind: 'send', startSec: 0, endSec: 1, layer: -1, bytes: 1.5, label: 7, tokenIndex: 2 };
    expect(parsePipelineMessage({ kind: 'timeline', planId: 'p', intervals: [iv] })).toStrictEqual({
      kind: 'timeline',
      planId: 'p',
      intervals: [{ device: 'a', kind: 'send', startSec: 0, endSec: 1, tokenIndex: 2 }],
    });
    const flags = { keepFrom: 0, wantLogits: false, branch: false };
    const noBranch = { ...act, verify: { keepFrom: 0, wantLogits: false } };
    expect(parsePipelineMessage({ ...act, verify: flags })).toStrictEqual(noBranch);
  });

  it('never throws on arbitrary input', () => {
    const kinds = good.map((m) => m.kind);
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue(), fc.record({ kind: fc.constantFrom(...kinds), planId: fc.string() })),
        (x) => {
          expect(['string', 'object']).toContain(typeof parsePipelineMessage(x));
        },
      ),
      { numRuns: 500 },
    );
  });
});

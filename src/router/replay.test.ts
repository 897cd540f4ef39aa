// Multi-turn replay and calibration: switch costs and prefix reuse change decisions; calibration never loses
// a "needs large" query.
import { describe, expect, it } from 'vitest';
import type { SideParams } from './predictor.ts';
import { calibrate } from './calibrate.ts';
import { replay } from './replay.ts';
import { formatWorkload, parseWorkload, syntheticWorkload } from './workload.ts';
import type { Conversation } from './workload.ts';

const SMALL: SideParams = { fixedSec: 0.001, prefillSecPerToken: 0.0002, decodeSecPerToken: 0.01 };
const LARGE: SideParams = { fixedSec: 0.03, prefillSecPerToken: 0.002, decodeSecPerToken: 0.05 };
const PARAMS = { small: SMALL, large: LARGE };

type Turn = Conversation['turns'][number];
/** One conversation, id 'c', of these turns. */
const oneConversation = (...turns: Turn[]): Conversation[] => [{ id: 'c', turns }];

describe('replay', () => {
  it('staying reuses the cache; switching pays the re-prefill of the history', () => {
    const conv = oneConversation(
      { p: 0.9, needsLarge: true, queryTokens: 100, outTokens: 10 },
      { p: 0.9, needsLarge: true, queryTokens: 10, outTokens: 10 },
    );
    const always = replay(conv, { name: 'always-large', alpha: 0, theta: 0 }, PARAMS);
    // turn 1: 100 prefilled; turn 2: 109 cached of 120 -> 11 prefilled (expected output 16 before any turn, then 10)
    const t1 = 0.03 + 100 * 0.002 + 9 * 0.05;
    const t2 = 0.03 + 11 * 0.002 + 9 * 0.05;
    expect(always.meanLatencySec).toBeCloseTo((t1 + t2) / 2, 9);
    expect(always.switches).toBe(0);
    // first turn small, second large: the large side re-reads all 110 tokens of history + the query
    const mixed = oneConversation({ ...conv[0].turns[0], p: 0.1 }, conv[0].turns[1]);
    const r = replay(mixed, { name: 'static', alpha: 0, theta: 0.5 }, PARAMS);
    const s1 = 0.001 + 100 * 0.0002 + 9 * 0.01;
    const l2 = 0.03 + 120 * 0.002 + 9 * 0.05;
    expect(r.meanLatencySec).toBeCloseTo((s1 + l2) / 2, 9);
    expect(r.switches).toBe(1);
    expect(r.coverage).toBe(0.5); // turn 1 needed large but went small
  });

  it('the latency-aware rule sends a borderline query small, unless the switch would cost more', () => {
    // turn 1 needs large (400 tokens); turn 2 is borderline (p 0.6) and does not
    const conv = oneConversation(
      { p: 0.95, needsLarge: true, queryTokens: 400, outTokens: 20 },
      { p: 0.6, needsLarge: false, queryTokens: 10, outTokens: 20 },
    );
    expect(replay(conv, { name: 'static', alpha: 0, theta: 0.55 }, PARAMS).largeCalls).toBe(2);
    // turn 2: large 0.03 + 11 x 0.002 + 19 x 0.05 = 1.002 s; small re-reads 430 tokens: 0.001 + 0.086 + 0.19 = 0.277 s;
    // 0.6 - 0.1 x 0.725 = 0.5275 <= 0.55 -> small
    const aware = replay(conv, { name: 'latency-aware', alpha: 0.1, theta: 0.55 }, PARAMS);
    expect(aware.largeCalls).toBe(1);
    expect(aware.coverage).toBe(1);
    // a small side with slow prefill: re-reading 430 tokens there costs 1.72 s, staying large is faster
    // (dT = 1.002 - 1.911 < 0), so the same query stays where the conversation lives
    const slowPrefill = { small: { ...SMALL, prefillSecPerToken: 0.004 }, large: LARGE };
    expect(replay(conv, { name: 'latency-aware', alpha: 0.1, theta: 0.65 }, slowPrefill).largeCalls).toBe(2);
    expect(replay(conv, { name: 'static', alpha: 0, theta: 0.65 }, slowPrefill).largeCalls).toBe(1);
  });

  it('JSONL round-trips; bad lines give one actionable error', () => {
    const w = syntheticWorkload(5, 3);
    expect(parseWorkload(formatWorkload(w))).toEqual(w);
    expect(() => parseWorkload('{"turns": [{"p": 2, "needsLarge": true, "queryTokens": 1, "outTokens": 1}]}')).toThrow(
      /line 1 turn 1: p must be/,
    );
    expect(() => parseWorkload('nope')).toThrow(/not JSON/);
    expect(() => parseWorkload('')).toThrow(/no conversations/);
  });
});

describe('calibrate', () => {
  const w = syntheticWorkload(60, 7);
  // a coarser grid than the default keeps the test quick
  const grid = { thetas: Array.from({ length: 151 }, (_, i) => Math.round((-0.5 + i * 0.01) * 100) / 100) };
  it('keeps every "needs large" query and beats the static threshold and always-large', () => {
    const aware = calibrate(w, PARAMS, 'latency-aware', grid);
    const stat = calibrate(w, PARAMS, 'static', grid);
    const large = replay(w, { name: 'always-large', alpha: 0, theta: 0 }, PARAMS);
    expect(aware.result.coverage).toBe(1);
    expect(stat.result.coverage).toBe(1);
    expect(aware.result.largeCalls).toBeLessThanOrEqual(stat.result.largeCalls); // alpha 0 is in the grid
    expect(aware.result.largeCalls).toBeLessThan(large.largeCalls);
    expect(aware.result.meanLatencySec).toBeLessThan(large.meanLatencySec);
    // moving theta up by one step from the calibrated one loses coverage or calls no fewer (it is the edge)
    const up = replay(w, { ...aware.policy, theta: aware.policy.theta + 0.01 }, PARAMS);
    expect(up.coverage < 1 || up.largeCalls >= aware.result.largeCalls).toBe(true);
  });
  it('minCoverage trades a little coverage for latency, never below the bound', () => {
    const full = calibrate(w, PARAMS, 'latency-aware', { ...grid, objective: 'latency' });
    const relaxed = calibrate(w, PARAMS, 'latency-aware', { ...grid, objective: 'latency', minCoverage: 0.9 });
    expect(relaxed.result.coverage).toBeGreaterThanOrEqual(0.9);
    expect(relaxed.result.meanLatencySec).toBeLessThanOrEqual(full.result.meanLatencySec);
    expect(() => calibrate(w, PARAMS, 'static', { minCoverage: 1.5 })).toThrow(/minCoverage/);
  });
});

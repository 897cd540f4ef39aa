// The stage scheduler's queue: per-conversation order kept, conversations served in turn, batches within limits.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FairQueue, type QueuedStep } from './fairQueue.ts';

type Step = QueuedStep & { n: number };
const step = (conv: string, n: number, rows = 1, alone = false): Step => ({ conv, n, rows, alone });

describe('FairQueue', () => {
  it('batches the head step of every conversation; a long prompt goes one chunk per pass', () => {
    const q = new FairQueue<Step>();
    for (let i = 0; i < 4; i++) q.push(step('long', i, 16));
    q.push(step('a', 0));
    q.push(step('b', 0));
    expect(q.next().map((s) => `${s.conv}${s.n}`)).toEqual(['a0', 'b0', 'long0']);
    q.push(step('a', 1));
    expect(q.next().map((s) => `${s.conv}${s.n}`)).toEqual(['a1', 'long1']);
    expect(q.size).toBe(2);
  });

  it("runs a step that must be alone by itself, in its conversation's turn", () => {
    const q = new FairQueue<Step>();
    q.push(step('a', 0, 1));
    q.push(step('v', 0, 4, true));
    q.push(step('b', 0, 1));
    expect(q.next().map((s) => s.conv)).toEqual(['a', 'b']);
    expect(q.next().map((s) => s.conv)).toEqual(['v']);
    expect(q.next()).toEqual([]);
  });

  it("keeps each conversation's order, serves every conversation, and respects the row budget (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            conv: fc.constantFrom('a', 'b', 'c', 'd'),
            rows: fc.integer({ min: 1, max: 40 }),
            alone: fc.boolean(),
          }),
          { maxLength: 60 },
        ),
        (steps) => {
          const q = new FairQueue<Step>();
          steps.forEach((s, n) => q.push({ ...s, n }));
          const seen: Step[] = [];
          for (let pass = 0; q.size > 0; pass++) {
            const batch = q.next(64);
            expect(batch.length).toBeGreaterThan(0);
            if (batch.length > 1) expect(batch.reduce((r, s) => r + s.rows, 0)).toBeLessThanOrEqual(64);
            expect(new Set(batch.map((s) => s.conv)).size).toBe(batch.length);
            if (batch.some((s) => s.alone)) expect(batch.length).toBe(1);
            seen.push(...batch);
          }
          for (const conv of ['a', 'b', 'c', 'd']) {
            expect(seen.filter((s) => s.conv === conv).map((s) => s.n)).toEqual(
              steps
                .map((s, n) => ({ ...s, n }))
                .filter((s) => s.conv === conv)
                .map((s) => s.n),
            );
          }
        },
      ),
    );
  });

  it("drops a conversation's queued steps", () => {
    const q = new FairQueue<Step>();
    q.push(step('a', 0));
    q.push(step('b', 0));
    q.drop('a');
    expect(q.depths()).toEqual({ b: 1 });
    expect(q.next().map((s) => s.conv)).toEqual(['b']);
  });
});

describe('FairQueue with splitting (chunked prefill)', () => {
  const split = (s: Step, rows: number): [Step, Step] => [
    { ...s, rows },
    { ...s, rows: s.rows - rows },
  ];

  it('cuts a long prompt to what the pass has left after the decode steps', () => {
    const q = new FairQueue<Step>();
    q.push(step('long', 0, 100));
    q.push(step('a', 0));
    q.push(step('b', 0));
    expect(q.next(8, split).map((s) => `${s.conv}:${s.rows}`)).toEqual(['a:1', 'b:1', 'long:6']);
    expect(q.next(8, split).map((s) => `${s.conv}:${s.rows}`)).toEqual(['long:8']);
    expect(q.depths()).toEqual({ long: 1 });
  });

  it('every row of every step is served, in order, within the budget (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ conv: fc.constantFrom('a', 'b', 'c'), rows: fc.integer({ min: 1, max: 90 }) }), {
          maxLength: 30,
        }),
        fc.integer({ min: 1, max: 40 }),
        (steps, budget) => {
          const q = new FairQueue<Step>();
          steps.forEach((s, n) => q.push({ ...s, n, alone: false }));
          const rows = new Map<string, number>();
          while (q.size > 0) {
            const batch = q.next(budget, split);
            expect(batch.reduce((r, s) => r + s.rows, 0)).toBeLessThanOrEqual(budget);
            for (const s of batch) rows.set(s.conv, (rows.get(s.conv) ?? 0) + s.rows);
          }
          for (const conv of ['a', 'b', 'c'])
            expect(rows.get(conv) ?? 0).toBe(steps.filter((s) => s.conv === conv).reduce((r, s) => r + s.rows, 0));
        },
      ),
    );
  });
});

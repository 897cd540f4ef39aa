// Each stage's queue as the peers table shows it.
import { describe, expect, it } from 'vitest';
import { StageQueues, fmtQueue, totalQueued } from './stageQueues.ts';

describe('stage queues', () => {
  it("formats a cell: unknown, idle, steps, and this tab's conversations in flight", () => {
    expect(fmtQueue(undefined)).toBe('-');
    expect(fmtQueue({ queued: 0 })).toBe('idle');
    expect(fmtQueue({ queued: 1 })).toBe('1 step');
    expect(fmtQueue({ queued: 5 })).toBe('5 steps');
    expect(fmtQueue({ queued: 0, conversations: 0 })).toBe('idle');
    expect(fmtQueue({ queued: 3, depths: { 'a/0': 2, 'b/0': 1 }, conversations: 2 })).toBe('3 steps · 2 conv.');
  });

  it('sums depths, ignoring nonsense', () => {
    expect(totalQueued({})).toBe(0);
    expect(totalQueued({ 'a/0': 2, 'b/0': 3 })).toBe(5);
    expect(totalQueued({ 'a/0': 2, 'b/0': Number.NaN, 'c/0': -1 })).toBe(2);
  });

  it('keeps the latest report per stage, tells listeners, and clears on a new plan', () => {
    const q = new StageQueues();
    let changes = 0;
    const off = q.onChange(() => changes++);
    q.set('p1', { queued: 2 });
    q.set('p1', { queued: 0 });
    expect(q.get('p1')).toEqual({ queued: 0 });
    q.clear();
    expect(q.get('p1')).toBeUndefined();
    expect(changes).toBe(3);
    off();
    q.set('p2', { queued: 1 });
    expect(changes).toBe(3);
  });
});

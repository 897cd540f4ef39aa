// StepCadence on an injected clock: a step is due for 1.5 of its usual gaps, never past the hold limit.
import { describe, expect, it } from 'vitest';
import { MAX_HOLD_MS, StepCadence } from './cadence.ts';

describe('StepCadence', () => {
  it('expects the next step within four usual gaps', () => {
    let now = 0;
    const c = new StepCadence(() => now);
    expect(c.dueWithinMs('a')).toBe(0);
    for (const t of [0, 40, 80, 120]) {
      now = t;
      c.seen('a');
    }
    now = 130;
    expect(c.dueWithinMs('a')).toBeCloseTo(120 + 160 - 130);
    now = 290;
    expect(c.dueWithinMs('a'), 'overdue: it went quiet').toBe(0);
  });

  it('never holds past MAX_HOLD_MS, and forgets a conversation', () => {
    let now = 0;
    const c = new StepCadence(() => now);
    for (const t of [0, 1000, 2000]) {
      now = t;
      c.seen('slow');
    }
    expect(c.dueWithinMs('slow')).toBe(MAX_HOLD_MS);
    c.forget('slow');
    expect(c.dueWithinMs('slow')).toBe(0);
  });
});

describe('StepCadence slowdown', () => {
  it('reports the recent gap over the quiet gap after a gap in which prompt chunks ran', () => {
    let now = 0;
    const c = new StepCadence(() => now);
    for (const t of [0, 40, 80]) {
      now = t;
      expect(c.seen('a'), 'quiet gaps report nothing').toBeNull();
    }
    expect(c.lastSeen('a')).toBe(80);
    now = 160;
    // Recent gap: 40 + 0.3 * (80 - 40) = 52 ms against a quiet 40 ms.
    expect(c.seen('a', false)).toBeCloseTo(52 / 40);
    expect(c.seen('b', false), 'a first step has no gap').toBeNull();
  });
});

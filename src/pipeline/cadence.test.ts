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

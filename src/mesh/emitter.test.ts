// The one event emitter (mesh, signaling, coordinator, session, router, speculative session): order, unsubscribe,
// and a throwing listener that is reported without stopping the others.
import { describe, expect, it, vi } from 'vitest';
import { Emitter } from './emitter.ts';

describe('Emitter', () => {
  it('calls the listeners of an event in order; one unsubscribed mid-emit still gets that event, not the next', () => {
    const e = new Emitter<{ n: [number]; s: [string, boolean] }>();
    const got: string[] = [];
    const offA = e.on('n', (n) => {
      got.push(`a${n}`);
      offB();
    });
    const offB = e.on('n', (n) => got.push(`b${n}`));
    e.on('s', (s, b) => got.push(`${s}${b}`));
    e.emit('n', 1); // b still runs: it was listening when the event was emitted
    e.emit('n', 2);
    e.emit('s', 'x', true);
    offA();
    e.emit('n', 3);
    expect(got).toEqual(['a1', 'b1', 'a2', 'xtrue']);
  });

  it('reports a throwing listener and still calls the rest', () => {
    const e = new Emitter<{ tick: [] }>();
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    let later = 0;
    e.on('tick', () => {
      throw new Error('boom');
    });
    e.on('tick', () => later++);
    expect(() => e.emit('tick')).not.toThrow();
    expect(later).toBe(1);
    expect(error).toHaveBeenCalledWith("shoal: a 'tick' listener threw", expect.any(Error));
    error.mockRestore();
  });
});

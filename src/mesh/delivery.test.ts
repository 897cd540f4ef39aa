// Reliable delivery: numbering, cumulative acks, resend sets, duplicate suppression, session restarts, and a property
// test that a stream cut by random link deaths (resend on reconnect) delivers every message exactly once, in order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PeerDelivery } from './delivery.ts';

describe('PeerDelivery', () => {
  it('numbers messages from 1 and keeps them until acknowledged (cumulatively)', () => {
    const d = new PeerDelivery('s');
    const seqs = [1, 2, 3].map((i) => d.enqueue('c', i).out.seq);
    expect(seqs).toEqual([1, 2, 3]);
    expect(d.pending().map((o) => o.seq)).toEqual([1, 2, 3]);
    expect(d.ack(2)).toBe(2);
    expect(d.pending().map((o) => o.seq)).toEqual([3]);
    expect(d.ack(2)).toBe(0); // a stale ack releases nothing
    expect(d.ack(3)).toBe(1);
    expect(d.pendingBytes).toBe(0);
  });

  it('keeps a private copy of the binary, so a caller may reuse its buffer', () => {
    const d = new PeerDelivery('s');
    const buf = new Uint8Array([1, 2, 3]);
    const { out } = d.enqueue('c', null, buf);
    buf.fill(9);
    expect([...out.binary!]).toEqual([1, 2, 3]);
  });

  it('resolves send() once handed, and acknowledgement implies handed', async () => {
    const d = new PeerDelivery('s');
    const a = d.enqueue('c', 1),
      b = d.enqueue('c', 2);
    a.out.handed();
    a.out.handed(); // idempotent
    await expect(a.sent).resolves.toBeUndefined();
    d.ack(2);
    await expect(b.sent).resolves.toBeUndefined();
  });

  it('fail() rejects sends never handed to a link and restarts numbering', async () => {
    const d = new PeerDelivery('s');
    const a = d.enqueue('c', 1);
    a.out.handed();
    const b = d.enqueue('c', 2);
    d.fail('peer x left: gone');
    await expect(a.sent).resolves.toBeUndefined();
    await expect(b.sent).rejects.toThrow('peer x left: gone');
    expect(d.pending()).toHaveLength(0);
    expect(d.enqueue('c', 3).out.seq).toBe(1);
  });

  it('refuses more than its byte budget of unacknowledged messages', () => {
    const d = new PeerDelivery('s', 1000);
    d.enqueue('c', 1, new Uint8Array(800));
    expect(() => d.enqueue('c', 2, new Uint8Array(800))).toThrow(/unacknowledged bytes/);
    d.ack(1);
    expect(() => d.enqueue('c', 2, new Uint8Array(800))).not.toThrow();
  });

  it('delivers in order, drops repeats, reports gaps', () => {
    const d = new PeerDelivery('s');
    expect(d.peerSession('remote-1')).toBe('resume'); // first hello
    expect(d.receive(1)).toEqual({ kind: 'deliver' });
    expect(d.receive(2)).toEqual({ kind: 'deliver' });
    expect(d.receive(2)).toEqual({ kind: 'duplicate' });
    expect(d.receive(1)).toEqual({ kind: 'duplicate' });
    expect(d.receive(5)).toEqual({ kind: 'gap', lost: 2 });
    expect(d.deliveredSeq).toBe(5);
  });

  it('a hello with the same session resumes counting; another session restarts it', () => {
    const d = new PeerDelivery('s');
    d.peerSession('remote-1');
    d.receive(1);
    d.receive(2);
    expect(d.peerSession('remote-1')).toBe('resume');
    expect(d.receive(2)).toEqual({ kind: 'duplicate' });
    expect(d.peerSession('remote-2')).toBe('restart');
    expect(d.receive(1)).toEqual({ kind: 'deliver' });
  });

  it('property: messages sent over links that die at random points arrive exactly once and in order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        // For each link lifetime: how many frames it carries (either way) before it dies.
        fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (count, lifetimes, seed) => {
          const sender = new PeerDelivery('a');
          const receiver = new PeerDelivery('b');
          receiver.peerSession(sender.outSession);
          const got: number[] = [];
          let rnd = seed;
          const coin = (): boolean => ((rnd = (rnd * 1103515245 + 12345) % 2 ** 31) & 1) === 1;
          for (let i = 0; i < count; i++) sender.enqueue('c', i);
          // Each link: resend all pending, then new traffic; frames (data one way, acks the other) until it dies.
          for (const life of [...lifetimes, Infinity]) {
            const wire = sender.pending().map((o) => o.seq);
            const acks: number[] = [];
            let budget = life;
            while (budget-- > 0 && (wire.length || acks.length)) {
              if (wire.length && (coin() || !acks.length)) {
                const seq = wire.shift()!;
                const r = receiver.receive(seq);
                if (r.kind !== 'duplicate') got.push(seq);
                expect(r.kind).not.toBe('gap');
                acks.push(receiver.deliveredSeq);
              } else sender.ack(acks.shift()!);
            }
            if (!sender.pending().length) break;
          }
          expect(got).toEqual(Array.from({ length: count }, (_, i) => i + 1));
          expect(sender.pending()).toHaveLength(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});

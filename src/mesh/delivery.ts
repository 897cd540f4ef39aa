// Reliable, ordered delivery of app messages to one peer across link re-dials: sequence numbers, cumulative acks,
// resend of whatever was not acknowledged when a new link to the same peer opens, duplicate suppression on receipt.
// A data channel is reliable only while it lives; when one dies mid-transfer (a blip, a starved tab missing its
// heartbeats) the messages in it are lost unless someone resends them. This module is that someone. Pure: no timers.
import { ShoalError } from '../errors.ts';

/** Unacknowledged bytes one peer may hold before send() refuses (that peer is not reading). */
export const MAX_UNACKED_BYTES = 512 * 1024 * 1024;

export interface Outgoing {
  seq: number;
  channel: string;
  body: unknown;
  /** A private copy: the caller may reuse its buffer once send() resolves, and a resend needs the bytes. */
  binary: Uint8Array | undefined;
  bytes: number;
  /** Resolve the caller's send() promise (idempotent): the message has been handed to a link at least once. */
  handed: () => void;
}

export type Receipt =
  /** New and in order: deliver it. */
  | { kind: 'deliver' }
  /** Already delivered (a resend of something whose ack was lost with the link): drop it, ack again. */
  | { kind: 'duplicate' }
  /** Later than expected: `lost` earlier messages will never come (the peer's state was reset); deliver it. */
  | { kind: 'gap'; lost: number };

export class PeerDelivery {
  /** Identifies this side's outgoing stream to the peer; sent in every hello so the peer can tell a resume from a
   * restart. */
  readonly outSession: string;
  private nextSeq = 1;
  private unacked: Outgoing[] = [];
  private unackedBytes = 0;
  private inSession: string | null = null;
  private delivered = 0;
  private rejecters = new Map<number, (e: Error) => void>();

  constructor(
    outSession: string,
    private readonly maxUnackedBytes = MAX_UNACKED_BYTES,
  ) {
    this.outSession = outSession;
  }

  /** Number a message and keep it until acknowledged. The promise resolves when it is first handed to a link. */
  enqueue(channel: string, body: unknown, binary?: Uint8Array): { out: Outgoing; sent: Promise<void> } {
    const bytes = (binary?.length ?? 0) + 64;
    if (this.unackedBytes + bytes > this.maxUnackedBytes) {
      throw new RangeError(`peer has ${this.unackedBytes} unacknowledged bytes; refusing more until it catches up`);
    }
    const seq = this.nextSeq++;
    let out!: Outgoing;
    const sent = new Promise<void>((resolve, reject) => {
      let settled = false;
      out = {
        seq,
        channel,
        body,
        binary: binary?.slice(),
        bytes,
        handed: () => {
          if (!settled) {
            settled = true;
            this.rejecters.delete(seq);
            resolve();
          }
        },
      };
      this.rejecters.set(seq, (e) => {
        if (!settled) {
          settled = true;
          reject(e);
        }
      });
    });
    this.unacked.push(out);
    this.unackedBytes += bytes;
    return { out, sent };
  }

  /** The peer has delivered everything up to and including `seq`. Returns how many messages that released. */
  ack(seq: number): number {
    let n = 0;
    while (this.unacked.length && this.unacked[0].seq <= seq) {
      const o = this.unacked.shift()!;
      this.unackedBytes -= o.bytes;
      o.handed(); // acknowledged implies handed; keeps a racing resend from leaving the promise open
      n++;
    }
    return n;
  }

  /** Everything not yet acknowledged, oldest first: what a new link resends before anything else. */
  pending(): readonly Outgoing[] {
    return this.unacked;
  }

  get pendingBytes(): number {
    return this.unackedBytes;
  }

  /** A hello from the peer: same session = a resume (keep counting); another = the peer's stream restarted. */
  peerSession(session: string): 'resume' | 'restart' {
    if (this.inSession === session) return 'resume';
    const first = this.inSession === null;
    this.inSession = session;
    this.delivered = 0;
    return first ? 'resume' : 'restart';
  }

  /** Classify an arriving message by its sequence number (and count it when it is to be delivered). */
  receive(seq: number): Receipt {
    if (seq <= this.delivered) return { kind: 'duplicate' };
    const lost = seq - this.delivered - 1;
    this.delivered = seq;
    return lost > 0 ? { kind: 'gap', lost } : { kind: 'deliver' };
  }

  /** The highest sequence number delivered from the peer (what to acknowledge). */
  get deliveredSeq(): number {
    return this.delivered;
  }

  /**
   * The peer is gone for good, or it forgot us (it restarted its session): every send() still waiting for a link
   * rejects with `reason`, nothing is resent, and numbering starts again at 1, which is what a peer that forgot us
   * expects.
   */
  fail(reason: string): void {
    const err = new ShoalError('ERR_PEER_GONE', reason);
    for (const r of [...this.rejecters.values()]) r(err);
    this.rejecters.clear();
    this.unacked.length = 0;
    this.unackedBytes = 0;
    this.nextSeq = 1;
  }
}

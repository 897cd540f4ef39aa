// Which steps a stage runs next when several conversations share it: one FIFO queue per conversation, served
// round-robin; the head steps of every conversation that can share a pass run as one batch (a decode step, or one
// chunk of a long prompt), so no conversation waits behind another's whole prefill.

/** Rows a batched pass may hold (a prompt chunk plus the decode steps beside it). */
export const MAX_BATCH_ROWS = 64;

export interface QueuedStep {
  conv: string;
  rows: number;
  /** Runs in a pass of its own (a verification pass, a hedge branch: they read every row's logits). */
  alone: boolean;
}

export class FairQueue<S extends QueuedStep> {
  private readonly queues = new Map<string, S[]>();
  /** Conversations with queued steps, the next to be served first. */
  private order: string[] = [];

  push(step: S): void {
    let q = this.queues.get(step.conv);
    if (!q) {
      this.queues.set(step.conv, (q = []));
      this.order.push(step.conv);
    }
    q.push(step);
  }

  get size(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Queued steps per conversation (the peers table shows them). */
  depths(): Record<string, number> {
    return Object.fromEntries([...this.queues].map(([c, q]) => [c, q.length]));
  }

  has(conv: string): boolean {
    return this.queues.has(conv);
  }

  /** Forget a conversation's queued steps (its turn was stopped or restarted). */
  drop(conv: string): void {
    if (!this.queues.delete(conv)) return;
    this.order = this.order.filter((c) => c !== conv);
  }

  /**
   * The next pass: the first conversation in turn decides; if its head step runs alone, that step; else the head
   * step of every conversation whose head can share a pass, in turn order, up to maxRows (the first always fits).
   * Served conversations go to the back of the order, so every conversation gets one step per pass it is in.
   */
  next(maxRows = MAX_BATCH_ROWS): S[] {
    if (this.order.length === 0) return [];
    const first = this.queues.get(this.order[0])![0];
    const batch: S[] = [];
    if (first.alone) batch.push(first);
    else {
      let rows = 0;
      for (const conv of this.order) {
        const head = this.queues.get(conv)![0];
        if (head.alone || (batch.length > 0 && rows + head.rows > maxRows)) continue;
        batch.push(head);
        rows += head.rows;
      }
    }
    const served = new Set(batch.map((s) => s.conv));
    for (const s of batch) {
      const q = this.queues.get(s.conv)!;
      q.shift();
      if (q.length === 0) this.queues.delete(s.conv);
    }
    this.order = [...this.order.filter((c) => !served.has(c)), ...this.order.filter((c) => served.has(c) && this.queues.has(c))];
    return batch;
  }
}

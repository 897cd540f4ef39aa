// Which steps a stage runs next when several conversations share it: one FIFO queue per conversation, served
// round-robin; the head steps of every conversation that can share a pass run as one batch (decode steps, and a
// chunk of a long prompt cut to the pass's row budget), so no conversation waits behind another's whole prefill.

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

  /** The step each conversation would run next. */
  heads(): S[] {
    return this.order.map((c) => this.queues.get(c)![0]);
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
   * The next pass. The first conversation in turn decides: if its head step runs alone, that step; else the head
   * step of every conversation whose head can share a pass, single rows (decode steps) first, then prompts, up to
   * maxRows in all. With `split`, a prompt longer than what is left is cut and its first part runs now (chunked
   * prefill); without it, a step that does not fit waits (the first always runs). Served conversations go to the
   * back of the order, so every conversation gets at most one step per pass.
   */
  next(maxRows = MAX_BATCH_ROWS, split?: (step: S, rows: number) => [S, S]): S[] {
    if (this.order.length === 0) return [];
    const first = this.queues.get(this.order[0])![0];
    const batch: S[] = [];
    if (first.alone) batch.push(this.queues.get(first.conv)!.shift()!);
    else {
      const heads = this.order.map((c) => this.queues.get(c)![0]).filter((h) => !h.alone);
      // Decode steps ride first: they are what a long prompt must not hold up; then prompts, shortest first (a
      // short one's first token should not wait behind a long one's chunks).
      const prompts = heads.filter((h) => h.rows > 1).sort((x, y) => x.rows - y.rows);
      const ordered = [...heads.filter((h) => h.rows <= 1), ...prompts];
      let rows = 0;
      for (const head of ordered) {
        const left = maxRows - rows;
        const q = this.queues.get(head.conv)!;
        if (head.rows <= left || (batch.length === 0 && !split)) batch.push(q.shift()!);
        else if (split && (left >= 1 || batch.length === 0)) {
          const [part, rest] = split(head, Math.max(1, left));
          q[0] = rest;
          batch.push(part);
        } else continue;
        rows += batch[batch.length - 1].rows;
      }
    }
    for (const s of batch) if (this.queues.get(s.conv)!.length === 0) this.queues.delete(s.conv);
    const served = new Set(batch.map((s) => s.conv));
    this.order = [
      ...this.order.filter((c) => !served.has(c)),
      ...this.order.filter((c) => served.has(c) && this.queues.has(c)),
    ];
    return batch;
  }
}

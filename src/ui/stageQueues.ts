// Each stage's queue as the peers table shows it: steps waiting at that tab's stage now. Other tabs' stages report
// it with their timelines (the coordinator's `queue` events); this tab's own stage reports it after every pass,
// per conversation. A new plan clears it (queues of the old plan mean nothing on the new one).

export interface QueueReport {
  /** Steps queued at the stage now. */
  queued: number;
  /** Own stage only: steps queued per conversation. */
  depths?: Record<string, number>;
  /** Own stage only: conversations with a turn in flight through the stage. */
  conversations?: number;
}

/** The table cell: "-" before any report, "idle", or "3 steps · 2 conv." for this tab's stage. */
export function fmtQueue(r: QueueReport | undefined): string {
  if (!r) return '-';
  const steps = r.queued === 0 ? 'idle' : `${r.queued} step${r.queued === 1 ? '' : 's'}`;
  if (r.conversations === undefined || r.conversations === 0) return steps;
  return `${steps} · ${r.conversations} conv.`;
}

/** The sum of per-conversation depths (a stage's own report). */
export function totalQueued(depths: Record<string, number>): number {
  let n = 0;
  for (const d of Object.values(depths)) if (Number.isFinite(d) && d > 0) n += d;
  return n;
}

export class StageQueues {
  private readonly reports = new Map<string, QueueReport>();
  private readonly listeners = new Set<() => void>();

  set(peer: string, report: QueueReport): void {
    this.reports.set(peer, report);
    for (const fn of this.listeners) fn();
  }

  clear(): void {
    this.reports.clear();
    for (const fn of this.listeners) fn();
  }

  get(peer: string): QueueReport | undefined {
    return this.reports.get(peer);
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

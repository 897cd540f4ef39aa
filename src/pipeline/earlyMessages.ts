// Work for a plan a stage has not been assigned yet: a coordinator that adopted a new plan may restart its turn at
// stage 0 before the assignment from the tab that made the plan arrives there (two senders, two links, no order
// between them), and an upstream stage may send activations ahead of it the same way. Held here, run on assignment.
import type { PipelineMessage } from './messages.ts';

/** Messages held at most (the oldest go first): a few turns' starts and a pass of activations each. */
const MAX_HELD = 64;
/** Plan ids remembered as known (their late messages are stale, not early). */
const MAX_SEEN = 64;

type Early = { from: string; msg: PipelineMessage & { planId: string }; payload: Float32Array | undefined };

export class EarlyMessages {
  private held: Early[] = [];
  private known: string[] = [];

  /** A plan was assigned here (adopted or refused as older): its messages are never early again. */
  seen(planId: string): void {
    if (this.known.includes(planId)) return;
    this.known.push(planId);
    if (this.known.length > MAX_SEEN) this.known.shift();
  }

  /** Hold `msg` if it is work for a plan this tab has not heard of yet; true when held. */
  hold(from: string, msg: PipelineMessage, payload: Float32Array | undefined, current: string | undefined): boolean {
    if (msg.kind !== 'start' && msg.kind !== 'act' && msg.kind !== 'verify' && msg.kind !== 'heldQuery') return false;
    if (msg.planId === current || this.known.includes(msg.planId)) return false;
    this.held.push({ from, msg, payload });
    if (this.held.length > MAX_HELD) this.held.shift();
    return true;
  }

  /** The held messages of a plan just assigned, in arrival order. */
  release(planId: string): Early[] {
    const mine = this.held.filter((e) => e.msg.planId === planId);
    this.held = this.held.filter((e) => e.msg.planId !== planId);
    return mine;
  }
}

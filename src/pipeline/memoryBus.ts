// An in-memory Transport between "tabs" in one process. Unit tests use it as a stand-in for WebRTC, which
// cannot run in Node; the browser tests (e2e/) run the same pipeline over real data channels.
import type { PipelineMessage, Transport } from './messages.ts';
import { parsePipelineMessage } from './messages.ts';

type Handler = (from: string, msg: PipelineMessage, payload: Float32Array | undefined) => void;

export class MemoryBus {
  private handlers = new Map<string, Set<Handler>>();
  private readonly gone = new Set<string>();

  /** The tab vanishes: nothing reaches it and nothing it sends arrives (a closed or crashed tab). */
  leave(id: string): void {
    this.gone.add(id);
    this.handlers.delete(id);
  }

  /** Messages pass through JSON and the validator, as they would over the wire. */
  transport(selfId: string): Transport {
    const handlers = new Set<Handler>();
    this.handlers.set(selfId, handlers);
    return {
      selfId,
      // async without await: a message JSON cannot carry rejects (as over the wire) instead of throwing
      // eslint-disable-next-line @typescript-eslint/require-await
      send: async (to, msg, payload) => {
        if (this.gone.has(selfId)) return;
        const body = JSON.parse(JSON.stringify(msg)) as unknown;
        const copy = payload ? payload.slice() : undefined;
        setTimeout(() => {
          const parsed = parsePipelineMessage(body);
          if (typeof parsed === 'string') throw new Error(parsed);
          for (const h of this.handlers.get(to) ?? []) h(selfId, parsed, copy);
        }, 0);
      },
      onMessage: (h) => {
        handlers.add(h);
        return () => handlers.delete(h);
      },
    };
  }
}

/**
 * Emulated link delay for benchmarks over the bus: messages to another tab (ids "tab-role") arrive delayMs later, in
 * order; the sender is not held up.
 */
export function withDelay(t: Transport, delayMs: number): Transport {
  const tabOf = (id: string) => id.split('-')[0];
  return {
    selfId: t.selfId,
    onMessage: (h) => t.onMessage(h),
    send: (to, msg, payload) => {
      if (tabOf(to) === tabOf(t.selfId) || delayMs <= 0) return t.send(to, msg, payload);
      const copy = payload?.slice();
      setTimeout(() => void t.send(to, msg, copy), delayMs);
      return Promise.resolve();
    },
  };
}

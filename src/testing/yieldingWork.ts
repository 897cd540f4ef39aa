// Tests of the emulated slowdown: other work that runs while a step yields, and a hook that records each step.

/**
 * Queue a task that keeps the thread busy for `ms` (a message handler, say): it runs at the next yield of whatever
 * is running now, as other tasks do while a step yields between layers.
 */
export function queueBusyTask(ms: number): void {
  const ch = new MessageChannel();
  ch.port1.onmessage = () => {
    const t = performance.now();
    while (performance.now() - t < ms) {
      /* busy */
    }
    ch.port1.close();
  };
  ch.port2.postMessage(0);
}

/** An afterCompute hook that records the compute time it is called with and waits for nothing. */
export function computeLog(): { seen: number[]; afterCompute: (computeMs: number) => Promise<void> } {
  const seen: number[] = [];
  return {
    seen,
    afterCompute: (ms) => {
      seen.push(ms);
      return Promise.resolve();
    },
  };
}

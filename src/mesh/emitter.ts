// A tiny typed event emitter; a throwing listener is reported to the console and never breaks the emitter.

type Listener = (...args: unknown[]) => void;

export class Emitter<Events extends Record<string, unknown[]>> {
  private listeners = new Map<keyof Events, Set<Listener>>();

  on<K extends keyof Events>(event: K, fn: (...args: Events[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const f = fn as unknown as Listener;
    set.add(f);
    return () => set.delete(f);
  }

  emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    for (const fn of [...(this.listeners.get(event) ?? [])]) {
      try {
        fn(...(args as unknown[]));
      } catch (e) {
        console.error(`shoal: a '${String(event)}' listener threw`, e);
      }
    }
  }
}

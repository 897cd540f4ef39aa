// Stop sequences over streamed text: text is passed on as it arrives except a tail that could still grow into a
// stop string, and the stream ends before the first stop string found (which is never sent), as OpenAI does.

export class StopFilter {
  private held = '';
  private done = false;
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  get stopped(): boolean {
    return this.done;
  }

  /** New text in; what may be sent now out. After a stop string is found, everything is dropped. */
  push(text: string): string {
    if (this.done) return '';
    if (this.stops.length === 0) return text;
    this.held += text;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.held.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.done = true;
      const out = this.held.slice(0, cut);
      this.held = '';
      return out;
    }
    // Keep the longest tail that is a prefix of some stop string: the next text may complete it.
    const keep = this.heldTail();
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return out;
  }

  /** The stream ended without a stop string: what was held back. */
  flush(): string {
    const out = this.done ? '' : this.held;
    this.held = '';
    return out;
  }

  private heldTail(): number {
    for (let n = Math.min(this.longest - 1, this.held.length); n > 0; n--) {
      const tail = this.held.slice(this.held.length - n);
      if (this.stops.some((s) => s.startsWith(tail))) return n;
    }
    return 0;
  }
}

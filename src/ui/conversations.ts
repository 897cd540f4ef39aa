// Whose work is it: names and colours for conversations (`<owner tab peerId>/<name>`, issue 18) as the timeline,
// its legend and the chat's status lines show them. Pure, so the timeline's per-frame draw only does map lookups.
import type { Interval } from '../planner/timeline.ts';

/**
 * Colours handed out in the order conversations are first seen: distinct from each other and readable beside the
 * interval kinds' fills (amber, purple, green, blue, cyan), which they never replace.
 */
export const CONV_PALETTE = ['#e11d48', '#4f46e5', '#ca8a04', '#0f766e', '#c026d3', '#65a30d', '#ea580c', '#475569'];

/** The conversations an interval was for: one, several for a batched pass, none for loads and the planned lane. */
export function splitConvs(conv: string | undefined): string[] {
  return conv ? conv.split(',').filter((c) => c.length > 0) : [];
}

/** `<peerId>/<name>` as a person reads it: `<tab name>/<name>` (an id without a slash is shown as is). */
export function convLabel(conv: string, peerName: (peerId: string) => string): string {
  const slash = conv.lastIndexOf('/');
  if (slash <= 0) return conv;
  return `${peerName(conv.slice(0, slash))}/${conv.slice(slash + 1)}`;
}

/** "tab1/0", or for a batched pass "batch of 2: tab1/0, tab2/0" (the stage's label says how many it batched). */
export function convsLabel(conv: string | undefined, peerName: (peerId: string) => string): string {
  const convs = splitConvs(conv);
  const names = convs.map((c) => convLabel(c, peerName));
  return convs.length > 1 ? `batch of ${convs.length}: ${names.join(', ')}` : (names[0] ?? '');
}

/** One line for an interval under the pointer: kind, whose, token, length, bytes. */
export function describeInterval(iv: Interval, peerName: (peerId: string) => string): string {
  const parts: string[] = [iv.kind];
  const whose = convsLabel(iv.conv, peerName);
  if (whose) parts.push(whose);
  else if (iv.label) parts.push(iv.label);
  if (iv.layer !== undefined) parts.push(`layer ${iv.layer}`);
  if (iv.tokenIndex !== undefined) parts.push(iv.tokenIndex === 0 ? 'prefill' : `token ${iv.tokenIndex}`);
  parts.push(`${((iv.endSec - iv.startSec) * 1000).toFixed(1)} ms at ${iv.startSec.toFixed(3)} s`);
  if (iv.bytes) parts.push(iv.bytes >= 1e6 ? `${(iv.bytes / 1e6).toFixed(2)} MB` : `${(iv.bytes / 1e3).toFixed(1)} kB`);
  if (iv.source) parts.push(iv.source === 'peer' ? 'from a peer' : `from the ${iv.source}`);
  return `${peerName(iv.device)}: ${parts.join(' · ')}`;
}

/** The chat's line when another tab's plan takes effect here. */
export function planLine(byName: string, stages: number, restarted: number): string {
  const turns =
    restarted === 0
      ? 'no turn in flight'
      : `${restarted} turn${restarted === 1 ? '' : 's'} in flight continue${restarted === 1 ? 's' : ''} on it`;
  return `plan from ${byName} (${stages} stage${stages === 1 ? '' : 's'}): ${turns}`;
}

/** The chat's line when a turn restarts from its tokens (an evicted cache, a new plan). */
export function restartLine(convName: string, positions: number, reason: string): string {
  return `${convName}: rebuilding ${positions} position${positions === 1 ? '' : 's'}: ${reason}`;
}

/** The chat's line when a tab holding layers leaves: what waits, and for what. */
export function lostLine(peerName: string, paused: number): string {
  const turns =
    paused === 0
      ? 'no turn here was in flight'
      : `${paused} turn${paused === 1 ? '' : 's'} here wait${paused === 1 ? 's' : ''}`;
  return `${peerName} left while holding layers: ${turns}; re-planning over the remaining tabs`;
}

/** The chat's line when a restarted turn's next token arrives. */
export function resumedLine(convName: string, index: number): string {
  return `${convName}: resumed at token ${index + 1}`;
}

/** Replace every peer id named in `text` (a restart's reason, a notice) with the tab's name. */
export function namePeers(text: string, peers: Iterable<{ peerId: string; name: string }>): string {
  let out = text;
  for (const p of peers) if (p.peerId) out = out.split(p.peerId).join(p.name);
  return out;
}

/** Stable colours per conversation within this page; past the palette, a hue from the id's hash. */
export class ConvPalette {
  private readonly colours = new Map<string, string>();
  /** Memo of an interval's conv field -> its colours: the draw loop looks each up once per interval per frame. */
  private readonly fields = new Map<string, readonly string[]>();

  colourOf(conv: string): string {
    let c = this.colours.get(conv);
    if (!c) {
      const n = this.colours.size;
      c = n < CONV_PALETTE.length ? CONV_PALETTE[n] : `hsl(${hash(conv) % 360} 65% 42%)`;
      this.colours.set(conv, c);
    }
    return c;
  }

  /** Colours of an interval's conv field, one per conversation it batched (empty when none). */
  coloursOf(field: string | undefined): readonly string[] {
    if (!field) return NONE;
    let cs = this.fields.get(field);
    if (!cs) {
      // The memo is keyed by batch combinations too; bounded so a long session cannot grow it without end.
      if (this.fields.size > MAX_FIELDS) this.fields.clear();
      cs = splitConvs(field).map((c) => this.colourOf(c));
      this.fields.set(field, cs);
    }
    return cs;
  }

  /** Conversations seen, in the order first seen (the legend). */
  seen(): string[] {
    return [...this.colours.keys()];
  }

  /** Conversations seen so far. */
  get size(): number {
    return this.colours.size;
  }
}

const NONE: readonly string[] = [];
const MAX_FIELDS = 1024;

/** FNV-1a, 32 bit: a stable spread of ids over hues. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

// The live timeline: per device, the planned lane above the actual one (load, upload, compute, send, recv; idle is
// the gap), with a load progress bar per tab and the run's TTFT and tokens/s. Scrolls sideways on a phone.
// Whose work each actual interval is (issue 18): a strip along its bottom in its conversation's colour, split into
// one segment per conversation for a pass that batched several (and marked "×N" where it is wide enough); the fill
// above keeps the kind's colour. Pointing at an interval names it in full.
import type { Interval, IntervalKind } from '../planner/timeline.ts';
import { ConvPalette, convLabel, describeInterval } from './conversations.ts';
import { fmtBytes, h } from './dom.ts';
import { IntervalWindow } from './timelineWindow.ts';

export const KIND_COLORS: Record<IntervalKind, string> = {
  load: '#f59e0b',
  upload: '#a855f7',
  compute: '#10b981',
  send: '#3b82f6',
  recv: '#06b6d4',
  idle: 'transparent',
};

const ROW_PX = 30; // per device: planned lane 8 px, actual lane 16 px, gaps
const LABEL_PX = 92;
const AXIS_PX = 18;
const PLANNED = { dy: 1, height: 7 };
const ACTUAL = { dy: 10, height: 16 };
/** The conversation strip at the bottom of the actual lane; the kind's fill keeps the 11 px above it. */
const STRIP_PX = 5;
/** Narrowest batched interval that gets its "×N" mark (text is the costly part of a frame). */
const BATCH_MARK_MIN_PX = 18;
/** Conversations named in the legend; the rest are counted. */
const LEGEND_MAX = 12;
const HOVER_HINT = 'Point at an interval to see whose work it is.';

export interface DeviceRow {
  id: string;
  label: string;
  stage: string;
}

export interface TimelineViewOptions {
  /** A tab's name from its peer id (conversation labels, the hover line); the id itself without it. */
  peerName?: (peerId: string) => string;
}

/** Where the last frame put things: the pointer is mapped back to an interval with it. */
interface Geometry {
  t0: number;
  tMax: number;
  plotW: number;
  devices: DeviceRow[];
}

export class TimelineView {
  readonly el: HTMLElement;
  private canvas: HTMLCanvasElement;
  private stats: HTMLElement;
  private bars: HTMLElement;
  private convLegend: HTMLElement;
  private hover: HTMLElement;
  private devices: DeviceRow[] = [];
  private planned: Interval[] = [];
  private actual = new IntervalWindow();
  private progress = new Map<string, { loadedBytes: number; totalBytes: number; bySource?: Record<string, number> }>();
  private readonly palette = new ConvPalette();
  private readonly peerName: (peerId: string) => string;
  private geometry: Geometry | null = null;
  private frame = 0;
  private pointer: { x: number; y: number } | null = null;
  private pointerFrame = 0;

  constructor(opts: TimelineViewOptions = {}) {
    this.peerName = opts.peerName ?? ((id) => id);
    this.canvas = h('canvas', {
      class: 'timeline-canvas',
      'aria-label': 'timeline of every device: planned and actual',
    });
    this.stats = h('div', { class: 'timeline-stats' }, 'No run yet.');
    this.bars = h('div', { class: 'load-bars' });
    this.hover = h('div', { class: 'timeline-hover' }, HOVER_HINT);
    this.convLegend = h('div', { class: 'legend conv-legend', hidden: true });
    const kinds = (['load', 'upload', 'compute', 'send', 'recv'] as IntervalKind[]).map((k) =>
      h('span', {}, h('i', { style: `background:${KIND_COLORS[k]}` }), k),
    );
    const planned = h('span', {}, h('i', { class: 'planned-swatch' }), 'planned (thin) / actual (thick)');
    const legend = h('div', { class: 'legend' }, ...kinds, planned);
    this.el = h(
      'section',
      { class: 'panel timeline' },
      h('h2', {}, 'Timeline'),
      this.stats,
      this.bars,
      h('div', { class: 'timeline-scroll' }, this.canvas),
      this.hover,
      legend,
      this.convLegend,
    );
    this.canvas.addEventListener('pointermove', (e) => this.point(e));
    this.canvas.addEventListener('pointerdown', (e) => this.point(e)); // a tap on a phone
    this.canvas.addEventListener('pointerleave', () => {
      this.pointer = null;
      this.hover.textContent = HOVER_HINT;
    });
    new ResizeObserver(() => this.schedule()).observe(this.el);
  }

  setDevices(devices: DeviceRow[]): void {
    this.devices = devices;
    this.renderBars();
    this.renderConvLegend(); // tab names may be known now
    this.schedule();
  }

  setPlanned(intervals: Interval[]): void {
    this.planned = intervals.filter((i) => i.kind !== 'idle');
    this.schedule();
  }

  resetActual(): void {
    this.actual.clear();
    this.progress.clear();
    this.renderBars();
    this.schedule();
  }

  addActual(intervals: Interval[]): void {
    this.actual.add(intervals);
    const seen = this.palette.size;
    for (const iv of intervals) this.palette.coloursOf(iv.conv); // first sight hands out the colour
    if (this.palette.size !== seen) this.renderConvLegend();
    this.schedule();
  }

  setProgress(device: string, loadedBytes: number, totalBytes: number, bySource?: Record<string, number>): void {
    this.progress.set(device, { loadedBytes, totalBytes, bySource });
    this.renderBars();
  }

  setStats(text: string): void {
    this.stats.textContent = text;
  }

  private renderBars(): void {
    this.bars.replaceChildren(
      ...this.devices.map((d) => {
        const p = this.progress.get(d.id);
        const frac = p && p.totalBytes > 0 ? p.loadedBytes / p.totalBytes : 0;
        return h(
          'div',
          { class: 'load-bar', 'data-device': d.id },
          h('span', { class: 'load-label' }, `${d.label} · ${d.stage}`),
          h('progress', { max: 1, value: frac }),
          h('span', { class: 'load-text' }, p ? loadText(p) : 'idle'),
        );
      }),
    );
  }

  private renderConvLegend(): void {
    const convs = this.palette.seen();
    this.convLegend.hidden = convs.length === 0;
    if (convs.length === 0) return;
    const shown = convs.slice(-LEGEND_MAX);
    const items: HTMLElement[] = [h('span', { class: 'legend-title' }, 'conversations (strip under each interval):')];
    for (const c of shown) {
      const swatch = h('i', { style: `background:${this.palette.colourOf(c)}` });
      items.push(h('span', { 'data-conv': c }, swatch, convLabel(c, this.peerName)));
    }
    if (convs.length > shown.length) items.push(h('span', {}, `+${convs.length - shown.length} older`));
    items.push(h('span', {}, h('i', { class: 'batch-swatch' }), 'batched pass: split strip, ×N'));
    this.convLegend.replaceChildren(...items);
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw(): void {
    const scroll = this.canvas.parentElement!;
    const cssWidth = Math.max(560, scroll.clientWidth); // narrower screens scroll sideways
    const cssHeight = AXIS_PX + Math.max(1, this.devices.length) * ROW_PX + 4;
    const dpr = globalThis.devicePixelRatio || 1;
    this.canvas.style.width = `${cssWidth}px`;
    this.canvas.style.height = `${cssHeight}px`;
    this.canvas.width = Math.round(cssWidth * dpr);
    this.canvas.height = Math.round(cssHeight * dpr);
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, cssWidth, cssHeight);
    // The axis runs over the intervals kept (a long session keeps only the newest: timelineWindow.ts) and the plan.
    const { startSec: t0, endSec } = this.actual.range();
    const tMax = this.planned.reduce((m, i) => Math.max(m, i.endSec), endSec);
    const plotW = cssWidth - LABEL_PX - 8;
    this.geometry = { t0, tMax, plotW, devices: this.devices };
    const x = (t: number) => LABEL_PX + ((Math.max(t0, t) - t0) / (tMax - t0)) * plotW;
    // axis
    ctx.fillStyle = '#64748b';
    ctx.font = '11px system-ui, sans-serif';
    const step = niceStep((tMax - t0) / 6);
    for (let t = Math.ceil(t0 / step) * step; t <= tMax + 1e-9; t += step) {
      ctx.fillRect(x(t), AXIS_PX - 4, 1, cssHeight);
      ctx.fillText(`${t.toFixed(step < 0.1 ? 2 : step < 1 ? 1 : 0)}s`, x(t) + 2, 11);
    }
    const rowOf = new Map<string, number>();
    this.devices.forEach((d, row) => {
      rowOf.set(d.id, row);
      const y = AXIS_PX + row * ROW_PX;
      ctx.fillStyle = '#f1f5f9';
      ctx.fillRect(LABEL_PX, y + ACTUAL.dy, plotW, ACTUAL.height); // idle background of the actual lane
      ctx.fillStyle = '#0f172a';
      ctx.fillText(d.label.slice(0, 12), 2, y + 14);
      ctx.fillStyle = '#64748b';
      ctx.fillText(d.stage.slice(0, 14), 2, y + 26);
    });
    // One pass over each list (up to 4000 intervals) rather than one per device.
    ctx.globalAlpha = 0.55;
    for (const iv of this.planned) {
      const row = rowOf.get(iv.device);
      if (row === undefined || iv.endSec < t0) continue;
      const x0 = x(iv.startSec);
      ctx.fillStyle = KIND_COLORS[iv.kind];
      ctx.fillRect(x0, AXIS_PX + row * ROW_PX + PLANNED.dy, Math.max(1, x(iv.endSec) - x0), PLANNED.height);
    }
    ctx.globalAlpha = 1;
    ctx.font = '10px system-ui, sans-serif';
    for (const iv of this.actual.intervals) {
      const row = rowOf.get(iv.device);
      if (row === undefined || iv.kind === 'idle') continue;
      this.actualLane(ctx, iv, x(iv.startSec), x(iv.endSec), AXIS_PX + row * ROW_PX + ACTUAL.dy);
    }
  }

  /** One actual interval: the kind's fill, and under it the strip of the conversation(s) it was for. */
  private actualLane(ctx: CanvasRenderingContext2D, iv: Interval, x0: number, x1: number, y: number): void {
    const w = Math.max(1, x1 - x0);
    const colours = this.palette.coloursOf(iv.conv);
    ctx.fillStyle = KIND_COLORS[iv.kind];
    ctx.fillRect(x0, y, w, colours.length ? ACTUAL.height - STRIP_PX : ACTUAL.height);
    if (colours.length === 0) return;
    const seg = w / colours.length;
    colours.forEach((c, i) => {
      ctx.fillStyle = c;
      ctx.fillRect(x0 + i * seg, y + ACTUAL.height - STRIP_PX, Math.max(1, seg), STRIP_PX);
    });
    if (colours.length > 1 && w >= BATCH_MARK_MIN_PX) {
      ctx.fillStyle = '#0f172a';
      ctx.fillText(`×${colours.length}`, x0 + 2, y + ACTUAL.height - STRIP_PX - 2, w - 3);
    }
  }

  /** Name the interval under the pointer (once per frame however fast the pointer moves). */
  private point(e: PointerEvent): void {
    const r = this.canvas.getBoundingClientRect();
    this.pointer = { x: e.clientX - r.left, y: e.clientY - r.top };
    if (this.pointerFrame) return;
    this.pointerFrame = requestAnimationFrame(() => {
      this.pointerFrame = 0;
      if (!this.pointer) return;
      const iv = this.intervalAt(this.pointer.x, this.pointer.y);
      this.hover.textContent = iv ? describeInterval(iv, this.peerName) : HOVER_HINT;
    });
  }

  private intervalAt(px: number, py: number): Interval | null {
    const g = this.geometry;
    if (!g || px < LABEL_PX) return null;
    const row = Math.floor((py - AXIS_PX) / ROW_PX);
    const device = g.devices[row]?.id;
    if (device === undefined) return null;
    const dy = py - AXIS_PX - row * ROW_PX;
    const inActual = dy >= ACTUAL.dy - 1;
    const list = inActual ? this.actual.intervals : this.planned;
    const secPerPx = (g.tMax - g.t0) / g.plotW;
    const t = g.t0 + (px - LABEL_PX) * secPerPx;
    const slack = 2 * secPerPx; // an interval narrower than a pixel is still drawn 1 px wide
    let near: Interval | null = null;
    // Newest first: the one drawn on top.
    for (let i = list.length - 1; i >= 0; i--) {
      const iv = list[i];
      if (iv.device !== device || iv.kind === 'idle' || iv.startSec - slack > t || t > iv.endSec + slack) continue;
      if (iv.startSec <= t && t <= iv.endSec) return iv;
      near ??= iv;
    }
    return near;
  }
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** "3.1 MB / 8.2 MB · peer 2.0 MB · cache 1.1 MB": how far a tab's load is, and where its bytes came from. */
function loadText(p: { loadedBytes: number; totalBytes: number; bySource?: Record<string, number> }): string {
  const from = Object.entries(p.bySource ?? {})
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${fmtBytes(n)}`);
  return [`${fmtBytes(p.loadedBytes)} / ${fmtBytes(p.totalBytes)}`, ...from].join(' · ');
}

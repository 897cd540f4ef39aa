// The live timeline: per device, the planned lane above the actual one (load, upload, compute, send, recv; idle is
// the gap), with a load progress bar per tab and the run's TTFT and tokens/s. Scrolls sideways on a phone.
import type { Interval, IntervalKind } from '../planner/timeline.ts';
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

export interface DeviceRow { id: string; label: string; stage: string }

export class TimelineView {
  readonly el: HTMLElement;
  private canvas: HTMLCanvasElement;
  private stats: HTMLElement;
  private bars: HTMLElement;
  private devices: DeviceRow[] = [];
  private planned: Interval[] = [];
  private actual = new IntervalWindow();
  private progress = new Map<string, { loadedBytes: number; totalBytes: number }>();
  private frame = 0;

  constructor() {
    this.canvas = h('canvas', { class: 'timeline-canvas', 'aria-label': 'timeline of every device: planned and actual' });
    this.stats = h('div', { class: 'timeline-stats' }, 'No run yet.');
    this.bars = h('div', { class: 'load-bars' });
    const legend = h('div', { class: 'legend' }, ...(['load', 'upload', 'compute', 'send', 'recv'] as IntervalKind[]).map((k) => h('span', {}, h('i', { style: `background:${KIND_COLORS[k]}` }), k)), h('span', {}, h('i', { class: 'planned-swatch' }), 'planned (thin) / actual (thick)'));
    this.el = h('section', { class: 'panel timeline' }, h('h2', {}, 'Timeline'), this.stats, this.bars, h('div', { class: 'timeline-scroll' }, this.canvas), legend);
    new ResizeObserver(() => this.schedule()).observe(this.el);
  }

  setDevices(devices: DeviceRow[]): void {
    this.devices = devices;
    this.renderBars();
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
    this.schedule();
  }

  setProgress(device: string, loadedBytes: number, totalBytes: number): void {
    this.progress.set(device, { loadedBytes, totalBytes });
    this.renderBars();
  }

  setStats(text: string): void {
    this.stats.textContent = text;
  }

  private renderBars(): void {
    this.bars.replaceChildren(...this.devices.map((d) => {
      const p = this.progress.get(d.id);
      const frac = p && p.totalBytes > 0 ? p.loadedBytes / p.totalBytes : 0;
      return h('div', { class: 'load-bar', 'data-device': d.id },
        h('span', { class: 'load-label' }, `${d.label} · ${d.stage}`),
        h('progress', { max: 1, value: frac }),
        h('span', { class: 'load-text' }, p ? `${fmtBytes(p.loadedBytes)} / ${fmtBytes(p.totalBytes)}` : 'idle'));
    }));
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
    const x = (t: number) => LABEL_PX + ((Math.max(t0, t) - t0) / (tMax - t0)) * plotW;
    // axis
    ctx.fillStyle = '#64748b';
    ctx.font = '11px system-ui, sans-serif';
    const step = niceStep((tMax - t0) / 6);
    for (let t = Math.ceil(t0 / step) * step; t <= tMax + 1e-9; t += step) {
      ctx.fillRect(x(t), AXIS_PX - 4, 1, cssHeight);
      ctx.fillText(`${t.toFixed(step < 0.1 ? 2 : step < 1 ? 1 : 0)}s`, x(t) + 2, 11);
    }
    this.devices.forEach((d, row) => {
      const y = AXIS_PX + row * ROW_PX;
      ctx.fillStyle = '#f1f5f9';
      ctx.fillRect(LABEL_PX, y + 10, plotW, 16); // idle background of the actual lane
      ctx.fillStyle = '#0f172a';
      ctx.fillText(d.label.slice(0, 12), 2, y + 14);
      ctx.fillStyle = '#64748b';
      ctx.fillText(d.stage.slice(0, 14), 2, y + 26);
      for (const iv of this.planned) if (iv.device === d.id && iv.endSec >= t0) lane(ctx, iv, x, y + 1, 7, 0.55);
      for (const iv of this.actual.intervals) if (iv.device === d.id) lane(ctx, iv, x, y + 10, 16, 1);
    });
  }
}

function lane(ctx: CanvasRenderingContext2D, iv: Interval, x: (t: number) => number, y: number, height: number, alpha: number): void {
  ctx.globalAlpha = alpha;
  ctx.fillStyle = KIND_COLORS[iv.kind];
  const x0 = x(iv.startSec);
  ctx.fillRect(x0, y, Math.max(1, x(iv.endSec) - x0), height);
  ctx.globalAlpha = 1;
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

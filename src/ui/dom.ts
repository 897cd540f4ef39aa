// A tiny element builder: the page is plain DOM, no framework.

type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'class') el.className = String(v);
    else if (k in el && typeof (el as unknown as Record<string, unknown>)[k] !== 'function' && k !== 'list')
      (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** A page panel: a section with its title and a row of controls, then the rest of its body. */
export function panel(cls: string, title: string, controls: Node[], ...body: Node[]): HTMLElement {
  return h(
    'section',
    { class: `panel ${cls}` },
    h('h2', {}, title),
    h('div', { class: 'controls' }, ...controls),
    ...body,
  );
}

/** A prompt box with its buttons beside it. */
export function promptRow(input: HTMLElement, ...buttons: HTMLElement[]): HTMLElement {
  return h('div', { class: 'chat-actions' }, input, h('div', { class: 'buttons' }, ...buttons));
}

/** A number input named for assistive tech; `attrs` adds the rest (min, max, step, value, class, handlers). */
export function numberInput(label: string, attrs: Attrs = {}): HTMLInputElement {
  return h('input', { type: 'number', 'aria-label': label, ...attrs });
}

export function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

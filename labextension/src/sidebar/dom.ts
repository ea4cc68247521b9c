/**
 * DOM helpers of the Interop sidebar.
 *
 * Everything shown comes from peers we do not control (names, data, colours), so text only
 * ever goes in through `textContent` and attributes through `setAttribute`: no markup is
 * ever parsed from hub data. Colours go through `safeColor` before reaching a style.
 */

import { safeColor } from '../hub';

export type Child = Node | string | number | null | undefined | false;

/** Attributes set with setAttribute; `null`/`undefined`/`false` leave the attribute out. */
export type Attrs = Record<string, string | number | boolean | null | undefined>;

/** Create an element with attributes and children; strings become text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.appendChild(
      child instanceof Node ? child : document.createTextNode(String(child))
    );
  }
}

/** Replace the children of `node` (text children as text, never as markup). */
export function fill(node: Element, ...children: Child[]): void {
  node.replaceChildren();
  append(node, children);
}

/** Set the text of a node only when it changed (keeps the DOM quiet on refreshes). */
export function setText(node: Element, text: string): void {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

/** Compact one-line JSON for table cells; never throws (cycles cannot come from JSON). */
export function jsonLine(value: unknown, limit = 200): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > limit ? text.slice(0, limit - 1) + '…' : text;
}

/** Indented JSON for results and editors. */
export function jsonBlock(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The last path segment of a notebook path, without `.ipynb`. */
export function notebookName(path: string | null | undefined): string {
  if (!path) {
    return '';
  }
  const base = path.replace(/\/+$/, '').split('/').pop() ?? path;
  return base.endsWith('.ipynb') ? base.slice(0, -6) : base;
}

/** Local wall-clock time with milliseconds, for event logs and "updated at". */
export function clock(epochMs: number): string {
  const d = new Date(epochMs);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return (
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    `.${pad(d.getMilliseconds(), 3)}`
  );
}

/**
 * Keyed rows: one pass over `items` reuses the row of each key, updates it only when its
 * signature changed, drops rows of vanished keys and reorders only when the order changed.
 * With hundreds of rows a refresh then touches only what changed.
 */
export class KeyedRows<T> {
  constructor(
    readonly container: HTMLElement,
    private readonly render: (item: T) => HTMLElement
  ) {}

  sync(items: T[], key: (item: T) => string, signature: (item: T) => string): void {
    const next = new Map<string, { row: HTMLElement; sig: string }>();
    const order: HTMLElement[] = [];
    for (const item of items) {
      const k = key(item);
      if (next.has(k)) {
        continue;
      }
      const sig = signature(item);
      const old = this._rows.get(k);
      const row = old && old.sig === sig ? old.row : this.render(item);
      next.set(k, { row, sig });
      order.push(row);
    }
    this._rows = next;
    const current = Array.from(this.container.children);
    const same =
      current.length === order.length && current.every((node, i) => node === order[i]);
    if (!same) {
      this.container.replaceChildren(...order);
    }
  }

  row(key: string): HTMLElement | null {
    return this._rows.get(key)?.row ?? null;
  }

  get size(): number {
    return this._rows.size;
  }

  private _rows = new Map<string, { row: HTMLElement; sig: string }>();
}

/** A colour square; `color` comes from peers, so only a value CSS accepts as a colour is used. */
export function swatch(color: unknown): HTMLElement {
  const node = h('span', { class: 'jp-InteropSidebar-swatch' });
  const safe = safeColor(color);
  if (safe) {
    node.style.backgroundColor = safe;
  } else {
    node.classList.add('jp-mod-noColor');
  }
  return node;
}

/** Make a list row selectable by click and by Enter or Space, marked while selected. */
export function selectable(row: HTMLElement, selected: boolean, select: () => void): HTMLElement {
  row.classList.toggle('jp-mod-selected', selected);
  row.addEventListener('click', select);
  row.addEventListener('keydown', event => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      select();
    }
  });
  return row;
}

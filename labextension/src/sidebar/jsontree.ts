/**
 * A collapsible JSON tree built from `<details>` elements, with every key and value written
 * as text. Objects and arrays above `openDepth` start open; deeper ones start closed, and
 * big containers show only their first `maxChildren` entries so a huge context stays cheap.
 */

import { h } from './dom';

export interface JsonTreeOptions {
  openDepth?: number;
  maxChildren?: number;
}

function leaf(value: unknown): HTMLElement {
  const kind = value === null ? 'null' : typeof value;
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return h('span', { class: `jp-InteropSidebar-json-${kind}` }, text);
}

function node(
  key: string | null,
  value: unknown,
  depth: number,
  opts: Required<JsonTreeOptions>
): HTMLElement {
  const label = key === null ? null : h('span', { class: 'jp-InteropSidebar-json-key' }, key);
  if (value === null || typeof value !== 'object') {
    return h('div', { class: 'jp-InteropSidebar-json-leaf' }, label, label && ': ', leaf(value));
  }
  const entries: [string, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value as Record<string, unknown>);
  const brackets = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  const details = h(
    'details',
    { class: 'jp-InteropSidebar-json-node', open: depth < opts.openDepth },
    h(
      'summary',
      {},
      label,
      label && ' ',
      h('span', { class: 'jp-InteropSidebar-json-count' }, brackets)
    )
  );
  const shown = entries.slice(0, opts.maxChildren);
  for (const [k, v] of shown) {
    details.appendChild(node(k, v, depth + 1, opts));
  }
  if (entries.length > shown.length) {
    details.appendChild(
      h(
        'div',
        { class: 'jp-InteropSidebar-muted' },
        `… ${entries.length - shown.length} more (see Edit for the whole value)`
      )
    );
  }
  return details;
}

/** The tree of `value` (the root is shown open, without a key). */
export function jsonTree(value: unknown, options: JsonTreeOptions = {}): HTMLElement {
  const opts = { openDepth: options.openDepth ?? 2, maxChildren: options.maxChildren ?? 500 };
  return h('div', { class: 'jp-InteropSidebar-json' }, node(null, value, 0, opts));
}

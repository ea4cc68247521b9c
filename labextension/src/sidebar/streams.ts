/**
 * The streams section: every stream with its subscriber count, and a live preview: one
 * subscription (GW3 `subscribe`) whose last events are shown with their arrival time. The
 * preview is unsubscribed when it is closed, when another stream is previewed, when the
 * sidebar is hidden and when the hub says the subscription ended.
 */

import { GW3Message } from '../hub';
import { KeyedRows, clock, fill, h, jsonLine, selectable, setText } from './dom';
import { HubOps, parseJsonObject, StreamOffer } from './ops';
import { peerName, Section, SidebarData } from './section';

/** Events kept in a preview (older ones scroll away). */
export const PREVIEW_EVENTS = 50;

interface StreamGroup {
  name: string;
  offers: StreamOffer[];
  subscribers: number;
}

interface Preview {
  name: string;
  subscriptionId: string | null;
  closed: boolean;
}

export class StreamsSection extends Section {
  constructor(
    private readonly ops: HubOps,
    private readonly onChange: () => void
  ) {
    super('streams', 'Streams');
    const list = h('div', { class: 'jp-InteropSidebar-list' });
    this._rows = new KeyedRows<StreamGroup>(list, group => this._renderRow(group));
    this._empty = h('div', { class: 'jp-InteropSidebar-empty' }, 'No streams offered.');
    this._detail = h('div', { class: 'jp-InteropSidebar-detail', hidden: true });
    this.body.append(list, this._empty, this._detail);
  }

  update(data: SidebarData): void {
    this._data = data;
    const groups = new Map<string, StreamGroup>();
    for (const offer of data.streams) {
      const group = groups.get(offer.name) ?? { name: offer.name, offers: [], subscribers: 0 };
      group.offers.push(offer);
      group.subscribers += offer.subscribers;
      groups.set(offer.name, group);
    }
    this._groups = groups;
    const sorted = Array.from(groups.values()).sort((a, b) => a.name.localeCompare(b.name));
    this._rows.sync(
      sorted,
      g => g.name,
      g =>
        JSON.stringify([
          g.name === this._selected,
          g.subscribers,
          g.offers.map(o => [o.server_id, o.id, peerName(data, o.server_id)])
        ])
    );
    this._empty.hidden = sorted.length > 0;
    this.setCount(String(sorted.length));
  }

  onMessage(message: GW3Message): void {
    const preview = this._preview;
    if (!preview || preview.closed || message.subscription_id !== preview.subscriptionId) {
      return;
    }
    if (message.type === 'event') {
      this._append([message.data]);
    } else if (message.type === 'event-many' && Array.isArray(message.items)) {
      this._append(message.items);
    } else if (message.type === 'subscription-cancelled') {
      preview.closed = true;
      this._setStatus(`ended by the publisher: ${String(message.reason ?? '')}`, 'closed');
      this.onChange();
    }
  }

  onHidden(): void {
    void this._closePreview('closed (the sidebar was hidden)');
  }

  private _renderRow(group: StreamGroup): HTMLElement {
    const row = h(
      'div',
      {
        class: 'jp-InteropSidebar-row jp-mod-selectable',
        'data-name': group.name,
        'data-subscribers': group.subscribers,
        role: 'button',
        tabindex: 0
      },
      h(
        'div',
        { class: 'jp-InteropSidebar-rowMain' },
        h('span', { class: 'jp-InteropSidebar-name jp-InteropSidebar-code' }, group.name),
        h(
          'span',
          { class: 'jp-InteropSidebar-rowAside', 'data-role': 'subscribers' },
          `${group.subscribers} subscriber${group.subscribers === 1 ? '' : 's'}`
        )
      ),
      h(
        'div',
        { class: 'jp-InteropSidebar-rowSub jp-InteropSidebar-muted' },
        group.offers.map(o => peerName(this._data!, o.server_id)).join(', ')
      )
    );
    return selectable(row, group.name === this._selected, () => this._select(group.name));
  }

  private _select(name: string): void {
    if (this._selected === name) {
      return;
    }
    const previous = this._selected;
    this._selected = name;
    for (const key of [previous, name]) {
      if (key !== null) {
        this._rows.row(key)?.classList.toggle('jp-mod-selected', key === name);
      }
    }
    void this._closePreview('closed');
    this._buildForm(name);
  }

  private _buildForm(name: string): void {
    const offers = this._groups.get(name)?.offers ?? [];
    this._args = h('textarea', {
      class: 'jp-InteropSidebar-textarea',
      'data-role': 'stream-args',
      rows: 2,
      spellcheck: 'false',
      'aria-label': `subscription arguments of ${name} (a JSON object)`
    });
    this._args.value = '{}';
    this._server = h(
      'select',
      { class: 'jp-InteropSidebar-select', 'data-role': 'stream-server', 'aria-label': 'server' },
      ...offers.map(o =>
        h('option', { value: o.server_id }, peerName(this._data!, o.server_id))
      )
    );
    this._error = h('div', { class: 'jp-InteropSidebar-error', 'data-role': 'stream-error' });
    this._status = h('div', { class: 'jp-InteropSidebar-muted', 'data-role': 'preview-status' });
    this._events = h('ol', { class: 'jp-InteropSidebar-events', 'data-role': 'events' });
    const open = h('button', { class: 'jp-mod-styled jp-mod-accept', 'data-action': 'preview' }, 'Preview');
    const close = h('button', { class: 'jp-mod-styled', 'data-action': 'close-preview' }, 'Close');
    open.addEventListener('click', () => void this._openPreview(name));
    close.addEventListener('click', () => void this._closePreview('closed'));
    fill(
      this._detail,
      h('div', { class: 'jp-InteropSidebar-detailTitle jp-InteropSidebar-code' }, name),
      h('label', { class: 'jp-InteropSidebar-label' }, 'Arguments (JSON object)', this._args),
      h(
        'div',
        { class: 'jp-InteropSidebar-formRow' },
        h('label', { class: 'jp-InteropSidebar-label' }, 'Server ', this._server),
        open,
        close
      ),
      this._error,
      this._status,
      this._events
    );
    this._detail.hidden = false;
  }

  private async _openPreview(name: string): Promise<void> {
    setText(this._error!, '');
    const parsed = parseJsonObject(this._args!.value, 'Arguments');
    if ('error' in parsed) {
      setText(this._error!, parsed.error);
      return;
    }
    const offer = this._groups
      .get(name)
      ?.offers.find(o => o.server_id === this._server!.value);
    if (!offer) {
      setText(this._error!, `${name} is no longer offered by that peer.`);
      return;
    }
    await this._closePreview('closed');
    const preview: Preview = { name, subscriptionId: null, closed: false };
    this._preview = preview;
    this._events!.replaceChildren();
    this._setStatus('subscribing…', 'pending');
    try {
      preview.subscriptionId = await this.ops.subscribeStream(offer, parsed.value);
    } catch (err) {
      preview.closed = true;
      const e = err as { reason?: string; message?: string };
      this._setStatus(`subscription failed: ${e.reason ?? e.message ?? String(err)}`, 'error');
      return;
    }
    if (this._preview !== preview || preview.closed) {
      // closed (or replaced) while the hub was accepting: end it at once
      await this.ops.unsubscribeStream(preview.subscriptionId).catch(() => undefined);
      return;
    }
    this._setStatus(`live · last ${PREVIEW_EVENTS} events`, 'live');
    this.onChange();
  }

  private async _closePreview(why: string): Promise<void> {
    const preview = this._preview;
    if (!preview || preview.closed) {
      return;
    }
    preview.closed = true;
    this._setStatus(why, 'closed');
    if (preview.subscriptionId !== null) {
      try {
        await this.ops.unsubscribeStream(preview.subscriptionId);
      } catch (err) {
        const e = err as { reason?: string; message?: string };
        this._setStatus(`${why}; the hub said: ${e.reason ?? e.message ?? String(err)}`, 'closed');
      }
      this.onChange();
    }
  }

  private _append(items: unknown[]): void {
    const events = this._events!;
    const now = clock(Date.now());
    for (const data of items) {
      events.appendChild(
        h(
          'li',
          { class: 'jp-InteropSidebar-event' },
          h('span', { class: 'jp-InteropSidebar-time' }, now),
          h('span', { class: 'jp-InteropSidebar-code' }, jsonLine(data))
        )
      );
    }
    while (events.childElementCount > PREVIEW_EVENTS) {
      events.firstElementChild!.remove();
    }
    events.setAttribute('data-count', String(events.childElementCount));
    events.scrollTop = events.scrollHeight;
  }

  private _setStatus(text: string, state: string): void {
    if (this._status) {
      setText(this._status, text);
      this._status.setAttribute('data-state', state);
    }
  }

  private _data: SidebarData | null = null;
  private _groups = new Map<string, StreamGroup>();
  private _selected: string | null = null;
  private _preview: Preview | null = null;
  private _args: HTMLTextAreaElement | null = null;
  private _server: HTMLSelectElement | null = null;
  private _error: HTMLElement | null = null;
  private _status: HTMLElement | null = null;
  private _events: HTMLOListElement | null = null;
  private readonly _rows: KeyedRows<StreamGroup>;
  private readonly _empty: HTMLElement;
  private readonly _detail: HTMLElement;
}

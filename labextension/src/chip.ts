/**
 * The channel chip in a notebook's toolbar, its channel menu, and the colour mark on the
 * notebook's tab (docs/LAB.md, "The channel chip").
 *
 * Channel names and colours come from any peer of the hub, so they are only ever written as
 * text (`textContent`, attribute values) and colours only through `style.setProperty` after
 * `safeColor`: never as markup or stylesheet text.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { ChannelInfo, HubClient } from './hub';
import { NotebookChannel } from './notebookChannel';

/** Rendered by Lumino's tab renderer as the attribute data-interop-channel. */
const TAB_CHANNEL_ATTRIBUTE = 'interop-channel';

function swatch(color: string): HTMLSpanElement {
  const mark = document.createElement('span');
  mark.className = 'jp-InteropSwatch';
  if (color) {
    mark.style.setProperty('background-color', color);
  } else {
    mark.classList.add('jp-mod-noColor');
  }
  return mark;
}

function text(tag: string, className: string, value: string): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = value;
  return node;
}

/**
 * Colour marks on notebook tabs: the tab carries the channel name as `data-interop-channel`
 * (from the title's dataset), and one CSS rule per channel, built through the CSSOM, gives it
 * the channel's colour.
 */
export class TabMarks {
  constructor(readonly hub: HubClient) {
    const style = document.createElement('style');
    style.id = 'jp-interop-tab-marks';
    document.head.appendChild(style);
    this._sheet = style.sheet!;
    hub.modelChanged.connect(this._render, this);
  }

  /** Show `channel` (null: none) on the tab of `panel`. */
  mark(panel: NotebookPanel, channel: string | null): void {
    const dataset = { ...panel.title.dataset };
    if (channel === null) {
      if (!(TAB_CHANNEL_ATTRIBUTE in dataset)) {
        return;
      }
      delete dataset[TAB_CHANNEL_ATTRIBUTE];
    } else {
      if (dataset[TAB_CHANNEL_ATTRIBUTE] === channel) {
        return;
      }
      dataset[TAB_CHANNEL_ATTRIBUTE] = channel;
    }
    panel.title.dataset = dataset;
  }

  private _render(): void {
    const colors = this.hub
      .channels()
      .filter(c => c.color)
      .map(c => `${c.name}\u0000${c.color}`)
      .join('\u0001');
    if (colors === this._rendered) {
      return;
    }
    this._rendered = colors;
    while (this._sheet.cssRules.length) {
      this._sheet.deleteRule(0);
    }
    for (const channel of this.hub.channels()) {
      if (!channel.color) {
        continue;
      }
      const selector = `.lm-TabBar-tab[data-interop-channel="${CSS.escape(channel.name)}"]`;
      const index = this._sheet.insertRule(`${selector} {}`, this._sheet.cssRules.length);
      const rule = this._sheet.cssRules[index] as CSSStyleRule;
      rule.style.setProperty('--jp-interop-channel-color', channel.color);
    }
  }

  private readonly _sheet: CSSStyleSheet;
  private _rendered = '';
}

/** The popup listing every channel; keyboard accessible, closes on Escape or a click outside. */
class ChannelMenu {
  constructor(
    private readonly _controller: NotebookChannel,
    private readonly _anchor: HTMLElement,
    private readonly _onClose: () => void
  ) {
    this.node = document.createElement('div');
    this.node.className = 'jp-InteropChannelMenu';
    this.node.setAttribute('role', 'menu');
    this.node.setAttribute('aria-label', 'Channels');
    this.node.addEventListener('keydown', this._onKeyDown);
    document.addEventListener('mousedown', this._onDocumentMouseDown, true);
    _controller.hub.modelChanged.connect(this._render, this);
    document.body.appendChild(this.node);
    this._render();
    this._place();
    this._items()[0]?.focus();
  }

  readonly node: HTMLDivElement;

  close(): void {
    if (this._closed) {
      return;
    }
    this._closed = true;
    this._controller.hub.modelChanged.disconnect(this._render, this);
    document.removeEventListener('mousedown', this._onDocumentMouseDown, true);
    this.node.remove();
    this._onClose();
  }

  private _items(): HTMLButtonElement[] {
    return Array.from(this.node.querySelectorAll<HTMLButtonElement>('button'));
  }

  private _render(): void {
    const focused = document.activeElement as HTMLElement | null;
    const focusKey = this.node.contains(focused) ? focused?.dataset.key : undefined;
    const joined = this._controller.channels;
    const peers = new Map(this._controller.hub.peers().map(p => [p.peerId, p]));
    const rows: HTMLElement[] = [];
    for (const channel of this._controller.hub.channels()) {
      rows.push(this._channelItem(channel, joined.includes(channel.name), peers));
    }
    if (rows.length === 0) {
      rows.push(text('div', 'jp-InteropChannelMenu-empty', 'The hub has no channels'));
    }
    const leave = document.createElement('button');
    leave.className = 'jp-InteropChannelMenu-item jp-InteropChannelMenu-leave';
    leave.dataset.action = 'leave';
    leave.dataset.key = 'leave';
    leave.setAttribute('role', 'menuitem');
    leave.disabled = joined.length === 0;
    leave.append(swatch(''), text('span', 'jp-InteropChannelMenu-name', 'Leave channel'));
    leave.addEventListener('click', () => this._pick(null));
    rows.push(leave);
    this.node.replaceChildren(...rows);
    if (focusKey) {
      this._items()
        .find(b => b.dataset.key === focusKey)
        ?.focus();
    }
  }

  private _channelItem(
    channel: ChannelInfo,
    selected: boolean,
    peers: Map<string, { application: string; isShell: boolean }>
  ): HTMLButtonElement {
    const item = document.createElement('button');
    item.className = 'jp-InteropChannelMenu-item';
    item.dataset.channel = channel.name;
    item.dataset.key = `channel:${channel.name}`;
    item.setAttribute('role', 'menuitemradio');
    item.setAttribute('aria-checked', String(selected));
    const members = channel.members
      .map(id => peers.get(id))
      .filter(p => p && !p.isShell)
      .map(p => p!.application);
    item.append(
      swatch(channel.color),
      text('span', 'jp-InteropChannelMenu-name', channel.name),
      text('span', 'jp-InteropChannelMenu-members', members.join(', '))
    );
    item.title = members.length ? `On ${channel.name}: ${members.join(', ')}` : channel.name;
    item.addEventListener('click', () => this._pick(channel.name));
    return item;
  }

  private _pick(channel: string | null): void {
    this.close();
    this._anchor.focus();
    void this._controller.join(channel);
  }

  private _place(): void {
    const box = this._anchor.getBoundingClientRect();
    this.node.style.setProperty('top', `${Math.round(box.bottom + 2)}px`);
    const width = this.node.offsetWidth;
    const left = Math.min(box.left, window.innerWidth - width - 4);
    this.node.style.setProperty('left', `${Math.max(4, Math.round(left))}px`);
  }

  private readonly _onKeyDown = (event: KeyboardEvent): void => {
    const items = this._items().filter(b => !b.disabled);
    const index = items.indexOf(document.activeElement as HTMLButtonElement);
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      this.close();
      this._anchor.focus();
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const step = event.key === 'ArrowDown' ? 1 : -1;
      const next = items[(index + step + items.length) % items.length];
      next?.focus();
    } else if (event.key === 'Home' || event.key === 'End') {
      event.preventDefault();
      (event.key === 'Home' ? items[0] : items[items.length - 1])?.focus();
    } else if (event.key === 'Tab') {
      this.close();
    }
  };

  private readonly _onDocumentMouseDown = (event: MouseEvent): void => {
    const target = event.target as Node | null;
    if (target && (this.node.contains(target) || this._anchor.contains(target))) {
      return;
    }
    this.close();
  };

  private _closed = false;
}

/** The chip: the notebook's channel in its colour; a click opens the channel menu. */
export class ChannelChip extends Widget {
  constructor(
    private readonly _controller: NotebookChannel,
    private readonly _marks: TabMarks
  ) {
    super({ node: document.createElement('button') });
    this.addClass('jp-InteropChannelChip');
    this.node.setAttribute('aria-haspopup', 'menu');
    this.node.setAttribute('aria-expanded', 'false');
    this.node.addEventListener('click', this._toggle);
    this.node.addEventListener('keydown', this._onKeyDown);
    this._swatch = document.createElement('span');
    this._swatch.className = 'jp-InteropSwatch';
    // multi-channel mode: one more swatch for each other channel the notebook is on
    this._others = text('span', 'jp-InteropChannelChip-others', '');
    this._label = text('span', 'jp-InteropChannelChip-label', '');
    this.node.append(this._others, this._swatch, this._label);
    _controller.changed.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this._menu?.close();
    this._controller.changed.disconnect(this._render, this);
    super.dispose();
  }

  private readonly _toggle = (): void => {
    if (this._menu) {
      this._menu.close();
      return;
    }
    if (this._controller.state === 'unavailable' || this._controller.state === 'pending') {
      return;
    }
    this.node.setAttribute('aria-expanded', 'true');
    this._menu = new ChannelMenu(this._controller, this.node, () => {
      this._menu = null;
      this.node.setAttribute('aria-expanded', 'false');
    });
  };

  private readonly _onKeyDown = (event: KeyboardEvent): void => {
    if (event.key === 'ArrowDown' && !this._menu) {
      event.preventDefault();
      this._toggle();
    }
  };

  private _render(): void {
    const controller = this._controller;
    const state = controller.state;
    const channel = controller.channel;
    const channels = controller.channels;
    const known = controller.hub.channels();
    const colorOf = (name: string): string => known.find(c => c.name === name)?.color ?? '';
    const color = channel === null ? '' : colorOf(channel);
    const button = this.node as HTMLButtonElement;
    button.dataset.channel = channel ?? '';
    button.dataset.channels = JSON.stringify(channels);
    this._others.replaceChildren(
      ...channels.filter(name => name !== channel).map(name => swatch(colorOf(name)))
    );
    button.dataset.state = state;
    button.disabled = state === 'unavailable' || state === 'pending';
    this._swatch.classList.toggle('jp-mod-noColor', !color);
    if (color) {
      this._swatch.style.setProperty('background-color', color);
      this.node.style.setProperty('--jp-interop-channel-color', color);
    } else {
      this._swatch.style.removeProperty('background-color');
      this.node.style.removeProperty('--jp-interop-channel-color');
    }
    let label: string;
    let tooltip: string;
    if (state === 'unavailable') {
      label = controller.unavailableReason;
      tooltip = `Interop channel: ${controller.unavailableReason}`;
    } else if (state === 'pending') {
      label = controller.pending ?? '…';
      tooltip = 'Changing the notebook\'s interop channel';
    } else {
      const shown = channels.length > 1 ? channels.join(', ') : channel;
      label = (state === 'error' && controller.errorLabel) || (shown ?? 'no channel');
      tooltip =
        state === 'error'
          ? controller.error
          : channel === null
            ? 'Not on an interop channel: click to join one'
            : channels.length > 1
              ? `On interop channels ${shown}: click to join another`
              : `On interop channel ${channel}: click to change`;
    }
    this._label.textContent = label;
    button.title = tooltip;
    button.setAttribute('aria-label', `Interop channel: ${label}`);
    this._marks.mark(controller.panel, channel);
  }

  private readonly _swatch: HTMLSpanElement;
  private readonly _others: HTMLElement;
  private readonly _label: HTMLElement;
  private _menu: ChannelMenu | null = null;
}

/** The channels section: colour, name, the notebooks and applications on it, and its data. */

import { ChannelInfo } from '../hub';
import { h, jsonBlock, KeyedRows, swatch } from './dom';
import { peerName, Section, SidebarData } from './section';

export class ChannelsSection extends Section {
  constructor() {
    super('channels', 'Channels');
    const list = h('div', { class: 'jp-InteropSidebar-list jp-mod-unbounded' });
    this._rows = new KeyedRows<ChannelInfo>(list, c => this._render(c));
    this._empty = h('div', { class: 'jp-InteropSidebar-empty' }, 'No channels defined.');
    this.body.append(list, this._empty);
  }

  update(data: SidebarData): void {
    this._data = data;
    const channels = data.channels;
    this._rows.sync(
      channels,
      c => c.name,
      c =>
        JSON.stringify([
          c.color,
          c.version,
          c.data,
          c.members.map(id => peerName(data, id))
        ])
    );
    this._empty.hidden = channels.length > 0;
    const occupied = channels.filter(c => c.members.length > 0).length;
    this.setCount(occupied ? `${occupied} of ${channels.length} in use` : String(channels.length));
  }

  private _render(channel: ChannelInfo): HTMLElement {
    const members = channel.members.map(id => peerName(this._data!, id));
    const hasData = Object.keys(channel.data ?? {}).length > 0;
    return h(
      'div',
      { class: 'jp-InteropSidebar-row', 'data-name': channel.name },
      h(
        'div',
        { class: 'jp-InteropSidebar-rowMain' },
        swatch(channel.color),
        h('span', { class: 'jp-InteropSidebar-name' }, channel.name),
        h(
          'span',
          { class: 'jp-InteropSidebar-rowAside', 'data-role': 'members' },
          members.length ? members.join(', ') : 'nobody'
        )
      ),
      hasData &&
        h(
          'pre',
          { class: 'jp-InteropSidebar-pre jp-InteropSidebar-channelData', 'data-role': 'data' },
          jsonBlock(channel.data)
        )
    );
  }

  private _data: SidebarData | null = null;
  private readonly _rows: KeyedRows<ChannelInfo>;
  private readonly _empty: HTMLElement;
}

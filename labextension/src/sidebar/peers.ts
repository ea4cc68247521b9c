/** The peers section: notebooks first, then other applications, with channel and methods. */

import { PeerInfo } from '../hub';
import { h, KeyedRows, swatch } from './dom';
import { Section, SidebarData } from './section';

interface PeerRow {
  peer: PeerInfo;
  methods: number;
  streams: number;
  /** The colour of each of the peer's channels, in the order of `peer.channels`. */
  channelColors: string[];
  group: 'notebooks' | 'applications';
}

export class PeersSection extends Section {
  constructor() {
    super('peers', 'Peers');
    const notebooks = h('div', { class: 'jp-InteropSidebar-list', 'data-group': 'notebooks' });
    const apps = h('div', { class: 'jp-InteropSidebar-list', 'data-group': 'applications' });
    this._notebooks = new KeyedRows<PeerRow>(notebooks, row => this._render(row));
    this._apps = new KeyedRows<PeerRow>(apps, row => this._render(row));
    this._notebooksTitle = h('div', { class: 'jp-InteropSidebar-groupTitle' }, 'Notebooks');
    this._appsTitle = h('div', { class: 'jp-InteropSidebar-groupTitle' }, 'Applications');
    this.body.append(this._notebooksTitle, notebooks, this._appsTitle, apps);
  }

  update(data: SidebarData): void {
    const methods = new Map<string, number>();
    const streams = new Map<string, number>();
    for (const m of data.methods) {
      methods.set(m.server_id, (methods.get(m.server_id) ?? 0) + 1);
    }
    for (const s of data.streams) {
      streams.set(s.server_id, (streams.get(s.server_id) ?? 0) + 1);
    }
    const colors = new Map(data.channels.map(c => [c.name, c.color]));
    const rows: PeerRow[] = data.peers.map(peer => ({
      peer,
      methods: methods.get(peer.peerId) ?? 0,
      streams: streams.get(peer.peerId) ?? 0,
      channelColors: peer.channels.map(name => colors.get(name) || ''),
      group: peer.notebookPath ? 'notebooks' : 'applications'
    }));
    const byName = (a: PeerRow, b: PeerRow): number =>
      (a.peer.notebookPath || a.peer.application).localeCompare(
        b.peer.notebookPath || b.peer.application
      );
    const nb = rows.filter(r => r.group === 'notebooks').sort(byName);
    const apps = rows.filter(r => r.group === 'applications').sort(byName);
    const key = (r: PeerRow): string => r.peer.peerId;
    const sig = (r: PeerRow): string =>
      JSON.stringify([
        r.peer.application,
        r.peer.notebookPath,
        r.peer.channels,
        r.channelColors,
        r.methods,
        r.streams,
        r.peer.isShell
      ]);
    this._notebooks.sync(nb, key, sig);
    this._apps.sync(apps, key, sig);
    this._notebooksTitle.hidden = nb.length === 0;
    this._appsTitle.hidden = apps.length === 0;
    this.setCount(String(rows.length));
  }

  private _render(row: PeerRow): HTMLElement {
    const { peer } = row;
    // one tag per channel: several for a peer in multi-channel mode
    const channel = peer.channels.length
      ? h(
          'span',
          { class: 'jp-InteropSidebar-channels' },
          ...peer.channels.map((name, i) =>
            h(
              'span',
              { class: 'jp-InteropSidebar-channelTag', 'data-channel': name },
              swatch(row.channelColors[i]),
              name
            )
          )
        )
      : h('span', { class: 'jp-InteropSidebar-muted' }, 'no channel');
    const counts = [`${row.methods} method${row.methods === 1 ? '' : 's'}`];
    if (row.streams) {
      counts.push(`${row.streams} stream${row.streams === 1 ? '' : 's'}`);
    }
    return h(
      'div',
      {
        class: 'jp-InteropSidebar-row',
        'data-name': peer.application,
        'data-peer': peer.peerId,
        title: peer.peerId
      },
      h(
        'div',
        { class: 'jp-InteropSidebar-rowMain' },
        h('span', { class: 'jp-InteropSidebar-name' }, peer.application),
        peer.isShell && h('span', { class: 'jp-InteropSidebar-muted' }, ' (this lab)'),
        h('span', { class: 'jp-InteropSidebar-rowAside' }, counts.join(' · '))
      ),
      h(
        'div',
        { class: 'jp-InteropSidebar-rowSub' },
        peer.notebookPath && h('span', { class: 'jp-InteropSidebar-path' }, peer.notebookPath),
        channel
      )
    );
  }

  private readonly _notebooks: KeyedRows<PeerRow>;
  private readonly _apps: KeyedRows<PeerRow>;
  private readonly _notebooksTitle: HTMLElement;
  private readonly _appsTitle: HTMLElement;
}

/**
 * What every part of the Interop sidebar shares: a collapsible section with a count in its
 * header, and the snapshot of hub state each refresh hands to all sections at once.
 */

import { ChannelInfo, GW3Message, PeerInfo, SHELL_APPLICATION } from '../hub';
import { h, notebookName, setText } from './dom';
import { AppsView } from './apps';
import { ContextSummary, MethodOffer, StreamOffer } from './ops';

/** One refresh's view of the hub: the lab connection's live model plus the hub's REST views. */
export interface SidebarData {
  peers: PeerInfo[];
  channels: ChannelInfo[];
  methods: MethodOffer[];
  streams: StreamOffer[];
  contexts: ContextSummary[];
  /** the server's app directory (notebooks started on demand), or why it was not read */
  apps: AppsView;
  /** peer id -> peer, for names of updaters, members and servers */
  peerById: Map<string, PeerInfo>;
  /** this page's own peer id (the hub does not announce a peer to itself) */
  selfId: string | null;
}

/** How the sidebar names a peer: its notebook's name, else its application, else its id. */
export function peerName(data: SidebarData, peerId: string | null | undefined): string {
  if (!peerId) {
    return '';
  }
  if (peerId === data.selfId) {
    return `${SHELL_APPLICATION} (this page)`;
  }
  const peer = data.peerById.get(peerId);
  if (!peer) {
    return peerId;
  }
  return notebookName(peer.notebookPath) || peer.application || peerId;
}

export abstract class Section {
  readonly node: HTMLElement;
  protected readonly body: HTMLElement;

  constructor(
    readonly name: 'peers' | 'apps' | 'methods' | 'streams' | 'contexts' | 'channels',
    title: string
  ) {
    this._count = h('span', { class: 'jp-InteropSidebar-count' });
    this._toggle = h(
      'button',
      {
        class: 'jp-InteropSidebar-sectionHeader',
        'data-action': 'toggle-section',
        'aria-expanded': 'true'
      },
      h('span', { class: 'jp-InteropSidebar-caret' }),
      h('span', { class: 'jp-InteropSidebar-sectionTitle' }, title),
      this._count
    );
    this._toggle.addEventListener('click', () => this.setExpanded(!this.expanded));
    this.body = h('div', { class: 'jp-InteropSidebar-sectionBody' });
    this.node = h(
      'section',
      { class: 'jp-InteropSidebar-section', 'data-section': name },
      this._toggle,
      this.body
    );
  }

  get expanded(): boolean {
    return !this.node.classList.contains('jp-mod-collapsed');
  }

  setExpanded(expanded: boolean): void {
    this.node.classList.toggle('jp-mod-collapsed', !expanded);
    this._toggle.setAttribute('aria-expanded', String(expanded));
  }

  protected setCount(text: string): void {
    setText(this._count, text);
  }

  /** Show the state of this refresh. */
  abstract update(data: SidebarData): void;

  /** A GW3 message from the hub (events, context updates); most sections ignore them. */
  onMessage(_message: GW3Message): void {
    /* nothing by default */
  }

  /** The sidebar was hidden: stop live work that only matters while it is seen. */
  onHidden(): void {
    /* nothing by default */
  }

  dispose(): void {
    this.onHidden();
  }

  private readonly _count: HTMLElement;
  private readonly _toggle: HTMLButtonElement;
}

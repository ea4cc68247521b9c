/**
 * The Interop sidebar widget: a status line, the federation line and six live sections
 * (peers, apps, methods, streams, contexts, channels).
 *
 * Refreshes are driven by what the hub pushes on the lab's connection (peers, methods and
 * contexts appearing or going, membership changes, updates of the followed context); bursts
 * of pushes are coalesced into one refresh per animation frame, and nothing is fetched while
 * the sidebar is hidden. Versions of contexts nobody here follows are not pushed by the hub,
 * so while the sidebar is shown the list is also re-read every `LIST_REFRESH_MS`.
 */

import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { GW3Message, HubClient, HubState } from '../hub';
import { AppsSection, readApps } from './apps';
import { ChannelsSection } from './channels';
import { ContextsSection } from './contexts';
import { h, setText } from './dom';
import { FederationLine, FederationStatus } from './federation';
import { MethodsSection } from './methods';
import { HubOps } from './ops';
import { PeersSection } from './peers';
import { Section, SidebarData } from './section';
import { StreamsSection } from './streams';

/** The DOM id of the sidebar (tests and the status bar find it by this id). */
export const SIDEBAR_ID = 'jp-interop-sidebar';

/** How often a shown sidebar re-reads the hub's views for what the hub does not push. */
export const LIST_REFRESH_MS = 3000;

/** Hub pushes after which the views are read again. */
const REFRESHING_MESSAGES = new Set([
  'peer-added',
  'peer-removed',
  'methods-added',
  'methods-removed',
  'context-added',
  'context-destroyed',
  'context-updated',
  'channel-membership',
  'subscribed',
  'subscription-cancelled'
]);

export class InteropSidebar extends Widget {
  constructor(readonly hub: HubClient) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-InteropSidebar');
    this.title.caption = 'Interop';
    const ops = new HubOps(hub);
    const changed = (): void => this.scheduleRefresh();
    this._sections = [
      new PeersSection(),
      new AppsSection(changed),
      new MethodsSection(ops),
      new StreamsSection(ops, changed),
      new ContextsSection(ops, changed),
      new ChannelsSection()
    ];
    this._status = h('div', { class: 'jp-InteropSidebar-status', 'data-role': 'hub-status' });
    this.node.append(
      h(
        'div',
        { class: 'jp-InteropSidebar-header' },
        h('h2', {}, 'Interop'),
        this._status,
        this._federation.node
      ),
      ...this._sections.map(s => s.node)
    );
    hub.stateChanged.connect(this._onState, this);
    hub.modelChanged.connect(this.scheduleRefresh, this);
    hub.messageReceived.connect(this._onMessage, this);
    this._onState(hub, hub.state);
  }

  /** The section named `name` (for the status bar or commands that open one). */
  section(name: Section['name']): Section | undefined {
    return this._sections.find(s => s.name === name);
  }

  /** Read the views again on the next animation frame (many calls, one refresh). */
  scheduleRefresh(): void {
    if (!this.isVisible) {
      return;
    }
    if (this._frame !== null) {
      return;
    }
    this._frame = requestAnimationFrame(() => {
      this._frame = null;
      void this._refresh();
    });
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stopTimer();
    if (this._frame !== null) {
      cancelAnimationFrame(this._frame);
    }
    for (const section of this._sections) {
      section.dispose();
    }
    this.hub.stateChanged.disconnect(this._onState, this);
    this.hub.modelChanged.disconnect(this.scheduleRefresh, this);
    this.hub.messageReceived.disconnect(this._onMessage, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.scheduleRefresh();
    this._stopTimer();
    this._timer = window.setInterval(() => this.scheduleRefresh(), LIST_REFRESH_MS);
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._stopTimer();
    for (const section of this._sections) {
      section.onHidden();
    }
  }

  private _stopTimer(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _onState(_hub: HubClient, state: HubState): void {
    this.node.setAttribute('data-hub-state', state);
    this._showStatus();
    if (state === 'connected') {
      this.scheduleRefresh();
    }
  }

  private _onMessage(_hub: HubClient, message: GW3Message): void {
    for (const section of this._sections) {
      section.onMessage(message);
    }
    if (REFRESHING_MESSAGES.has(message.type)) {
      this.scheduleRefresh();
    }
  }

  private _showStatus(): void {
    const state = this.hub.state;
    const peers = this._lastData ? this._lastData.peers.length : null;
    let text: string = state;
    if (state === 'connected' && peers !== null) {
      text = `connected · ${peers} peer${peers === 1 ? '' : 's'}`;
    }
    if (this._error) {
      text += ` · ${this._error}`;
    }
    setText(this._status, text);
    this._status.classList.toggle('jp-mod-error', state !== 'connected' || !!this._error);
  }

  private async _refresh(): Promise<void> {
    if (this._refreshing) {
      this._again = true;
      return;
    }
    this._refreshing = true;
    try {
      do {
        this._again = false;
        const [methods, streams, contexts, apps, federation] = await Promise.all([
          this.hub.view('methods'),
          this.hub.view('streams'),
          this.hub.view('contexts'),
          readApps(),
          // a server without the view (an older one) shows the line as off
          this.hub.view('federation').catch((): FederationStatus | null => null)
        ]);
        this._federation.update(federation);
        const peers = this.hub.peers();
        const data: SidebarData = {
          peers,
          channels: this.hub.channels(),
          methods: Array.isArray(methods) ? methods : [],
          streams: Array.isArray(streams) ? streams : [],
          contexts: Array.isArray(contexts) ? contexts : [],
          apps,
          peerById: new Map(peers.map(p => [p.peerId, p])),
          selfId: this.hub.peerId
        };
        this._lastData = data;
        this._error = '';
        for (const section of this._sections) {
          section.update(data);
        }
        this.node.setAttribute('data-refreshed', String(++this._refreshes));
      } while (this._again);
    } catch (err) {
      this._error = `cannot read the hub: ${(err as Error).message ?? String(err)}`;
    } finally {
      this._refreshing = false;
      this._showStatus();
    }
  }

  private readonly _sections: Section[];
  private readonly _status: HTMLElement;
  private readonly _federation = new FederationLine();
  private _lastData: SidebarData | null = null;
  private _error = '';
  private _frame: number | null = null;
  private _timer: number | null = null;
  private _refreshing = false;
  private _again = false;
  private _refreshes = 0;
}

/**
 * The status bar item: the hub connection's state and how many peers it has; a click opens
 * the Interop sidebar.
 */
import { Widget } from '@lumino/widgets';

import { HubClient } from './hub';

export class InteropStatus extends Widget {
  constructor(
    private readonly _hub: HubClient,
    private readonly _open: () => void
  ) {
    super({ node: document.createElement('button') });
    this.addClass('jp-InteropStatus');
    this.node.addEventListener('click', () => this._open());
    _hub.stateChanged.connect(this._render, this);
    _hub.modelChanged.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this._hub.stateChanged.disconnect(this._render, this);
    this._hub.modelChanged.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const state = this._hub.state;
    let label: string;
    if (state === 'connected') {
      const count = this._hub.peers().filter(p => p.peerId !== this._hub.peerId).length;
      label = `Interop: ${count} ${count === 1 ? 'peer' : 'peers'}`;
    } else {
      label = state === 'connecting' ? 'Interop: connecting…' : 'Interop: disconnected';
    }
    this.node.textContent = label;
    this.node.dataset.state = state;
    this.node.title = `${label}. Click to open the Interop sidebar`;
  }
}

/**
 * The sidebar's Federation line: whether this server's hub is joined to other hubs through
 * NATS, and to how many (the `federation` view, docs/FEDERATION.md, "Status"). The view never
 * carries credentials, and the line shows only its space, state and hub counts.
 */

import { h, setText } from './dom';

/** One remote hub as the `federation` view lists it. */
export interface RemoteHub {
  hub: string;
  peers: number;
  /** seconds since its last announcement */
  last_heard: number;
}

/** The `federation` view (`{enabled: false}` when federation is off). */
export interface FederationStatus {
  enabled: boolean;
  url?: string;
  space?: string;
  hub?: string;
  connected?: boolean;
  error?: string;
  remote_hubs?: RemoteHub[];
}

export type FederationState = 'off' | 'connected' | 'disconnected' | 'failed';

/** What the line says and its state, for a `federation` view (null: not readable). */
export function describeFederation(status: FederationStatus | null): {
  state: FederationState;
  text: string;
  detail: string;
  hubs: number;
} {
  if (!status || !status.enabled) {
    return { state: 'off', text: 'Federation: off', detail: 'this hub serves its own peers', hubs: 0 };
  }
  const hubs = Array.isArray(status.remote_hubs) ? status.remote_hubs : [];
  const space = status.space ? `space ${status.space}` : 'federation';
  const where = status.url ? ` at ${status.url}` : '';
  if (status.error) {
    return {
      state: 'failed',
      text: `Federation: not joined (${space})`,
      detail: status.error,
      hubs: 0
    };
  }
  if (!status.connected) {
    return {
      state: 'disconnected',
      text: `Federation: ${space} · NATS unreachable, serving local peers`,
      detail: `${space}${where}`,
      hubs: hubs.length
    };
  }
  const peers = hubs.reduce((sum, hub) => sum + (Number(hub.peers) || 0), 0);
  const lines = hubs.map(
    hub => `hub ${hub.hub}: ${hub.peers} peer${hub.peers === 1 ? '' : 's'}, heard ${hub.last_heard} s ago`
  );
  return {
    state: 'connected',
    text:
      `Federation: ${space} · connected to ${hubs.length} hub${hubs.length === 1 ? '' : 's'}` +
      ` (${peers} peer${peers === 1 ? '' : 's'})`,
    detail: [`${space}${where}`, ...lines].join('\n'),
    hubs: hubs.length
  };
}

/** The line under the sidebar's status. */
export class FederationLine {
  readonly node: HTMLElement = h('div', {
    class: 'jp-InteropSidebar-federation',
    'data-role': 'federation'
  });

  update(status: FederationStatus | null): void {
    const { state, text, detail, hubs } = describeFederation(status);
    setText(this.node, text);
    this.node.title = detail;
    this.node.setAttribute('data-state', state);
    this.node.setAttribute('data-hubs', String(hubs));
    this.node.classList.toggle('jp-mod-error', state === 'failed' || state === 'disconnected');
  }
}

/**
 * The JupyterLab page's one connection to the interop hub (docs/LAB.md, "Transport").
 *
 * The page is a GW3 peer on `{base_url}interop/gateway`, like the dashboard
 * (jupyter_interop/server/static/dashboard.html). It keeps a live model of peers, channels and
 * channel membership from what the hub pushes (never polling), reconnects with backoff when the
 * socket closes, and re-syncs the whole model after each reconnect.
 */
import { Token } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

export type HubState = 'connecting' | 'connected' | 'disconnected';

export interface PeerInfo {
  peerId: string;
  application: string;
  identity: Record<string, unknown>;
  kernelId: string | null;
  notebookPath: string | null;
  /** The channel it joined last (null: none). */
  channel: string | null;
  /** Every channel it is on, in the order joined (several in multi-channel mode). */
  channels: string[];
  isShell: boolean;
  /** Whether the peer negotiated the `channels` extension (it obeys `move-to-channel`). */
  followsChannels: boolean;
}

export interface ChannelInfo {
  name: string;
  /** A colour the browser accepts as a CSS colour, or '' (see safeColor). */
  color: string;
  data: Record<string, unknown>;
  version: number | null;
  /** Peer ids of the members. */
  members: string[];
}

export type GW3Message = Record<string, any>;

export type ViewName =
  | 'peers'
  | 'methods'
  | 'streams'
  | 'contexts'
  | 'channels'
  | 'status'
  | 'federation';

/** An `error` reply of the hub, as a JavaScript Error. */
export class HubError extends Error {
  constructor(
    readonly reason_uri: string,
    readonly reason: string
  ) {
    super(reason || reason_uri);
    this.name = 'HubError';
  }
}

/** Channels are contexts named with this prefix (jupyter_interop/hub/channels.py). */
export const CHANNEL_PREFIX = '___channel___';

/** The application name the shell announces in its hello. */
export const SHELL_APPLICATION = 'JupyterLab';

/**
 * The colour only if the browser takes it as a CSS colour, else ''.
 *
 * Channel names and colours come from any peer: a colour is only ever set through
 * `style.setProperty` after this check, and names only through `textContent`.
 */
export function safeColor(c: unknown): string {
  if (typeof c !== 'string' || c.length === 0 || c.length > 64) {
    return '';
  }
  if (/[;{}<>\\]/.test(c)) {
    return '';
  }
  return typeof CSS !== 'undefined' && CSS.supports('color', c) ? c : '';
}

/** A peer's channels from a membership notice or a peers row: its `channels` list, or (from a
 * hub that sends only `channel`) that one channel. */
function channelList(channels: unknown, channel: unknown): string[] {
  if (Array.isArray(channels)) {
    return channels.filter((name): name is string => typeof name === 'string');
  }
  return typeof channel === 'string' ? [channel] : [];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function setAtPath(data: Record<string, unknown>, parts: string[], value: unknown): void {
  let node = data;
  for (const part of parts.slice(0, -1)) {
    const child = node[part];
    if (!isRecord(child)) {
      node[part] = {};
    }
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

function removeAtPath(data: Record<string, unknown>, parts: string[]): void {
  let node = data;
  for (const part of parts.slice(0, -1)) {
    const child = node[part];
    if (!isRecord(child)) {
      return;
    }
    node = child;
  }
  delete node[parts[parts.length - 1]];
}

/**
 * Apply a GW3 context delta (reset, added/updated/removed, commands), as the hub does
 * (jupyter_interop/protocol/deltas.py); returns the new data.
 */
export function applyDelta(
  data: Record<string, unknown>,
  delta: Record<string, unknown>
): Record<string, unknown> {
  let result = data;
  for (const [kind, value] of Object.entries(delta)) {
    if (kind === 'reset' && isRecord(value)) {
      result = { ...value };
    } else if (kind === 'added' && isRecord(value)) {
      Object.assign(result, value);
    } else if (kind === 'updated' && isRecord(value)) {
      for (const [key, next] of Object.entries(value)) {
        const old = result[key];
        result[key] = isRecord(old) && isRecord(next) ? { ...old, ...next } : next;
      }
    } else if (kind === 'removed' && Array.isArray(value)) {
      for (const key of value) {
        delete result[String(key)];
      }
    } else if (kind === 'commands' && Array.isArray(value)) {
      for (const command of value) {
        if (!isRecord(command)) {
          continue;
        }
        const path = typeof command.path === 'string' ? command.path : '';
        const parts = path ? path.split('.') : [];
        if (command.type === 'set') {
          if (parts.length === 0) {
            result = isRecord(command.value) ? { ...command.value } : {};
          } else {
            setAtPath(result, parts, command.value);
          }
        } else if (command.type === 'remove') {
          if (parts.length === 0) {
            result = {};
          } else {
            removeAtPath(result, parts);
          }
        }
      }
    }
  }
  return result;
}

interface PendingRequest {
  resolve: (reply: GW3Message) => void;
  reject: (error: Error) => void;
  timer: number;
}

interface ChannelRecord {
  contextId: string;
  name: string;
  content: Record<string, unknown>;
  version: number | null;
}

interface PeerRecord {
  peerId: string;
  identity: Record<string, unknown>;
  channel: string | null;
  channels: string[];
  followsChannels: boolean;
  /** Seen through agm `peer-added` (its removal is pushed too). */
  inAgm: boolean;
}

const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;
const DEFAULT_TIMEOUT_MS = 10_000;

/** One per JupyterLab page: the GW3 peer of the shell and its model of the hub. */
export class HubClient {
  constructor(options: { baseUrl: string; token?: string }) {
    this._baseUrl = options.baseUrl.endsWith('/') ? options.baseUrl : options.baseUrl + '/';
    this._token = options.token ?? '';
    this._connect();
  }

  get state(): HubState {
    return this._state;
  }

  get peerId(): string | null {
    return this._peerId;
  }

  get stateChanged(): ISignal<HubClient, HubState> {
    return this._stateChanged;
  }

  /** Peers, channels or membership changed. */
  get modelChanged(): ISignal<HubClient, void> {
    return this._modelChanged;
  }

  /** Every decoded GW3 message received after `welcome`. */
  get messageReceived(): ISignal<HubClient, GW3Message> {
    return this._messageReceived;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  peers(): PeerInfo[] {
    return [...this._peers.values()].map(p => this._peerInfo(p));
  }

  channels(): ChannelInfo[] {
    const members = new Map<string, string[]>();
    for (const peer of this._peers.values()) {
      for (const channel of peer.channels) {
        const list = members.get(channel) ?? [];
        list.push(peer.peerId);
        members.set(channel, list);
      }
    }
    return [...this._channels.values()].map(c => {
      const meta = isRecord(c.content.meta) ? c.content.meta : {};
      const data = isRecord(c.content.data) ? c.content.data : {};
      return {
        name: c.name,
        color: safeColor(meta.color),
        data,
        version: c.version,
        members: members.get(c.name) ?? []
      };
    });
  }

  /**
   * The notebook peer of a kernel: one that follows channel requests if there is one, never a
   * shell.
   */
  peerForKernel(kernelId: string): PeerInfo | null {
    let found: PeerRecord | null = null;
    for (const peer of this._peers.values()) {
      if (peer.identity.kernelId !== kernelId || this._isShell(peer)) {
        continue;
      }
      if (found === null || (peer.followsChannels && !found.followsChannels)) {
        found = peer;
      }
    }
    return found ? this._peerInfo(found) : null;
  }

  /** Send a message as this peer; throws when the hub is not connected. */
  send(message: GW3Message): void {
    const socket = this._socket;
    if (this._state !== 'connected' || socket === null || this._peerId === null) {
      throw new Error('Not connected to the interop hub');
    }
    socket.send(JSON.stringify({ ...message, peer_id: this._peerId }));
  }

  /**
   * Send a request and wait for the reply carrying its request id; rejects with a HubError on
   * `error`, and on timeout or disconnection.
   */
  request(message: GW3Message, timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<GW3Message> {
    const requestId = this.nextId('r');
    return new Promise<GW3Message>((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this._pending.delete(requestId);
        reject(new Error(`No reply from the interop hub to ${message.type} in ${timeoutMs} ms`));
      }, timeoutMs);
      this._pending.set(requestId, { resolve, reject, timer });
      try {
        this.send({ ...message, request_id: requestId });
      } catch (error) {
        window.clearTimeout(timer);
        this._pending.delete(requestId);
        reject(error);
      }
    });
  }

  /** A fresh id, unique on this page (for request, subscription and invocation ids). */
  nextId(prefix = 'id'): string {
    this._counter += 1;
    return `${prefix}${this._counter}-${this._instance}`;
  }

  /** One of the hub's JSON views (`{base_url}interop/api/<name>`). */
  async view(name: ViewName): Promise<any> {
    const headers: Record<string, string> = {};
    if (this._token) {
      headers['Authorization'] = `token ${this._token}`;
    }
    const response = await fetch(`${this._baseUrl}interop/api/${name}`, {
      credentials: 'same-origin',
      headers,
      cache: 'no-store'
    });
    if (!response.ok) {
      throw new Error(`Interop view ${name}: HTTP ${response.status}`);
    }
    return response.json();
  }

  /** Ask a peer that follows channel requests to move to a channel (null: leave). */
  async move(peerId: string, channel: string | null): Promise<void> {
    await this.request({ domain: 'global', type: 'move-to-channel', target: peerId, channel });
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    window.clearTimeout(this._reconnectTimer);
    window.clearTimeout(this._syncTimer);
    const socket = this._socket;
    this._socket = null;
    socket?.close();
    this._failPending('The interop connection was disposed');
    Signal.clearData(this);
  }

  // ------------------------------------------------------------------ connection

  private _gatewayUrl(): string {
    const url = new URL(`${this._baseUrl}interop/gateway`, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (this._token) {
      url.searchParams.set('token', this._token);
    }
    return url.toString();
  }

  private _connect(): void {
    if (this._disposed) {
      return;
    }
    this._setState('connecting');
    let socket: WebSocket;
    try {
      socket = new WebSocket(this._gatewayUrl());
    } catch (error) {
      console.warn('Interop: cannot open the gateway socket', error);
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.addEventListener('open', () => {
      socket.send(
        JSON.stringify({
          domain: 'global',
          type: 'hello',
          request_id: 'hello',
          identity: { application: SHELL_APPLICATION },
          extensions: { jupyter_interop: { channels: true } }
        })
      );
    });
    socket.addEventListener('message', event => {
      if (this._socket !== socket || typeof event.data !== 'string') {
        return;
      }
      let message: unknown;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn('Interop: undecodable frame from the hub');
        return;
      }
      if (isRecord(message)) {
        this._handle(message);
      }
    });
    socket.addEventListener('close', () => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      this._peerId = null;
      this._failPending('The interop hub connection closed');
      this._peers.clear();
      this._channels.clear();
      this._setState('disconnected');
      this._modelChanged.emit(undefined);
      this._scheduleReconnect();
    });
  }

  private _scheduleReconnect(): void {
    if (this._disposed) {
      return;
    }
    const delay = this._backoff;
    this._backoff = Math.min(this._backoff * 2, MAX_BACKOFF_MS);
    this._reconnectTimer = window.setTimeout(() => this._connect(), delay);
  }

  private _setState(state: HubState): void {
    if (this._state !== state) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _failPending(reason: string): void {
    for (const [id, pending] of this._pending) {
      window.clearTimeout(pending.timer);
      pending.reject(new Error(reason));
      this._pending.delete(id);
    }
  }

  // -------------------------------------------------------------------- messages

  private _handle(message: GW3Message): void {
    if (this._peerId === null) {
      if (message.type === 'welcome' && typeof message.peer_id === 'string') {
        this._welcome(message.peer_id);
      } else if (message.type === 'error') {
        console.warn('Interop: the hub refused the shell:', message.reason);
      }
      return;
    }
    const requestId = message.request_id;
    if (typeof requestId === 'string' && this._pending.has(requestId)) {
      const pending = this._pending.get(requestId)!;
      this._pending.delete(requestId);
      window.clearTimeout(pending.timer);
      if (message.type === 'error') {
        pending.reject(new HubError(String(message.reason_uri ?? ''), String(message.reason ?? '')));
      } else {
        pending.resolve(message);
      }
    }
    this._updateModel(message);
    this._messageReceived.emit(message);
  }

  private _welcome(peerId: string): void {
    this._peerId = peerId;
    this._backoff = INITIAL_BACKOFF_MS;
    this._setState('connected');
    // agm: peers with their identities (peer-added/peer-removed) and their methods
    this.request({ domain: 'global', type: 'join', destination: 'agm' }).catch(error =>
      console.warn('Interop: joining agm failed', error)
    );
    this._scheduleSync();
  }

  private _updateModel(message: GW3Message): void {
    switch (message.type) {
      case 'peer-added':
        if (typeof message.new_peer_id === 'string') {
          this._peerAdded(message.new_peer_id, isRecord(message.identity) ? message.identity : {});
        }
        break;
      case 'peer-removed':
        if (this._peers.delete(String(message.removed_id))) {
          this._modelChanged.emit(undefined);
        }
        break;
      case 'channel-membership':
        this._membership(message);
        break;
      case 'context-added':
        this._contextAdded(message);
        break;
      case 'subscribed-context':
        this._contextSnapshot(message);
        break;
      case 'context-updated':
        this._contextUpdated(message);
        break;
      case 'context-destroyed':
        this._contextDestroyed(message);
        break;
    }
  }

  private _peerAdded(peerId: string, identity: Record<string, unknown>): void {
    const known = this._peers.get(peerId);
    if (known) {
      known.identity = identity;
      known.inAgm = true;
    } else {
      this._peers.set(peerId, {
        peerId,
        identity,
        channel: null,
        channels: [],
        followsChannels: false,
        inAgm: true
      });
    }
    this._modelChanged.emit(undefined);
    this._scheduleSync();
  }

  private _membership(message: GW3Message): void {
    const memberId = message.member_id;
    if (typeof memberId !== 'string') {
      return;
    }
    const channel = typeof message.channel === 'string' ? message.channel : null;
    const channels = channelList(message.channels, channel);
    let peer = this._peers.get(memberId);
    if (!peer) {
      if (channel === null) {
        return;
      }
      // a peer outside agm: its identity comes with the next sync
      peer = {
        peerId: memberId,
        identity: { application: String(message.application ?? memberId) },
        channel,
        channels,
        followsChannels: true,
        inAgm: false
      };
      this._peers.set(memberId, peer);
      this._scheduleSync();
    }
    peer.channel = channel;
    peer.channels = channels;
    // only peers that follow channels report their channel
    peer.followsChannels = true;
    if (channel === null && !peer.inAgm) {
      this._peers.delete(memberId);
    }
    this._modelChanged.emit(undefined);
  }

  private _contextAdded(message: GW3Message): void {
    const name = message.name;
    const contextId = message.context_id;
    if (typeof name !== 'string' || typeof contextId !== 'string') {
      return;
    }
    if (!name.startsWith(CHANNEL_PREFIX)) {
      return;
    }
    const channel = name.slice(CHANNEL_PREFIX.length);
    this._channels.set(contextId, { contextId, name: channel, content: {}, version: null });
    this.request({ domain: 'global', type: 'subscribe-context', context_id: contextId }).catch(
      error => console.warn(`Interop: cannot follow channel ${channel}`, error)
    );
    this._modelChanged.emit(undefined);
  }

  private _contextSnapshot(message: GW3Message): void {
    const record = this._channels.get(String(message.context_id));
    if (record) {
      record.content = isRecord(message.data) ? { ...message.data } : {};
      record.version = typeof message.version === 'number' ? message.version : null;
      this._modelChanged.emit(undefined);
    }
  }

  private _contextUpdated(message: GW3Message): void {
    const record = this._channels.get(String(message.context_id));
    if (record && isRecord(message.delta)) {
      record.content = applyDelta(record.content, message.delta);
      record.version = typeof message.version === 'number' ? message.version : null;
      this._modelChanged.emit(undefined);
    }
  }

  private _contextDestroyed(message: GW3Message): void {
    if (this._channels.delete(String(message.context_id))) {
      this._modelChanged.emit(undefined);
    }
  }

  /**
   * Read the peers view soon: which peers follow channel requests (not carried by peer-added)
   * and peers outside agm. Runs after a push that needs it, never on a timer of its own.
   */
  private _scheduleSync(): void {
    window.clearTimeout(this._syncTimer);
    this._syncTimer = window.setTimeout(() => void this._sync(), 50);
  }

  private async _sync(): Promise<void> {
    if (this._state !== 'connected') {
      return;
    }
    let rows: unknown;
    try {
      rows = await this.view('peers');
    } catch (error) {
      console.warn('Interop: cannot read the peers view', error);
      return;
    }
    if (!Array.isArray(rows) || this._state !== 'connected') {
      return;
    }
    const seen = new Set<string>();
    for (const row of rows) {
      if (!isRecord(row) || typeof row.peer_id !== 'string') {
        continue;
      }
      seen.add(row.peer_id);
      const follows = Array.isArray(row.extensions) && row.extensions.includes('channels');
      const known = this._peers.get(row.peer_id);
      if (known) {
        known.followsChannels = follows;
        if (!known.inAgm && isRecord(row.identity)) {
          known.identity = row.identity;
        }
      } else if (row.peer_id !== this._peerId && typeof row.channel === 'string') {
        // on a channel but outside agm: only its membership changes are pushed to us
        this._peers.set(row.peer_id, {
          peerId: row.peer_id,
          identity: isRecord(row.identity) ? row.identity : {},
          channel: row.channel,
          channels: channelList(row.channels, row.channel),
          followsChannels: follows,
          inAgm: false
        });
      }
    }
    for (const [peerId, peer] of this._peers) {
      if (!peer.inAgm && !seen.has(peerId)) {
        this._peers.delete(peerId);
      }
    }
    this._modelChanged.emit(undefined);
  }

  private _isShell(peer: PeerRecord): boolean {
    return (
      peer.peerId === this._peerId ||
      (peer.identity.application === SHELL_APPLICATION && !peer.identity.kernelId)
    );
  }

  private _peerInfo(peer: PeerRecord): PeerInfo {
    const identity = peer.identity;
    return {
      peerId: peer.peerId,
      application: typeof identity.application === 'string' ? identity.application : peer.peerId,
      identity,
      kernelId: typeof identity.kernelId === 'string' ? identity.kernelId : null,
      notebookPath: typeof identity.notebookPath === 'string' ? identity.notebookPath : null,
      channel: peer.channel,
      channels: [...peer.channels],
      isShell: this._isShell(peer),
      followsChannels: peer.followsChannels
    };
  }

  private readonly _baseUrl: string;
  private readonly _token: string;
  private readonly _instance = Math.random().toString(36).slice(2, 8);
  private _state: HubState = 'disconnected';
  private _peerId: string | null = null;
  private _socket: WebSocket | null = null;
  private _disposed = false;
  private _counter = 0;
  private _backoff = INITIAL_BACKOFF_MS;
  private _reconnectTimer = 0;
  private _syncTimer = 0;
  private readonly _pending = new Map<string, PendingRequest>();
  private readonly _peers = new Map<string, PeerRecord>();
  /** context id -> channel */
  private readonly _channels = new Map<string, ChannelRecord>();
  private readonly _stateChanged = new Signal<HubClient, HubState>(this);
  private readonly _modelChanged = new Signal<HubClient, void>(this);
  private readonly _messageReceived = new Signal<HubClient, GW3Message>(this);
}

/** The page's hub connection, provided by the core plugin. */
export const IHubClient = new Token<HubClient>(
  'jupyter_interop:IHubClient',
  'The JupyterLab page connection to the interop hub'
);

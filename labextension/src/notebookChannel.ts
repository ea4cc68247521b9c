/**
 * A notebook's channel: which hub peer is the notebook, what channel it is on, and how to
 * change it (docs/LAB.md, "The channel chip").
 *
 * The notebook's peer is the hub peer whose kernelId is the panel's kernel. Picking a channel
 * moves that peer through the hub when it follows channel requests; a kernel that never used
 * interop has no such peer, so the kernel runs one silent statement that joins instead. After
 * a kernel restart the same statement puts the notebook back on the channel it was on.
 */
import { Notification } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { HubClient, PeerInfo } from './hub';

/** What the chip shows: `ok` (on a channel or none), `pending` (a change under way), `error`
 * (the last change failed), `unavailable` (no kernel, not Python, or no hub). */
export type ChipState = 'ok' | 'pending' | 'error' | 'unavailable';

/** How long a move may take to show in the pushed membership before it counts as failed. */
const MOVE_TIMEOUT_MS = 15_000;

/** The Python statement that joins (or leaves) a channel inside the kernel. */
export function joinStatement(channel: string | null): string {
  // JSON.stringify of a string is a valid Python string literal
  const literal = channel === null ? 'None' : JSON.stringify(channel);
  return (
    'import jupyter_interop.notebook.shell as _ji_shell; ' +
    `_ji_shell.join_channel(${literal})`
  );
}

/** Run code silently in a kernel; resolves when it finished, rejects with `ename: evalue`. */
async function executeSilently(kernel: Kernel.IKernelConnection, code: string): Promise<void> {
  const future = kernel.requestExecute({
    code,
    silent: true,
    store_history: false,
    stop_on_error: false,
    allow_stdin: false
  });
  const reply = (await future.done) as KernelMessage.IExecuteReplyMsg;
  const content = reply.content;
  if (content.status === 'error') {
    throw new Error(`${content.ename}: ${content.evalue}`);
  }
  if (content.status !== 'ok') {
    throw new Error(`the kernel answered ${content.status}`);
  }
}

export class NotebookChannel implements IDisposable {
  constructor(
    readonly panel: NotebookPanel,
    readonly hub: HubClient
  ) {
    const session = panel.sessionContext;
    session.kernelChanged.connect(this._onKernelChanged, this);
    session.statusChanged.connect(this._onStatusChanged, this);
    hub.modelChanged.connect(this._onModelChanged, this);
    hub.stateChanged.connect(this._emit, this);
    this._onKernelChanged();
  }

  /** Changes of anything below. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The kernel of the panel, if any. */
  get kernelId(): string | null {
    return this.panel.sessionContext.session?.kernel?.id ?? null;
  }

  /** The hub peer that is this notebook (null: the kernel never connected). */
  get peer(): PeerInfo | null {
    const kernelId = this.kernelId;
    return kernelId ? this.hub.peerForKernel(kernelId) : null;
  }

  /** The channel the notebook is on now, as the hub says (the last joined in multi mode). */
  get channel(): string | null {
    return this.peer?.channel ?? null;
  }

  /** Every channel the notebook is on, in the order joined (several in multi mode). */
  get channels(): string[] {
    return this.peer?.channels ?? [];
  }

  get state(): ChipState {
    if (this._pending !== null) {
      return 'pending';
    }
    if (this.unavailableReason) {
      return 'unavailable';
    }
    return this._error ? 'error' : 'ok';
  }

  /** Why the notebook cannot pick a channel ('' when it can). */
  get unavailableReason(): string {
    if (!this.kernelId) {
      return 'no kernel';
    }
    if (this._language !== null && this._language !== 'python') {
      return `${this._language} kernel: channels need a Python kernel`;
    }
    if (this.hub.state !== 'connected') {
      return `interop hub ${this.hub.state}`;
    }
    return '';
  }

  /** What is under way ('joining…', 'rejoining…'), or null. */
  get pending(): string | null {
    return this._pending;
  }

  /** The last failure, shown until the notebook's channel changes again. */
  get error(): string {
    return this._error;
  }

  /** Join a channel (null: leave). Failures are shown on the chip and in a notification. */
  async join(channel: string | null): Promise<void> {
    const reason = this.unavailableReason;
    if (reason) {
      this._fail(`Cannot change the channel: ${reason}`);
      return;
    }
    this._pending = channel === null ? 'leaving…' : 'joining…';
    this._error = '';
    this._emit();
    try {
      await this._change(channel);
      this._remembered = channel;
      this._pending = null;
      this._emit();
    } catch (error) {
      this._pending = null;
      const what = channel === null ? 'Leaving the channel' : `Joining ${channel}`;
      this._fail(`${what} failed: ${(error as Error).message}`);
    }
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.hub.modelChanged.disconnect(this._onModelChanged, this);
    this.hub.stateChanged.disconnect(this._emit, this);
    Signal.clearData(this);
  }

  // ------------------------------------------------------------------------ private

  private async _change(channel: string | null): Promise<void> {
    const peer = this.peer;
    if (peer && peer.followsChannels) {
      await this.hub.move(peer.peerId, channel);
      await this._waitForChannel(channel);
      return;
    }
    const kernel = this.panel.sessionContext.session?.kernel;
    if (!kernel) {
      throw new Error('no kernel');
    }
    await executeSilently(kernel, joinStatement(channel));
  }

  /** Resolve once the pushed membership shows the notebook on `channel`. */
  private _waitForChannel(channel: string | null): Promise<void> {
    if (this.channel === channel) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.channel === channel) {
          done();
          resolve();
        }
      };
      const timer = window.setTimeout(() => {
        done();
        reject(new Error('the notebook did not report the change'));
      }, MOVE_TIMEOUT_MS);
      const done = () => {
        window.clearTimeout(timer);
        this.hub.modelChanged.disconnect(check);
      };
      this.hub.modelChanged.connect(check);
    });
  }

  /** A short form of the last failure for the chip's label ('' : show the channel). */
  get errorLabel(): string {
    return this._errorLabel;
  }

  private _fail(message: string, label = ''): void {
    this._error = message;
    this._errorLabel = label;
    this._emit();
    Notification.error(message, { autoClose: 8000 });
  }

  private _onModelChanged(): void {
    const peer = this.peer;
    // remember the channel of a live peer; a restart in progress keeps what it was before
    if (peer && !this._restarting) {
      if (peer.channel !== this._lastSeen) {
        this._lastSeen = peer.channel;
        if (this._pending === null) {
          this._error = '';
        }
      }
      this._remembered = peer.channel;
    }
    this._emit();
  }

  private _onKernelChanged(): void {
    const kernel = this.panel.sessionContext.session?.kernel ?? null;
    this._language = null;
    if (kernel) {
      // a switch to another kernel keeps the notebook's channel, as a restart does
      if (this._remembered !== null) {
        this._restarting = true;
        this._pending = 'rejoining…';
      }
      kernel.info
        .then(info => {
          if (this.panel.sessionContext.session?.kernel === kernel) {
            this._language = (info.language_info?.name ?? '').toLowerCase() || null;
            this._emit();
          }
        })
        .catch(() => undefined);
    }
    this._emit();
  }

  private _onStatusChanged(_: unknown, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting') {
      this._restarting = true;
      if (this._remembered !== null) {
        this._pending = 'rejoining…';
      }
      this._emit();
    } else if (status === 'idle' && this._restarting) {
      this._restarting = false;
      void this._rejoin();
    } else if (status === 'dead' && this._restarting) {
      this._restarting = false;
      if (this._pending === 'rejoining…') {
        this._pending = null;
        this._fail(
          `channel ${this._remembered} not restored: the kernel died`,
          `${this._remembered} not restored`
        );
      }
    }
  }

  /** After a restart (or a new kernel): put the notebook back on its channel. */
  private async _rejoin(): Promise<void> {
    const channel = this._remembered;
    const reason = this.unavailableReason;
    if (channel === null || reason) {
      this._pending = null;
      if (channel !== null) {
        this._fail(`channel ${channel} not restored: ${reason}`, `${channel} not restored`);
      }
      this._emit();
      return;
    }
    // always run the statement: the old kernel's peer may not be reported gone yet
    this._pending = 'rejoining…';
    this._error = '';
    this._emit();
    const kernel = this.panel.sessionContext.session?.kernel;
    try {
      if (!kernel) {
        throw new Error('no kernel');
      }
      await executeSilently(kernel, joinStatement(channel));
      this._pending = null;
      this._emit();
    } catch (error) {
      this._pending = null;
      this._fail(
        `channel ${channel} not restored: ${(error as Error).message}`,
        `${channel} not restored`
      );
    }
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit(undefined);
    }
  }

  private _disposed = false;
  private _language: string | null = null;
  private _pending: string | null = null;
  private _error = '';
  private _errorLabel = '';
  private _restarting = false;
  /** The channel to restore after a restart. */
  private _remembered: string | null = null;
  private _lastSeen: string | null = null;
  private readonly _changed = new Signal<this, void>(this);
}

/** The channel controller of each open notebook (commands reach the current one here). */
export class NotebookChannels {
  constructor(readonly hub: HubClient) {}

  /** The controller of a panel, created on first use and disposed with the panel. */
  forPanel(panel: NotebookPanel): NotebookChannel {
    let controller = this._controllers.get(panel);
    if (!controller) {
      const created = new NotebookChannel(panel, this.hub);
      this._controllers.set(panel, created);
      panel.disposed.connect(() => {
        created.dispose();
        this._controllers.delete(panel);
      });
      controller = created;
    }
    return controller;
  }

  private readonly _controllers = new Map<NotebookPanel, NotebookChannel>();
}

/**
 * The apps section: the server's app directory, notebooks that declare in their metadata the
 * intents and methods they serve and can be started headless on demand, with their running
 * headless kernels. Start runs a notebook headless; Stop ends one of its kernels
 * (docs/LAB.md, "The Interop sidebar").
 *
 * REST API (jupyter_interop/server/handlers.py): `GET {base}interop/api/apps`,
 * `POST {base}interop/api/apps/start` with `{"path"}`, and
 * `DELETE {base}interop/api/apps/running/<kernel_id>`. Start and Stop go through
 * JupyterLab's ServerConnection, which sends the login token or the XSRF header as the
 * server requires for requests that change something.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { KeyedRows, clock, fill, h, jsonLine, setText } from './dom';
import { Section, SidebarData } from './section';

/** An intent a directory notebook declares. */
export interface AppIntent {
  name: string;
  contextTypes: string[];
  displayName: string | null;
}

/** One headless kernel of a directory notebook. */
export interface RunningApp {
  kernel_id: string;
  /** "starting" (cells running), "running" (every cell ran), "failed", "stopped" */
  state: string;
  started: number;
  last_activity: number;
  error?: { fdc3_error?: string; message?: string } | null;
}

/** One notebook of the app directory, as `GET interop/api/apps` lists it. */
export interface AppEntry {
  path: string;
  name: string;
  title: string;
  intents: AppIntent[];
  methods: string[];
  channel: string | null;
  /** why its declaration is refused (then it cannot be started) */
  error: string | null;
  running: RunningApp[];
}

/** What the sidebar read of the app directory: its notebooks, or why it could not. */
export type AppsView = { apps: AppEntry[] } | { error: string };

/** Read the app directory; a failure is returned (shown in the section), not thrown. */
export async function readApps(): Promise<AppsView> {
  try {
    const reply = await appsRequest('', 'GET');
    const apps = (reply as { apps?: unknown }).apps;
    return { apps: Array.isArray(apps) ? (apps as AppEntry[]) : [] };
  } catch (err) {
    return { error: (err as Error).message ?? String(err) };
  }
}

/** Call the apps API under `{base}interop/api/apps`; a non-2xx reply throws its message. */
async function appsRequest(path: string, method: string, body?: unknown): Promise<unknown> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'interop/api/apps', path);
  const init: RequestInit = { method, cache: 'no-store' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let payload: unknown = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = text;
  }
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}: ${failureText(payload)}`);
  }
  return payload;
}

/** The readable part of an error reply: `message` (Jupyter's and the apps API's), else JSON. */
function failureText(payload: unknown): string {
  if (payload && typeof payload === 'object') {
    const p = payload as { message?: unknown; reason?: unknown; fdc3_error?: unknown };
    const message = typeof p.message === 'string' ? p.message : jsonLine(payload);
    return typeof p.fdc3_error === 'string' ? `${p.fdc3_error}: ${message}` : message;
  }
  return String(payload ?? '');
}

export class AppsSection extends Section {
  /** `changed` asks the sidebar to read the hub again (after a start or a stop). */
  constructor(private readonly changed: () => void) {
    super('apps', 'Apps');
    const list = h('div', { class: 'jp-InteropSidebar-list' });
    this._rows = new KeyedRows<AppEntry>(list, app => this._render(app));
    this._empty = h(
      'div',
      { class: 'jp-InteropSidebar-empty' },
      'No notebook declares intents or methods (metadata.interop).'
    );
    this._error = h('div', { class: 'jp-InteropSidebar-error', 'data-role': 'apps-error' });
    this.body.append(this._error, list, this._empty);
  }

  update(data: SidebarData): void {
    const view = data.apps;
    setText(this._error, 'error' in view ? `cannot read the app directory: ${view.error}` : '');
    const apps = 'apps' in view ? [...view.apps] : [];
    apps.sort((a, b) => a.path.localeCompare(b.path));
    this._rows.sync(
      apps,
      app => app.path,
      app => JSON.stringify([app, this._busy.has(app.path), this._status.get(app.path)])
    );
    this._empty.hidden = apps.length > 0 || 'error' in view;
    const running = apps.reduce((n, app) => n + app.running.length, 0);
    this.setCount(running ? `${apps.length} · ${running} running` : String(apps.length));
  }

  private _render(app: AppEntry): HTMLElement {
    const start = h(
      'button',
      {
        class: 'jp-mod-styled jp-mod-accept jp-InteropSidebar-smallButton',
        'data-action': 'start-app',
        disabled: !!app.error || this._busy.has(app.path),
        title: app.error ? 'its metadata is refused' : `start ${app.path} headless`
      },
      'Start'
    );
    start.addEventListener('click', () =>
      void this._act(app.path, 'start', () => appsRequest('start', 'POST', { path: app.path }))
    );
    const status = this._status.get(app.path);
    return h(
      'div',
      { class: 'jp-InteropSidebar-row jp-InteropSidebar-app', 'data-name': app.path },
      h(
        'div',
        { class: 'jp-InteropSidebar-rowMain' },
        h('span', { class: 'jp-InteropSidebar-name', title: app.path }, app.title || app.name),
        h(
          'span',
          { class: 'jp-InteropSidebar-rowAside' },
          app.running.length ? `${app.running.length} running` : 'not running'
        ),
        start
      ),
      h(
        'div',
        { class: 'jp-InteropSidebar-rowSub' },
        h('span', { class: 'jp-InteropSidebar-path' }, app.path),
        app.channel && h('span', { class: 'jp-InteropSidebar-muted' }, `starts on ${app.channel}`)
      ),
      ...app.intents.map(intent =>
        h(
          'div',
          { class: 'jp-InteropSidebar-rowSub', 'data-intent': intent.name },
          h('span', { class: 'jp-InteropSidebar-code' }, intent.name),
          intent.displayName && h('span', {}, intent.displayName),
          h(
            'span',
            { class: 'jp-InteropSidebar-muted' },
            intent.contextTypes.length ? intent.contextTypes.join(', ') : 'any context'
          )
        )
      ),
      app.methods.length > 0 &&
        h(
          'div',
          { class: 'jp-InteropSidebar-rowSub' },
          h('span', { class: 'jp-InteropSidebar-muted' }, 'methods'),
          h('span', { class: 'jp-InteropSidebar-code' }, app.methods.join(', '))
        ),
      app.error && h('div', { class: 'jp-InteropSidebar-error' }, app.error),
      ...app.running.map(run => this._renderRunning(app.path, run)),
      h(
        'div',
        {
          class: status?.failed ? 'jp-InteropSidebar-error' : 'jp-InteropSidebar-muted',
          'data-role': 'app-status'
        },
        status?.text ?? ''
      )
    );
  }

  private _renderRunning(path: string, run: RunningApp): HTMLElement {
    const stop = h(
      'button',
      {
        class: 'jp-mod-styled jp-mod-reject jp-InteropSidebar-smallButton',
        'data-action': 'stop-app',
        'data-kernel': run.kernel_id,
        disabled: this._busy.has(path),
        title: `stop kernel ${run.kernel_id}`
      },
      'Stop'
    );
    stop.addEventListener('click', () =>
      void this._act(path, 'stop', () =>
        appsRequest(`running/${encodeURIComponent(run.kernel_id)}`, 'DELETE')
      )
    );
    const failure = run.error ? failureText(run.error) : '';
    return h(
      'div',
      {
        class: 'jp-InteropSidebar-appKernel',
        'data-kernel': run.kernel_id,
        'data-state': run.state
      },
      h(
        'div',
        { class: 'jp-InteropSidebar-rowSub' },
        h('span', { class: 'jp-InteropSidebar-appState' }, run.state),
        h('span', { title: run.kernel_id }, `kernel ${run.kernel_id.slice(0, 8)}`),
        h(
          'span',
          { class: 'jp-InteropSidebar-muted' },
          `started ${clock(run.started * 1000)} · active ${clock(run.last_activity * 1000)}`
        ),
        stop
      ),
      failure && h('div', { class: 'jp-InteropSidebar-error' }, failure)
    );
  }

  /** Run a start or a stop for `path`, its buttons disabled meanwhile; show how it went. */
  private async _act(
    path: string,
    action: 'start' | 'stop',
    request: () => Promise<unknown>
  ): Promise<void> {
    if (this._busy.has(path)) {
      return;
    }
    this._busy.add(path);
    this._show(path, { text: action === 'start' ? 'starting…' : 'stopping…', failed: false });
    try {
      const reply = (await request()) as Partial<RunningApp> | null;
      const kernel = (reply?.kernel_id ?? '').slice(0, 8);
      const text = action === 'start' ? `started kernel ${kernel}` : `stopped kernel ${kernel}`;
      this._show(path, { text, failed: false });
    } catch (err) {
      this._show(path, { text: `${action} failed: ${(err as Error).message}`, failed: true });
    } finally {
      this._busy.delete(path);
      this.changed();
    }
  }

  private _show(path: string, status: { text: string; failed: boolean }): void {
    this._status.set(path, status);
    const row = this._rows.row(path);
    const line = row?.querySelector('[data-role=app-status]');
    if (line) {
      fill(line, status.text);
      line.className = status.failed ? 'jp-InteropSidebar-error' : 'jp-InteropSidebar-muted';
    }
    row?.querySelectorAll('button').forEach(b => {
      (b as HTMLButtonElement).disabled = this._busy.has(path);
    });
  }

  private readonly _rows: KeyedRows<AppEntry>;
  private readonly _empty: HTMLElement;
  private readonly _error: HTMLElement;
  /** paths with a start or stop in flight */
  private readonly _busy = new Set<string>();
  /** the last start or stop outcome per path */
  private readonly _status = new Map<string, { text: string; failed: boolean }>();
}

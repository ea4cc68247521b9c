/**
 * The contexts section: every shared context (channel contexts are left to the channels
 * section) with its version and last updater, a filter, and one selected context followed
 * live: a JSON tree, who updated it and when, and an editor that validates the JSON and
 * writes it as a whole replacement or as a top-level update.
 *
 * The list costs no subscription per context: it is the hub's `contexts` view, kept in keyed
 * rows so a refresh of hundreds of contexts changes only the rows that changed. Only the
 * selected context is subscribed; each `context-updated` for it fetches a fresh snapshot
 * (coalesced: one request in flight at most), so the delta rules live in the hub alone.
 */

import { GW3Message } from '../hub';
import { KeyedRows, clock, fill, h, jsonBlock, selectable, setText } from './dom';
import { jsonTree } from './jsontree';
import {
  CHANNEL_CONTEXT_PREFIX,
  ContextSnapshot,
  ContextSummary,
  HubOps,
  parseJsonObject
} from './ops';
import { peerName, Section, SidebarData } from './section';

type WriteMode = 'replace' | 'update';

export class ContextsSection extends Section {
  constructor(
    private readonly ops: HubOps,
    private readonly onChange: () => void
  ) {
    super('contexts', 'Contexts');
    this._filter = h('input', {
      class: 'jp-InteropSidebar-filter',
      type: 'search',
      placeholder: 'Filter contexts',
      'data-role': 'filter',
      'aria-label': 'filter contexts by name'
    });
    this._filter.addEventListener('input', () => this._applyFilter());
    this._list = h('div', { class: 'jp-InteropSidebar-list', 'data-role': 'context-list' });
    this._rows = new KeyedRows<ContextSummary>(this._list, c => this._renderRow(c));
    this._empty = h('div', { class: 'jp-InteropSidebar-empty' }, 'No contexts.');
    this._detail = h('div', { class: 'jp-InteropSidebar-detail', hidden: true });
    this.body.append(this._filter, this._list, this._empty, this._detail);
  }

  update(data: SidebarData): void {
    this._data = data;
    const started = performance.now();
    const contexts = data.contexts
      .filter(c => !c.name.startsWith(CHANNEL_CONTEXT_PREFIX))
      .sort((a, b) => a.name.localeCompare(b.name));
    this._byName = new Map(contexts.map(c => [c.name, c]));
    this._rows.sync(
      contexts,
      c => c.name,
      c =>
        JSON.stringify([
          c.context_id,
          c.version,
          peerName(data, c.updater_id),
          c.name === this._selectedName
        ])
    );
    this._applyFilter();
    this._list.setAttribute('data-count', String(contexts.length));
    this._list.setAttribute('data-render-ms', (performance.now() - started).toFixed(1));
    this._empty.hidden = contexts.length > 0;
    if (this._snapshot && this._detailMeta) {
      this._showMeta(this._snapshot); // a peer's name may have arrived since
    }
  }

  onMessage(message: GW3Message): void {
    const selected = this._snapshot;
    if (!selected || message.context_id !== selected.contextId) {
      return;
    }
    if (message.type === 'context-updated') {
      void this._refreshSnapshot();
    } else if (message.type === 'context-destroyed') {
      this._selectedId = null;
      this._selectedName = null;
      this._snapshot = null;
      fill(
        this._detail,
        h('div', { class: 'jp-InteropSidebar-error' }, `${selected.name} was destroyed.`)
      );
    }
  }

  dispose(): void {
    void this._unfollow();
    super.dispose();
  }

  private _applyFilter(): void {
    const needle = this._filter.value.trim().toLowerCase();
    let shown = 0;
    for (const [name] of this._byName) {
      const row = this._rows.row(name);
      if (!row) {
        continue;
      }
      const visible = !needle || name.toLowerCase().includes(needle);
      row.hidden = !visible;
      shown += visible ? 1 : 0;
    }
    this._list.setAttribute('data-shown', String(shown));
    const total = this._byName.size;
    this.setCount(shown === total ? String(total) : `${shown} of ${total}`);
  }

  private _renderRow(c: ContextSummary): HTMLElement {
    const updater = peerName(this._data!, c.updater_id);
    const row = h(
      'div',
      {
        class: 'jp-InteropSidebar-row jp-mod-selectable',
        'data-name': c.name,
        'data-version': c.version,
        role: 'button',
        tabindex: 0,
        title: `${c.name} · ${c.lifetime}`
      },
      h(
        'div',
        { class: 'jp-InteropSidebar-rowMain' },
        h('span', { class: 'jp-InteropSidebar-name jp-InteropSidebar-code' }, c.name),
        h('span', { class: 'jp-InteropSidebar-rowAside' }, `v${c.version}`)
      ),
      updater &&
        h('div', { class: 'jp-InteropSidebar-rowSub jp-InteropSidebar-muted' }, `by ${updater}`)
    );
    return selectable(row, c.name === this._selectedName, () => void this._select(c.name));
  }

  private async _select(name: string): Promise<void> {
    const summary = this._byName.get(name);
    if (!summary || name === this._selectedName) {
      return;
    }
    const previous = this._selectedName;
    this._selectedName = name;
    for (const key of [previous, name]) {
      if (key !== null) {
        this._rows.row(key)?.classList.toggle('jp-mod-selected', key === name);
      }
    }
    await this._unfollow();
    this._selectedId = summary.context_id;
    this._snapshot = null;
    this._editing = false;
    fill(this._detail, h('div', { class: 'jp-InteropSidebar-muted' }, `subscribing to ${name}…`));
    this._detail.hidden = false;
    try {
      const snapshot = await this.ops.subscribeContext(summary.context_id);
      if (this._selectedId !== summary.context_id) {
        return; // another context was selected meanwhile (it unsubscribed this one)
      }
      this._snapshot = snapshot;
      this._buildDetail(snapshot);
    } catch (err) {
      const e = err as { reason?: string; message?: string };
      fill(
        this._detail,
        h('div', { class: 'jp-InteropSidebar-error' }, `cannot follow ${name}: ${e.reason ?? e.message}`)
      );
    }
  }

  private async _unfollow(): Promise<void> {
    const id = this._selectedId;
    this._selectedId = null;
    this._snapshot = null;
    if (id !== null) {
      await this.ops.unsubscribeContext(id).catch(() => undefined);
    }
  }

  /** Fetch the selected context again; at most one request in flight, one more queued. */
  private async _refreshSnapshot(): Promise<void> {
    if (this._fetching) {
      this._fetchAgain = true;
      return;
    }
    this._fetching = true;
    try {
      do {
        this._fetchAgain = false;
        const id = this._selectedId;
        if (id === null) {
          return;
        }
        const snapshot = await this.ops.subscribeContext(id);
        if (this._selectedId === id) {
          this._snapshot = snapshot;
          this._showSnapshot(snapshot);
        }
      } while (this._fetchAgain);
    } catch {
      /* the context went away: context-destroyed says so */
    } finally {
      this._fetching = false;
    }
    this.onChange();
  }

  private _buildDetail(snapshot: ContextSnapshot): void {
    this._detailMeta = h('div', { class: 'jp-InteropSidebar-muted', 'data-role': 'context-meta' });
    this._tree = h('div', { class: 'jp-InteropSidebar-treeBox', 'data-role': 'context-tree' });
    this._editorBox = h('div', { class: 'jp-InteropSidebar-editor', hidden: true });
    const edit = h('button', { class: 'jp-mod-styled', 'data-action': 'edit-context' }, 'Edit');
    edit.addEventListener('click', () => this._openEditor());
    fill(
      this._detail,
      h(
        'div',
        { class: 'jp-InteropSidebar-formRow' },
        h('span', { class: 'jp-InteropSidebar-detailTitle jp-InteropSidebar-code' }, snapshot.name),
        edit
      ),
      this._detailMeta,
      this._tree,
      this._editorBox
    );
    this._showSnapshot(snapshot);
  }

  private _showMeta(snapshot: ContextSnapshot): void {
    const who = this._data ? peerName(this._data, snapshot.updaterId) : snapshot.updaterId;
    const when = snapshot.updatedAt ? clock(snapshot.updatedAt * 1000) : '';
    const text =
      `version ${snapshot.version ?? '?'}` +
      (who ? ` · updated by ${who}` : '') +
      (when ? ` at ${when}` : '');
    setText(this._detailMeta!, text);
    this._detailMeta!.setAttribute('data-version', String(snapshot.version ?? ''));
  }

  private _showSnapshot(snapshot: ContextSnapshot): void {
    if (!this._tree) {
      return;
    }
    this._showMeta(snapshot);
    fill(this._tree, jsonTree(snapshot.data));
    if (this._editing && this._editorNote) {
      setText(
        this._editorNote,
        snapshot.version !== this._editBase
          ? `The context changed to version ${snapshot.version} since you began editing.`
          : ''
      );
    }
  }

  private _openEditor(): void {
    const snapshot = this._snapshot;
    if (!snapshot || !this._editorBox) {
      return;
    }
    this._editing = true;
    this._editBase = snapshot.version;
    const editor = h('textarea', {
      class: 'jp-InteropSidebar-textarea',
      'data-role': 'context-editor',
      rows: 10,
      spellcheck: 'false',
      'aria-label': `new data of ${snapshot.name} (a JSON object)`
    });
    editor.value = jsonBlock(snapshot.data);
    const mode = h(
      'select',
      { class: 'jp-InteropSidebar-select', 'data-role': 'update-mode', 'aria-label': 'how to write' },
      h('option', { value: 'replace' }, 'replace the whole context'),
      h('option', { value: 'update' }, 'update top-level keys (null removes)')
    );
    const error = h('div', { class: 'jp-InteropSidebar-error', 'data-role': 'context-error' });
    this._editorNote = h('div', { class: 'jp-InteropSidebar-muted' });
    const save = h(
      'button',
      { class: 'jp-mod-styled jp-mod-accept', 'data-action': 'save-context' },
      'Save'
    );
    const cancel = h('button', { class: 'jp-mod-styled', 'data-action': 'cancel-edit' }, 'Cancel');
    save.addEventListener('click', () =>
      void this._save(snapshot.contextId, editor, mode.value as WriteMode, error, save)
    );
    cancel.addEventListener('click', () => this._closeEditor());
    fill(
      this._editorBox,
      editor,
      h('div', { class: 'jp-InteropSidebar-formRow' }, mode, save, cancel),
      error,
      this._editorNote
    );
    this._editorBox.hidden = false;
    editor.focus();
  }

  private _closeEditor(): void {
    this._editing = false;
    this._editorNote = null;
    if (this._editorBox) {
      this._editorBox.hidden = true;
      this._editorBox.replaceChildren();
    }
  }

  private async _save(
    contextId: string,
    editor: HTMLTextAreaElement,
    mode: WriteMode,
    error: HTMLElement,
    button: HTMLButtonElement
  ): Promise<void> {
    setText(error, '');
    const parsed = parseJsonObject(editor.value, 'The context data');
    if ('error' in parsed) {
      setText(error, parsed.error);
      editor.setAttribute('aria-invalid', 'true');
      return;
    }
    editor.removeAttribute('aria-invalid');
    button.disabled = true;
    try {
      await this.ops.writeContext(contextId, parsed.value, mode);
    } catch (err) {
      const e = err as { reason?: string; message?: string };
      setText(error, `The hub refused the update: ${e.reason ?? e.message ?? String(err)}`);
      return;
    } finally {
      button.disabled = false;
    }
    if (this._selectedId === contextId) {
      this._closeEditor();
      await this._refreshSnapshot();
    }
  }

  private _data: SidebarData | null = null;
  private _byName = new Map<string, ContextSummary>();
  private _selectedName: string | null = null;
  private _selectedId: string | null = null;
  private _snapshot: ContextSnapshot | null = null;
  private _fetching = false;
  private _fetchAgain = false;
  private _editing = false;
  private _editBase: number | null = null;
  private _detailMeta: HTMLElement | null = null;
  private _tree: HTMLElement | null = null;
  private _editorBox: HTMLElement | null = null;
  private _editorNote: HTMLElement | null = null;
  private readonly _filter: HTMLInputElement;
  private readonly _list: HTMLElement;
  private readonly _rows: KeyedRows<ContextSummary>;
  private readonly _empty: HTMLElement;
  private readonly _detail: HTMLElement;
}

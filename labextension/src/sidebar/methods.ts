/**
 * The methods section: every method name with the servers offering it, and an invoke form
 * (JSON arguments checked to be an object before anything is sent, a target, the result or
 * error of each server, and the time the whole invocation took).
 */

import { KeyedRows, fill, h, jsonBlock, selectable, setText } from './dom';
import { HubOps, InvokeOutcome, MethodOffer, parseJsonObject } from './ops';
import { peerName, Section, SidebarData } from './section';

interface MethodGroup {
  name: string;
  offers: MethodOffer[];
}

const BEST = 'best';
const ALL = 'all';

export class MethodsSection extends Section {
  constructor(private readonly ops: HubOps) {
    super('methods', 'Methods');
    const list = h('div', { class: 'jp-InteropSidebar-list' });
    this._rows = new KeyedRows<MethodGroup>(list, group => this._renderRow(group));
    this._empty = h('div', { class: 'jp-InteropSidebar-empty' }, 'No methods offered.');
    this._detail = h('div', { class: 'jp-InteropSidebar-detail', hidden: true });
    this.body.append(list, this._empty, this._detail);
  }

  update(data: SidebarData): void {
    this._data = data;
    const groups = new Map<string, MethodGroup>();
    for (const offer of data.methods) {
      const group = groups.get(offer.name) ?? { name: offer.name, offers: [] };
      group.offers.push(offer);
      groups.set(offer.name, group);
    }
    const sorted = Array.from(groups.values()).sort((a, b) => a.name.localeCompare(b.name));
    this._groups = groups;
    this._rows.sync(
      sorted,
      g => g.name,
      g =>
        JSON.stringify([
          g.name === this._selected,
          g.offers.map(o => [o.server_id, o.id, o.description, peerName(data, o.server_id)])
        ])
    );
    this._empty.hidden = sorted.length > 0;
    this.setCount(String(sorted.length));
    if (this._selected !== null) {
      this._updateTargets();
    }
  }

  private _renderRow(group: MethodGroup): HTMLElement {
    const servers = group.offers.length;
    const description = group.offers.find(o => o.description)?.description ?? '';
    const row = h(
      'div',
      {
        class: 'jp-InteropSidebar-row jp-mod-selectable',
        'data-name': group.name,
        role: 'button',
        tabindex: 0,
        title: description || group.name
      },
      h(
        'div',
        { class: 'jp-InteropSidebar-rowMain' },
        h('span', { class: 'jp-InteropSidebar-name jp-InteropSidebar-code' }, group.name),
        h(
          'span',
          { class: 'jp-InteropSidebar-rowAside' },
          servers === 1 ? peerName(this._data!, group.offers[0].server_id) : `${servers} servers`
        )
      )
    );
    return selectable(row, group.name === this._selected, () => this._select(group.name));
  }

  private _select(name: string): void {
    const previous = this._selected;
    this._selected = name;
    for (const key of [previous, name]) {
      if (key !== null) {
        this._rows.row(key)?.classList.toggle('jp-mod-selected', key === name);
      }
    }
    if (previous !== name) {
      this._buildForm(name);
    }
  }

  private _buildForm(name: string): void {
    const group = this._groups.get(name);
    const accepts = group?.offers.find(o => o.accepts)?.accepts;
    this._args = h('textarea', {
      class: 'jp-InteropSidebar-textarea',
      'data-role': 'invoke-args',
      rows: 4,
      spellcheck: 'false',
      'aria-label': `arguments of ${name} (a JSON object)`
    });
    this._args.value = '{}';
    this._target = h('select', {
      class: 'jp-InteropSidebar-select',
      'data-role': 'invoke-target',
      'aria-label': 'target'
    });
    this._error = h('div', { class: 'jp-InteropSidebar-error', 'data-role': 'invoke-error' });
    this._result = h('div', { class: 'jp-InteropSidebar-result', hidden: true });
    const button = h(
      'button',
      { class: 'jp-mod-styled jp-mod-accept', 'data-action': 'invoke' },
      'Invoke'
    );
    button.addEventListener('click', () => void this._invoke(name, button));
    fill(
      this._detail,
      h('div', { class: 'jp-InteropSidebar-detailTitle jp-InteropSidebar-code' }, name),
      accepts && h('div', { class: 'jp-InteropSidebar-muted' }, `accepts: ${accepts}`),
      h('label', { class: 'jp-InteropSidebar-label' }, 'Arguments (JSON object)', this._args),
      h(
        'div',
        { class: 'jp-InteropSidebar-formRow' },
        h('label', { class: 'jp-InteropSidebar-label' }, 'Target ', this._target),
        button
      ),
      this._error,
      this._result
    );
    this._detail.hidden = false;
    this._targetsSignature = '';
    this._updateTargets();
  }

  /** Keep the target list in step with the servers offering the selected method. */
  private _updateTargets(): void {
    const target = this._target;
    const name = this._selected;
    if (!target || name === null || !this._data) {
      return;
    }
    const offers = this._groups.get(name)?.offers ?? [];
    const chosen = target.value || BEST;
    const options = [
      h('option', { value: BEST }, 'best (first server)'),
      h('option', { value: ALL }, `all (${offers.length})`),
      ...offers.map(o =>
        h(
          'option',
          { value: o.server_id },
          `${peerName(this._data!, o.server_id)} (${o.instance ?? o.server_id})`
        )
      )
    ];
    const signature = JSON.stringify(options.map(o => [o.value, o.textContent]));
    if (signature !== this._targetsSignature) {
      this._targetsSignature = signature;
      target.replaceChildren(...options);
      target.value = options.some(o => o.value === chosen) ? chosen : BEST;
    }
    const gone = `${name} is no longer offered by any peer.`;
    if (offers.length === 0) {
      setText(this._error!, gone);
    } else if (this._error!.textContent === gone) {
      setText(this._error!, '');
    }
  }

  private async _invoke(name: string, button: HTMLButtonElement): Promise<void> {
    const error = this._error!;
    const result = this._result!;
    setText(error, '');
    const parsed = parseJsonObject(this._args!.value, 'Arguments');
    if ('error' in parsed) {
      setText(error, parsed.error);
      this._args!.setAttribute('aria-invalid', 'true');
      return;
    }
    this._args!.removeAttribute('aria-invalid');
    const offers = this._groups.get(name)?.offers ?? [];
    const choice = this._target!.value;
    const chosen =
      choice === ALL
        ? offers
        : choice === BEST
          ? offers.slice(0, 1)
          : offers.filter(o => o.server_id === choice);
    if (chosen.length === 0) {
      setText(error, `No server offers ${name} for this target.`);
      return;
    }
    button.disabled = true;
    result.hidden = false;
    result.setAttribute('data-status', 'pending');
    fill(result, h('div', { class: 'jp-InteropSidebar-muted' }, 'invoking…'));
    const started = performance.now();
    try {
      const outcomes = await Promise.all(chosen.map(o => this.ops.invokeOne(o, parsed.value)));
      const elapsed = performance.now() - started;
      if (this._selected === name) {
        this._showOutcomes(outcomes, elapsed, choice === ALL);
      }
    } finally {
      button.disabled = false;
    }
  }

  private _showOutcomes(outcomes: InvokeOutcome[], elapsedMs: number, many: boolean): void {
    const result = this._result!;
    const failed = outcomes.filter(o => !o.ok).length;
    const status = failed === 0 ? 'ok' : failed === outcomes.length ? 'error' : 'partial';
    result.setAttribute('data-status', status);
    result.setAttribute('data-elapsed-ms', elapsedMs.toFixed(1));
    const summary =
      (status === 'ok' ? 'returned' : status === 'error' ? 'failed' : `${failed} failed`) +
      ` in ${elapsedMs.toFixed(1)} ms`;
    const parts = outcomes.map(o =>
      h(
        'div',
        { class: 'jp-InteropSidebar-outcome', 'data-status': o.ok ? 'ok' : 'error' },
        many && h('div', { class: 'jp-InteropSidebar-muted' }, this._serverLabel(o)),
        o.ok
          ? h('pre', { class: 'jp-InteropSidebar-pre', 'data-role': 'returned' }, jsonBlock(o.result))
          : h(
              'div',
              { class: 'jp-InteropSidebar-error', 'data-role': 'reason' },
              o.reason ?? 'failed',
              o.reasonUri ? ` (${o.reasonUri})` : ''
            )
      )
    );
    fill(
      result,
      h(
        'div',
        { class: 'jp-InteropSidebar-resultHeader' },
        h('span', { 'data-role': 'summary' }, summary),
        !many && h('span', { class: 'jp-InteropSidebar-muted' }, ` · ${this._serverLabel(outcomes[0])}`)
      ),
      ...parts
    );
  }

  private _serverLabel(outcome: InvokeOutcome): string {
    return this._data ? peerName(this._data, outcome.serverId) : outcome.serverId;
  }

  private _data: SidebarData | null = null;
  private _groups = new Map<string, MethodGroup>();
  private _selected: string | null = null;
  private _args: HTMLTextAreaElement | null = null;
  private _target: HTMLSelectElement | null = null;
  private _targetsSignature = '';
  private _error: HTMLElement | null = null;
  private _result: HTMLElement | null = null;
  private readonly _rows: KeyedRows<MethodGroup>;
  private readonly _empty: HTMLElement;
  private readonly _detail: HTMLElement;
}

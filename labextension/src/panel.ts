/**
 * The "DSPex" sidebar panel: the active notebook kernel's contexts, backend,
 * variables (live value, type, constraints, version, lock holder; editable) and
 * recent runs. Plain DOM, updated in place so that typing is never disturbed.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IChange, KernelLink } from './link';
import { Context, JSONValue, Run, Variable } from './generated/protocol';

const RUNS_SHOWN = 10;
let choiceLists = 0;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** The text a person edits for a value; types.parse reads it back. */
export function formatValue(type: string, value: JSONValue): string {
  if (typeof value === 'string') {
    return value;
  }
  if (type === 'bool' && typeof value === 'boolean') {
    return value ? 'true' : 'false';
  }
  return JSON.stringify(value);
}

function formatConstraints(constraints: { [key: string]: JSONValue }): string {
  return Object.entries(constraints)
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join(', ');
}

function asObject(value: JSONValue | undefined): { [key: string]: JSONValue } | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : null;
}

function asNumber(value: JSONValue | undefined): number | null {
  return typeof value === 'number' && isFinite(value) ? value : null;
}

function latencyMs(item: { [key: string]: JSONValue }): number | null {
  const ms = asNumber(item['latency_ms']);
  if (ms !== null) {
    return ms;
  }
  const s = asNumber(item['latency_s']) ?? asNumber(item['latency']);
  return s === null ? null : s * 1000;
}

/** `{name: version}` or `{name: {version, ...}}` (a run trace's `variables`) as `name@vN`. */
function formatVersions(value: JSONValue | undefined): string {
  const obj = asObject(value);
  if (!obj) {
    return '';
  }
  return Object.entries(obj)
    .map(([k, v]) => {
      const version = asObject(v)?.['version'] ?? v;
      return `${k}@v${typeof version === 'object' ? JSON.stringify(version) : String(version)}`;
    })
    .join(', ');
}

/** LM usage without the zero counters (a native-only run used no LM). */
function formatUsage(value: JSONValue | undefined): string {
  const obj = asObject(value);
  if (!obj) {
    return '';
  }
  const used = Object.entries(obj).filter(([, v]) => v !== null && v !== 0);
  return used.map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ');
}

class VariableRow {
  readonly node = el('div', 'dspex-variable');
  readonly input = el('input', 'dspex-value');
  private _version = el('span', 'dspex-version');
  private _type = el('span', 'dspex-type');
  private _constraints = el('span', 'dspex-constraints');
  private _lock = el('span', 'dspex-lock');
  private _source = el('span', 'dspex-source');
  private _error = el('div', 'dspex-error');
  private _dirty = false;
  private _pending: string | null = null;
  variable: Variable;

  constructor(
    private readonly _link: KernelLink,
    private readonly _contextId: string,
    variable: Variable
  ) {
    this.variable = variable;
    this.node.dataset.name = variable.name;
    const head = el('div', 'dspex-variable-head');
    head.append(el('span', 'dspex-name', variable.name), this._type, this._version, this._lock);
    const info = el('div', 'dspex-variable-info');
    info.append(this._constraints, this._source);
    this.input.type = 'text';
    this.input.spellcheck = false;
    this.input.title = 'Edit and press Enter; Escape reverts';
    this.input.setAttribute('aria-label', `value of ${variable.name}`);
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    this.node.append(head, this.input, this._error, info);
    const choices = variable.constraints['choices'];
    if (Array.isArray(choices)) {
      // suggestions for choice-like variables; the kernel still validates the text
      const list = el('datalist');
      list.id = `dspex-choices-${++choiceLists}`;
      for (const choice of choices) {
        const option = el('option');
        option.value = formatValue(variable.type, choice);
        list.append(option);
      }
      this.input.setAttribute('list', list.id);
      this.node.append(list);
    }
    this.input.addEventListener('input', () => {
      this._dirty = true;
    });
    this.input.addEventListener('keydown', (event: KeyboardEvent) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.commit();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        this._dirty = false;
        this.update(this.variable, true);
      }
    });
    this.input.addEventListener('change', () => this.commit());
    this.update(variable, true);
  }

  commit(): void {
    if (!this._dirty || this._pending !== null) {
      return;
    }
    this._dirty = false;
    this.node.classList.add('dspex-pending');
    this._pending = this._link.edit(this._contextId, this.variable.name, this.input.value);
  }

  /** Show a record; the input keeps what the person is typing unless forced. */
  update(variable: Variable, force = false): void {
    if (!force && variable.version < this.variable.version) {
      return;
    }
    this.variable = variable;
    this.node.dataset.version = String(variable.version);
    this._version.textContent = `v${variable.version}`;
    this._type.textContent = variable.type;
    const constraints = formatConstraints(variable.constraints);
    this._constraints.textContent = constraints ? `constraints: ${constraints}` : 'no constraints';
    this._lock.textContent = variable.lock ? `locked by ${variable.lock}` : '';
    this._lock.title = variable.lock ? `locked by ${variable.lock}` : 'not locked';
    this.node.classList.toggle('dspex-locked', variable.lock !== null);
    this.input.disabled = variable.lock !== null;
    this._source.textContent = `set by ${variable.source}`;
    this._source.dataset.source = variable.source;
    const typing = document.activeElement === this.input && this._dirty;
    if (force || !typing) {
      this.input.value = formatValue(variable.type, variable.value);
      this.input.dataset.value = this.input.value;
    }
  }

  /** The kernel's answer to our edit: accept it, or show why not and snap back. */
  editDone(ok: boolean, error: string | null, variable: Variable | null): void {
    this._pending = null;
    this.node.classList.remove('dspex-pending');
    if (ok) {
      this._error.hidden = true;
      this._error.textContent = '';
      this.node.classList.remove('dspex-invalid');
    } else {
      this._error.hidden = false;
      this._error.textContent = error ?? 'the kernel refused this value';
      this.node.classList.add('dspex-invalid');
    }
    this._dirty = false;
    if (variable) {
      this.update(variable, true);
    }
  }
}

class ContextView {
  readonly node = el('section', 'dspex-context');
  private _header = el('div', 'dspex-context-header');
  private _meta = el('dl', 'dspex-meta');
  private _tbody = el('div', 'dspex-variables');
  private _runs = el('ol', 'dspex-runs');
  private _rows = new Map<string, VariableRow>();

  constructor(
    private readonly _link: KernelLink,
    readonly id: string
  ) {
    this.node.dataset.contextId = id;
    const runsTitle = el('h4', 'dspex-runs-title', 'Recent runs');
    this.node.append(this._header, this._meta, el('h4', undefined, 'Variables'), this._tbody, runsTitle, this._runs);
  }

  row(name: string): VariableRow | undefined {
    return this._rows.get(name);
  }

  render(ctx: Context): void {
    const labels = ctx.labels.length ? ` (${ctx.labels.join(', ')})` : '';
    this._header.textContent = `${ctx.name}${labels}`;
    this._meta.replaceChildren();
    const meta: [string, string, string][] = [
      ['backend', ctx.backend, 'dspex-backend'],
      ['server', ctx.address ?? '—', 'dspex-address'],
      ['session', ctx.session_id, 'dspex-session']
    ];
    for (const [term, value, cls] of meta) {
      this._meta.append(el('dt', undefined, term), el('dd', cls, value));
    }
    this.renderVariables(ctx);
    this.renderRuns(ctx.runs);
  }

  renderVariables(ctx: Context): void {
    const names = new Set(ctx.variables.map(v => v.name));
    for (const [name, row] of this._rows) {
      if (!names.has(name)) {
        row.node.remove();
        this._rows.delete(name);
      }
    }
    let previous: HTMLElement | null = null;
    for (const variable of ctx.variables) {
      let row = this._rows.get(variable.name);
      if (!row) {
        row = new VariableRow(this._link, this.id, variable);
        this._rows.set(variable.name, row);
      } else {
        row.update(variable);
      }
      const expected: Element | null = previous ? previous.nextElementSibling : this._tbody.firstElementChild;
      if (expected !== row.node) {
        if (previous) {
          previous.after(row.node);
        } else {
          this._tbody.prepend(row.node);
        }
      }
      previous = row.node;
    }
    if (!ctx.variables.length) {
      this._tbody.replaceChildren();
      this._tbody.append(el('div', 'dspex-empty', 'no variables yet'));
    } else {
      this._tbody.querySelector('.dspex-empty')?.remove();
    }
  }

  renderRuns(runs: Run[]): void {
    this._runs.replaceChildren();
    const recent = runs.slice(-RUNS_SHOWN).reverse();
    if (!recent.length) {
      this._runs.append(el('li', 'dspex-empty', 'no runs yet'));
      return;
    }
    for (const run of recent) {
      const item = el('li', 'dspex-run');
      const title = String(run['program'] ?? run['name'] ?? 'run');
      const parts = [title];
      const started = asNumber(run['started_at']);
      if (started !== null) {
        parts.push(new Date(started * 1000).toLocaleTimeString());
      }
      const total = latencyMs(run);
      if (total !== null) {
        parts.push(`${total.toFixed(1)} ms`);
      }
      if (typeof run['status'] === 'string') {
        parts.push(run['status']);
      }
      if (typeof run['backend'] === 'string') {
        parts.push(run['backend']);
      }
      const usage = formatUsage(run['lm_usage'] ?? run['usage']);
      parts.push(usage ? `LM ${usage}` : 'no LM calls');
      item.append(el('div', 'dspex-run-title', parts.join(' · ')));
      if (typeof run['error'] === 'string' && run['error']) {
        item.append(el('div', 'dspex-error', run['error']));
      }
      const versions = formatVersions(run['variable_versions'] ?? run['variables']);
      if (versions) {
        item.append(el('div', 'dspex-run-versions', `variables: ${versions}`));
      }
      const modules = run['modules'] ?? run['trace'];
      if (Array.isArray(modules)) {
        const list = el('ul', 'dspex-run-modules');
        for (const entry of modules) {
          const module = asObject(entry);
          if (!module) {
            continue;
          }
          const bits = [String(module['name'] ?? module['module'] ?? '?')];
          if (module['kind'] !== undefined) {
            bits.push(`(${String(module['kind'])})`);
          }
          const ms = latencyMs(module);
          if (ms !== null) {
            bits.push(`${ms.toFixed(1)} ms`);
          }
          const lm = formatUsage(module['lm_usage'] ?? module['usage']);
          if (lm) {
            bits.push(`LM ${lm}`);
          }
          const used = formatVersions(module['variable_versions'] ?? module['variables']);
          if (used) {
            bits.push(`uses ${used}`);
          }
          list.append(el('li', undefined, bits.join(' ')));
        }
        item.append(list);
      }
      this._runs.append(item);
    }
  }
}

export class DSPexPanel extends Widget {
  constructor() {
    super();
    this.id = 'dspex-panel';
    this.addClass('dspex-panel');
    this.title.caption = 'DSPex: the kernel\'s context, live';
    const top = el('div', 'dspex-top');
    top.append(el('h2', 'dspex-title', 'DSPex'), this._reconnect);
    this._reconnect.textContent = 'reconnect';
    this._reconnect.title = 'Reopen the channel to the kernel and reload everything';
    this._reconnect.addEventListener('click', () => this._link?.reconnect());
    this.node.append(top, this._kernelLine, this._status, this._body);
    this._render();
  }

  /** Follow this notebook's kernel (or none). The kernel is contacted only once
   * the panel has been shown: a hidden panel runs nothing in anyone's kernel. */
  setNotebook(notebook: NotebookPanel | null): void {
    if (notebook === this._notebook) {
      return;
    }
    this._notebook = notebook;
    this._link?.dispose();
    this._link = null;
    this._views.clear();
    this._body.replaceChildren();
    if (notebook) {
      notebook.disposed.connect(() => {
        if (this._notebook === notebook) {
          this.setNotebook(null);
        }
      });
    }
    this._ensureLink();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._shown = true;
    this._ensureLink();
  }

  private _ensureLink(): void {
    const notebook = this._notebook;
    if (notebook && this._shown && !this._link) {
      this._link = new KernelLink(notebook.sessionContext);
      this._link.changed.connect(this._onChange, this);
    }
    this._render();
  }

  get link(): KernelLink | null {
    return this._link;
  }

  dispose(): void {
    this._link?.dispose();
    super.dispose();
  }

  private _onChange(link: KernelLink, change: IChange): void {
    if (link !== this._link) {
      return;
    }
    const ctx = change.context ? link.context(change.context) : undefined;
    const view = change.context ? this._views.get(change.context) : undefined;
    if (change.scope === 'variable' && ctx && view) {
      view.renderVariables(ctx);
    } else if (change.scope === 'runs' && ctx && view) {
      view.renderRuns(ctx.runs);
    } else if (change.scope === 'edit') {
      if (ctx && view) {
        view.renderVariables(ctx);
        const edit = change.edit;
        if (edit && change.name) {
          view.row(change.name)?.editDone(edit.ok, edit.error, edit.variable);
        }
      }
    } else {
      this._render();
    }
    this._renderStatus();
  }

  private _renderStatus(): void {
    const link = this._link;
    const state = link ? link.state : 'idle';
    this.node.dataset.state = state;
    this.node.dataset.seq = String(link ? link.seq : 0);
    this.node.dataset.snapshots = String(link ? link.snapshots : 0);
    this._status.dataset.state = state;
    const text: { [key: string]: string } = {
      idle: this._notebook ? 'Waiting for the kernel' : 'No notebook kernel',
      connecting: 'Connecting…',
      connected: 'Live',
      disconnected: 'Disconnected',
      unavailable: 'Unavailable'
    };
    const detail = link?.detail ? ` — ${link.detail}` : '';
    this._status.textContent = `${text[state]}${detail}`;
    const notebook = this._notebook;
    this._kernelLine.textContent = notebook
      ? `${notebook.context.path} · ${notebook.sessionContext.kernelDisplayName}`
      : 'Open a notebook to see its dspex context.';
  }

  private _render(): void {
    this._renderStatus();
    const link = this._link;
    if (!link) {
      this._views.clear();
      this._body.replaceChildren();
      return;
    }
    const contexts = link.contexts;
    const ids = new Set(contexts.map(c => c.id));
    for (const [id, view] of this._views) {
      if (!ids.has(id)) {
        view.node.remove();
        this._views.delete(id);
      }
    }
    let previous: HTMLElement | null = null;
    for (const ctx of contexts) {
      let view = this._views.get(ctx.id);
      if (!view) {
        view = new ContextView(link, ctx.id);
        this._views.set(ctx.id, view);
      }
      view.render(ctx);
      // move a section only when out of place (moving would blur a focused input)
      const expected: Element | null = previous ? previous.nextElementSibling : this._body.firstElementChild;
      if (expected !== view.node) {
        if (previous) {
          previous.after(view.node);
        } else {
          this._body.prepend(view.node);
        }
      }
      previous = view.node;
    }
    if (!contexts.length && link.state === 'connected') {
      if (!this._body.querySelector('.dspex-no-context')) {
        this._body.append(
          el('p', 'dspex-no-context', 'No dspex context in this kernel yet (default_context() creates one).')
        );
      }
    } else {
      this._body.querySelector('.dspex-no-context')?.remove();
    }
  }

  private _notebook: NotebookPanel | null = null;
  private _shown = false;
  private _link: KernelLink | null = null;
  private _views = new Map<string, ContextView>();
  private _kernelLine = el('div', 'dspex-kernel');
  private _status = el('div', 'dspex-status');
  private _reconnect = el('button', 'dspex-reconnect jp-mod-styled');
  private _body = el('div', 'dspex-body');
}

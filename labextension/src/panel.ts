/**
 * The "DSPex" sidebar panel: the active notebook kernel's contexts, backend,
 * variables (live value, type, constraints, version, lock holder; editable) and
 * recent runs. Plain DOM, updated in place so that typing is never disturbed.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IChange, KernelLink } from './link';
import { controlKind, el, VariableRow } from './controls';
import { Context, Run, Variable } from './generated/protocol';
import { renderRun, renderTuning } from './runs';

const RUNS_SHOWN = 10;

function sameConstraints(a: Variable, b: Variable): boolean {
  return a.type === b.type && JSON.stringify(a.constraints) === JSON.stringify(b.constraints);
}

class ContextView {
  readonly node = el('section', 'dspex-context');
  private _header = el('div', 'dspex-context-header');
  private _meta = el('dl', 'dspex-meta');
  private _tbody = el('div', 'dspex-variables');
  private _runs = el('ol', 'dspex-runs');
  private _tuning = el('div', 'dspex-tuning');
  private _rows = new Map<string, VariableRow>();

  constructor(
    private readonly _link: KernelLink,
    readonly id: string
  ) {
    this.node.dataset.contextId = id;
    const runsTitle = el('h4', 'dspex-runs-title', 'Recent runs');
    this._tuning.hidden = true;
    this.node.append(
      this._header,
      this._meta,
      this._tuning,
      el('h4', undefined, 'Variables'),
      this._tbody,
      runsTitle,
      this._runs
    );
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
    this.renderTuning(ctx);
  }

  renderTuning(ctx: Context): void {
    renderTuning(this._tuning, ctx.tuning);
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
      if (row && (row.kind !== controlKind(variable) || !sameConstraints(row.variable, variable))) {
        row.node.remove(); // redefined: its control kind, bounds or choices may differ
        row = undefined;
      }
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
      this._runs.append(renderRun(run));
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
    } else if (change.scope === 'tuning' && ctx && view) {
      view.renderTuning(ctx);
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

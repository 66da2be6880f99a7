/**
 * The connection between the panel and one notebook's kernel: the 'dspex:panel'
 * comm, its sequence numbers, reconnection after a kernel restart, and the state
 * (contexts, variables, runs) it keeps up to date from the kernel's messages.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import {
  Context,
  EditMessage,
  EditResultMessage,
  KernelMessage as DSPexMessage,
  PanelMessage,
  Variable
} from './generated/protocol';
import { COMM_TARGET, PROTOCOL_VERSION } from './protocol';

/** Runs in the kernel before the comm opens, so the panel also works without
 * `%load_ext dspex_jupyter`. Silent: no output, no history, no names bound. */
export const REGISTER_CODE = [
  'try:',
  '    __import__("dspex_jupyter.jupyter.panel", fromlist=["register"]).register(get_ipython())',
  'except ImportError:',
  '    pass'
].join('\n');

export const MAX_RUNS = 20;

export type LinkState =
  | 'idle' // no notebook, or no kernel
  | 'connecting'
  | 'connected'
  | 'disconnected' // kernel restarting or dead; reconnects when it is back
  | 'unavailable'; // the kernel is not Python or has no dspex_jupyter

export interface IEditOutcome {
  ok: boolean;
  error: string | null;
  variable: Variable | null;
}

export interface IChange {
  /** 'all' re-renders everything; otherwise the context and variable that changed. */
  scope: 'all' | 'context' | 'variable' | 'runs' | 'tuning' | 'edit';
  context?: string;
  name?: string;
  edit?: IEditOutcome;
}

export class KernelLink {
  constructor(readonly sessionContext: ISessionContext) {
    sessionContext.statusChanged.connect(this._onStatus, this);
    sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    void this.connect();
  }

  get changed(): ISignal<this, IChange> {
    return this._changed;
  }

  get state(): LinkState {
    return this._state;
  }

  get detail(): string {
    return this._detail;
  }

  get seq(): number {
    return this._lastSeq;
  }

  get contexts(): Context[] {
    return Array.from(this._contexts.values());
  }

  get snapshots(): number {
    return this._snapshots;
  }

  context(id: string): Context | undefined {
    return this._contexts.get(id);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.sessionContext.statusChanged.disconnect(this._onStatus, this);
    this.sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
    this._dropComm(true);
    Signal.clearData(this);
  }

  /** Open the comm on the current kernel (registering the target first). */
  async connect(): Promise<void> {
    if (this._disposed || this._comm || this._connecting) {
      return;
    }
    const kernel = this.sessionContext.session?.kernel ?? null;
    if (!kernel) {
      this._setState('idle', 'no kernel');
      return;
    }
    const generation = ++this._generation;
    this._connecting = true;
    this._setState('connecting', 'connecting to the kernel…');
    try {
      const info = await kernel.info;
      if (generation !== this._generation) {
        return;
      }
      const language = info.language_info?.name ?? '';
      if (language !== 'python') {
        this._setState('unavailable', `the kernel's language is ${language || 'unknown'}, not Python`);
        return;
      }
      const future = kernel.requestExecute(
        { code: REGISTER_CODE, silent: true, store_history: false, stop_on_error: false },
        true
      );
      await future.done;
      if (generation !== this._generation || this._disposed) {
        return;
      }
      const comm = kernel.createComm(COMM_TARGET);
      this._comm = comm;
      this._awaitingSnapshot = true;
      this._lastSeq = 0;
      comm.onMsg = (msg: KernelMessage.ICommMsgMsg) => {
        if (this._comm === comm) {
          this._onMessage(msg.content.data as unknown as DSPexMessage);
        }
      };
      comm.onClose = () => {
        if (this._comm === comm) {
          this._comm = null;
          this._setState(
            'unavailable',
            this._everConnected
              ? 'the kernel closed the panel channel'
              : 'dspex_jupyter is not importable in this kernel'
          );
        }
      };
      const open: PanelMessage = { type: 'open', protocol: PROTOCOL_VERSION };
      comm.open(open as any);
    } catch (error) {
      if (generation === this._generation) {
        this._comm = null;
        this._setState('disconnected', `could not connect: ${String(error)}`);
      }
    } finally {
      if (generation === this._generation) {
        this._connecting = false;
      }
    }
  }

  /** Ask for a fresh snapshot (after a gap in the sequence numbers, or by hand). */
  requestSnapshot(reason: string): void {
    this._awaitingSnapshot = true;
    this._send({ type: 'request_snapshot', reason });
  }

  /** Reconnect from scratch (the "reconnect" button). */
  reconnect(): void {
    this._dropComm(true);
    void this.connect();
  }

  /** Send an edit; the answer comes back as a change with scope 'edit'. */
  edit(context: string, name: string, text: string): string {
    const requestId = `e${++this._requests}-${Date.now().toString(36)}`;
    const message: EditMessage = { type: 'edit', request_id: requestId, context, name, text };
    this._send(message);
    return requestId;
  }

  private _send(message: PanelMessage): void {
    if (this._comm && !this._comm.isDisposed) {
      this._comm.send(message as any);
    }
  }

  private _onMessage(msg: DSPexMessage): void {
    if (msg.type === 'snapshot') {
      this._lastSeq = msg.seq;
      this._awaitingSnapshot = false;
      this._everConnected = true;
      this._snapshots++;
      this._contexts.clear();
      for (const ctx of msg.contexts) {
        this._contexts.set(ctx.id, ctx);
      }
      this._setState('connected', '');
      this._changed.emit({ scope: 'all' });
      return;
    }
    if (this._awaitingSnapshot) {
      return; // superseded by the snapshot we asked for
    }
    if (msg.seq !== this._lastSeq + 1) {
      this.requestSnapshot(`gap: expected seq ${this._lastSeq + 1}, got ${msg.seq}`);
      return;
    }
    this._lastSeq = msg.seq;
    switch (msg.type) {
      case 'variable':
        this._applyVariable(msg.context, msg.variable);
        this._changed.emit({ scope: 'variable', context: msg.context, name: msg.variable.name });
        break;
      case 'variable_deleted': {
        const ctx = this._contexts.get(msg.context);
        if (ctx) {
          ctx.variables = ctx.variables.filter(v => v.name !== msg.name);
        }
        this._changed.emit({ scope: 'context', context: msg.context });
        break;
      }
      case 'run': {
        const ctx = this._contexts.get(msg.context);
        if (ctx) {
          ctx.runs = [...ctx.runs, msg.run].slice(-MAX_RUNS);
        }
        this._changed.emit({ scope: 'runs', context: msg.context });
        break;
      }
      case 'tuning': {
        const ctx = this._contexts.get(msg.context);
        if (ctx) {
          ctx.tuning = msg.tuning;
        }
        this._changed.emit({ scope: 'tuning', context: msg.context });
        break;
      }
      case 'context':
        this._contexts.set(msg.context.id, msg.context);
        this._changed.emit({ scope: 'all' });
        break;
      case 'context_removed':
        this._contexts.delete(msg.context);
        this._changed.emit({ scope: 'all' });
        break;
      case 'edit_result':
        this._onEditResult(msg);
        break;
      case 'error':
        this._detail = msg.message;
        this._changed.emit({ scope: 'all' });
        break;
    }
  }

  private _onEditResult(msg: EditResultMessage): void {
    if (msg.variable) {
      this._applyVariable(msg.context, msg.variable);
    }
    this._changed.emit({
      scope: 'edit',
      context: msg.context,
      name: msg.name,
      edit: { ok: msg.ok, error: msg.error, variable: msg.variable }
    });
  }

  private _applyVariable(contextId: string, variable: Variable): void {
    const ctx = this._contexts.get(contextId);
    if (!ctx) {
      return;
    }
    const index = ctx.variables.findIndex(v => v.name === variable.name);
    if (index < 0) {
      ctx.variables = [...ctx.variables, variable].sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0
      );
    } else if (variable.version >= ctx.variables[index].version) {
      ctx.variables[index] = variable;
    }
  }

  private _dropComm(close: boolean): void {
    this._generation++;
    this._connecting = false;
    const comm = this._comm;
    this._comm = null;
    if (comm && close && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // the kernel may be gone already
      }
    }
  }

  private _onStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this._dropComm(false);
      this._restarted = true;
      this._setState('disconnected', `kernel ${status}; the panel reconnects when it is back`);
    } else if ((status === 'idle' || status === 'busy') && !this._comm && !this._connecting) {
      // after a restart always try again (the new kernel may have dspex_jupyter);
      // otherwise an 'unavailable' kernel is not asked again until "reconnect"
      if (this._state !== 'unavailable' || this._restarted) {
        this._restarted = false;
        void this.connect();
      }
    }
  }

  private _onKernelChanged(): void {
    this._dropComm(false);
    this._contexts.clear();
    this._everConnected = false;
    this._setState('idle', 'kernel changed');
    this._changed.emit({ scope: 'all' });
    void this.connect();
  }

  private _setState(state: LinkState, detail: string): void {
    this._state = state;
    this._detail = detail;
    this._changed.emit({ scope: 'all' });
  }

  private _changed = new Signal<this, IChange>(this);
  private _comm: Kernel.IComm | null = null;
  private _connecting = false;
  private _restarted = false;
  private _generation = 0;
  private _lastSeq = 0;
  private _awaitingSnapshot = true;
  private _everConnected = false;
  private _snapshots = 0;
  private _requests = 0;
  private _state: LinkState = 'idle';
  private _detail = '';
  private _disposed = false;
  private _contexts = new Map<string, Context>();
}

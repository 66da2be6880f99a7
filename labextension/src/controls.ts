/**
 * One variable's row in the panel, with the control the notebook's widgets use
 * for it (jupyter/widgets.py `control_for_variable`): a slider for a number with
 * both bounds (plus its editable readout), a checkbox for a bool, a dropdown for
 * choices, a text box for the rest. Every edit goes to the kernel as text
 * (`types.parse` reads it back), so the validation and its messages are the
 * kernel's, the same as for the widgets; a refused edit snaps back.
 */
import { KernelLink } from './link';
import { JSONValue, Variable } from './generated/protocol';

export type ControlKind = 'slider' | 'checkbox' | 'dropdown' | 'text';

export function el<K extends keyof HTMLElementTagNameMap>(
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

/** The widget kind the notebook shows for this variable. */
export function controlKind(variable: Variable): ControlKind {
  const c = variable.constraints;
  const bounded = typeof c['min'] === 'number' && typeof c['max'] === 'number';
  if ((variable.type === 'float' || variable.type === 'int') && bounded) {
    return 'slider';
  }
  if (variable.type === 'bool') {
    return 'checkbox';
  }
  if (['choice', 'str', 'module'].includes(variable.type) && Array.isArray(c['choices']) && c['choices'].length) {
    return 'dropdown';
  }
  return 'text';
}

/** A slider's value as text, without floating-point noise (0.7000000000000001). */
function sliderText(type: string, raw: string): string {
  const n = Number(raw);
  return type === 'int' ? String(Math.round(n)) : String(parseFloat(n.toPrecision(12)));
}

export class VariableRow {
  readonly node = el('div', 'dspex-variable');
  /** The text box (text and slider kinds), the checkbox or the select. */
  readonly input: HTMLInputElement | HTMLSelectElement;
  readonly kind: ControlKind;
  private _slider: HTMLInputElement | null = null;
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
    this.kind = controlKind(variable);
    this.node.dataset.name = variable.name;
    this.node.dataset.kind = this.kind;
    const head = el('div', 'dspex-variable-head');
    head.append(el('span', 'dspex-name', variable.name), this._type, this._version, this._lock);
    const info = el('div', 'dspex-variable-info');
    info.append(this._constraints, this._source);
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    const control = el('div', 'dspex-control');
    this.input = this._build(control, variable);
    this.input.setAttribute('aria-label', `value of ${variable.name}`);
    this.node.append(head, control, this._error, info);
    this.update(variable, true);
  }

  private _build(control: HTMLElement, variable: Variable): HTMLInputElement | HTMLSelectElement {
    if (this.kind === 'checkbox') {
      const box = el('input', 'dspex-value');
      box.type = 'checkbox';
      box.addEventListener('change', () => this._send(box.checked ? 'true' : 'false'));
      control.append(box);
      return box;
    }
    if (this.kind === 'dropdown') {
      const select = el('select', 'dspex-value');
      for (const choice of variable.constraints['choices'] as JSONValue[]) {
        const option = el('option', undefined, formatValue(variable.type, choice));
        option.value = formatValue(variable.type, choice);
        select.append(option);
      }
      select.addEventListener('change', () => this._send(select.value));
      control.append(select);
      return select;
    }
    const text = el('input', 'dspex-value');
    text.type = 'text';
    text.spellcheck = false;
    text.title = 'Edit and press Enter; Escape reverts';
    text.addEventListener('input', () => {
      this._dirty = true;
    });
    text.addEventListener('keydown', (event: KeyboardEvent) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.commit();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        this._dirty = false;
        this.update(this.variable, true);
      }
    });
    text.addEventListener('change', () => this.commit());
    if (this.kind === 'slider') {
      const c = variable.constraints;
      const lo = c['min'] as number;
      const hi = c['max'] as number;
      const slider = el('input', 'dspex-slider');
      slider.type = 'range';
      slider.min = String(lo);
      slider.max = String(hi);
      slider.step = variable.type === 'int' ? '1' : String(hi > lo ? (hi - lo) / 100 : 0.01);
      slider.setAttribute('aria-label', `slider for ${variable.name}`);
      // while dragging, the readout follows; on release, one edit
      slider.addEventListener('input', () => {
        text.value = sliderText(variable.type, slider.value);
      });
      slider.addEventListener('change', () => this._send(sliderText(variable.type, slider.value)));
      text.classList.add('dspex-readout');
      this._slider = slider;
      control.append(slider, text);
    } else {
      control.append(text);
    }
    return text;
  }

  /** Send the text box's edit (Enter or blur), once, if it changed. */
  commit(): void {
    if (!this._dirty || this._pending !== null) {
      return;
    }
    this._dirty = false;
    this._send(this.input.value);
  }

  private _send(text: string): void {
    this.node.classList.add('dspex-pending');
    this._pending = this._link.edit(this._contextId, this.variable.name, text);
  }

  /** Show a record; a text box keeps what the person is typing unless forced. */
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
    const locked = variable.lock !== null;
    this._lock.textContent = locked ? `locked by ${variable.lock}` : '';
    this._lock.title = locked ? `${variable.lock} holds this variable; edits are refused until it lets go` : '';
    this.node.classList.toggle('dspex-locked', locked);
    this.input.disabled = locked;
    if (this._slider) {
      this._slider.disabled = locked;
    }
    this._source.textContent = `set by ${variable.source}`;
    this._source.dataset.source = variable.source;
    const text = formatValue(variable.type, variable.value);
    if (this.input instanceof HTMLInputElement && this.input.type === 'checkbox') {
      this.input.checked = variable.value === true;
    } else {
      const typing = document.activeElement === this.input && this._dirty;
      if (force || !typing) {
        this.input.value = text;
      }
    }
    this.input.dataset.value = text;
    if (this._slider && typeof variable.value === 'number') {
      this._slider.value = String(variable.value);
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

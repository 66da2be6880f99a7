/**
 * Recent runs and a running tuning, as the panel shows them: per run its
 * inputs and outputs (truncated, click to expand), status, latency and the
 * kernel's compact usage line (`146 tok`, details in the tooltip); fields
 * that are zero or null are left out.
 */
import { el } from './controls';
import { JSONValue, Run, Tuning } from './generated/protocol';

const SHORT = 80;

type Fields = { [key: string]: JSONValue | undefined };

function asObject(value: JSONValue | undefined): { [key: string]: JSONValue } | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : null;
}

function asNumber(value: JSONValue | undefined): number | null {
  return typeof value === 'number' && isFinite(value) ? value : null;
}

function latencyMs(item: Fields): number | null {
  const ms = asNumber(item['latency_ms']);
  if (ms !== null) {
    return ms;
  }
  const s = asNumber(item['latency_s']) ?? asNumber(item['latency']);
  return s === null ? null : s * 1000;
}

function text(value: JSONValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `{name: version}` or `{name: {version, ...}}` (a run trace's `variables`) as `name@vN`. */
function formatVersions(value: JSONValue | undefined): string {
  const obj = asObject(value);
  if (!obj) {
    return '';
  }
  return Object.entries(obj)
    .map(([k, v]) => `${k}@v${text(asObject(v)?.['version'] ?? v)}`)
    .join(', ');
}

/** The usage line the kernel formatted, with its details as a tooltip (or nothing). */
function usage(item: Fields): HTMLElement | null {
  const line = item['usage_text'];
  if (typeof line !== 'string' || !line) {
    return null;
  }
  const node = el('span', 'dspex-usage', line);
  const detail = item['usage_detail'];
  node.title = typeof detail === 'string' ? detail : line;
  return node;
}

/** `name: value` per field; a long value shows its start, and all of it when opened. */
function fields(className: string, label: string, value: JSONValue | undefined): HTMLElement | null {
  const obj = asObject(value);
  if (!obj || !Object.keys(obj).length) {
    return null;
  }
  const box = el('div', className);
  box.append(el('span', 'dspex-io-label', label));
  for (const [key, v] of Object.entries(obj)) {
    if (v === null) {
      continue;
    }
    const full = text(v);
    const line = el('div', 'dspex-io');
    line.dataset.field = key;
    line.append(el('span', 'dspex-io-key', `${key}: `));
    if (full.length <= SHORT) {
      line.append(el('span', 'dspex-io-value', full));
    } else {
      const details = el('details', 'dspex-io-more');
      details.append(el('summary', 'dspex-io-value', `${full.slice(0, SHORT - 1)}…`), el('div', 'dspex-io-full', full));
      line.append(details);
    }
    box.append(line);
  }
  return box;
}

export function renderRun(run: Run): HTMLElement {
  const item = el('li', 'dspex-run');
  const title = el('div', 'dspex-run-title');
  const bits: (string | HTMLElement)[] = [String(run['program'] ?? run['name'] ?? 'run')];
  const started = asNumber(run['started_at']);
  if (started !== null) {
    bits.push(new Date(started * 1000).toLocaleTimeString());
  }
  if (typeof run['status'] === 'string' && run['status']) {
    const status = el('span', 'dspex-run-status', run['status']);
    status.dataset.status = run['status'];
    bits.push(status);
  }
  const total = latencyMs(run);
  if (total !== null) {
    bits.push(`${total.toFixed(1)} ms`);
  }
  if (typeof run['backend'] === 'string' && run['backend']) {
    bits.push(run['backend']);
  }
  const used = usage(run);
  if (used) {
    bits.push(used);
  }
  bits.forEach((bit, i) => {
    if (i) {
      title.append(' · ');
    }
    title.append(bit);
  });
  item.append(title);
  if (typeof run['error'] === 'string' && run['error']) {
    item.append(el('div', 'dspex-error', run['error']));
  }
  for (const part of [fields('dspex-run-inputs', 'in', run['inputs']), fields('dspex-run-outputs', 'out', run['outputs'])]) {
    if (part) {
      item.append(part);
    }
  }
  const versions = formatVersions(run['variable_versions'] ?? run['variables']);
  if (versions) {
    item.append(el('div', 'dspex-run-versions', `variables: ${versions}`));
  }
  const modules = run['modules'] ?? run['trace'];
  if (Array.isArray(modules) && modules.length) {
    const list = el('ul', 'dspex-run-modules');
    for (const entry of modules) {
      const module = asObject(entry);
      if (!module) {
        continue;
      }
      const li = el('li');
      const parts = [String(module['name'] ?? module['module'] ?? '?')];
      if (module['kind'] !== undefined && module['kind'] !== null) {
        parts.push(`(${String(module['kind'])})`);
      }
      const ms = latencyMs(module);
      if (ms !== null) {
        parts.push(`${ms.toFixed(1)} ms`);
      }
      const uses = formatVersions(module['variable_versions'] ?? module['variables']);
      if (uses) {
        parts.push(`uses ${uses}`);
      }
      li.append(parts.join(' '));
      const lm = usage(module);
      if (lm) {
        li.append(' ', lm);
      }
      list.append(li);
    }
    item.append(list);
  }
  return item;
}

/** "tuning <study> · trial 3" while it runs; "tuned <study> · best 0.812 (trial 3)" after. */
export function renderTuning(node: HTMLElement, tuning: Tuning | null): void {
  node.hidden = tuning === null;
  node.replaceChildren();
  if (!tuning) {
    delete node.dataset.state;
    return;
  }
  node.dataset.state = tuning.state;
  const running = tuning.state === 'running';
  const parts = [running ? 'tuning' : 'tuned'];
  if (tuning.study) {
    parts.push(tuning.study);
  }
  const facts: string[] = [];
  if (tuning.best_score !== null) {
    facts.push(`best ${tuning.best_score.toPrecision(3)}`);
  }
  if (tuning.trial !== null) {
    facts.push(running ? `trial ${tuning.trial}` : `(trial ${tuning.trial})`);
  }
  node.append(el('span', 'dspex-tuning-badge', parts.join(' ')));
  if (facts.length) {
    node.append(' · ', el('span', 'dspex-tuning-facts', facts.join(' ')));
  }
  if (tuning.variables.length) {
    node.append(el('div', 'dspex-tuning-variables', `variables: ${tuning.variables.join(', ')}`));
  }
}

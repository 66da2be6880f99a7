/**
 * The messages of the 'dspex:panel' comm, mirroring docs/panel-protocol.schema.json
 * (the single definition; tests/panel/test_schema.py checks that every interface
 * below has exactly the fields, optionality and `type` literal of its schema
 * definition). One field per line, please: the test reads this file.
 */

export const COMM_TARGET = 'dspex:panel';
export const PROTOCOL_VERSION = 1;

export type JSONValue =
  | string
  | number
  | boolean
  | null
  | JSONValue[]
  | { [key: string]: JSONValue };

export interface Variable {
  name: string;
  type: string;
  value: JSONValue;
  constraints: { [key: string]: JSONValue };
  version: number;
  metadata: { [key: string]: JSONValue };
  source: string;
  timestamp: number;
  lock: string | null;
}

export type Run = { [key: string]: JSONValue };

export interface Context {
  id: string;
  name: string;
  labels: string[];
  backend: string;
  address: string | null;
  session_id: string;
  locks: { [name: string]: string };
  variables: Variable[];
  runs: Run[];
}

export interface SnapshotMessage {
  type: 'snapshot';
  seq: number;
  protocol: number;
  contexts: Context[];
}

export interface VariableMessage {
  type: 'variable';
  seq: number;
  context: string;
  kind: 'registered' | 'set';
  variable: Variable;
}

export interface VariableDeletedMessage {
  type: 'variable_deleted';
  seq: number;
  context: string;
  name: string;
  version: number;
}

export interface RunMessage {
  type: 'run';
  seq: number;
  context: string;
  run: Run;
}

export interface ContextMessage {
  type: 'context';
  seq: number;
  context: Context;
}

export interface ContextRemovedMessage {
  type: 'context_removed';
  seq: number;
  context: string;
}

export interface EditResultMessage {
  type: 'edit_result';
  seq: number;
  request_id: string;
  context: string;
  name: string;
  ok: boolean;
  error: string | null;
  variable: Variable | null;
}

export interface ErrorMessage {
  type: 'error';
  seq: number;
  message: string;
}

export interface OpenMessage {
  type: 'open';
  protocol: number;
}

export interface RequestSnapshotMessage {
  type: 'request_snapshot';
  reason?: string;
}

export interface EditMessage {
  type: 'edit';
  request_id: string;
  context: string;
  name: string;
  text: string;
}

export type KernelMessage =
  | SnapshotMessage
  | VariableMessage
  | VariableDeletedMessage
  | RunMessage
  | ContextMessage
  | ContextRemovedMessage
  | EditResultMessage
  | ErrorMessage;

export type PanelMessage =
  | OpenMessage
  | RequestSnapshotMessage
  | EditMessage;

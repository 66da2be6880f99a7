/**
 * The 'dspex:panel' comm. The message types are generated at build time from
 * docs/panel-protocol.schema.json (the single definition) into
 * ./generated/protocol.ts by json-schema-to-typescript (`jlpm run build:protocol`);
 * only the constants live here (tests/panel/test_schema.py checks them).
 */

export const COMM_TARGET = 'dspex:panel';
export const PROTOCOL_VERSION = 1;

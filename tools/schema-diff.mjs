#!/usr/bin/env node
// schema-diff: compares two client-facing GraphQL schemas (the committed
// supergraph before and after a change) with @graphql-inspector/core and
// prints every change with its schema coordinate and criticality.
//
//   node tools/schema-diff.mjs OLD.graphql NEW.graphql [--json]
//
// Exit status: 0 when nothing is breaking, 1 when something is, 2 on bad
// input (a file missing or not a valid schema). The classification is the
// library's own; this script only formats it.
import { readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { diff, ChangeType, CriticalityLevel } from '@graphql-inspector/core';

const LABEL = {
  [CriticalityLevel.Breaking]: 'breaking',
  [CriticalityLevel.Dangerous]: 'dangerous',
  [CriticalityLevel.NonBreaking]: 'safe',
};
const ORDER = ['breaking', 'dangerous', 'safe'];

// Changes whose path ends in an argument name: "Type.field.arg" for field
// arguments, "@directive.arg" for directive arguments.
const ARGUMENT_CHANGES = new Set([
  ChangeType.FieldArgumentAdded,
  ChangeType.FieldArgumentRemoved,
  ChangeType.FieldArgumentDescriptionChanged,
  ChangeType.FieldArgumentDefaultChanged,
  ChangeType.FieldArgumentTypeChanged,
  ChangeType.DirectiveArgumentAdded,
  ChangeType.DirectiveArgumentRemoved,
  ChangeType.DirectiveArgumentDescriptionChanged,
  ChangeType.DirectiveArgumentDefaultValueChanged,
  ChangeType.DirectiveArgumentTypeChanged,
]);

// coordinate turns the library's dotted path into a schema coordinate:
// Type, Type.field, Type.field(arg), Enum.VALUE, @directive(arg).
export function coordinate(change) {
  const path = change.path ?? '';
  if (ARGUMENT_CHANGES.has(change.type)) {
    const dot = path.lastIndexOf('.');
    if (dot > 0) return `${path.slice(0, dot)}(${path.slice(dot + 1)})`;
  }
  return path || '(schema)';
}

const oneLine = (s) => s.replace(/\s*\n\s*/g, ' ');

// classify returns the changes as plain records, breaking first.
export async function classify(oldSDL, newSDL) {
  const changes = await diff(buildSchema(oldSDL), buildSchema(newSDL));
  const records = changes.map((c) => ({
    criticality: LABEL[c.criticality.level] ?? 'safe',
    coordinate: coordinate(c),
    type: c.type,
    // One line each: messages quote descriptions, which may span lines.
    message: oneLine(c.message),
    reason: oneLine(c.criticality.reason ?? ''),
  }));
  records.sort(
    (a, b) =>
      ORDER.indexOf(a.criticality) - ORDER.indexOf(b.criticality) ||
      a.coordinate.localeCompare(b.coordinate),
  );
  return records;
}

export function report(records) {
  if (records.length === 0) return 'no changes to the supergraph\n';
  const count = (level) => records.filter((r) => r.criticality === level).length;
  const width = Math.max(...records.map((r) => r.coordinate.length));
  let out = `${records.length} change(s) to the supergraph: ${count('breaking')} breaking, ${count('dangerous')} dangerous, ${count('safe')} safe\n`;
  for (const r of records) {
    out += `  ${r.criticality.padEnd(9)}  ${r.coordinate.padEnd(width)}  ${r.message}\n`;
    if (r.criticality !== 'safe' && r.reason) out += `  ${''.padEnd(9)}  ${''.padEnd(width)}  why: ${r.reason}\n`;
  }
  return out;
}

async function main(argv) {
  const json = argv.includes('--json');
  const files = argv.filter((a) => a !== '--json');
  if (files.length !== 2) {
    process.stderr.write('usage: schema-diff.mjs OLD.graphql NEW.graphql [--json]\n');
    return 2;
  }
  let sdl;
  try {
    sdl = files.map((f) => readFileSync(f, 'utf8'));
  } catch (err) {
    process.stderr.write(`schema-diff: ${err.message}\n`);
    return 2;
  }
  let records;
  try {
    records = await classify(sdl[0], sdl[1]);
  } catch (err) {
    process.stderr.write(`schema-diff: not a valid schema: ${err.message}\n`);
    return 2;
  }
  process.stdout.write(json ? JSON.stringify(records, null, 2) + '\n' : report(records));
  return records.some((r) => r.criticality === 'breaking') ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}

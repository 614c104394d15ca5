// Tests of the contract checks themselves (make contracts-test): each test
// builds a small git repository from tools/testdata, makes its changes as
// further commits (one, or a history of several) and runs tools/contracts.sh
// in it, as CI runs it on main.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const TOOLS = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = join(TOOLS, '..');
const SCRIPT = join(TOOLS, 'contracts.sh');
const FIXTURES = join(TOOLS, 'testdata');

let BUF;
let MART;

before(() => {
  BUF = execFileSync('go', ['tool', '-n', 'buf'], { cwd: TOOLS, encoding: 'utf8' }).trim();
  const bin = mkdtempSync(join(tmpdir(), 'contracts-bin-'));
  MART = join(bin, 'mart');
  execFileSync('go', ['build', '-o', MART, './cmd/mart'], { cwd: ROOT, stdio: 'inherit' });
});

const git = (dir, ...args) =>
  execFileSync('git', ['-c', 'user.name=contracts test', '-c', 'user.email=test@mart.invalid', ...args], {
    cwd: dir,
    encoding: 'utf8',
  });

// repo makes a git repository holding the fixture folder, committed once.
function repo(t, fixture = 'base') {
  const dir = mkdtempSync(join(tmpdir(), 'contracts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(FIXTURES, fixture), dir, { recursive: true });
  if (fixture === 'base') cpSync(join(ROOT, 'proto', 'buf.yaml'), join(dir, 'proto', 'buf.yaml'));
  git(dir, 'init', '-q');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'base');
  return dir;
}

// edit replaces one exact piece of text of a file (which must be there).
function edit(dir, file, from, to) {
  const path = join(dir, file);
  const text = readFileSync(path, 'utf8');
  assert.ok(text.includes(from), `${file} lacks ${JSON.stringify(from)}`);
  writeFileSync(path, text.replace(from, to));
}

// commit commits everything in dir and returns the new commit: its full id,
// and its short hash and subject as the checks name it (1a2b3c4 "subject").
function commit(dir, message = 'change') {
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', message);
  return head(dir);
}

// head is dir's HEAD commit, as commit returns it.
function head(dir) {
  const [id, name] = git(dir, 'log', '-1', '--format=%H%n%h "%s"').trim().split('\n');
  return { id, name, short: name.split(' ')[0] };
}

// setBaseline writes tools/contracts-baseline (not committed yet).
function setBaseline(dir, id) {
  mkdirSync(join(dir, 'tools'), { recursive: true });
  writeFileSync(join(dir, 'tools', 'contracts-baseline'), `${id}\n`);
}

// re matches the text s literally (hashes, quotes and parentheses included).
const re = (s) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

// check runs the contract checks in dir; MART=none unless composition is
// under test.
function check(dir, env = {}) {
  const r = spawnSync('bash', [SCRIPT], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, BUF, MART: 'none', ...env },
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

function assertFails(r, check) {
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, new RegExp(`contract checks failed: .*\\b${check}\\b`), r.out);
}

function assertPasses(r) {
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /contract checks passed/, r.out);
}

// --- supergraph -----------------------------------------------------------

test('without a previous commit everything passes', (t) => {
  const dir = repo(t);
  const r = check(dir);
  assertPasses(r);
  assert.match(r.out, /no previous commit/);
});

test('removing a field that clients query is reported breaking', (t) => {
  const dir = repo(t);
  edit(dir, 'schema/supergraph.graphql', '  sku: String!\n', '');
  commit(dir);
  const r = check(dir);
  assertFails(r, 'supergraph');
  assert.match(r.out, /^\s+breaking\s+Product\.sku\s+Field 'sku' was removed/m);
});

test('breaking argument changes name the argument as Type.field(arg)', (t) => {
  const dir = repo(t);
  edit(dir, 'schema/supergraph.graphql', 'product(id: ID!)', 'product(id: ID!, locale: String!)');
  edit(dir, 'schema/supergraph.graphql', 'first: Int = 20, ', '');
  commit(dir);
  const r = check(dir);
  assertFails(r, 'supergraph');
  assert.match(r.out, /^\s+breaking\s+Query\.product\(locale\)\s/m);
  assert.match(r.out, /^\s+breaking\s+Query\.products\(first\)\s/m);
});

test('removing an enum value is breaking, adding one is dangerous', (t) => {
  const dir = repo(t);
  edit(dir, 'schema/supergraph.graphql', '  ARCHIVED\n', '  DRAFT\n');
  commit(dir);
  const r = check(dir);
  assertFails(r, 'supergraph');
  assert.match(r.out, /^\s+breaking\s+Status\.ARCHIVED\s/m);
  assert.match(r.out, /^\s+dangerous\s+Status\.DRAFT\s/m);
});

test('adding an optional field is safe', (t) => {
  const dir = repo(t);
  edit(dir, 'schema/supergraph.graphql', '  name: String!\n', '  name: String!\n  description: String\n');
  commit(dir);
  const r = check(dir);
  assertPasses(r);
  assert.match(r.out, /^\s+safe\s+Product\.description\s/m);
  assert.match(r.out, /0 breaking, 0 dangerous, 1 safe/);
});

test('deprecating a field is safe', (t) => {
  const dir = repo(t);
  edit(dir, 'schema/supergraph.graphql', '  sku: String!\n', '  sku: String! @deprecated(reason: "use name")\n');
  commit(dir);
  const r = check(dir);
  assertPasses(r);
  assert.match(r.out, /^\s+safe\s+Product\.sku/m);
});

test('BREAKING-CHANGE-ACCEPTED in the commit message accepts a breaking change', (t) => {
  const dir = repo(t);
  edit(dir, 'schema/supergraph.graphql', '  sku: String!\n', '');
  commit(dir, 'Remove Product.sku\n\nBREAKING-CHANGE-ACCEPTED: deprecated since March, no client left.');
  const r = check(dir);
  assertPasses(r);
  assert.match(r.out, /^\s+breaking\s+Product\.sku\s/m); // still reported
  assert.match(r.out, /breaking changes accepted: the commit message of HEAD contains BREAKING-CHANGE-ACCEPTED/);
});

test('a change to schema/accepted-breaking-changes.md accepts a breaking change', (t) => {
  const dir = repo(t);
  edit(dir, 'schema/supergraph.graphql', '  sku: String!\n', '');
  writeFileSync(join(dir, 'schema/accepted-breaking-changes.md'), '- Product.sku removed: deprecated since March.\n');
  commit(dir);
  const r = check(dir);
  assertPasses(r);
  assert.match(r.out, /breaking changes accepted: this change adds or modifies schema\/accepted-breaking-changes\.md/);
});

test('an explanation committed earlier does not accept a later breaking change', (t) => {
  const dir = repo(t);
  writeFileSync(join(dir, 'schema/accepted-breaking-changes.md'), '- an old explanation\n');
  commit(dir, 'explain an old change');
  edit(dir, 'schema/supergraph.graphql', '  sku: String!\n', '');
  commit(dir);
  assertFails(check(dir), 'supergraph');
});

// --- protobuf -------------------------------------------------------------

const PROTO = 'proto/shop/v1/shop.proto';

test('renumbering a proto field fails buf breaking, naming file, line and field', (t) => {
  const dir = repo(t);
  edit(dir, PROTO, 'string sku = 2;', 'string sku = 6;');
  commit(dir);
  const r = check(dir);
  assertFails(r, 'proto-breaking');
  assert.match(r.out, /^proto\/shop\/v1\/shop\.proto:\d+:\d+:.*"sku"/m);
});

test('retyping a proto field fails buf breaking', (t) => {
  const dir = repo(t);
  edit(dir, PROTO, 'int64 price_amount = 3;', 'string price_amount = 3;');
  commit(dir);
  const r = check(dir);
  assertFails(r, 'proto-breaking');
  assert.match(r.out, /price_amount/);
});

test('removing a proto field fails unless its number and name are reserved', (t) => {
  const dir = repo(t);
  edit(dir, PROTO, '  string sku = 2;\n', '');
  commit(dir);
  assertFails(check(dir), 'proto-breaking');

  edit(dir, PROTO, '  int64 price_amount = 3;\n', '  reserved 2;\n  reserved "sku";\n  int64 price_amount = 3;\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '--amend', '-m', 'remove sku, reserved');
  assertPasses(check(dir));
});

test('adding a proto field passes', (t) => {
  const dir = repo(t);
  edit(dir, PROTO, '  google.protobuf.Timestamp created_at = 5;\n', '  google.protobuf.Timestamp created_at = 5;\n  string currency = 6;\n');
  commit(dir);
  const r = check(dir);
  assertPasses(r);
  assert.match(r.out, /old consumers still read new events/);
});

test('a proto that breaks the lint rules fails buf lint', (t) => {
  const dir = repo(t);
  edit(dir, PROTO, '// ProductCreated', 'enum Color {\n  RED = 0;\n}\n\n// ProductCreated');
  commit(dir);
  const r = check(dir);
  assertFails(r, 'proto-lint');
  assert.match(r.out, /^proto\/shop\/v1\/shop\.proto:\d+:\d+:.*RED/m);
});

// --- histories: every commit after the baseline ---------------------------

const REMOVE_SKU = ['schema/supergraph.graphql', '  sku: String!\n', ''];
const ADD_DESCRIPTION = ['schema/supergraph.graphql', '  name: String!\n', '  name: String!\n  description: String\n'];

// harmless commits a change no contract check reads.
function harmless(dir, message = 'notes') {
  writeFileSync(join(dir, 'NOTES.md'), `${message}\n`);
  return commit(dir, message);
}

test('a breaking commit followed by a harmless one fails, naming the breaking commit', (t) => {
  const dir = repo(t);
  edit(dir, ...REMOVE_SKU);
  const breaking = commit(dir, 'Remove Product.sku');
  const later = harmless(dir);
  const r = check(dir);
  assertFails(r, `supergraph@${breaking.short}`);
  assert.match(r.out, re(`FAIL: ${breaking.name}: breaking changes to the supergraph`));
  assert.match(r.out, /^\s+breaking\s+Product\.sku\s/m);
  assert.doesNotMatch(r.out, re(later.short)); // nothing to compare in it
  assert.match(r.out, /commits checked: 3, of which 2 change/);
});

test('each commit is compared with its parent, not with the start of the range', (t) => {
  const dir = repo(t);
  edit(dir, ...REMOVE_SKU);
  const breaking = commit(dir, 'Remove Product.sku');
  edit(dir, ...ADD_DESCRIPTION);
  const additive = commit(dir, 'Add Product.description');
  const r = check(dir);
  assertFails(r, `supergraph@${breaking.short}`);
  assert.doesNotMatch(r.out, re(`supergraph@${additive.short}`));
  assert.match(r.out, re(`supergraph changes in ${additive.name}\n1 change(s) to the supergraph: 0 breaking`));
});

test('BREAKING-CHANGE-ACCEPTED counts in the message of the breaking commit, wherever it is', (t) => {
  const dir = repo(t);
  edit(dir, ...REMOVE_SKU);
  const breaking = commit(dir, 'Remove Product.sku\n\nBREAKING-CHANGE-ACCEPTED: deprecated since March.');
  harmless(dir);
  const r = check(dir);
  assertPasses(r);
  assert.match(r.out, /^\s+breaking\s+Product\.sku\s/m); // still reported
  assert.match(r.out, re(`breaking changes accepted: the commit message of ${breaking.short} contains BREAKING-CHANGE-ACCEPTED`));
});

test('BREAKING-CHANGE-ACCEPTED in a later commit does not accept an earlier break', (t) => {
  const dir = repo(t);
  edit(dir, ...REMOVE_SKU);
  const breaking = commit(dir, 'Remove Product.sku');
  harmless(dir, 'notes\n\nBREAKING-CHANGE-ACCEPTED');
  assertFails(check(dir), `supergraph@${breaking.short}`);
});

test('a proto break in the middle of a history fails, naming its commit', (t) => {
  const dir = repo(t);
  edit(dir, PROTO, 'string sku = 2;', 'string sku = 6;');
  const breaking = commit(dir, 'Renumber sku');
  edit(dir, ...ADD_DESCRIPTION);
  commit(dir, 'Add Product.description');
  const r = check(dir);
  assertFails(r, `proto-breaking@${breaking.short}`);
  assert.match(r.out, re(`FAIL: ${breaking.name}: event contracts are not wire/JSON compatible`));
  assert.match(r.out, /^proto\/shop\/v1\/shop\.proto:\d+:\d+:.*"sku"/m);
});

test('a merged branch is checked commit by commit, merges against their first parent', (t) => {
  const dir = repo(t);
  const main = git(dir, 'branch', '--show-current').trim();
  git(dir, 'checkout', '-q', '-b', 'side');
  edit(dir, ...REMOVE_SKU);
  const breaking = commit(dir, 'Remove Product.sku');
  git(dir, 'checkout', '-q', main);
  harmless(dir);
  git(dir, 'merge', '-q', '--no-ff', '-m', 'Merge side', 'side');
  const merge = head(dir);
  const r = check(dir);
  assertFails(r, `supergraph@${breaking.short}`);
  assertFails(r, `supergraph@${merge.short}`);
});

// --- the baseline (tools/contracts-baseline) -------------------------------

const MOVED = 'CONTRACTS-BASELINE-MOVED';

// adopted makes the history base → "adopt" (records base as the baseline,
// with the marker) and returns the base commit.
function adopted(dir) {
  const base = head(dir);
  setBaseline(dir, base.id);
  commit(dir, `Record the contracts baseline\n\n${MOVED}: checks start here.`);
  return base;
}

test('commits up to the baseline are not checked', (t) => {
  const dir = repo(t);
  edit(dir, ...REMOVE_SKU);
  const breaking = commit(dir, 'Remove Product.sku');
  setBaseline(dir, breaking.id);
  const adopt = commit(dir, `Record the contracts baseline\n\n${MOVED}`);
  const r = check(dir);
  assertPasses(r);
  assert.match(r.out, re(`commits to check: 1, after the baseline ${breaking.name} (tools/contracts-baseline of HEAD)`));
  assert.match(r.out, re(`ok: ${adopt.name} moves the baseline (${MOVED})`));
  assert.doesNotMatch(r.out, /breaking\s+Product\.sku/);
});

test('moving the baseline past a breaking commit without CONTRACTS-BASELINE-MOVED fails, and the break is still reported', (t) => {
  const dir = repo(t);
  const base = adopted(dir);
  edit(dir, ...REMOVE_SKU);
  const breaking = commit(dir, 'Remove Product.sku');
  setBaseline(dir, breaking.id);
  const move = commit(dir, 'Move the baseline');
  const r = check(dir);
  assertFails(r, `contracts-baseline@${move.short}`);
  assertFails(r, `supergraph@${breaking.short}`);
  assert.match(r.out, re(`FAIL: ${move.name}: changes tools/contracts-baseline without ${MOVED}`));
  assert.match(r.out, re(`after the baseline ${base.name} (tools/contracts-baseline before ${move.name})`));
});

test('moves without the marker are undone one after another', (t) => {
  const dir = repo(t);
  adopted(dir);
  edit(dir, ...REMOVE_SKU);
  const first = commit(dir, 'Remove Product.sku');
  setBaseline(dir, first.id);
  commit(dir, 'Move the baseline');
  edit(dir, 'schema/supergraph.graphql', '  ARCHIVED\n', '');
  const second = commit(dir, 'Remove Status.ARCHIVED');
  setBaseline(dir, second.id);
  commit(dir, 'Move the baseline again');
  const r = check(dir);
  assertFails(r, `supergraph@${first.short}`);
  assertFails(r, `supergraph@${second.short}`);
});

test('a move with CONTRACTS-BASELINE-MOVED in its message is accepted', (t) => {
  const dir = repo(t);
  adopted(dir);
  edit(dir, ...REMOVE_SKU);
  const breaking = commit(dir, 'Remove Product.sku');
  setBaseline(dir, breaking.id);
  const move = commit(dir, `Move the baseline\n\n${MOVED}: Product.sku went out by hand, see the release notes.`);
  const r = check(dir);
  assertPasses(r);
  assert.match(r.out, re(`ok: ${move.name} moves the baseline (${MOVED})`));
  assert.doesNotMatch(r.out, /breaking\s+Product\.sku/); // before the baseline now
});

test('removing the baseline without the marker fails and keeps the old one', (t) => {
  const dir = repo(t);
  const base = adopted(dir);
  rmSync(join(dir, 'tools', 'contracts-baseline'));
  const removal = commit(dir, 'Drop the baseline');
  const r = check(dir);
  assertFails(r, `contracts-baseline@${removal.short}`);
  assert.match(r.out, re(`after the baseline ${base.name}`));
});

test('a baseline that is not an ancestor of HEAD fails, saying so', (t) => {
  const dir = repo(t);
  const main = git(dir, 'branch', '--show-current').trim();
  git(dir, 'checkout', '-q', '-b', 'side');
  const other = harmless(dir, 'elsewhere');
  git(dir, 'checkout', '-q', main);
  setBaseline(dir, other.id);
  const move = commit(dir, `Baseline on another branch\n\n${MOVED}`);
  const r = check(dir);
  assertFails(r, 'contracts-baseline');
  assert.match(r.out, re(`the baseline ${other.id} (tools/contracts-baseline of HEAD) is not an ancestor of HEAD`));
  assert.match(r.out, re(`last changed by ${move.name}`));
});

test('BASE overrides the baseline', (t) => {
  const dir = repo(t);
  edit(dir, ...REMOVE_SKU);
  commit(dir, 'Remove Product.sku');
  harmless(dir);
  assertFails(check(dir), 'supergraph');
  const r = check(dir, { BASE: 'HEAD~1' });
  assertPasses(r);
  assert.match(r.out, /commits to check: 1, after the baseline .* \(BASE=HEAD~1\)/);
});

test('uncommitted changes are checked against HEAD (a run before committing)', (t) => {
  const dir = repo(t);
  edit(dir, ...REMOVE_SKU);
  edit(dir, PROTO, 'string sku = 2;', 'string sku = 6;');
  const r = check(dir);
  assertFails(r, 'supergraph@uncommitted');
  assertFails(r, 'proto-breaking@uncommitted');

  writeFileSync(join(dir, 'schema/accepted-breaking-changes.md'), '- Product.sku removed.\n');
  edit(dir, PROTO, 'string sku = 6;', 'string sku = 2;');
  assertPasses(check(dir));
});

// --- composition (the real mart compose) ----------------------------------

// composed commits the fixture subgraphs with the supergraph mart composes
// from them, as make generate would.
function composed(t) {
  const dir = repo(t, 'compose');
  execFileSync(MART, ['compose', '--config', 'supergraph.yaml', '--out', 'schema/supergraph.graphql'], {
    cwd: dir,
    stdio: 'pipe',
  });
  commit(dir, 'compose');
  return dir;
}

test('subgraphs that compose into the committed supergraph pass', (t) => {
  const dir = composed(t);
  edit(dir, 'reviews.graphqls', '  rating: Float\n', '  rating: Float\n  count: Int\n');
  execFileSync(MART, ['compose'], { cwd: dir, stdio: 'pipe' });
  commit(dir);
  const r = check(dir, { MART });
  assertPasses(r);
  assert.match(r.out, /^\s+safe\s+Product\.count\s/m);
});

test('a subgraph that redefines a field incompatibly fails composition, naming it', (t) => {
  // cmd/mart's TestComposeFailsWithReadableErrors checks the message itself.
  const dir = composed(t);
  edit(dir, 'reviews.graphqls', '  price: Int! @shareable\n', '  price: String! @shareable\n');
  commit(dir);
  const r = check(dir, { MART });
  assertFails(r, 'composition');
  assert.match(r.out, /Product\.price/);
});

test('a committed supergraph that is not what the subgraphs compose to fails', (t) => {
  const dir = composed(t);
  edit(dir, 'products.graphqls', '  name: String!\n', '  name: String!\n  sku: String\n');
  commit(dir);
  const r = check(dir, { MART });
  assertFails(r, 'composition');
  assert.match(r.out, /is not what the subgraphs compose to now/);
  assert.match(r.out, /^\+\s+sku: String$/m);
});

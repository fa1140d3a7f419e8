// Tiny TAP emitter for the integration tests (read by automake's tap-driver.sh).
//
//   import { test, ok, equal, deepEqual, match } from '../lib/tap.mjs';
//   test('healthz answers', async () => { equal(res.status, 200, 'status'); });
//
// Tests run one after another once the main module has finished loading (top-level await is fine). Every
// assertion prints one `ok N - name` / `not ok N - name` line (plain TAP 13, no nesting, no YAML),
// with `#` diagnostics showing expected and actual on failure. A test that throws (or times out)
// is one failing line carrying the error. The run ends with the plan `1..N` and exit code 1 if
// anything failed. Assertions return whether they passed, so a test can stop early.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { inspect, isDeepStrictEqual } from 'node:util';

const tests = [];
const afterHooks = [];
const cleanupHooks = [];
let count = 0;
let failed = 0;
let current = null; // name of the running test, used as the default assertion name
let scheduled = false;
let finished = false;

function out(line) {
  process.stdout.write(line + '\n');
}

function show(v) {
  if (typeof v === 'string') return JSON.stringify(v.length > 2000 ? v.slice(0, 2000) + '…' : v);
  if (Buffer.isBuffer(v)) return show(v.toString('latin1'));
  return inspect(v, { depth: 6, breakLength: 100, maxStringLength: 2000, maxArrayLength: 50 });
}

/** Print `#` lines for a (possibly multi-line) diagnostic text. */
export function diag(text) {
  for (const line of String(text).split('\n')) out('# ' + line);
}

function point(pass, name, lines) {
  count++;
  const label = (name || current || 'assertion').replace(/[\r\n]+/g, ' ').replace(/#/g, '\\#');
  out(`${pass ? 'ok' : 'not ok'} ${count} - ${label}`);
  if (!pass) {
    failed++;
    for (const l of lines || []) diag(l);
  }
  return pass;
}

function scoped(name) {
  if (!name) return current;
  return current ? `${current}: ${name}` : name;
}

/** Passes when `cond` is truthy. `extra` (string or value) is printed on failure. */
export function ok(cond, name, extra) {
  const lines = [`got: ${show(cond)}`];
  if (extra !== undefined) lines.push(typeof extra === 'string' ? extra : show(extra));
  return point(Boolean(cond), scoped(name), lines);
}

/** Strict equality (Object.is semantics for NaN, === otherwise). */
export function equal(actual, expected, name, extra) {
  const pass = actual === expected || (Number.isNaN(actual) && Number.isNaN(expected));
  const lines = [`expected: ${show(expected)}`, `actual:   ${show(actual)}`];
  if (extra !== undefined) lines.push(typeof extra === 'string' ? extra : show(extra));
  return point(pass, scoped(name), lines);
}

/** Structural equality (node:util isDeepStrictEqual). */
export function deepEqual(actual, expected, name, extra) {
  const pass = isDeepStrictEqual(actual, expected);
  const lines = [`expected: ${show(expected)}`, `actual:   ${show(actual)}`];
  if (extra !== undefined) lines.push(typeof extra === 'string' ? extra : show(extra));
  return point(pass, scoped(name), lines);
}

/** `actual` (coerced to a string; undefined/null fail) must match the RegExp `re`. */
export function match(actual, re, name, extra) {
  const pass = actual !== undefined && actual !== null && re.test(String(actual));
  const lines = [`expected to match: ${re}`, `actual: ${show(actual)}`];
  if (extra !== undefined) lines.push(typeof extra === 'string' ? extra : show(extra));
  return point(pass, scoped(name), lines);
}

/** Always fails, with `extra` in diagnostics. */
export function fail(name, extra) {
  return point(false, scoped(name), extra === undefined ? [] : [typeof extra === 'string' ? extra : show(extra)]);
}

/** A passing point marked as skipped. */
export function skip(name, reason) {
  count++;
  out(`ok ${count} - ${scoped(name).replace(/#/g, '\\#')} # SKIP ${reason}`);
}

/** Register a test; `opts.timeout` (ms, default 60000) bounds it. */
export function test(name, fn, opts = {}) {
  tests.push({ name, fn, timeout: opts.timeout ?? 60000 });
  schedule();
}

/** Run after all tests, before the plan (may emit assertions; e.g. the sanitizer check).
 *  Hooks run in registration order, except those registered with `{ last: true }`, which run after
 *  all the others. */
export function after(fn, opts = {}) {
  afterHooks.push({ fn, last: Boolean(opts.last) });
  schedule();
}

/** Run at the very end and on abnormal exit (kill processes, remove temp dirs). Must not throw. */
export function onCleanup(fn) {
  cleanupHooks.push(fn);
}

// Tests start once the main module has finished evaluating, top-level awaits included:
// importing the main module again resolves exactly then.
async function mainLoaded() {
  try {
    const main = process.argv[1] && realpathSync(process.argv[1]);
    if (main) await import(pathToFileURL(main).href);
  } catch { /* the main module's own errors are reported by node */ }
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  setImmediate(() => {
    mainLoaded().then(run).catch((e) => { fail('test runner', e && e.stack || String(e)); finish(); });
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

async function runCleanups() {
  while (cleanupHooks.length) {
    const fn = cleanupHooks.pop();
    try { await withTimeout(Promise.resolve().then(fn), 15000, 'cleanup'); } catch (e) { diag(`cleanup: ${e && e.message}`); }
  }
}

async function run() {
  for (const t of tests) {
    current = t.name;
    const before = count;
    try {
      await withTimeout(Promise.resolve().then(t.fn), t.timeout, `test "${t.name}"`);
      if (count === before) point(true, t.name);
    } catch (e) {
      point(false, `${t.name} (threw)`, [e && e.stack ? e.stack : show(e)]);
    }
    current = null;
  }
  const hooks = [...afterHooks.filter((h) => !h.last), ...afterHooks.filter((h) => h.last)];
  for (const { fn } of hooks) {
    try { await withTimeout(Promise.resolve().then(fn), 30000, 'after hook'); } catch (e) { point(false, 'after hook (threw)', [e && e.stack || show(e)]); }
  }
  await finish();
}

async function finish() {
  if (finished) return;
  finished = true;
  await runCleanups();
  out(`1..${count}`);
  if (failed) diag(`${failed} of ${count} failed`);
  process.exit(failed ? 1 : 0);
}

// Abnormal endings: still clean up, and leave a plan so tap-driver reports the failure.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    fail(`interrupted by ${sig}`);
    finish();
  });
}
process.on('unhandledRejection', (e) => {
  fail('unhandled promise rejection', e && e.stack || show(e));
});
process.on('uncaughtException', (e) => {
  fail('uncaught exception', e && e.stack || show(e));
  finish();
});

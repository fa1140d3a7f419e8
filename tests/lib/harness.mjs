// Helpers shared by the integration tests: environment, temp dirs, process tracking, lighttpd,
// `--listen` gateways, curl, cgi-fcgi, SSE parsing, and the end-of-run sanitizer check.
//
// Environment (set by `make check`): OAI_BIN (the gateway binary), OAI_SRCDIR, OAI_BUILDDIR,
// ASAN_OPTIONS / UBSAN_OPTIONS with `log_path=<prefix>`. Every process a test starts gets a
// hermetic environment (PATH, LANG, the sanitizer options, and what the test passes) so that no
// real secret from the caller's environment can reach a gateway or a log.
import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, diag, fail, ok, onCleanup } from './tap.mjs';
import { parseCgi } from './fcgi.mjs';

export { parseCgi };

export const BIN = process.env.OAI_BIN || '';
export const SRCDIR = process.env.OAI_SRCDIR || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const BUILDDIR = process.env.OAI_BUILDDIR || '';
export const LIGHTTPD = '/usr/sbin/lighttpd';
export const CGI_FCGI = '/usr/bin/cgi-fcgi';
const TEST_NAME = path.basename(process.argv[1] || 'test', '.mjs');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A random printable secret, made at test time (never a real one). */
export const randomSecret = (prefix = 'sk-it-') => prefix + crypto.randomBytes(12).toString('hex');

// ---- sanitizer logs ----------------------------------------------------------------------------
// Each test file writes its reports to `<prefix>.<testname>.<pid>` so that files run in parallel
// by `make -j` do not see each other's reports.
function sanitizerPrefix() {
  for (const v of [process.env.ASAN_OPTIONS, process.env.UBSAN_OPTIONS]) {
    const m = /(?:^|:)log_path=([^:]+)/.exec(v || '');
    if (m) return m[1];
  }
  return null;
}
const SAN_BASE = sanitizerPrefix();
export const SAN_PREFIX = SAN_BASE ? `${SAN_BASE}.${TEST_NAME}` : null;
function sanOpts(v) {
  if (!v) return v;
  if (!SAN_PREFIX) return v;
  return /(?:^|:)log_path=/.test(v) ? v.replace(/((?:^|:)log_path=)[^:]+/, `$1${SAN_PREFIX}`) : `${v}:log_path=${SAN_PREFIX}`;
}
if (SAN_PREFIX) {
  fs.mkdirSync(path.dirname(SAN_PREFIX), { recursive: true });
  // Reports left by an earlier run of this same file are not ours.
  for (const f of sanitizerFiles()) fs.rmSync(f, { force: true });
}
function sanitizerFiles() {
  if (!SAN_PREFIX) return [];
  const dir = path.dirname(SAN_PREFIX);
  const base = path.basename(SAN_PREFIX) + '.';
  try {
    return fs.readdirSync(dir).filter((f) => f.startsWith(base)).map((f) => path.join(dir, f));
  } catch { return []; }
}

/** The environment every spawned process starts from (plus `extra`). */
export function baseEnv(extra = {}) {
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', LANG: 'C.UTF-8' };
  if (process.env.ASAN_OPTIONS) env.ASAN_OPTIONS = sanOpts(process.env.ASAN_OPTIONS);
  if (process.env.UBSAN_OPTIONS) env.UBSAN_OPTIONS = sanOpts(process.env.UBSAN_OPTIONS);
  if (process.env.LSAN_OPTIONS) env.LSAN_OPTIONS = process.env.LSAN_OPTIONS;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

// ---- temp dirs and processes -------------------------------------------------------------------
const tempDirs = new Set();
const procs = new Set();
const marks = new Map(); // lighttpd run mark -> the gateway binary it spawns

/** mkdtemp under os.tmpdir() (`oai-it-…`), removed at the end of the run. */
export function tmpDir(tag = '') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `oai-it-${tag}`));
  tempDirs.add(d);
  return d;
}
export function removeDir(d) {
  try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ }
  tempDirs.delete(d);
}

/**
 * spawn() that is tracked (killed at the end of the run), collects stdout/stderr, and offers
 * `exited` (a promise of {code, signal}) and `waitExit(ms)` (null on timeout).
 */
export function spawnTracked(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  child.out = [];
  child.err = [];
  child.stdout && child.stdout.on('data', (d) => child.out.push(d));
  child.stderr && child.stderr.on('data', (d) => child.err.push(d));
  child.stdin && child.stdin.on('error', () => {}); // EPIPE when the child exits early
  child.exitInfo = null;
  child.exited = new Promise((resolve) => {
    child.on('error', (e) => { child.spawnError = e; child.exitInfo = { code: null, signal: null, error: e }; resolve(child.exitInfo); });
    child.on('exit', (code, signal) => { child.exitInfo = { code, signal }; resolve(child.exitInfo); });
  });
  child.stdoutText = () => Buffer.concat(child.out).toString('utf8');
  child.stderrText = () => Buffer.concat(child.err).toString('utf8');
  child.waitExit = (ms) => Promise.race([child.exited, sleep(ms).then(() => null)]);
  procs.add(child);
  child.exited.then(() => procs.delete(child));
  return child;
}

/** SIGTERM, wait `ms`, then SIGKILL. Returns the exit info of the graceful stop (null if killed). */
export async function stopProc(child, ms = 5000, sig = 'SIGTERM') {
  if (!child || child.exitInfo) return child && child.exitInfo;
  try { child.kill(sig); } catch { /* gone */ }
  const r = await child.waitExit(ms);
  if (r) return r;
  try { child.kill('SIGKILL'); } catch { /* gone */ }
  await child.waitExit(2000);
  return null;
}

/** Run a program to completion: {code, signal, stdout, stderr, timedOut}. */
export async function run(cmd, args, { env, input, timeout = 20000, cwd } = {}) {
  const child = spawnTracked(cmd, args, { env: env || baseEnv(), cwd });
  if (input !== undefined && input !== null) child.stdin.end(input);
  else child.stdin.end();
  let timedOut = false;
  let r = await child.waitExit(timeout);
  if (!r) {
    timedOut = true;
    child.kill('SIGKILL');
    r = await child.exited;
  }
  await new Promise((res) => setImmediate(res));
  return { code: r.code, signal: r.signal, stdout: child.stdoutText(), stderr: child.stderrText(), stdoutBuf: Buffer.concat(child.out), timedOut, error: r.error };
}

/** Pids of gateway processes (exe = `bin`, default $OAI_BIN) whose environment carries OAI_IT_MARK=<mark>. */
export function gatewayPids(mark, bin = BIN) {
  const pids = [];
  let exe = null;
  try { exe = fs.realpathSync(bin); } catch { return pids; }
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const pexe = fs.readlinkSync(`/proc/${ent}/exe`).replace(/ \(deleted\)$/, '');
      if (pexe !== exe) continue;
      if (mark !== undefined) {
        const envs = fs.readFileSync(`/proc/${ent}/environ`, 'latin1').split('\0');
        if (!envs.includes(`OAI_IT_MARK=${mark}`)) continue;
      }
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'latin1');
      if (/\) Z /.test(stat)) continue; // zombie: already dead
      pids.push(Number(ent));
    } catch { /* raced with exit */ }
  }
  return pids;
}

/** Pids of processes whose command line contains `needle` (like `pgrep -f`). */
export function pgrepF(needle) {
  const pids = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent) || Number(ent) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${ent}/cmdline`, 'latin1').replace(/\0/g, ' ');
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'latin1');
      if (cmd.includes(needle) && !/\) Z /.test(stat)) pids.push(Number(ent));
    } catch { /* raced */ }
  }
  return pids;
}

function killPids(pids) {
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
}

async function stopAll() {
  await Promise.all([...procs].map((c) => stopProc(c, 4000)));
  for (const [m, b] of marks) killPids(gatewayPids(m, b));
}

onCleanup(async () => {
  for (const c of procs) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  for (const [m, b] of marks) killPids(gatewayPids(m, b));
  for (const d of [...tempDirs]) removeDir(d);
});

// Last thing before the plan: stop everything (sanitizers write at exit), then look for reports.
after(async () => {
  await stopAll();
  await sleep(200);
  const files = sanitizerFiles();
  if (!SAN_PREFIX) {
    ok(true, 'no sanitizer reports (no log_path in ASAN_OPTIONS/UBSAN_OPTIONS: not checked)');
    return;
  }
  if (!files.length) {
    ok(true, 'no sanitizer reports');
    return;
  }
  const text = files.map((f) => `== ${f}\n${fs.readFileSync(f, 'utf8').slice(0, 20000)}`).join('\n');
  fail('no sanitizer reports', text);
}, { last: true });

// ---- ports and readiness -----------------------------------------------------------------------
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once a connection to `addr` (unix path or {host, port}) is accepted. */
export function canConnect(addr, timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = net.connect(typeof addr === 'string' ? { path: addr } : addr);
    const t = setTimeout(() => { s.destroy(); resolve(false); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}

// ---- HTTP clients ------------------------------------------------------------------------------
function parseHeaderBlock(text) {
  // curl -D writes one block per response (100 Continue, redirects): keep the last one.
  const blocks = text.split(/\r?\n\r?\n/).filter((b) => /^HTTP\//.test(b.trim()));
  const last = (blocks[blocks.length - 1] || '').trim();
  const lines = last.split(/\r?\n/);
  const status = parseInt((lines[0] || '').split(' ')[1], 10);
  const headers = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  return { status, headers, headerText: last };
}

function tryJson(s) { try { return JSON.parse(s); } catch { return undefined; } }

/** curl -sS with `args` (URL included): {status, headers (lower-case), body, json, code, stderr}. */
export async function curl(args, { input, timeout = 30000 } = {}) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'oai-it-curl-'));
  try {
    const h = path.join(d, 'h');
    const b = path.join(d, 'b');
    const r = await run('curl', ['-sS', '--max-time', String(Math.ceil(timeout / 1000)), '-D', h, '-o', b, '-w', '%{http_code}', ...args],
      { env: baseEnv(), input, timeout: timeout + 5000 });
    const headerText = fs.existsSync(h) ? fs.readFileSync(h, 'latin1') : '';
    const bodyBuf = fs.existsSync(b) ? fs.readFileSync(b) : Buffer.alloc(0);
    const parsed = parseHeaderBlock(headerText);
    const body = bodyBuf.toString('utf8');
    return { status: parsed.status || parseInt(r.stdout, 10) || 0, headers: parsed.headers, headerText: parsed.headerText, body, bodyBuf, json: tryJson(body), code: r.code, stderr: r.stderr };
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

/**
 * curl with fetch-like options: {method, headers, body (string/Buffer, sent from stdin with
 * --data-binary @-), args (more curl args)}. JSON content type unless headers set one.
 */
export function curlReq(url, { method, headers = {}, body, args = [], timeout } = {}) {
  const a = [];
  if (method) a.push('-X', method);
  const hasCt = Object.keys(headers).some((k) => k.toLowerCase() === 'content-type');
  if (body !== undefined && !hasCt) a.push('-H', 'Content-Type: application/json');
  for (const [k, v] of Object.entries(headers)) a.push('-H', `${k}: ${v}`);
  if (body !== undefined) a.push('--data-binary', '@-');
  a.push(...args, url);
  return curl(a, { input: body === undefined ? undefined : body, timeout });
}

/** fetch() returning {status, headers (lower-case object), body, json}. */
export async function fetchText(url, init = {}) {
  const res = await fetch(url, { signal: AbortSignal.timeout(init.timeout || 30000), ...init });
  const body = await res.text();
  const headers = {};
  res.headers.forEach((v, k) => { headers[k] = v; });
  return { status: res.status, headers, body, json: tryJson(body), res };
}

/** node:http request (for `localAddress` etc.): {status, headers, body, json}. */
export function httpRequest(url, { method = 'GET', headers = {}, body, localAddress, timeout = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const b = body === undefined ? undefined : Buffer.from(body);
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method, localAddress,
      headers: { ...(b ? { 'content-length': String(b.length) } : {}), ...headers },
      timeout,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, headers: res.headers, body: text, json: tryJson(text) });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    if (b) req.write(b);
    req.end();
  });
}

// ---- lighttpd ----------------------------------------------------------------------------------
// The key checker probes every key at start; tests that count upstream calls or script the mock's
// answers keep it off unless they set KEY_CHECK_PERIOD_S themselves.
export const CHECKER_OFF = { KEY_CHECK_PERIOD_S: '0' };

export function renderConf({ port, rundir, mount = '/', procs = 2, extra = '', statePath, bin = BIN }) {
  const tpl = path.join(SRCDIR, 'etc/lighttpd.conf');
  const script = path.join(SRCDIR, 'scripts/render-lighttpd-conf.sh');
  return run('sh', [script, tpl], {
    env: baseEnv({
      HOST: '127.0.0.1', PORT: port, RUNDIR: rundir, BIN: bin, STATE_PATH: statePath, MOUNT: mount,
      PROCS: procs,
      // The renderer substitutes with sed: one line only (lighttpd accepts several statements per line).
      EXTRA: String(extra).split('\n').map((l) => l.trim()).filter(Boolean).join(' '),
    }),
  }).then((r) => {
    if (r.code !== 0) throw new Error(`render-lighttpd-conf.sh failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  });
}

/**
 * Start lighttpd in the foreground on a free 127.0.0.1 port.
 *   env:      extra environment for lighttpd (inherited by the gateways it spawns)
 *   mount, procs, extra: template parameters (see scripts/render-lighttpd-conf.sh)
 *   stateDir: directory for state.db (default: the run dir)
 *   config:   ({port, rundir, statePath}) => config text, instead of the rendered template
 *   healthPath: path polled until 200 (default <mount>/healthz); null = only wait for the port
 *   bin:      the gateway binary (default $OAI_BIN)
 * Returns {url (origin + mount, no trailing slash), origin, port, rundir, statePath, proc, mark,
 * errorLog(), stop()}.
 */
export async function startLighttpd(opts = {}) {
  // freePort() can race with another process taking the port: retry on EADDRINUSE.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startLighttpdOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test(e.errorLog || '')) throw e;
      if (e.handle) await e.handle.stopAndClean();
    }
  }
}

async function startLighttpdOnce({ env = {}, mount = '/', procs = 2, extra = '', stateDir, config, healthPath, timeout = 10000, bin = BIN } = {}) {
  if (!bin) throw new Error('OAI_BIN is not set');
  const rundir = tmpDir('lh-');
  const port = await freePort();
  const statePath = path.join(stateDir || rundir, 'state.db');
  const text = config ? await config({ port, rundir, statePath }) : await renderConf({ port, rundir, mount, procs, extra, statePath, bin });
  const conf = path.join(rundir, 'lighttpd.conf');
  fs.writeFileSync(conf, text);
  const mark = path.basename(rundir);
  marks.set(mark, bin);
  const proc = spawnTracked(LIGHTTPD, ['-D', '-f', conf], { env: baseEnv({ OAI_IT_MARK: mark, ...CHECKER_OFF, ...env }) });
  const origin = `http://127.0.0.1:${port}`;
  const m = mount.replace(/\/+$/, '');
  // lighttpd -D leaves the gateways' stderr (their log lines) on its own stderr: return both.
  const errorLog = () => {
    let text = '';
    try { text = fs.readFileSync(path.join(rundir, 'lighttpd-error.log'), 'utf8'); } catch { /* none yet */ }
    const err = proc.stderrText();
    return err ? `${text}--- lighttpd stderr (gateway logs)\n${err}` : text;
  };
  const h = {
    url: origin + m, origin, port, rundir, statePath, proc, mark, conf, errorLog,
    gatewayPids: () => gatewayPids(mark, bin),
    async stop() {
      const r = await stopProc(proc, 5000);
      return r;
    },
    async stopAndClean() {
      await h.stop();
      for (let i = 0; i < 30 && gatewayPids(mark, bin).length; i++) await sleep(100);
      killPids(gatewayPids(mark, bin));
      removeDir(rundir);
    },
  };
  const probe = healthPath === undefined ? `${m}/healthz` : healthPath;
  const deadline = Date.now() + timeout;
  let lastErr = '';
  for (;;) {
    if (proc.exitInfo) {
      const e = new Error(`lighttpd exited early (${JSON.stringify(proc.exitInfo)})\n${errorLog()}`);
      e.errorLog = errorLog();
      e.handle = h;
      throw e;
    }
    if (probe === null) {
      if (await canConnect({ host: '127.0.0.1', port })) break;
    } else {
      try {
        const r = await fetchText(origin + probe, { timeout: 2000 });
        if (r.status === 200) break;
        lastErr = `status ${r.status}: ${r.body.slice(0, 300)}`;
      } catch (e) { lastErr = e.message; }
    }
    if (Date.now() > deadline) {
      const log = errorLog();
      diag(`lighttpd not ready: ${lastErr}\n--- lighttpd-error.log\n${log}`);
      const e = new Error(`lighttpd on ${origin} not ready after ${timeout} ms (${lastErr})`);
      e.errorLog = log;
      e.handle = h;
      await h.stop();
      throw e;
    }
    await sleep(100);
  }
  return h;
}

/** Diagnostics helper: print a lighttpd's error log. */
export function dumpLog(h, what = 'lighttpd-error.log') {
  if (h) diag(`--- ${what}\n${h.errorLog()}`);
}

// ---- standalone gateway (--listen) -------------------------------------------------------------
/**
 * Start `$OAI_BIN --listen ADDR [more args]`; resolves once ADDR accepts connections.
 * `args` is the argument list after the binary (must include --listen ADDR). Returns
 * {proc, addr (path or {host, port}), stop(ms)}.
 */
export async function startListen(args, env = {}, { timeout = 10000 } = {}) {
  if (!BIN) throw new Error('OAI_BIN is not set');
  const i = args.indexOf('--listen');
  const spec = i >= 0 ? args[i + 1] : null;
  if (!spec) throw new Error('startListen: --listen ADDR missing');
  let addr;
  if (spec.startsWith('/')) addr = spec;
  else {
    const j = spec.lastIndexOf(':');
    addr = { host: spec.slice(0, j), port: Number(spec.slice(j + 1)) };
  }
  const proc = spawnTracked(BIN, args, { env: baseEnv({ ...CHECKER_OFF, ...env }) });
  proc.stdin.end();
  const deadline = Date.now() + timeout;
  while (!(await canConnect(addr))) {
    if (proc.exitInfo) throw new Error(`${BIN} ${args.join(' ')} exited early (${JSON.stringify(proc.exitInfo)}): ${proc.stderrText()}`);
    if (Date.now() > deadline) {
      await stopProc(proc, 2000);
      throw new Error(`${BIN} ${args.join(' ')}: ${spec} not accepting after ${timeout} ms; stderr: ${proc.stderrText()}`);
    }
    await sleep(50);
  }
  return { proc, addr, spec, stop: (ms = 5000) => stopProc(proc, ms) };
}

// ---- cgi-fcgi ----------------------------------------------------------------------------------
/**
 * `env -i <env> cgi-fcgi -bind -connect SOCK` with `body` on stdin. cgi-fcgi sends its whole
 * environment as FastCGI params and forwards stdin only up to CONTENT_LENGTH, which is set to the
 * body length unless `env` has one. Returns parseCgi(stdout) plus {code, stderr}.
 */
export async function cgiFcgi(sock, env, body = '', { timeout = 20000 } = {}) {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const e = { ...env };
  if (b.length && e.CONTENT_LENGTH === undefined) e.CONTENT_LENGTH = String(b.length);
  const r = await run('env', ['-i', ...Object.entries(e).map(([k, v]) => `${k}=${v}`), CGI_FCGI, '-bind', '-connect', sock],
    { env: {}, input: b, timeout });
  return { ...parseCgi(r.stdoutBuf), code: r.code, stderr: r.stderr, timedOut: r.timedOut };
}

/** The CGI/FastCGI params of a request, as a web server would send them. */
export function cgiEnv({ method = 'GET', uri = '/', scriptName = '', pathInfo, host = '127.0.0.1:7860', body, contentType, headers = {}, extra = {} } = {}) {
  const q = uri.indexOf('?');
  const p = q >= 0 ? uri.slice(0, q) : uri;
  const env = {
    GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_SOFTWARE: 'oai-it',
    REQUEST_METHOD: method, REQUEST_URI: uri, SCRIPT_NAME: scriptName,
    QUERY_STRING: q >= 0 ? uri.slice(q + 1) : '',
    SERVER_NAME: host.split(':')[0], SERVER_PORT: host.split(':')[1] || '80', SERVER_ADDR: '127.0.0.1',
    REMOTE_ADDR: '127.0.0.1', REMOTE_PORT: '40000', HTTP_HOST: host, REQUEST_SCHEME: 'http',
  };
  const pi = pathInfo === undefined ? p.slice(scriptName.length) : pathInfo;
  if (pi !== null) env.PATH_INFO = pi;
  if (body !== undefined && body !== null) {
    env.CONTENT_LENGTH = String(Buffer.byteLength(body));
    env.CONTENT_TYPE = contentType || 'application/json';
  }
  for (const [k, v] of Object.entries(headers)) env['HTTP_' + k.toUpperCase().replace(/-/g, '_')] = v;
  return { ...env, ...extra };
}

// ---- SSE ---------------------------------------------------------------------------------------
/** Parse an SSE stream: {events: [{event, data, json}], comments: [text]}. `event` defaults to 'message'. */
export function sse(text) {
  const events = [];
  const comments = [];
  let ev = null;
  let data = [];
  const dispatch = () => {
    if (data.length || ev !== null) {
      const d = data.join('\n');
      events.push({ event: ev === null ? 'message' : ev, data: d, json: tryJson(d) });
    }
    ev = null;
    data = [];
  };
  for (const line of String(text).split(/\r\n|\r|\n/)) {
    if (line === '') { dispatch(); continue; }
    if (line.startsWith(':')) { comments.push(line.slice(1).trim()); continue; }
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') ev = value;
    else if (field === 'data') data.push(value);
  }
  dispatch();
  return { events, comments };
}

/**
 * Read an SSE body incrementally (a fetch Response, or any async iterable of byte chunks) and
 * yield each item as it arrives, stamped with Date.now(): {t, event, data, json} for events
 * (`event` defaults to 'message') and {t, comment} for `:` comment lines (text after the colon,
 * trimmed). Lets a test see when each event arrived, not just what arrived.
 */
export async function* sseItems(source) {
  const body = source && source.body ? source.body : source;
  const dec = new TextDecoder();
  let buf = '';
  let ev = null;
  let data = [];
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(buf[i] === '\r' && buf[i + 1] === '\n' ? i + 2 : i + 1);
      if (line === '') {
        if (data.length || ev !== null) {
          const d = data.join('\n');
          yield { t: Date.now(), event: ev === null ? 'message' : ev, data: d, json: tryJson(d) };
        }
        ev = null;
        data = [];
        continue;
      }
      if (line.startsWith(':')) { yield { t: Date.now(), comment: line.slice(1).trim() }; continue; }
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') ev = value;
      else if (field === 'data') data.push(value);
    }
  }
  if (data.length) {
    const d = data.join('\n');
    yield { t: Date.now(), event: ev === null ? 'message' : ev, data: d, json: tryJson(d) };
  }
}

// ---- process memory ----------------------------------------------------------------------------
/** Fields of /proc/<pid>/status, numbers in kB for the Vm* lines (e.g. VmHWM, VmRSS); null if gone. */
export function procStatus(pid) {
  try {
    const out = {};
    for (const line of fs.readFileSync(`/proc/${pid}/status`, 'latin1').split('\n')) {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const k = line.slice(0, i);
      const v = line.slice(i + 1).trim();
      const m = /^(\d+) kB$/.exec(v);
      out[k] = m ? Number(m[1]) : v;
    }
    return out;
  } catch { return null; }
}

// ---- shared request bodies and shape checks ----------------------------------------------------
export const TEST_MESSAGE = { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Hi' }] };
export const NON_TEST_MESSAGE = { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Write a poem about lighthouses.' }] };

/** True if `j` is an OpenAI error body {"error":{"message","type","param","code"}}. */
export function isOpenAIError(j) {
  return Boolean(j && typeof j === 'object' && j.error && typeof j.error === 'object'
    && typeof j.error.message === 'string' && typeof j.error.type === 'string'
    && 'param' in j.error && 'code' in j.error);
}
/** True if `j` is an Anthropic error body {"type":"error","error":{"type","message"}}. */
export function isAnthropicError(j) {
  return Boolean(j && typeof j === 'object' && j.type === 'error' && j.error && typeof j.error === 'object'
    && typeof j.error.type === 'string' && typeof j.error.message === 'string');
}

/** Skip-proofing: fail loudly when the binary is missing instead of silently passing. */
export function requireBin() {
  if (!BIN || !fs.existsSync(BIN)) {
    fail('OAI_BIN is set and exists', `OAI_BIN=${JSON.stringify(BIN)}`);
    return false;
  }
  return true;
}

export { fsp };

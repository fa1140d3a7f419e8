#!/usr/bin/env node
// bench/concurrency.mjs - how much one held request costs the gateway, and whether it blocks others.
//
// Starts `oai-fcgi --listen <unix socket>` in a temp dir, opens N FastCGI requests to
// POST /proxy/gcp/claude/v1/chat/completions that send BEGIN_REQUEST, all PARAMS and only a prefix
// of the body, then hold (each occupies one gateway thread). While they are held it measures the
// gateway's RSS / high-water mark / thread count and the latency of 20 sequential /healthz
// requests; then it sends the rest of every body (the SillyTavern test message), checks that all N
// get a 200 with "Hello!", checks that the extra threads retire, and times SIGTERM -> exit.
//
//   node bench/concurrency.mjs [--n 500] [--bin PATH] [--healthz 20] [--timeout 120]
//
// Exit status: 0 ok; 1 a held request failed, a /healthz took > 1 s or failed, or the gateway
// misbehaved (crash, non-zero exit); 2 bad usage; 3 the whole run exceeded --timeout seconds.
// Node 20, no npm dependencies. Talks only to a unix socket in its own temp dir.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { FcgiConn, fcgiRequest } from '../tests/lib/fcgi.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');

// ---- options -----------------------------------------------------------------------------------
const opt = { n: 500, bin: process.env.OAI_BIN || path.join(ROOT, 'build', 'oai-fcgi'), healthz: 20, timeout: 120 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const m = /^--(n|bin|healthz|timeout)(?:=(.*))?$/.exec(a);
  if (!m) {
    console.error(`usage: node bench/concurrency.mjs [--n 500] [--bin PATH] [--healthz 20] [--timeout 120] (unknown: ${a})`);
    process.exit(2);
  }
  const v = m[2] !== undefined ? m[2] : process.argv[++i];
  if (v === undefined) { console.error(`--${m[1]} needs a value`); process.exit(2); }
  opt[m[1]] = m[1] === 'bin' ? v : Number(v);
}
if (!Number.isInteger(opt.n) || opt.n < 1 || opt.n > 2000) { console.error('--n must be 1..2000 (the gateway runs at most 2048 threads)'); process.exit(2); }
if (!fs.existsSync(opt.bin)) { console.error(`gateway binary not found: ${opt.bin} (build it: cd build && make oai-fcgi)`); process.exit(2); }

// ---- the request ---------------------------------------------------------------------------------
const BODY = '{"model":"m","messages":[{"role":"user","content":"Hi"}]}';
const PREFIX = BODY.slice(0, 20); // '{"model":"m","messag' - not valid JSON on its own
const REST = BODY.slice(PREFIX.length);
const GEN_PATH = '/proxy/gcp/claude/v1/chat/completions';

function params(method, uri, body) {
  const p = {
    GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_SOFTWARE: 'oai-bench',
    REQUEST_METHOD: method, REQUEST_URI: uri, SCRIPT_NAME: '', PATH_INFO: uri, QUERY_STRING: '',
    SERVER_NAME: '127.0.0.1', SERVER_PORT: '7860', SERVER_ADDR: '127.0.0.1',
    REMOTE_ADDR: '127.0.0.1', REMOTE_PORT: '40000', HTTP_HOST: '127.0.0.1:7860', REQUEST_SCHEME: 'http',
  };
  if (body !== undefined) {
    p.CONTENT_LENGTH = String(Buffer.byteLength(body));
    p.CONTENT_TYPE = 'application/json';
  }
  return p;
}

// ---- process bookkeeping and cleanup --------------------------------------------------------------
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oai-bench-conc-'));
const SOCK = path.join(tmp, 'gw.sock');
const LOG = path.join(tmp, 'gateway.log');
let gw = null;
let gwExit = null; // {code, signal, at}
const held = [];
let cleaned = false;

function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of held) { try { c.destroy(); } catch { /* already gone */ } }
  if (gw && gwExit === null) { try { process.kill(gw.pid, 'SIGKILL'); } catch { /* gone */ } }
  try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* best effort */ }
}
function logTail(lines = 15) {
  try { return fs.readFileSync(LOG, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return ''; }
}
function die(code, msg) {
  console.error(`concurrency: ${msg}`);
  const t = logTail();
  if (t) console.error(`--- gateway log (tail) ---\n${t}`);
  cleanup();
  process.exit(code);
}
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => die(130, `interrupted by ${s}`));
const watchdog = setTimeout(() => die(3, `aborted: the run took more than ${opt.timeout} s`), opt.timeout * 1000);
watchdog.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function procStatus(pid) {
  const txt = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => { const m = new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(txt); return m ? Number(m[1]) : null; };
  return { rss: get('VmRSS'), hwm: get('VmHWM'), threads: get('Threads') };
}

async function metricsInFlight() {
  const r = await fcgiRequest(SOCK, params('GET', '/metrics'), '', { timeoutMs: 5000 });
  const m = /^oai_fcgi_requests_in_flight (\d+)$/m.exec(r.body || '');
  if (r.status !== 200 || !m) throw new Error(`/metrics answered ${r.status}: ${(r.body || '').slice(0, 200)}`);
  return Number(m[1]) - 1; // the /metrics request counts itself
}

async function healthz() {
  const t0 = performance.now();
  const r = await fcgiRequest(SOCK, params('GET', '/healthz'), '', { timeoutMs: 5000 });
  const ms = performance.now() - t0;
  if (r.status !== 200 || r.body !== 'ok\n') throw new Error(`/healthz answered ${r.status} ${JSON.stringify(r.body)}`);
  return ms;
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const r2 = (x) => Math.round(x * 100) / 100;

// ---- run ---------------------------------------------------------------------------------------
async function main() {
  const problems = [];
  const logFd = fs.openSync(LOG, 'a');
  gw = spawn(opt.bin, ['--listen', SOCK], {
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', STATE_PATH: path.join(tmp, 'state.db') },
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  gw.on('exit', (code, signal) => { gwExit = { code, signal, at: performance.now() }; });

  // Wait for the socket, then warm up (SQLite opened, first allocations done) before the idle sample.
  for (let i = 0; !fs.existsSync(SOCK); i++) {
    if (gwExit) die(1, `gateway exited at start-up (code ${gwExit.code}, signal ${gwExit.signal})`);
    if (i > 100) die(1, 'gateway socket did not appear within 5 s');
    await sleep(50);
  }
  for (let i = 0; i < 5; i++) await healthz();
  await metricsInFlight();
  const warm = await fcgiRequest(SOCK, params('POST', GEN_PATH, BODY), BODY, { timeoutMs: 5000 });
  if (warm.status !== 200 || !warm.body.includes('Hello!')) die(1, `warm-up test message answered ${warm.status}: ${warm.body.slice(0, 200)}`);
  await sleep(300);
  const idle = procStatus(gw.pid);

  // Open N requests: BEGIN_REQUEST + PARAMS + a body prefix, then hold. Connect in batches so the
  // listen backlog (1024) is never the limit being measured.
  // A unix-socket connect() fails with EAGAIN when the backlog is full (the gateway accepts as fast
  // as it can start threads); such a connect is retried after a pause and counted.
  let eagain = 0;
  const connect = async () => {
    for (let t0 = performance.now(); ; ) {
      try { return await FcgiConn.connect(SOCK, 1, 10000); } catch (e) {
        if (e.code !== 'EAGAIN' || performance.now() - t0 > 10000) throw e;
        eagain++;
        await sleep(20);
      }
    }
  };
  const tOpen = performance.now();
  const BATCH = 50;
  for (let i = 0; i < opt.n; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(opt.n, i + BATCH); j++) batch.push(connect());
    for (const c of await Promise.all(batch)) {
      c.begin().params(params('POST', GEN_PATH, BODY)).stdin(PREFIX);
      held.push(c);
    }
  }
  // Wait until the gateway has accepted all of them (each is then blocked reading its body).
  let inFlight = 0;
  for (let t0 = performance.now(); ; await sleep(100)) {
    inFlight = await metricsInFlight();
    if (inFlight >= opt.n) break;
    if (gwExit) die(1, `gateway died while requests were being opened (code ${gwExit.code}, signal ${gwExit.signal})`);
    if (performance.now() - t0 > 60000) die(1, `only ${inFlight}/${opt.n} requests accepted after 60 s`);
  }
  const acceptMs = performance.now() - tOpen;
  await sleep(200);
  const loaded = procStatus(gw.pid);

  // Short requests while the N are held: a long request must never block a short one.
  const hz = [];
  for (let i = 0; i < opt.healthz; i++) {
    try { hz.push(await healthz()); } catch (e) { problems.push(`/healthz #${i + 1} while held: ${e.message}`); hz.push(5000); }
  }
  const hzSorted = [...hz].sort((a, b) => a - b);
  const stillHeld = await metricsInFlight();
  if (stillHeld < opt.n) problems.push(`only ${stillHeld}/${opt.n} held requests still in flight after the /healthz round`);
  const loaded2 = procStatus(gw.pid);

  // Complete every held body and check the answers.
  const tDone = performance.now();
  for (const c of held) c.stdin(REST).endStdin();
  const results = await Promise.race([
    Promise.all(held.map((c) => c.response)),
    sleep(30000).then(() => null),
  ]);
  const completeMs = performance.now() - tDone;
  let okCount = 0;
  const bad = [];
  if (!results) problems.push('the held requests did not all finish within 30 s of completing their bodies');
  else {
    for (const r of results) {
      let good = r.status === 200 && r.ended && r.appStatus === 0;
      if (good) { try { good = JSON.parse(r.body).choices[0].message.content === 'Hello!'; } catch { good = false; } }
      if (good) okCount++;
      else if (bad.length < 3) bad.push(`${r.status} ended=${r.ended} ${JSON.stringify((r.body || '').slice(0, 160))}`);
    }
    if (okCount !== opt.n) problems.push(`${opt.n - okCount}/${opt.n} held requests failed, e.g. ${bad.join(' | ')}`);
  }
  held.length = 0;

  // Extra threads should retire once their request is done (4 spares stay in accept()).
  let after = procStatus(gw.pid);
  for (let i = 0; i < 50 && after.threads > idle.threads; i++) { await sleep(100); after = procStatus(gw.pid); }
  if (after.threads > idle.threads) problems.push(`threads did not retire: ${after.threads} running 5 s after completion (idle: ${idle.threads})`);

  // Shutdown.
  const tTerm = performance.now();
  if (gwExit) problems.push(`gateway exited before SIGTERM (code ${gwExit.code}, signal ${gwExit.signal})`);
  else {
    gw.kill('SIGTERM');
    for (let i = 0; gwExit === null && i < 200; i++) await sleep(10); // 10 ms resolution, 2 s
    for (let i = 0; gwExit === null && i < 80; i++) await sleep(100); // then up to 8 s more
  }
  const shutdownMs = gwExit ? gwExit.at - tTerm : null;
  if (gwExit === null) problems.push('gateway still running 10 s after SIGTERM');
  else if (gwExit.code !== 0) problems.push(`gateway exit after SIGTERM: code ${gwExit.code}, signal ${gwExit.signal}`);
  else if (shutdownMs > 5000) problems.push(`shutdown took ${Math.round(shutdownMs)} ms (> 5 s)`);
  const hzMax = hzSorted[hzSorted.length - 1];
  if (hzMax > 1000) problems.push(`a /healthz took ${Math.round(hzMax)} ms while ${opt.n} requests were held (> 1 s)`);

  // Report.
  const rssPer = (loaded.rss - idle.rss) / opt.n;
  const rows = [
    ['', 'idle', `${opt.n} held`, 'after'],
    ['VmRSS KiB', idle.rss, loaded.rss, after.rss],
    ['VmHWM KiB', idle.hwm, Math.max(loaded.hwm, loaded2.hwm), after.hwm],
    ['Threads', idle.threads, loaded.threads, after.threads],
  ];
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  console.log(`oai-fcgi concurrency bench: ${opt.n} held requests (${os.cpus().length} CPUs, ${opt.bin})`);
  for (const r of rows) console.log(r.map((c, i) => (i ? String(c).padStart(w[i]) : String(c).padEnd(w[i]))).join('  '));
  console.log(`RSS per held request: ${r2(rssPer)} KiB   (time to accept all ${opt.n}: ${Math.round(acceptMs)} ms${eagain ? `, ${eagain} connects retried after EAGAIN` : ''})`);
  console.log(`/healthz x${hz.length} while held: p50 ${r2(pct(hzSorted, 50))} ms, p90 ${r2(pct(hzSorted, 90))} ms, max ${r2(hzMax)} ms`);
  console.log(`completed held requests: ${okCount}/${opt.n} with 200 "Hello!" in ${Math.round(completeMs)} ms`);
  console.log(`shutdown (SIGTERM -> exit): ${shutdownMs === null ? 'did not exit' : `${Math.round(shutdownMs)} ms, code ${gwExit.code}`}`);
  for (const p of problems) console.log(`PROBLEM: ${p}`);
  console.log(JSON.stringify({
    held: opt.n, rss_kib: loaded.rss, rss_idle_kib: idle.rss, hwm_kib: Math.max(loaded.hwm, loaded2.hwm),
    rss_per_request_kib: r2(rssPer), threads: loaded.threads, threads_idle: idle.threads, threads_after: after.threads,
    healthz_p50_ms: r2(pct(hzSorted, 50)), healthz_max_ms: r2(hzMax),
    all_completed: okCount === opt.n, shutdown_ms: shutdownMs === null ? null : Math.round(shutdownMs),
  }));
  if (problems.length) { const t = logTail(5); if (t) console.error(`--- gateway log (tail) ---\n${t}`); }
  cleanup();
  process.exit(problems.length ? 1 : 0);
}

main().catch((e) => die(1, e.stack || String(e)));

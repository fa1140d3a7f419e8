#!/usr/bin/env node
// bench.mjs - what oai-fcgi costs, measured side by side in one run (issue 9; see README.md):
//
//   mock    nginx over TLS with keep-alive, standing in for Vertex AI (token endpoint, a ~1 KB
//           Claude reply, a 200-event stream, a slow stream, a 1 MB stream), from static files
//   direct  the client talks to the mock itself
//   floor   the client talks to lighttpd + bench/fcgi_floor (a FastCGI responder with a fixed
//           body): what the web-server hop costs
//   gateway the client talks to lighttpd + oai-fcgi (etc/lighttpd.conf, 2 processes), which
//           translates and calls the mock
//
// Load: wrk (latency at concurrency 1, throughput at 64); Node's http client for time to first
// byte, 1,000 held streams (RSS) and CPU per streamed MB. Prints one table; the exit status is 0
// whether or not targets are met (a benchmark, not a test).
//
//   node bench/bench.mjs [--bin build/oai-fcgi] [--floor build/bench/fcgi_floor] [--seconds 5]
//                        [--streams 1000] [--rounds 10] [--serve]
// --serve starts everything, prints the URLs and the gateway's pids, and waits (for perf).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const top = path.resolve(here, '..');
const arg = (name, dflt) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : dflt; };
const BIN = path.resolve(arg('bin', process.env.OAI_BIN || path.join(top, 'build/oai-fcgi')));
const FLOOR = path.resolve(arg('floor', path.join(path.dirname(BIN), 'bench/fcgi_floor')));
const SECONDS = Number(arg('seconds', 5));
const STREAMS = Number(arg('streams', 1000));
const ROUNDS = Number(arg('rounds', 10));
const HOST = 'us-east5-aiplatform.googleapis.com';
const MODEL_PATH = (m, verb) => `/v1/projects/bench-project/locations/us-east5/publishers/anthropic/models/${m}:${verb}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oai-bench-'));
fs.chmodSync(dir, 0o755); // nginx's workers (nobody, when started by root) read the mock's files
const procs = [];

function cleanup() {
  for (const p of procs) { try { process.kill(-p.pid, 'SIGKILL'); } catch { try { p.kill('SIGKILL'); } catch { /* gone */ } } }
  fs.rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) process.on(sig, () => process.exit(code));

function start(cmd, args, env = {}) {
  const p = spawn(cmd, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  p.out = '';
  p.stdout.on('data', (d) => { p.out += d; });
  p.stderr.on('data', (d) => { p.out += d; });
  procs.push(p);
  return p;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// ---- the mock upstream ------------------------------------------------------------------------
function claudeEvents(deltas, text) {
  const ev = (type, o) => `event: ${type}\ndata: ${JSON.stringify({ type, ...o })}\n\n`;
  let s = ev('message_start', { message: { id: 'msg_bench', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } });
  s += ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  for (let i = 0; i < deltas; i++) s += ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } });
  s += ev('content_block_stop', { index: 0 });
  s += ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: deltas } });
  s += ev('message_stop', {});
  return s;
}

async function startMock() {
  const files = path.join(dir, 'files');
  fs.mkdirSync(files);
  const text = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. '.repeat(6);
  fs.writeFileSync(path.join(files, 'reply.json'), JSON.stringify({
    id: 'msg_bench', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text }],
    stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 12, output_tokens: 120 },
  }));
  fs.writeFileSync(path.join(files, 'stream.sse'), claudeEvents(196, 'word '));
  fs.writeFileSync(path.join(files, 'big.sse'), claudeEvents(196, 'x'.repeat(5000)));
  fs.writeFileSync(path.join(files, 'token.json'), JSON.stringify({ access_token: 'ya29.bench', expires_in: 3599, token_type: 'Bearer' }));
  const ssl = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', `/CN=${HOST}`);
  fs.writeFileSync(path.join(dir, 'srv.ext'), `subjectAltName=DNS:${HOST},DNS:oauth2.googleapis.com,IP:127.0.0.1\n`);
  ssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.crt', '-days', '1', '-extfile', 'srv.ext');
  ssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.pem');
  const port = await freePort();
  const internal = (name, type, extra = '') => `location = /${name} { internal; default_type ${type}; ${extra} }`;
  const route = (re, file) => `location ~ "${re}" { error_page 405 =200 /${file}; return 405; }`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  types { }
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/srv.crt;
    ssl_certificate_key ${dir}/srv.key;
    root ${files};
    ${route('^/token$', 'token.json')}
    ${route('claude-3-haiku@20240307:streamRawPredict$', 'slow.sse')}
    ${route('claude-3-5-haiku@20241022:streamRawPredict$', 'big.sse')}
    ${route(':streamRawPredict$', 'stream.sse')}
    ${route(':rawPredict$', 'reply.json')}
    ${internal('token.json', 'application/json')}
    ${internal('reply.json', 'application/json')}
    ${internal('stream.sse', 'text/event-stream')}
    ${internal('big.sse', 'text/event-stream')}
    location = /slow.sse { internal; default_type text/event-stream; alias ${files}/stream.sse; limit_rate 4k; }
  }
}
`);
  const p = start('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;']);
  await waitFor(() => new Promise((res) => { const s = net.connect(port, '127.0.0.1', () => { s.end(); res(true); }); s.on('error', () => res(false)); }), 10000, 'nginx');
  return { port, proc: p, url: `https://127.0.0.1:${port}` };
}

// ---- lighttpd in front of a FastCGI program ---------------------------------------------------
async function startLighttpd(bin, env, name) {
  const rundir = path.join(dir, name);
  fs.mkdirSync(rundir);
  const port = await freePort();
  const conf = execFileSync('sh', [path.join(top, 'scripts/render-lighttpd-conf.sh'), path.join(top, 'etc/lighttpd.conf')], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(port), RUNDIR: rundir, BIN: bin, STATE_PATH: path.join(rundir, 'state.db'), MOUNT: '/', PROCS: '2',
      EXTRA: 'server.max-connections = 8192 server.max-fds = 20000 server.listen-backlog = 4096' },
  }).toString();
  fs.writeFileSync(path.join(rundir, 'lighttpd.conf'), conf);
  const p = start('/usr/sbin/lighttpd', ['-D', '-f', path.join(rundir, 'lighttpd.conf')], { ...env, OAI_BENCH_MARK: name });
  await waitFor(async () => (await request(`http://127.0.0.1:${port}/healthz`)).status < 500, 15000, `lighttpd (${name})`);
  return { port, proc: p, url: `http://127.0.0.1:${port}`, name };
}

// ---- clients ----------------------------------------------------------------------------------
const agents = { http: new http.Agent({ keepAlive: true, maxSockets: Infinity }), https: new https.Agent({ keepAlive: true, maxSockets: Infinity, rejectUnauthorized: false }) };

function request(url, { method = 'GET', body, headers = {}, agent, onFirstByte } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const b = body ? Buffer.from(body) : null;
    const req = mod.request({ method, hostname: u.hostname, port: u.port, path: u.pathname, agent: agent === undefined ? agents[u.protocol === 'https:' ? 'https' : 'http'] : agent,
      headers: { ...(b ? { 'content-type': 'application/json', 'content-length': b.length } : {}), ...headers }, rejectUnauthorized: false }, (res) => {
      let n = 0;
      let first = true;
      let text = '';
      res.on('data', (d) => {
        if (first) { first = false; if (onFirstByte) onFirstByte(); }
        n += d.length;
        if (res.statusCode >= 400 && text.length < 2000) text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode, bytes: n, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (b) req.write(b);
    req.end();
  });
}

function wrk(url, conns, { latency = false, body } = {}) {
  const lua = path.join(dir, 'post.lua');
  fs.writeFileSync(lua, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`);
  const threads = Math.min(conns, 2);
  const out = execFileSync('wrk', [`-t${threads}`, `-c${conns}`, `-d${SECONDS}s`, ...(latency ? ['--latency'] : []), '-s', lua, url], { stdio: 'pipe' }).toString();
  const us = (v, unit) => Number(v) * ({ us: 1, ms: 1000, s: 1e6 }[unit]);
  const pct = (p) => { const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out); return m ? us(m[1], m[2]) : NaN; };
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return { p50: pct(50), p99: pct(99), rps: rps ? Number(rps[1]) : NaN, errors: non2xx ? Number(non2xx[1]) : 0, raw: out };
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

async function ttfb(url, body, n = 40) {
  const t = [];
  for (let i = 0; i < n + 5; i++) {
    const t0 = process.hrtime.bigint();
    let t1 = 0n;
    const r = await request(url, { method: 'POST', body, onFirstByte: () => { t1 = process.hrtime.bigint(); } });
    if (r.status !== 200) throw new Error(`TTFB request to ${url}: HTTP ${r.status}`);
    if (i >= 5) t.push(Number(t1 - t0) / 1000);
  }
  return median(t);
}

// ---- the gateway's processes ------------------------------------------------------------------
function gatewayPids(mark) {
  const pids = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readlinkSync(`/proc/${d}/exe`) !== BIN) continue;
      if (fs.readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(`OAI_BENCH_MARK=${mark}`)) pids.push(Number(d));
    } catch { /* gone */ }
  }
  return pids;
}
const rssKiB = (pids) => pids.reduce((a, p) => { try { return a + Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))[1]); } catch { return a; } }, 0);
const cpuTicks = (pids) => pids.reduce((a, p) => { try { const f = fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' '); return a + Number(f[11]) + Number(f[12]); } catch { return a; } }, 0);
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;

// ---- the run ----------------------------------------------------------------------------------
async function main() {
  for (const [what, p] of [['oai-fcgi', BIN], ['fcgi_floor', FLOOR], ['nginx', '/usr/sbin/nginx'], ['lighttpd', '/usr/sbin/lighttpd'], ['wrk', '/usr/bin/wrk']])
    if (!fs.existsSync(p)) throw new Error(`${what} not found at ${p} (make bench builds and installs what it needs)`);
  const mock = await startMock();
  const pem = fs.readFileSync(path.join(dir, 'sa.pem'), 'utf8').trim().replace(/\n/g, '\\n');
  const env = {
    GCP_CREDENTIALS: `bench-project:bench@bench-project.iam.gserviceaccount.com:us-east5:${pem}`,
    UPSTREAM_CONNECT_TO: `${HOST}:443:127.0.0.1:${mock.port},oauth2.googleapis.com:443:127.0.0.1:${mock.port}`,
    UPSTREAM_CA_BUNDLE: path.join(dir, 'ca.crt'), KEY_CHECK_PERIOD_S: '0', LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'error', HEARTBEAT_S: '15',
  };
  const gw = await startLighttpd(BIN, env, 'gateway');
  const floor = await startLighttpd(FLOOR, {}, 'floor');
  const chat = (model, stream) => JSON.stringify({ model, stream, max_tokens: 200, messages: [{ role: 'user', content: 'Say something, please.' }] });
  const claude = JSON.stringify({ anthropic_version: 'vertex-2023-10-16', max_tokens: 200, messages: [{ role: 'user', content: 'Say something, please.' }] });
  const gwChat = `${gw.url}/proxy/gcp/claude/v1/chat/completions`;
  const directReply = `${mock.url}${MODEL_PATH('claude-sonnet-4-5@20250929', 'rawPredict')}`;
  const directStream = `${mock.url}${MODEL_PATH('claude-sonnet-4-5@20250929', 'streamRawPredict')}`;
  // warm up: the OAuth token, pooled upstream connections, page cache
  for (let i = 0; i < 20; i++) {
    const r = await request(gwChat, { method: 'POST', body: chat('claude-sonnet-4-5', false) });
    if (r.status !== 200) throw new Error(`the gateway answered HTTP ${r.status}: ${r.text} ${gw.proc.out.slice(-2000)}`);
  }
  if (process.argv.includes('--serve')) {
    // for profiling: everything up, nothing measured (perf record -p <gateway pids> ...)
    console.log(`gateway ${gwChat}\nfloor ${floor.url}/\nmock ${directReply}\npids ${gatewayPids('gateway').join(' ')}`);
    fs.writeFileSync(path.join(os.tmpdir(), 'oai-bench-body.json'), chat('claude-sonnet-4-5', false));
    await new Promise(() => {});
  }
  const rows = [];
  const row = (what, value, target, met) => rows.push({ what, value, target: target || '', met: met === undefined ? '' : met ? 'met' : 'MISSED' });

  // the mock's own ceiling, so that it is known not to be the bottleneck
  const ceiling = wrk(directReply, 64, { body: claude });
  // (a) + (b): latency at concurrency 1
  const direct1 = wrk(directReply, 1, { latency: true, body: claude });
  const floor1 = wrk(`${floor.url}/`, 1, { latency: true, body: chat('claude-sonnet-4-5', false) });
  const gw1 = wrk(gwChat, 1, { latency: true, body: chat('claude-sonnet-4-5', false) });
  const added50 = gw1.p50 - direct1.p50;
  const added99 = gw1.p99 - direct1.p99;
  row('mock (nginx, TLS) ceiling, c=64', `${ceiling.rps.toFixed(0)} req/s`);
  row('direct to mock, c=1: p50 / p99', `${direct1.p50.toFixed(0)} / ${direct1.p99.toFixed(0)} µs`);
  row('floor (lighttpd + fixed FastCGI), c=1', `${floor1.p50.toFixed(0)} / ${floor1.p99.toFixed(0)} µs`);
  row('gateway (lighttpd + oai-fcgi + mock), c=1', `${gw1.p50.toFixed(0)} / ${gw1.p99.toFixed(0)} µs`);
  row('(a) added latency p50', `${added50.toFixed(0)} µs`, '≤ 200 µs', added50 <= 200);
  row('(a) added latency p99', `${added99.toFixed(0)} µs`, '≤ 600 µs', added99 <= 600);
  row('(b) gateway cost / floor (p50)', `${(added50 / floor1.p50).toFixed(2)}×`, '≤ 1.5×', added50 / floor1.p50 <= 1.5);
  // (c) throughput
  const floor64 = wrk(`${floor.url}/`, 64, { body: chat('claude-sonnet-4-5', false) });
  const gw64 = wrk(gwChat, 64, { body: chat('claude-sonnet-4-5', false) });
  row('floor throughput, c=64', `${floor64.rps.toFixed(0)} req/s`);
  row('(c) gateway throughput, c=64', `${gw64.rps.toFixed(0)} req/s${gw64.errors ? ` (${gw64.errors} non-2xx)` : ''}`, '≥ 5000 req/s', gw64.rps >= 5000 && !gw64.errors);
  // (d) time to first byte on a 200-event stream
  const ttfbDirect = await ttfb(directStream, claude);
  const ttfbGw = await ttfb(gwChat, chat('claude-sonnet-4-5', true));
  row('(d) TTFB direct / gateway (p50)', `${ttfbDirect.toFixed(0)} / ${ttfbGw.toFixed(0)} µs`);
  row('(d) added TTFB p50', `${(ttfbGw - ttfbDirect).toFixed(0)} µs`);
  // (f) CPU per streamed MB: 20 streams of ~1 MB through the gateway
  const pids = gatewayPids('gateway');
  let bytes = 0;
  const c0 = cpuTicks(pids);
  for (let i = 0; i < 20; i++) bytes += (await request(gwChat, { method: 'POST', body: chat('claude-3-5-haiku-20241022', true) })).bytes;
  const cpuMs = ((cpuTicks(pids) - c0) / TICK) * 1000;
  row('(f) CPU per streamed MB (client bytes)', `${(cpuMs / (bytes / 1048576)).toFixed(1)} ms/MB`);
  // (e) memory: STREAMS slow streams held at once, ROUNDS times
  const idle = rssKiB(gatewayPids('gateway'));
  const after = [];
  let held = 0;
  for (let round = 0; round < ROUNDS; round++) {
    let started = 0;
    const all = [];
    for (let i = 0; i < STREAMS; i++)
      all.push(request(gwChat, { method: 'POST', agent: false, body: chat('claude-3-haiku-20240307', true), onFirstByte: () => { started++; } }));
    await waitFor(() => started >= STREAMS, 60000, `${STREAMS} streams to start`);
    if (round === 0) held = rssKiB(gatewayPids('gateway'));
    const res = await Promise.all(all);
    const bad = res.filter((r) => r.status !== 200).length;
    if (bad) throw new Error(`${bad} of ${STREAMS} held streams failed`);
    await sleep(3000); // the gateway gives freed memory back within a second or two of idleness
    after.push(rssKiB(gatewayPids('gateway')));
  }
  const perStream = (held - idle) / STREAMS;
  row(`(e) RSS: idle / ${STREAMS} streams held`, `${(idle / 1024).toFixed(1)} / ${(held / 1024).toFixed(1)} MiB`);
  row('(e) RSS per concurrent stream', `${perStream.toFixed(1)} KiB`, '≤ 100 KiB', perStream <= 100);
  const growth = after[after.length - 1] - after[0];
  const mib = (k) => (k / 1024).toFixed(1);
  row(`(e) RSS after each of ${ROUNDS} rounds`, `${mib(after[0])} → ${mib(after[after.length - 1])} MiB (range ${mib(Math.min(...after))}–${mib(Math.max(...after))})`);
  row(`(e) growth, round 1 to ${ROUNDS}`, `${growth} KiB`, 'flat (≤ 5%)', growth <= after[0] * 0.05);

  const w = [Math.max(...rows.map((r) => r.what.length)), Math.max(...rows.map((r) => r.value.length)), Math.max(...rows.map((r) => r.target.length))];
  console.log(`oai-fcgi benchmark (${os.cpus().length} cores, ${SECONDS} s per wrk run, ${new Date().toISOString().slice(0, 10)})`);
  for (const r of rows) console.log(`${r.what.padEnd(w[0])}  ${r.value.padStart(w[1])}  ${r.target.padEnd(w[2])}  ${r.met}`);
}

main().then(() => process.exit(0), (e) => { console.error(`bench: ${e.stack || e.message}`); process.exit(1); });

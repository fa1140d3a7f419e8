// Fault injection, part two (issue 11): allocation failures and a broken state store, with the
// gateway built for it - tests/faults/oai-fcgi-faults ($OAI_FAULTS_BIN), the same gateway with
// tests/faults/faults.c linked in - under lighttpd, against the Vertex mock.
//
// Allocation failures: a request with `X-Oai-Fail-Alloc: N` gets NULL from the N-th allocation
// the gateway's code makes for it. For each kind of request N walks from 0 until a request passes
// every allocation point; each answer must be whole or a clear error in the route's format, the
// process must live through all of it (same pid), and leak no descriptor.
// Under the sanitizer build, LeakSanitizer checks at exit that no failure path leaked.
//
// The state store: a write lock held by another program ($OAI_LOCKDB), a full disk, a disk that
// fails writes, a read-only directory (OAI_FAULT_STATE, see faults.c). For each: generation
// requests are still answered, quickly; /status says the store is unhealthy; nothing hangs; and
// once the fault is gone everything is back without a restart.
import fs from 'node:fs';
import path from 'node:path';
import { test, ok, equal, match, diag } from '../lib/tap.mjs';
import { fetchText, isOpenAIError, isAnthropicError, sleep, startLighttpd, spawnTracked, baseEnv, tmpDir } from '../lib/harness.mjs';
import { mark } from '../mock/claude.mjs';
import { setupMock, postStream, chunksOf, joinContent, GCP, MODEL } from '../mock/gateway.mjs';

const FBIN = process.env.OAI_FAULTS_BIN || '';
const LOCKDB = process.env.OAI_LOCKDB || '';
const TEXT = 'Hello from the Vertex mock.';
let G = null;

function descriptors(l) {
  let n = 0;
  for (const pid of l.gatewayPids()) n += fs.readdirSync(`/proc/${pid}/fd`).length;
  return n;
}

/** lighttpd running the fault-injection gateway (one process) with `env`. */
function start(env = {}, opts = {}) {
  return startLighttpd({ bin: FBIN, procs: 1, ...opts, env: { ...G.env, LOG_LEVEL: 'info', UPSTREAM_TIMEOUT_S: 10, ...env } });
}

/** Requests of each kind: how to send one, and whether an answer is whole. */
const KINDS = {
  'chat non-stream': { route: 'chat', stream: false },
  'chat stream': { route: 'chat', stream: true },
  'messages non-stream': { route: 'messages', stream: false },
  'messages stream': { route: 'messages', stream: true },
  '/status': { route: 'status' },
};
const GENERATION = Object.keys(KINDS).filter((k) => KINDS[k].route !== 'status');

async function send(l, kind, headers = {}) {
  const { route, stream } = KINDS[kind];
  if (route === 'status') return fetchText(`${l.url}/status`, { headers, timeout: 30000 });
  const url = `${l.url}${GCP}/${route === 'chat' ? 'chat/completions' : 'messages'}`;
  const body = { model: MODEL, max_tokens: 100, stream, messages: [{ role: 'user', content: `Hi ${mark('text', 'a')}` }] };
  const h = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers };
  const t0 = Date.now();
  const r = stream ? await postStream(url, body, { headers: h, timeout: 30000 }) : await fetchText(url, { method: 'POST', headers: h, body: JSON.stringify(body), timeout: 30000 });
  r.ms = Date.now() - t0;
  return r;
}

/** null if `r` is the whole answer or a clear error in the route's format, else what is wrong. */
function judge(kind, r) {
  const { route, stream } = KINDS[kind];
  const isErr = route === 'messages' ? isAnthropicError : isOpenAIError;
  if (route === 'status') return (r.status === 200 && r.json && r.json.config) || (r.status >= 500 && isErr(r.json)) ? null : `status ${r.status}: ${String(r.body).slice(0, 200)}`;
  if (r.status !== 200) return r.status >= 400 && isErr(r.json) ? null : `status ${r.status}: ${String(r.body).slice(0, 200)}`;
  if (!stream) {
    const text = route === 'chat' ? r.json && r.json.choices && r.json.choices[0].message.content : r.json && r.json.content && r.json.content[0].text;
    return text === TEXT ? null : `200 but not the answer: ${String(r.body).slice(0, 200)}`;
  }
  if (!r.events) return `200 without a stream: ${String(r.body).slice(0, 200)}`;
  const ev = r.events;
  if (route === 'chat') {
    if (!ev.length || ev[ev.length - 1].data !== '[DONE]') return `no [DONE] at the end: ${ev.slice(-2).map((e) => e.data).join(' | ')}`;
    const chunks = chunksOf(r);
    const whole = joinContent(chunks.filter((c) => c && c.choices)) === TEXT && chunks.some((c) => c && c.choices && c.choices[0] && c.choices[0].finish_reason);
    const err = ev.length >= 2 && isOpenAIError(ev[ev.length - 2].json);
    return whole || err ? null : `neither the whole answer nor an error event: ${ev.map((e) => e.data.slice(0, 60)).join(' | ')}`;
  }
  const last = ev[ev.length - 1];
  if (last && last.event === 'message_stop') return null;
  if (last && last.event === 'error' && isAnthropicError(last.json)) return null;
  return `ends with neither message_stop nor an error: ${ev.slice(-2).map((e) => `${e.event} ${e.data.slice(0, 80)}`).join(' | ')}`;
}

test('setup: the fault-injection gateway and helper are built; the Vertex mock', async () => {
  ok(FBIN && fs.existsSync(FBIN), 'OAI_FAULTS_BIN exists', FBIN);
  ok(LOCKDB && fs.existsSync(LOCKDB), 'OAI_LOCKDB exists', LOCKDB);
  G = await setupMock();
});

test('allocation failures: every allocation point of each kind of request, one at a time → the answer or a clear error; the process lives on', async () => {
  const l = await start();
  const pids = l.gatewayPids();
  equal(pids.length, 1, 'one gateway process');
  const g = await send(l, 'chat non-stream');
  equal(judge('chat non-stream', g), null, 'a request without a failure is answered');
  const fds = descriptors(l);
  const log = () => (l.proc.stderrText().match(/faults: \d+ allocations, (?:number \d+ failed|none failed)/g) || []);
  for (const kind of Object.keys(KINDS)) {
    const problems = [];
    let points = 0;
    let errors = 0;
    for (let n = 0; n < 5000; n++) {
      const before = log().length;
      const r = await send(l, kind, { 'x-oai-fail-alloc': String(n) });
      // the line is written before the web server has the end of the answer
      let lines = log();
      for (let i = 0; i < 20 && lines.length === before; i++) { await sleep(50); lines = log(); }
      const line = lines[before] || '';
      const bad = judge(kind, r);
      if (bad) problems.push(`allocation ${n}: ${bad}`);
      if (r.status !== 200 || (r.events && r.events.some((e) => e.json && e.json.error))) errors++;
      if (/none failed/.test(line)) { points = n; break; }
      if (!line) { problems.push(`allocation ${n}: no report from the gateway (did it die?)`); break; }
    }
    ok(points > 3, `${kind}: ${points} allocation points, each failed once (${errors} clear errors, ${points - errors} whole answers)`);
    ok(!problems.length, `${kind}: every failure answered properly`, problems.slice(0, 15).join('\n'));
  }
  equal(JSON.stringify(l.gatewayPids()), JSON.stringify(pids), 'the same gateway process throughout (it never crashed)');
  const after = descriptors(l);
  ok(after <= fds + 2, `no descriptor leak (${fds} → ${after}; a pooled upstream connection may come and go)`);
  const g2 = await send(l, 'chat stream');
  equal(judge('chat stream', g2), null, 'requests are answered afterwards');
  ok(!/ERROR: AddressSanitizer|runtime error:/.test(l.proc.stderrText()), 'no sanitizer report in the log');
  await l.stopAndClean();
}, { timeout: 900000 });

// ---- the state store -----------------------------------------------------------------------------

/** Hold the write lock of `db` with lockdb until release() is called. */
async function holdLock(db) {
  const p = spawnTracked(LOCKDB, [db], { env: baseEnv() });
  for (let i = 0; i < 100 && !p.stdoutText().includes('locked'); i++) {
    if (p.exitInfo) throw new Error(`lockdb exited: ${p.stderrText()}`);
    await sleep(50);
  }
  ok(p.stdoutText().includes('locked'), `lockdb holds the write lock of ${path.basename(db)}`);
  return { release: async () => { p.stdin.end(); await p.waitExit(5000); } };
}

const ADMIN = { authorization: 'Bearer adm-faults-state-test' };

/** /metrics: generation requests (all statuses) and tokens, gateway-wide. */
async function counted(l) {
  const r = await fetchText(`${l.url}/metrics`, { headers: ADMIN });
  let requests = 0;
  let tokens = 0;
  for (const line of r.body.split('\n')) {
    let m = /^oai_fcgi_requests_total\{[^}]*\} (\d+)$/.exec(line);
    if (m) requests += Number(m[1]);
    m = /^oai_fcgi_tokens_total (\d+)$/.exec(line);
    if (m) tokens = Number(m[1]);
  }
  return { requests, tokens };
}


test('state store faults: a write lock held by another program, a full disk, failing writes → requests answered at once, /status says so, and no usage is lost', async () => {
  const control = path.join(tmpDir('faults-ctl-'), 'state-fault');
  const l = await start({ OAI_FAULT_STATE: control, ADMIN_KEY: ADMIN.authorization.slice(7) });
  const per = {}; // tokens one request of each kind reports
  for (const kind of GENERATION) {
    const a = await counted(l);
    const r = await send(l, kind);
    equal(judge(kind, r), null, `healthy: ${kind} answered`);
    let b = a;
    for (let i = 0; i < 40 && b.requests === a.requests; i++) { await sleep(50); b = await counted(l); }
    per[kind] = b.tokens - a.tokens;
  }
  ok(Object.values(per).every((t) => t > 0), 'each kind of request reports tokens', per);
  const faults = [
    ['a write lock held by another program', async () => { const h = await holdLock(l.statePath); return () => h.release(); }, /locked/],
    ['a full disk', async () => { fs.writeFileSync(control, 'full'); return () => fs.writeFileSync(control, ''); }, /full/],
    ['writes failing with I/O errors (a disk gone read-only or bad)', async () => { fs.writeFileSync(control, 'ioerr'); return () => fs.writeFileSync(control, ''); }, /I\/O|disk/i],
  ];
  for (const [name, begin, why] of faults) {
    const before = await counted(l);
    const end = await begin();
    let sent = 0;
    let tokens = 0;
    const slow = [];
    for (let round = 0; round < 2; round++) {
      for (const kind of GENERATION) {
        let r;
        try { r = await send(l, kind); } catch (e) { diag(`${name}: ${kind}: ${e.message}\n${l.errorLog().slice(-3000)}`); throw e; }
        sent++;
        tokens += per[kind];
        const bad = judge(kind, r);
        ok(!bad && r.status === 200, `${name}: ${kind} answered in full (${r.ms} ms)`, bad || r.status);
        if (r.ms > 2500) slow.push(`${kind} ${r.ms} ms`);
      }
    }
    ok(!slow.length, `${name}: no request waited longer than one busy timeout (2 s)`, slow);
    const st = await fetchText(`${l.url}/status`);
    equal(st.status, 503, `${name}: /status 503`);
    match(String(st.json && st.json.stateStore), why, `${name}: /status says why: ${st.json && st.json.stateStore}`);
    await end();
    // the housekeeping thread writes what was held within a second or so
    let after = await counted(l);
    for (let i = 0; i < 60 && after.requests < before.requests + sent; i++) { await sleep(100); after = await counted(l); }
    equal(after.requests - before.requests, sent, `${name}: every request of the fault counted once, after it`);
    equal(after.tokens - before.tokens, tokens, `${name}: their tokens too (${tokens})`);
    let h = await fetchText(`${l.url}/status`);
    for (let i = 0; i < 30 && h.status !== 200; i++) { await sleep(100); h = await fetchText(`${l.url}/status`); }
    equal(h.status, 200, `${name}: /status 200 again, without a restart`);
  }
  equal(l.gatewayPids().length, 1, 'the same single gateway process');
  ok(!/ERROR: AddressSanitizer|runtime error:/.test(l.proc.stderrText()), 'no sanitizer report in the log');
  await l.stopAndClean();
}, { timeout: 300000 });

test('state store in a read-only place at start: the gateway says so in its log and does not start', async () => {
  const control = path.join(tmpDir('faults-ctl-'), 'state-fault');
  const dir = tmpDir('faults-ro-');
  const l = await start({ OAI_FAULT_STATE: control }, { stateDir: dir });
  await l.stopAndClean(); // the database exists now
  fs.writeFileSync(control, 'readonly');
  const l2 = await start({ OAI_FAULT_STATE: control }, { stateDir: dir, healthPath: null });
  let log = '';
  for (let i = 0; i < 50 && !/not starting/.test(log); i++) { await sleep(100); log = l2.errorLog(); }
  match(log, /read-only/, 'the log names the cause (read-only)');
  match(log, /not starting: the state store cannot be opened \(STATE_PATH\)/, 'and says the gateway does not start');
  const r = await fetchText(`${l2.url}/healthz`);
  equal(r.status, 503, 'the web server answers 503 for it');
  await l2.stopAndClean();
}, { timeout: 60000 });

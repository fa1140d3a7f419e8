// Process lifecycle and concurrency: SIGTERM (idle, with a request in flight, under lighttpd),
// held requests do not block others, and counters shared across processes via STATE_PATH.
import fs from 'node:fs';
import path from 'node:path';
import { test, ok, equal, deepEqual, diag } from '../lib/tap.mjs';
import {
  tmpDir, startListen, startLighttpd, cgiFcgi, cgiEnv, curlReq, httpRequest, sleep, requireBin,
  gatewayPids, pgrepF, TEST_MESSAGE, NON_TEST_MESSAGE, dumpLog,
} from '../lib/harness.mjs';
import { FcgiConn, fcgiRequest } from '../lib/fcgi.mjs';

const J = JSON.stringify;

function params(p) {
  return cgiEnv(p);
}

const myDirs = [];
async function listen(tag) {
  const dir = tmpDir(tag);
  myDirs.push(dir);
  const sock = path.join(dir, 'gw.sock');
  const g = await startListen(['--listen', sock], { STATE_PATH: path.join(dir, 'state.db') });
  return { ...g, sock, dir };
}

/** Open a request whose body is only partly sent: returns the connection and the rest. */
async function holdRequest(sock, body, uri = '/v1/chat/completions') {
  const b = Buffer.from(body);
  const c = await FcgiConn.connect(sock);
  c.begin().params(params({ method: 'POST', uri, body })).stdin(b.subarray(0, Math.floor(b.length / 2)));
  return { c, rest: b.subarray(Math.floor(b.length / 2)) };
}

async function timedExit(proc, ms) {
  const t0 = Date.now();
  const r = await proc.waitExit(ms);
  return { r, ms: Date.now() - t0 };
}

test('setup', () => { ok(requireBin(), 'binary exists'); });

test('SIGTERM when idle (threads blocked in accept): exit 0 within 3 s', async () => {
  const g = await listen('idle-');
  for (let i = 0; i < 3; i++) {
    const h = await fcgiRequest(g.sock, params({ uri: '/healthz' }));
    equal(h.body, 'ok\n', `request ${i + 1} answered`);
  }
  const t = await fcgiRequest(g.sock, params({ method: 'POST', uri: '/v1/chat/completions', body: J(TEST_MESSAGE) }), J(TEST_MESSAGE));
  equal(t.status, 200, 'test message answered');
  await sleep(200);
  g.proc.kill('SIGTERM');
  const { r, ms } = await timedExit(g.proc, 3000);
  ok(r !== null, 'exited within 3 s', `still running after ${ms} ms; stderr: ${g.proc.stderrText().slice(-2000)}`);
  equal(r && r.code, 0, 'exit code 0', r);
  if (!r) await g.stop(1000);
});

test('SIGINT when idle: exit 0 within 3 s', async () => {
  const g = await listen('int-');
  await fcgiRequest(g.sock, params({ uri: '/healthz' }));
  g.proc.kill('SIGINT');
  const { r } = await timedExit(g.proc, 3000);
  equal(r && r.code, 0, 'exit code 0 within 3 s', r);
  if (!r) await g.stop(1000);
});

test('SIGTERM with a request in flight: the request completes, then exit 0', async () => {
  const g = await listen('inflight-');
  const { c, rest } = await holdRequest(g.sock, J(TEST_MESSAGE));
  await sleep(300);
  g.proc.kill('SIGTERM');
  await sleep(500);
  ok(g.proc.exitInfo === null, 'still running while the request is in flight');
  c.stdin(rest).endStdin();
  const resp = await Promise.race([c.response, sleep(5000).then(() => null)]);
  ok(resp !== null, 'the in-flight request got its response');
  equal(resp && resp.status, 200, 'in-flight request: status 200', resp && resp.stdout.toString());
  equal(resp && resp.body && JSON.parse(resp.body).completion, 'Hello!', 'in-flight request: body');
  const { r, ms } = await timedExit(g.proc, 3000);
  ok(r !== null, 'exited within 3 s of SIGTERM', `after ${ms} ms; stderr: ${g.proc.stderrText().slice(-2000)}`);
  equal(r && r.code, 0, 'exit code 0', r);
  if (!r) await g.stop(1000);
});

test('SIGTERM with a stalled request: exit 0 after the grace period', async () => {
  const g = await listen('stall-');
  const { c } = await holdRequest(g.sock, J(TEST_MESSAGE));
  await sleep(300);
  const t0 = Date.now();
  g.proc.kill('SIGTERM');
  const r = await g.proc.waitExit(9000);
  const ms = Date.now() - t0;
  ok(r !== null, 'exited within 9 s (5 s grace)', `stderr: ${g.proc.stderrText().slice(-2000)}`);
  equal(r && r.code, 0, 'exit code 0', r);
  ok(ms < 8000, 'grace period bounded', ms);
  c.destroy();
  if (!r) await g.stop(1000);
});

test('lighttpd stop leaves no gateway process behind', async () => {
  const L = await startLighttpd({ procs: 2 });
  try {
    for (let i = 0; i < 6; i++) {
      const r = await curlReq(`${L.url}/v1/chat/completions`, { method: 'POST', body: J(TEST_MESSAGE) });
      equal(r.status, 200, `request ${i + 1}`);
    }
    const before = L.gatewayPids();
    ok(before.length >= 1, 'gateway processes found by the env mark', before);
    diag(`gateway pids: ${before.join(' ')}`);
    const r = await L.stop();
    ok(r !== null, 'lighttpd exits on SIGTERM');
    let left = L.gatewayPids();
    for (let i = 0; i < 30 && left.length; i++) { await sleep(100); left = L.gatewayPids(); }
    equal(left.length, 0, 'no gateway survives 3 s after lighttpd stops', left);
    deepEqual(pgrepF(L.rundir), [], 'no process mentions the run dir (pgrep -f)');
    if (left.length) dumpLog(L);
  } finally {
    await L.stopAndClean();
  }
});

test('50 held requests do not block /healthz; all finish afterwards', async () => {
  const g = await listen('conc-');
  const held = [];
  try {
    for (let i = 0; i < 50; i++) {
      const body = J(i % 2 ? NON_TEST_MESSAGE : TEST_MESSAGE);
      held.push({ ...(await holdRequest(g.sock, body)), want: i % 2 ? 503 : 200 });
    }
    await sleep(300);
    let t0 = Date.now();
    const h = await fcgiRequest(g.sock, params({ uri: '/healthz' }), '', { timeoutMs: 5000 }).catch((e) => ({ error: e }));
    const ms = Date.now() - t0;
    equal(h.body, 'ok\n', '/healthz answered while 50 requests are held', h.error && h.error.message);
    ok(ms < 2000, '/healthz in under 2 s', `${ms} ms`);
    t0 = Date.now();
    const viaCgiFcgi = await cgiFcgi(g.sock, params({ uri: '/status' }), '', { timeout: 5000 });
    equal(viaCgiFcgi.status, 200, '/status via cgi-fcgi while held');
    ok(Date.now() - t0 < 2000, '/status in under 2 s', Date.now() - t0);
    for (const x of held) x.c.stdin(x.rest).endStdin();
    const results = await Promise.all(held.map((x) => Promise.race([x.c.response, sleep(10000).then(() => null)])));
    const statuses = results.map((r) => (r ? r.status : null));
    equal(statuses.filter((s) => s === null).length, 0, 'every held request got a response', statuses);
    equal(statuses.filter((s, i) => s !== held[i].want).length, 0, 'each got 200 (test) or 503 (non-test)', statuses);
    ok(g.proc.exitInfo === null, 'gateway still running');
  } finally {
    for (const x of held) x.c.destroy();
    const r = await g.stop(6000);
    equal(r && r.code, 0, 'exit 0 on SIGTERM after the load', g.proc.stderrText().slice(-2000));
  }
}, { timeout: 90000 });

test('counters shared across two processes (one STATE_PATH)', async () => {
  const shared = tmpDir('shared-');
  myDirs.push(shared);
  const statePath = path.join(shared, 'state.db');
  const dirA = tmpDir('a-');
  const dirB = tmpDir('b-');
  const sa = path.join(dirA, 'a.sock');
  const sb = path.join(dirB, 'b.sock');
  const ga = await startListen(['--listen', sa], { STATE_PATH: statePath });
  const gb = await startListen(['--listen', sb], { STATE_PATH: statePath });
  let L;
  try {
    L = await startLighttpd({
      healthPath: '/a/healthz',
      config: ({ port, rundir }) => [
        'server.modules = ( "mod_fastcgi" )',
        'server.bind = "127.0.0.1"', `server.port = ${port}`, `server.document-root = "${rundir}"`,
        `server.errorlog = "${rundir}/lighttpd-error.log"`, `server.pid-file = "${rundir}/lighttpd.pid"`,
        'fastcgi.server = (',
        `  "/a" => (( "socket" => "${sa}", "check-local" => "disable" )),`,
        `  "/b" => (( "socket" => "${sb}", "check-local" => "disable" )),`,
        ')',
      ].join('\n') + '\n',
    });
    const body = J(TEST_MESSAGE);
    const ra = await httpRequest(`${L.origin}/a/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, localAddress: '127.0.0.2' });
    equal(ra.status, 200, 'test message via /a from 127.0.0.2', ra.body);
    const rb = await httpRequest(`${L.origin}/b/proxy/gcp/claude/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, localAddress: '127.0.0.3' });
    equal(rb.status, 200, 'test message via /b from 127.0.0.3', rb.body);
    const a = (await curlReq(`${L.origin}/a/status`)).json || {};
    const b = (await curlReq(`${L.origin}/b/status`)).json || {};
    ok(a.proomptersNow >= 2, '/a proomptersNow >= 2', a.proomptersNow);
    ok(b.proomptersNow >= 2, '/b proomptersNow >= 2', b.proomptersNow);
    equal(a.proomptersNow, b.proomptersNow, 'same proomptersNow on both');
    ok(Number.isInteger(a.proompts), 'proompts is an integer', a.proompts);
    equal(a.proompts, b.proompts, 'same proompts on both');
    equal(a.tookens, b.tookens, 'same tookens on both');
    equal(a.endpoints && a.endpoints.gcp, `${L.origin}/a/proxy/gcp/claude`, '/a endpoints carry the mount');
  } finally {
    if (L) await L.stopAndClean();
    const [x, y] = await Promise.all([ga.stop(8000), gb.stop(8000)]);
    equal(x && x.code, 0, 'gateway a exits 0', `exit ${JSON.stringify(x)}\n${ga.proc.stderrText().slice(-3000)}`);
    equal(y && y.code, 0, 'gateway b exits 0', `exit ${JSON.stringify(y)}\n${gb.proc.stderrText().slice(-3000)}`);
  }
});

test('several processes opening a fresh STATE_PATH at once all start', async () => {
  // lighttpd (max-procs), mod_fcgid and spawn-fcgi -F start their processes together.
  const failures = [];
  for (let round = 0; round < 8; round++) {
    const dir = tmpDir('fresh-');
    myDirs.push(dir);
    const statePath = path.join(dir, 'state.db');
    const starts = [];
    for (let i = 0; i < 6; i++) starts.push(startListen(['--listen', path.join(dir, `g${i}.sock`)], { STATE_PATH: statePath }).catch((e) => e));
    const gs = await Promise.all(starts);
    for (const g of gs) {
      if (g instanceof Error) failures.push(g.message.slice(0, 400));
      else await g.stop();
    }
  }
  deepEqual(failures, [], 'all 48 processes started (no "database is locked" at start-up)');
}, { timeout: 90000 });

test('no gateway left running', () => {
  equal(gatewayPids().filter((p) => {
    try {
      const env = fs.readFileSync(`/proc/${p}/environ`, 'latin1');
      return myDirs.some((d) => env.includes(d));
    } catch { return false; }
  }).length, 0, 'none of our gateways survive');
});


// Fault injection (issue 11): what a hostile or broken upstream, a vanishing client and a broken
// network do to the gateway under lighttpd. The Vertex mock authenticates and checks every request
// as usual, then answers with a fault (tests/mock/faults.mjs): its well-formed reply cut at byte
// offsets (sampled: every part boundary ±1 plus random offsets; OAI_FAULT_OFFSETS=all tries every
// byte), a stall before or after the headers, an endless header, a 100 MB body, invalid UTF-8.
// The Bedrock mock's event stream is cut the same way. Separate gateways meet a TLS handshake that
// fails three ways, a closed port and a DNS name that does not resolve. Clients go away at each
// stage of a request.
//
// For every fault: the client gets a clear error in its own API's format (or a complete answer,
// when the cut came after the reply was whole); the upstream connection is closed by the gateway
// when it gives up; the gateway holds no more descriptors afterwards (give or take a pooled
// upstream connection); and its accounting holds - every request is counted once in /metrics
// with the status the client saw, and the user's token counter (whose pre-request reservation
// must be settled, not left behind) equals the gateway-wide one.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import https from 'node:https';
import { test, ok, equal, match, diag, onCleanup } from '../lib/tap.mjs';
import { requireBin, fetchText, randomSecret, isOpenAIError, isAnthropicError, tmpDir, sleep, startLighttpd, cgiEnv } from '../lib/harness.mjs';
import { FcgiConn, record, encodeParams, T } from '../lib/fcgi.mjs';
import { mark } from '../mock/claude.mjs';
import { makeTls } from '../mock/tls.mjs';
import { HUGE } from '../mock/faults.mjs';
import { setupMock, setupBedrock, startGateway, postStream, chunksOf, joinContent, client, OpenAI, importError, GCP, AWS, MODEL } from '../mock/gateway.mjs';

const ADMIN_KEY = randomSecret('adm-');
const TEXT = 'Hello from the Vertex mock.';
const FAMILY = 'gcp-claude';
let G = null;
let L = null;
let USER = null; // a user token: every generation request below carries it
let seq = 0;
// what the clients saw, to hold /metrics against: status -> count, per route
const seen = { chat: new Map(), messages: new Map() };
const note = (route, status) => seen[route].set(status, (seen[route].get(status) || 0) + 1);

const auth = () => ({ authorization: `Bearer ${USER}` });
const user = (m) => [{ role: 'user', content: `Hi ${m}` }];

/** Every open descriptor of the gateway's processes (their count and what they are). */
function descriptors(l = L) {
  const out = [];
  for (const pid of l.gatewayPids()) {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      let target = '?';
      try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { /* closed meanwhile */ }
      out.push(`${pid}:${fd} ${target.replace(/\[\d+\]$/, '')}`);
    }
  }
  return out;
}

/** /metrics (ADMIN_KEY): requests by route and status, tokens and prompts. */
async function metrics(l = L) {
  const r = await fetchText(`${l.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const m = { chat: new Map(), messages: new Map(), tokens: 0, prompts: 0, text: r.body };
  for (const line of r.body.split('\n')) {
    let x = /^oai_fcgi_requests_total\{route="(\w+)",provider="\w+",status="(\d+)"\} (\d+)$/.exec(line);
    if (x && m[x[1]]) m[x[1]].set(Number(x[2]), (m[x[1]].get(Number(x[2])) || 0) + Number(x[3]));
    x = /^oai_fcgi_tokens_total (\d+)$/.exec(line);
    if (x) m.tokens = Number(x[1]);
    x = /^oai_fcgi_prompts_total (\d+)$/.exec(line);
    if (x) m.prompts = Number(x[1]);
  }
  return m;
}

const mapText = (mp) => JSON.stringify([...mp].sort((a, b) => a[0] - b[0]));

/** The user's token counter for the family (0 before the first use). */
async function userTokens(l = L) {
  const r = await fetchText(`${l.url}/admin/users/${USER}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return (r.json && r.json.tokenCounts && r.json.tokenCounts[FAMILY]) || 0;
}

/**
 * The ledger check: /metrics counts each request once, under the status its client saw, and the
 * user's counter equals the gateway's token counter (no reservation left behind, nothing counted
 * twice). Counters are written right after each answer: polled for a while.
 */
async function ledger(what) {
  let m = null;
  let u = 0;
  for (let i = 0; i < 50; i++) {
    m = await metrics();
    u = await userTokens();
    if (mapText(m.chat) === mapText(seen.chat) && mapText(m.messages) === mapText(seen.messages) && u === m.tokens) break;
    await sleep(100);
  }
  equal(mapText(m.chat), mapText(seen.chat), `${what}: /metrics counts every chat request once, with the status its client saw`);
  equal(mapText(m.messages), mapText(seen.messages), `${what}: the same for /messages`);
  equal(u, m.tokens, `${what}: the user's counter equals the gateway's token counter (reservations settled)`);
  return m;
}

/** Descriptors before `fn` and after it, each after a good request (which leaves a pooled connection). */
async function sameDescriptors(what, fn) {
  await good('chat', false);
  const before = descriptors();
  await fn();
  await good('chat', false);
  let after = descriptors();
  for (let i = 0; i < 30 && after.length !== before.length; i++) {
    await sleep(100);
    after = descriptors();
  }
  noLeak(what, before, after);
}

/**
 * The descriptors after a run of faults against those before. The pool of upstream connections
 * may hold one or two more or fewer (a request that starts while the previous one still reads the
 * end of its reply takes another pooled handle); a leak grows with the number of faults.
 */
function noLeak(what, before, after) {
  const added = after.filter((x) => !before.includes(x));
  const gone = before.filter((x) => !after.includes(x));
  ok(after.length <= before.length + SLACK, `${what}: no descriptor leak (${before.length} → ${after.length})`, { added, gone });
}
const SLACK = 2;

/** The gateway under test: lighttpd, the mock, the provider route, the answer's text, whether the ledger counts it. */
const VERTEX = { get l() { return L; }, get mock() { return G.mock; }, base: GCP, text: TEXT, ledger: true, headers: () => auth() };

/** A request on `route` whose upstream answer is fault `spec` (null: a normal answer). */
async function call(route, stream, spec, { tag = 'f', body: extra = {}, at = VERTEX } = {}) {
  const m = mark('text', `${tag}${++seq}`);
  if (spec) at.mock.faults.set(m, spec);
  const url = `${at.l.url}${at.base}/${route === 'chat' ? 'chat/completions' : 'messages'}`;
  const body = { model: MODEL, max_tokens: 1000, stream, messages: user(m), ...extra };
  const headers = { 'content-type': 'application/json', ...at.headers() };
  if (route === 'messages') headers['anthropic-version'] = '2023-06-01';
  const t0 = Date.now();
  const r = stream
    ? await postStream(url, body, { headers, timeout: 60000 })
    : await fetchText(url, { method: 'POST', headers, body: JSON.stringify(body), timeout: 60000 });
  r.ms = Date.now() - t0;
  r.recs = at.mock.find(m);
  if (at.ledger) note(route, r.status);
  return r;
}

async function good(route, stream) {
  const r = await call(route, stream, null, { tag: 'g' });
  if (r.status !== 200) diag(`a plain request failed: ${r.status} ${r.body}`);
  return r;
}

/** Is `r` a clear error in the route's format? An HTTP error before anything was sent, or a 200 stream whose last events are an error and (OpenAI) [DONE]. */
function errorShape(route, r) {
  const isErr = route === 'chat' ? isOpenAIError : isAnthropicError;
  if (r.status >= 500) return isErr(r.json) ? null : `status ${r.status} without an error body: ${String(r.body).slice(0, 200)}`;
  if (r.status !== 200) return `status ${r.status}`;
  if (!r.events) return `200 non-stream for a broken reply: ${String(r.body).slice(0, 200)}`;
  const ev = r.events;
  if (route === 'chat') {
    if (!ev.length || ev[ev.length - 1].data !== '[DONE]') return 'the stream does not end with [DONE]';
    if (ev.filter((e) => e.data === '[DONE]').length !== 1) return 'more than one [DONE]';
    const last = ev[ev.length - 2];
    if (!last || !isOpenAIError(last.json)) return `no error event before [DONE]: ${ev.slice(-3).map((e) => e.data).join(' | ')}`;
    return null;
  }
  const last = ev[ev.length - 1];
  if (!last || last.event !== 'error' || !isAnthropicError(last.json)) return `the stream does not end with an error event: ${ev.slice(-2).map((e) => `${e.event} ${e.data}`).join(' | ')}`;
  return null;
}

/** Is `r` the complete, correct answer? */
function complete(route, stream, r, text = TEXT) {
  if (r.status !== 200) return false;
  if (!stream) {
    if (route === 'chat') return r.json && r.json.choices && r.json.choices[0].message.content === text && r.json.choices[0].finish_reason === 'stop';
    return r.json && r.json.type === 'message' && r.json.content[0].text === text;
  }
  if (route === 'chat') {
    const ch = chunksOf(r);
    return r.done === 1 && joinContent(ch) === text && ch.some((c) => c.choices && c.choices[0] && c.choices[0].finish_reason === 'stop') && !ch.some((c) => c && c.error);
  }
  return r.events.some((e) => e.event === 'message_stop') && !r.events.some((e) => e.event === 'error');
}

/** The offsets to cut the well-formed answer at: boundaries ±1, 0, and `random` others. */
function offsets(ans, random) {
  const len = ans.bytes.length;
  if (process.env.OAI_FAULT_OFFSETS === 'all') return Array.from({ length: len + 1 }, (_, i) => i);
  const set = new Set([0, 1, 2, 10, len - 1, len]);
  for (const mk of ans.marks) for (const d of [-1, 0, 1]) if (mk.offset + d >= 0 && mk.offset + d <= len) set.add(mk.offset + d);
  const rnd = crypto.createHash('sha256');
  for (let i = 0; set.size < ans.marks.length * 3 + 6 + random && i < 10 * random; i++) {
    const h = rnd.copy().update(String(i)).digest();
    set.add(h.readUInt32BE(0) % len);
  }
  return [...set].sort((a, b) => a - b);
}

if (importError) test('openai package is installed', () => { ok(false, 'import openai (run `npm ci` in tests/)', importError.message); });

test('start the Vertex mock and lighttpd (one gateway process, a user token)', async () => {
  if (!requireBin()) throw new Error('no binary');
  G = await setupMock();
  L = await startGateway(G, { GATEKEEPER: 'user_token', ADMIN_KEY, UPSTREAM_TIMEOUT_S: 6, STREAM_IDLE_TIMEOUT_S: 2, HEARTBEAT_S: 1 }, { procs: 1 });
  const r = await fetchText(`${L.url}/admin/users`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` }, body: '{}' });
  equal(r.status, 200, 'POST /admin/users', r.body);
  USER = r.json && r.json.token;
  ok(USER, 'a user token');
  equal(L.gatewayPids().length, 1, 'one gateway process');
  const g = await good('chat', false);
  ok(complete('chat', false, g), 'a plain request works', g.body);
}, { timeout: 30000 });

/**
 * Cut the well-formed reply of `at` at sampled offsets for `route` / `stream`: every answer is a
 * clear error, or the whole answer once the reply was complete (the JSON's last byte; a stream's
 * message_stop), and the gateway leaks no descriptor.
 */
async function cuts(at, route, stream, random) {
  // the real answer's layout: ask the mock for one well-formed reply and look at it
  const probe = await call(route, stream, { kind: 'cut', at: 1e9 }, { tag: 'probe', at });
  ok(complete(route, stream, probe, at.text), 'an uncut reply (closed after its last byte) is answered whole', probe.body || probe.events.map((e) => e.data));
  const rec = probe.recs[0] || {};
  const len = rec.rawLength;
  ok(len > 100, `the well-formed reply is ${len} bytes`);
  const ans = rec.answer;
  const whole = ans ? ans.marks.find((x) => x.what === (stream ? 'message_stop' : 'body')).offset : len;
  const offs = ans ? offsets(ans, random) : [];
  await call(route, false, null, { tag: 'g', at }); // a pooled connection, as there will be after
  const before = descriptors(at.l);
  const tally = { error: 0, complete: 0 };
  const problems = [];
  for (const cut of offs) {
    const r = await call(route, stream, { kind: 'cut', at: cut }, { at });
    if (complete(route, stream, r, at.text)) {
      tally.complete++;
      if (cut < whole) problems.push(`cut at ${cut} (< ${whole}): a complete answer from an incomplete reply`);
      continue;
    }
    tally.error++;
    const bad = errorShape(route, r);
    if (bad) problems.push(`cut at ${cut}: ${bad}`);
    else if (cut >= whole && cut < len && !stream) problems.push(`cut at ${cut}: an error although the reply was whole`);
    if (r.recs.length < 1 || r.recs.length > 3) problems.push(`cut at ${cut}: ${r.recs.length} upstream attempts`);
  }
  ok(offs.length > 20, `${offs.length} offsets tried`);
  ok(!problems.length, `every cut answered properly (${tally.error} errors, ${tally.complete} complete answers)`, problems.slice(0, 20).join('\n'));
  await call(route, false, null, { tag: 'g', at }); // leaves a pooled connection, as before
  noLeak('cuts', before, descriptors(at.l));
}

for (const [route, stream, random] of [['chat', false, 40], ['chat', true, 60], ['messages', false, 15], ['messages', true, 25]]) {
  test(`Vertex, ${route} ${stream ? 'stream' : 'non-stream'}: the reply cut at sampled byte offsets → a clear error, or the whole answer once it was complete`, async () => {
    await cuts(VERTEX, route, stream, random);
    await ledger(`${route} cuts`);
  }, { timeout: 600000 });
}

test('Bedrock: the event stream (one AWS event-stream message per event) and the JSON reply cut at sampled byte offsets', async () => {
  const B = await setupBedrock();
  const lb = await startGateway(B, {}, { procs: 1 });
  const at = { l: lb, mock: B.mock, base: AWS, text: 'Hello from the Bedrock mock.', ledger: false, headers: () => ({}) };
  for (const [route, stream, random] of [['chat', true, 40], ['messages', true, 20], ['chat', false, 15]]) {
    diag(`Bedrock ${route} ${stream ? 'stream' : 'non-stream'}`);
    await cuts(at, route, stream, random);
  }
  equal(B.mock.violations.length, 0, 'the Bedrock mock saw only well-signed, well-formed requests', B.mock.violations);
  await lb.stopAndClean();
}, { timeout: 600000 });

test('the official openai SDK meets a reply cut mid-body and a stream that stops: an APIError each time, never a silent partial answer', async () => {
  if (!OpenAI) return;
  const c = client(L, GCP, { apiKey: USER });
  const m1 = mark('text', `sdk${++seq}`);
  G.mock.faults.set(m1, { kind: 'cut', at: 300 }); // inside the JSON body
  let e = null;
  try { await c.chat.completions.create({ model: MODEL, messages: user(m1) }); } catch (x) { e = x; }
  ok(e instanceof OpenAI.APIError, 'non-stream: the SDK raises APIError', e && e.message);
  equal(e && e.status, 502, 'with status 502');
  note('chat', 502);
  const m2 = mark('text', `sdk${++seq}`);
  G.mock.faults.set(m2, { kind: 'stall', after: 'events' });
  let got = '';
  e = null;
  try {
    const st = await c.chat.completions.create({ model: MODEL, stream: true, messages: user(m2) });
    for await (const ch of st) got += (ch.choices[0] && ch.choices[0].delta && ch.choices[0].delta.content) || '';
  } catch (x) { e = x; }
  ok(e instanceof OpenAI.APIError, 'stream: the SDK raises APIError when the stream stops', e && e.message);
  ok(TEXT.startsWith(got) && got.length < TEXT.length, `after the part that had arrived (${JSON.stringify(got)})`);
  note('chat', 200);
  await ledger('SDK');
}, { timeout: 60000 });

/** POST and keep the raw bytes of the answer: {status, headers, buf}. */
async function rawPost(route, stream, m) {
  const url = `${L.url}${GCP}/${route === 'chat' ? 'chat/completions' : 'messages'}`;
  const headers = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...auth() };
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ model: MODEL, max_tokens: 1000, stream, messages: user(m) }), signal: AbortSignal.timeout(30000) });
  const buf = Buffer.from(await res.arrayBuffer());
  note(route, res.status);
  return { status: res.status, buf };
}

// Bytes that are not UTF-8: a stray continuation byte, a truncated 2-byte sequence, an encoded
// surrogate, an overlong '/', a 5-byte form, 0xFF.
const BAD_UTF8 = Buffer.from([0x80, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xc0, 0xaf, 0xf8, 0x88, 0x80, 0x80, 0x80, 0xff]);
const HOLE = '@@not-utf8@@';
const BAD_TEXT = ['Bad bytes: ', `${HOLE}`, ' and then the end.'];

/** The mock's reply with BAD_UTF8 inside a text delta (stream) or the text (JSON). */
function badReply(stream) {
  const ev = [
    { type: 'message_start', message: { id: 'msg_vrtx_utf8', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } } },
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    ...BAD_TEXT.map((t) => ({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } })),
    { type: 'content_block_stop', index: 0 },
    { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 9 } },
    { type: 'message_stop' },
  ];
  const text = stream
    ? ev.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join('')
    : JSON.stringify({ ...ev[0].message, content: [{ type: 'text', text: BAD_TEXT.join('') }], stop_reason: 'end_turn', usage: { ...ev[0].message.usage, output_tokens: 9 } });
  const [a, b] = text.split(HOLE);
  return Buffer.concat([Buffer.from(a), BAD_UTF8, Buffer.from(b)]);
}

test('invalid UTF-8 from the upstream → valid UTF-8 to the client, ill-formed sequences replaced by U+FFFD', async () => {
  for (const route of ['chat', 'messages']) {
    for (const stream of [false, true]) {
      const m = mark('text', `utf8${++seq}`);
      G.mock.faults.set(m, { kind: 'bytes', body: badReply(stream) });
      const r = await rawPost(route, stream, m);
      const what = `${route} ${stream ? 'stream' : 'non-stream'}`;
      equal(r.status, 200, `${what}: 200`, r.buf.toString('latin1'));
      let text = null;
      try { text = new TextDecoder('utf-8', { fatal: true }).decode(r.buf); } catch { /* not UTF-8 */ }
      ok(text !== null, `${what}: the answer is valid UTF-8`, r.buf.toString('latin1'));
      if (text === null) continue;
      let got = '';
      if (!stream) {
        const j = JSON.parse(text);
        got = route === 'chat' ? j.choices[0].message.content : j.content[0].text;
      } else {
        for (const line of text.split('\n')) {
          if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
          const j = JSON.parse(line.slice(6));
          if (route === 'chat') got += (j.choices && j.choices[0] && j.choices[0].delta.content) || '';
          else if (j.type === 'content_block_delta') got += j.delta.text;
        }
      }
      // the WHATWG decoder (Node's TextDecoder) replaces maximal subparts as Unicode advises
      equal(got, BAD_TEXT.join('').replace(HOLE, new TextDecoder().decode(BAD_UTF8)), `${what}: the text around the bad bytes is kept; each ill-formed sequence is one U+FFFD, as a WHATWG decoder makes it`);
    }
  }
  await ledger('invalid UTF-8');
});

/**
 * One fault on both routes and both modes: a clear error in the client's format within `withinMs`,
 * and the upstream connection closed by then (the transfer aborted, not left to run).
 */
function faultTest(title, spec, withinMs, check = () => {}) {
  test(title, async () => {
    await sameDescriptors(spec.kind, async () => {
      for (const route of ['chat', 'messages']) {
        for (const stream of [false, true]) {
          const what = `${route} ${stream ? 'stream' : 'non-stream'}`;
          const r = await call(route, stream, spec);
          const bad = errorShape(route, r);
          ok(!bad, `${what}: a clear error (${r.status})`, bad);
          ok(r.ms < withinMs, `${what}: answered in ${r.ms} ms (< ${withinMs})`);
          // the mock sees the close a moment after the client has its answer
          const closed = await G.mock.waitFor(() => r.recs.every((x) => x.closedAt), 3000);
          ok(r.recs.length >= 1 && closed, `${what}: every upstream connection (${r.recs.length}) was closed`, r.recs.map((x) => ({ closedAt: x.closedAt, sent: x.bytesSent })));
          check(r, what, route, stream);
        }
      }
    });
    await ledger(spec.kind);
  }, { timeout: 240000 });
}

const errText = (r) => (r.json ? r.json.error.message : ((r.events || []).map((e) => e.json && e.json.error && e.json.error.message).filter(Boolean)[0] || ''));

faultTest('an upstream that accepts and never answers → 504 after UPSTREAM_TIMEOUT_S (6 s), heartbeats meanwhile on streams', { kind: 'stall', after: 'nothing' }, 25000, (r, what, route, stream) => {
  match(errText(r), /timed out|timeout/i, `${what}: the error says it timed out`);
  if (stream) {
    equal(r.status, 200, `${what}: the stream committed 200 after HEARTBEAT_S of silence`);
    ok(r.comments.length >= 3, `${what}: heartbeat comments while waiting (${r.comments.length})`);
  } else equal(r.status, 504, `${what}: 504`);
});

faultTest('an upstream that sends its headers and then nothing → 504 after STREAM_IDLE_TIMEOUT_S (2 s)', { kind: 'stall', after: 'headers' }, 12000, (r, what) => {
  match(errText(r), /silent for more than STREAM_IDLE_TIMEOUT_S/, `${what}: the error names STREAM_IDLE_TIMEOUT_S`);
});

faultTest('a reply that stops halfway (three events; half the JSON) → the content so far, then an error (idle timeout)', { kind: 'stall', after: 'events' }, 12000, (r, what, route, stream) => {
  match(errText(r), /STREAM_IDLE_TIMEOUT_S/, `${what}: the error names the idle timeout`);
  if (stream) equal(r.status, 200, `${what}: the stream had started`);
  else equal(r.status, 504, `${what}: 504`);
});

faultTest('endless response headers → 502 as soon as they pass libcurl\'s limit', { kind: 'endless-header' }, 10000, (r, what) => {
  equal(r.status, 502, `${what}: 502`);
  ok(r.recs.every((x) => x.bytesSent < 8 * 1024 * 1024), `${what}: the gateway stopped reading within 8 MB`, r.recs.map((x) => x.bytesSent));
});

faultTest('one header line that never ends → 502', { kind: 'endless-header', line: true }, 10000, (r, what) => {
  equal(r.status, 502, `${what}: 502`);
  ok(r.recs.every((x) => x.bytesSent < 8 * 1024 * 1024), `${what}: the gateway stopped reading within 8 MB`, r.recs.map((x) => x.bytesSent));
});

faultTest('a 100 MB answer → 502 once it passes the gateway\'s ceiling (64 MiB of JSON, 8 MiB per event)', { kind: 'huge' }, 30000, (r, what, route, stream) => {
  ok(r.recs.every((x) => x.bytesSent < HUGE), `${what}: the gateway hung up before the 100 MB were out`, r.recs.map((x) => x.bytesSent));
  if (!stream) match(errText(r), /larger than \d+ bytes/, `${what}: the error says the reply is too large`);
});

// ---- clients that go away ----------------------------------------------------------------------
// Straight on the gateway's FastCGI socket (as lighttpd would: the web server is the client the
// gateway sees) for the stages a browser cannot reach, then through lighttpd with real HTTP clients.

const fcgiSock = () => `${L.rundir}/oai-fcgi.sock-0`;

function fcgiParams(stream, m) {
  const body = JSON.stringify({ model: MODEL, max_tokens: 1000, stream, messages: user(m) });
  return { body, params: cgiEnv({ method: 'POST', uri: `${GCP}/chat/completions`, body, headers: auth() }) };
}

/** The upstream records of marker `m` once the mock has seen the connection close (null if not within `ms`). */
const closedWithin = (m, ms) => G.mock.waitFor(() => {
  const recs = G.mock.find(m);
  return recs.length && recs.every((x) => x.closedAt) ? recs : null;
}, ms);

test('a web server that drops the connection mid-params or mid-body: the request is dropped, nothing goes upstream', async () => {
  await sameDescriptors('early drops', async () => {
    for (const stage of ['params', 'body']) {
      const m = mark('text', `drop${++seq}`);
      const { body, params } = fcgiParams(false, m);
      const c = await FcgiConn.connect(fcgiSock());
      c.begin();
      if (stage === 'params') c.write(record(T.PARAMS, 1, encodeParams(params)).subarray(0, 200));
      else c.params(params).stdin(body.slice(0, body.length >> 1));
      await sleep(300);
      c.destroy();
      await sleep(500);
      equal(G.mock.find(m).length, 0, `${stage}: no upstream request`);
    }
    const h = await fetchText(`${L.url}/healthz`);
    equal(h.status, 200, 'the gateway still answers');
  });
  await ledger('early drops');
}, { timeout: 60000 });

test('a web server that drops the connection while the upstream thinks, mid-stream, or sends ABORT_REQUEST: the upstream transfer ends at once', async () => {
  await sameDescriptors('drops', async () => {
    for (const [stage, stream, spec] of [['thinking', false, { kind: 'stall', after: 'nothing' }], ['mid-stream', true, { kind: 'stall', after: 'events' }], ['abort-request', true, { kind: 'stall', after: 'events' }]]) {
      const m = mark('text', `drop${++seq}`);
      G.mock.faults.set(m, spec);
      const { body, params } = fcgiParams(stream, m);
      const c = await FcgiConn.connect(fcgiSock());
      c.begin().params(params).stdin(body).endStdin();
      await G.mock.waitFor(() => G.mock.find(m).length > 0, 5000);
      if (stream) await G.mock.waitFor(() => c.firstStdoutAt, 5000);
      else await sleep(500);
      const at = Date.now();
      if (stage === 'abort-request') c.abort();
      else c.destroy();
      const recs = await closedWithin(m, 4000);
      ok(recs, `${stage}: the upstream connection was closed`);
      if (recs) ok(recs[0].closedAt - at < 2000, `${stage}: within 2 s of the drop (${recs[0].closedAt - at} ms)`);
      if (stage === 'abort-request') {
        const res = await Promise.race([c.response, sleep(5000).then(() => null)]);
        ok(res && res.ended, 'ABORT_REQUEST: the gateway ends the request (END_REQUEST)', res);
        c.destroy();
      }
      note('chat', stream ? 200 : 499); // what the gateway records: the stream had begun; the plain request was never answered
    }
  });
  await ledger('drops');
}, { timeout: 90000 });

// A non-stream request is left out here: lighttpd does not tell its backend about a client's
// close until it has something to write to that client (a FIN alone may be a half-close), so the
// upstream call runs to its end (UPSTREAM_TIMEOUT_S at most) and the answer is dropped. A stream
// writes a heartbeat every HEARTBEAT_S, and that write is what reveals the hang-up.
test('HTTP clients that hang up on a stream while the upstream thinks (heartbeats) or mid-stream (through lighttpd): the upstream transfer ends', async () => {
  await sameDescriptors('hang-ups', async () => {
    for (const [stage, stream, spec] of [['thinking', true, { kind: 'stall', after: 'nothing' }], ['mid-stream', true, { kind: 'stall', after: 'events' }]]) {
      const m = mark('text', `hup${++seq}`);
      G.mock.faults.set(m, spec);
      const ac = new AbortController();
      const url = `${L.url}${GCP}/chat/completions`;
      const p = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...auth() }, body: JSON.stringify({ model: MODEL, max_tokens: 1000, stream, messages: user(m) }), signal: ac.signal })
        .then(async (res) => { for await (const x of res.body) void x; return res.status; }).catch(() => null);
      await G.mock.waitFor(() => G.mock.find(m).length > 0, 5000);
      await sleep(stage === 'thinking' ? 1500 : 300); // past the first heartbeat (HEARTBEAT_S=1)
      const at = Date.now();
      ac.abort();
      await p;
      const recs = await closedWithin(m, 5000);
      ok(recs, `${stage}: the upstream connection was closed`);
      if (recs) ok(recs[0].closedAt - at < 3000, `${stage}: within 3 s of the hang-up (${recs[0].closedAt - at} ms)`);
      note('chat', 200); // the stream had begun
    }
  });
  await ledger('hang-ups');
}, { timeout: 90000 });

test('a client that hangs up while its stream waits in the queue for a cooling key: it leaves the queue, nothing more goes upstream', async () => {
  await sameDescriptors('queue hang-up', async () => {
    G.mock.keyScenario(G.sa.email, 'rate429ra5'); // every answer 429 with Retry-After: 5
    const m = mark('text', `queue${++seq}`);
    const ac = new AbortController();
    const p = fetch(`${L.url}${GCP}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth() }, body: JSON.stringify({ model: MODEL, stream: true, messages: user(m) }), signal: ac.signal })
      .then(async (res) => { for await (const x of res.body) void x; }).catch(() => null);
    await G.mock.waitFor(() => G.mock.find(m).length === 1, 5000);
    await sleep(1300); // waiting for the cooldown, past the first heartbeat
    const q = await fetchText(`${L.url}/status`);
    equal(q.json && q.json[FAMILY] && q.json[FAMILY].proomptersInQueue, 1, 'the info page counts the waiting request');
    ac.abort();
    await p;
    G.mock.keyScenario(G.sa.email, null);
    let s2 = null;
    for (let i = 0; i < 30; i++) {
      s2 = await fetchText(`${L.url}/status`);
      if (s2.json && s2.json[FAMILY] && s2.json[FAMILY].proomptersInQueue === 0) break;
      await sleep(100);
    }
    equal(s2.json && s2.json[FAMILY] && s2.json[FAMILY].proomptersInQueue, 0, 'the queue is empty again');
    await G.mock.waitFor(() => G.mock.find(m).length > 1, 5000); // past the cooldown: a retry would have come
    equal(G.mock.find(m).length, 1, 'no attempt after the hang-up');
    note('chat', 200); // the stream had begun (heartbeats)
  });
  await ledger('queue hang-up');
}, { timeout: 60000 });

// ---- the network ---------------------------------------------------------------------------------

/** A gateway whose Vertex host (and, with `token`, the token host) is reached at `target` (host:port). */
async function brokenGateway(target, { token = false } = {}) {
  const map = [
    `oauth2.googleapis.com:443:${token ? target : `127.0.0.1:${G.mock.port}`}`,
    `us-east5-aiplatform.googleapis.com:443:${target}`,
  ].join(',');
  return startLighttpd({ env: { ...G.env, UPSTREAM_CONNECT_TO: map, UPSTREAM_TIMEOUT_S: 10 }, procs: 1 });
}

/** A loopback server that does `onConn(socket)` with every connection; closed at the end. */
async function rawServer(onConn) {
  const s = net.createServer(onConn);
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => s.close(() => r())));
  return s.address().port;
}

const networkCases = [
  ['a certificate from a CA the gateway does not trust', async () => {
    const t = await makeTls(tmpDir('faults-ca-'));
    const s = https.createServer({ key: t.key, cert: t.cert }, (req, res) => res.end('{}'));
    s.on('tlsClientError', () => {});
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise((r) => { s.closeAllConnections && s.closeAllConnections(); s.close(() => r()); }));
    return `127.0.0.1:${s.address().port}`;
  }, /certificate|SSL|TLS/i],
  ['a server that answers the TLS hello in plain HTTP', async () => `127.0.0.1:${await rawServer((c) => { c.on('error', () => {}); c.once('data', () => c.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}')); })}`, /SSL|TLS|wrong version|record/i],
  ['a server that hangs up on the TLS hello', async () => `127.0.0.1:${await rawServer((c) => { c.on('error', () => {}); c.once('data', () => c.destroy()); })}`, /SSL|TLS|reset|connect|closed/i],
  ['a port nobody listens on', async () => `127.0.0.1:${await rawServer(() => {}).then(async (p) => p)}`, null],
  ['a name that does not resolve', async () => 'no-such-host.invalid:443', /resolve/i],
];

for (const [name, target, re] of networkCases) {
  test(`TLS and DNS failures: ${name} → 502 in the client's format, quickly`, async () => {
    let addr = await target();
    if (re === null) { // the server above is closed again: its port refuses connections
      addr = `127.0.0.1:${await new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); })}`;
    }
    const l = await brokenGateway(addr);
    try {
      for (const stream of [false, true]) {
        const url = `${l.url}${GCP}/chat/completions`;
        const body = { model: MODEL, stream, messages: [{ role: 'user', content: `Hi ${mark('text', `net${++seq}`)}` }] };
        const t0 = Date.now();
        const r = stream ? await postStream(url, body, { timeout: 60000 }) : await fetchText(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), timeout: 60000 });
        const ms = Date.now() - t0;
        const what = stream ? 'stream' : 'non-stream';
        equal(r.status, 502, `${what}: 502`, r.body);
        ok(isOpenAIError(r.json), `${what}: an OpenAI error body`, r.body);
        const msg = (r.json && r.json.error.message) || '';
        match(msg, /the upstream could not be reached/, `${what}: the message says the upstream could not be reached`);
        if (re) match(msg, re, `${what}: and why (${msg})`);
        ok(ms < 20000, `${what}: in ${ms} ms`);
        ok(!msg.includes(G.sa.pem.split('\n')[5]) && !/ya29\./.test(msg), `${what}: no credential in the message`);
      }
      // the token endpoint behind the same fault: an authentication failure, said as such
      if (name.startsWith('a certificate')) {
        const l2 = await brokenGateway(addr, { token: true });
        const r = await fetchText(`${l2.url}${GCP}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hi there' }] }), timeout: 60000 });
        equal(r.status, 502, 'the token endpoint behind it: 502', r.body);
        match(r.json && r.json.error.code, /upstream_auth_failed/, 'code upstream_auth_failed');
        await l2.stopAndClean();
      }
    } finally {
      await l.stopAndClean();
    }
  }, { timeout: 120000 });
}

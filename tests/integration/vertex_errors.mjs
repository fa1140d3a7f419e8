// Upstream errors from the mock Vertex / token endpoints and what the client sees (SPEC §6, §8,
// §11; wire-formats §7): a 401 is one token refresh and one retry; errors before the first byte
// keep their status in the client's format (400, 404, 429 + Retry-After, 529 → 503
// server_is_overloaded, invalid_grant → 502/503); errors after it are an error event then
// [DONE]. Errors that cool the only key (429, 529, invalid_grant) each get a fresh gateway with
// its own state store, so that one test's cooldown is not the next one's wait.
import { test, ok, equal, deepEqual, match, fail } from '../lib/tap.mjs';
import { requireBin, fetchText, isOpenAIError, isAnthropicError } from '../lib/harness.mjs';
import { mark } from '../mock/vertex.mjs';
import { GCP, MODEL, ANTHROPIC_HEADERS, OpenAI, importError, setupMock, startGateway, client, collect, postStream, chunksOf, joinContent } from '../mock/gateway.mjs';

let G;
let L; // the shared gateway (errors that do not cool the key)
const chatUrl = (l = L) => `${l.url}${GCP}/chat/completions`;
const msgUrl = (l = L) => `${l.url}${GCP}/messages`;
const user = (text) => [{ role: 'user', content: text }];

/** Run fn(gateway) on a gateway with a fresh state store, stopped afterwards. */
async function fresh(fn, env = {}) {
  const l = await startGateway(G, env);
  try { return await fn(l); } finally { await l.stopAndClean(); }
}

async function sdkError(p) {
  try { await p; } catch (e) { return e; }
  return null;
}

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });

test('start the mock Google endpoints and lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  G = await setupMock();
  G.mock.reset();
  L = await startGateway(G);
  ok(L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

test('401 from Vertex: the token is refreshed once and the request retried, then success', async () => {
  const m = mark('auth401', 'ns');
  const r = await client(L).chat.completions.create({ model: MODEL, messages: user(`Hi there ${m}`) });
  equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'the client gets the answer');
  const recs = G.mock.find(m);
  deepEqual(recs.map((x) => x.status), [401, 200], 'Vertex saw the request twice: 401, then 200');
  equal(G.mock.tokensSeen(m).length, 2, 'with two different tokens');
  equal(G.mock.tokenCalls, 2, 'the token endpoint was called twice in all', G.mock.tokenLog.map((t) => ({ status: t.status, error: t.error })));
  const m2 = mark('auth401', 'st');
  const calls = G.mock.tokenCalls;
  const s = await client(L).chat.completions.create({ model: MODEL, stream: true, messages: user(`Hi there ${m2}`) });
  equal(joinContent((await collect(s)).map((x) => x.chunk)), 'Hello from the Vertex mock.', 'stream: the client gets the answer');
  deepEqual(G.mock.find(m2).map((x) => x.status), [401, 200], 'stream: 401, then 200');
  equal(G.mock.tokenCalls - calls, 1, 'stream: one more token request');
  const m3 = mark('text', 'after401');
  await client(L).chat.completions.create({ model: MODEL, messages: user(`Hi there ${m3}`) });
  equal(G.mock.tokenCalls - calls, 1, 'the refreshed token is cached for the next request');
});

test('upstream 400 → 400 invalid_request_error before the first byte (non-stream and stream)', async () => {
  const e = await sdkError(client(L).chat.completions.create({ model: MODEL, messages: user(`Long ${mark('bad400', 'ns')}`) }));
  ok(e instanceof OpenAI.BadRequestError, 'BadRequestError', e && e.message);
  equal(e && e.status, 400, 'status 400');
  equal(e && e.type, 'invalid_request_error', 'type invalid_request_error');
  match(e && e.message, /prompt is too long/, 'the upstream message is kept');
  const r = await postStream(chatUrl(), { model: MODEL, stream: true, messages: user(`Long ${mark('bad400', 'st')}`) });
  equal(r.status, 400, 'stream: status 400 (decided before the first byte)');
  ok(isOpenAIError(r.json), 'stream: OpenAI error body', r.body);
});

test('upstream 404 keeps its status', async () => {
  const r = await fetchText(chatUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: user(`Where ${mark('notfound404', 'ns')}`) }) });
  equal(r.status, 404, 'status 404', r.body);
  ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
});

test('mid-stream error → an error event, then [DONE]', async () => {
  const m = mark('midstream_error', 'raw');
  const s = await postStream(chatUrl(), { model: MODEL, stream: true, messages: user(`Go ${m}`) });
  equal(s.status, 200, 'status 200');
  const n = s.events.length;
  equal(s.events[n - 1] && s.events[n - 1].data, '[DONE]', '[DONE] last');
  const errEv = s.events[n - 2] || {};
  ok(errEv.json && isOpenAIError(errEv.json) && !('choices' in errEv.json), 'the event before [DONE] is {"error":{…}} without choices', errEv.data);
  equal(s.events.filter((e) => e.json && e.json.error).length, 1, 'one error event');
  equal(joinContent(chunksOf(s).filter((c) => c.choices)), 'Partial', 'the content before the error arrived');
  ok(!chunksOf(s).some((c) => c.choices && c.choices.some((ch) => ch.finish_reason)), 'no finish chunk (it did not finish)');
  let got = '';
  const e = await sdkError((async () => {
    const st = await client(L).chat.completions.create({ model: MODEL, stream: true, messages: user(`Go ${mark('midstream_error', 'sdk')}`) });
    for await (const c of st) got += (c.choices[0] && c.choices[0].delta && c.choices[0].delta.content) || '';
  })());
  ok(e instanceof OpenAI.APIError, 'the SDK raises APIError mid-stream', e && e.message);
  equal(got, 'Partial', 'after the partial content');
});

test('truncated upstream stream (no message_stop) → an error event, then [DONE]', async () => {
  for (const scen of ['truncated', 'truncated_reset']) {
    const s = await postStream(chatUrl(), { model: MODEL, stream: true, messages: user(`Go ${mark(scen, 'raw')}`) });
    equal(s.status, 200, `${scen}: status 200`);
    const n = s.events.length;
    equal(s.events[n - 1] && s.events[n - 1].data, '[DONE]', `${scen}: [DONE] last`);
    const errEv = s.events[n - 2] || {};
    ok(errEv.json && isOpenAIError(errEv.json) && !('choices' in errEv.json), `${scen}: an error event before [DONE]`, s.events.map((x) => x.data));
    ok(!chunksOf(s).some((c) => c.choices && c.choices.some((ch) => ch.finish_reason === 'stop')), `${scen}: not reported as a normal stop`);
  }
});

test('429 without Retry-After → 429 with Retry-After, after at most 3 attempts', async () => {
  await fresh(async (l) => {
    const m = mark('rate429', 'ns');
    const t0 = Date.now();
    const r = await fetchText(chatUrl(l), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: user(`Busy ${m}`) }), timeout: 90000 });
    equal(r.status, 429, 'status 429', r.body);
    ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
    match(r.headers['retry-after'], /^[1-9][0-9]*$/, 'Retry-After in whole seconds');
    equal(r.json && r.json.error && r.json.error.code, 'rate_limit_exceeded', 'code rate_limit_exceeded (wire-formats §7.4)');
    const n = G.mock.find(m).length;
    ok(n >= 1 && n <= 3, 'between 1 and 3 upstream attempts', n);
    ok(Date.now() - t0 < 60000, 'answered within the wait bound', Date.now() - t0);
    const e = await sdkError(client(l).chat.completions.create({ model: MODEL, stream: true, messages: user(`Busy ${mark('rate429', 'st')}`) }));
    ok(e instanceof OpenAI.RateLimitError, 'stream: RateLimitError before any chunk', e && `${e.status} ${e.message}`);
  });
}, { timeout: 120000 });

test('429 with retry-after: 2 → 429 whose Retry-After follows the upstream', async () => {
  await fresh(async (l) => {
    const m = mark('rate429ra', 'ns');
    const r = await fetchText(chatUrl(l), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: user(`Busy ${m}`) }), timeout: 90000 });
    equal(r.status, 429, 'status 429', r.body);
    const ra = Number(r.headers['retry-after']);
    ok(Number.isInteger(ra) && ra >= 1 && ra <= 2, 'Retry-After 1..2 (the upstream said 2)', r.headers['retry-after']);
    const n = G.mock.find(m).length;
    ok(n >= 1 && n <= 3, 'between 1 and 3 upstream attempts', n);
  });
}, { timeout: 120000 });

test('one 429, then success: the request waits for the cooldown and is retried', async () => {
  await fresh(async (l) => {
    const m = mark('rate429once', 'ns');
    const r = await client(l).chat.completions.create({ model: MODEL, messages: user(`Busy ${m}`) });
    equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'answered');
    deepEqual(G.mock.find(m).map((x) => x.status), [429, 200], 'upstream: 429, then 200');
  });
}, { timeout: 120000 });

test('529 overloaded → 503 server_is_overloaded after the retries', async () => {
  await fresh(async (l) => {
    const m = mark('overloaded529', 'ns');
    const e = await sdkError(client(l).chat.completions.create({ model: MODEL, messages: user(`Busy ${m}`) }));
    ok(e instanceof OpenAI.APIError, 'APIError', e && e.message);
    equal(e && e.status, 503, 'status 503');
    equal(e && e.code, 'server_is_overloaded', 'code server_is_overloaded');
    equal(e && e.type, 'server_error', 'type server_error');
    const n = G.mock.find(m).length;
    ok(n >= 1 && n <= 3, 'between 1 and 3 upstream attempts', n);
  });
}, { timeout: 120000 });

test('/messages: 429 → 429 rate_limit_error with retry-after; 529 → 503 overloaded_error', async () => {
  await fresh(async (l) => {
    const r = await fetchText(msgUrl(l), { method: 'POST', headers: ANTHROPIC_HEADERS, body: JSON.stringify({ model: MODEL, max_tokens: 50, messages: user(`Busy ${mark('rate429', 'msg')}`) }), timeout: 90000 });
    equal(r.status, 429, '429', r.body);
    ok(isAnthropicError(r.json), 'Anthropic error shape', r.body);
    equal(r.json && r.json.error && r.json.error.type, 'rate_limit_error', 'rate_limit_error');
    match(r.headers['retry-after'], /^[1-9][0-9]*$/, 'retry-after in whole seconds');
  });
  await fresh(async (l) => {
    const r = await fetchText(msgUrl(l), { method: 'POST', headers: ANTHROPIC_HEADERS, body: JSON.stringify({ model: MODEL, max_tokens: 50, messages: user(`Busy ${mark('overloaded529', 'msg')}`) }), timeout: 90000 });
    equal(r.status, 503, '503', r.body);
    ok(isAnthropicError(r.json), 'Anthropic error shape', r.body);
    equal(r.json && r.json.error && r.json.error.type, 'overloaded_error', 'overloaded_error');
  });
}, { timeout: 180000 });

test('token endpoint invalid_grant → 502/503 in the client format, nothing sent to Vertex', async () => {
  await fresh(async (l) => {
    G.mock.failToken(20);
    const m = mark('text', 'grant');
    try {
      const r = await fetchText(chatUrl(l), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: user(`Hi there ${m}`) }), timeout: 90000 });
      ok(r.status === 502 || r.status === 503, 'status 502 or 503', `${r.status} ${r.body}`);
      ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
      equal(r.json && r.json.error && r.json.error.type, 'server_error', 'type server_error');
      ok(!/BEGIN|PRIVATE|ya29\./.test(r.body), 'no secret in the error', r.body);
      equal(G.mock.find(m).length, 0, 'no Vertex request');
      ok(G.mock.tokenLog.some((t) => t.status === 400 && /scripted/.test(t.error || '')), 'the token endpoint answered invalid_grant');
    } finally {
      G.mock.tokenFailures = [];
    }
  });
}, { timeout: 120000 });

test('the mock saw no malformed upstream request', () => {
  deepEqual(G.mock.violations, [], 'no check failed at the mock');
});

test('stop lighttpd', async () => {
  if (!L) return;
  ok((await L.stop()) !== null, 'lighttpd stopped');
  await L.stopAndClean();
});

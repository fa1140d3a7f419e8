// Upstream errors from the mock Vertex / token endpoints and what the client sees (SPEC §6, §8,
// §11; wire-formats §7): the shared error scenarios (tests/lib/scenarios.mjs: 400, 404, mid-stream
// error, truncated streams, 429 → 429 + Retry-After, one 429 then success, 529 overloaded → 503
// server_is_overloaded, the same on /messages) plus Vertex's own: a 401 is one token refresh and
// one retry, an upstream retry-after is followed, invalid_grant → 502/503. Errors that cool the only
// key (429, 529, invalid_grant) each get a fresh gateway with its own state store, so that one
// test's cooldown is not the next one's wait.
import { test, ok, equal, deepEqual, fail } from '../lib/tap.mjs';
import { requireBin, fetchText, isOpenAIError } from '../lib/harness.mjs';
import { sharedTests, fresh } from '../lib/scenarios.mjs';
import { mark } from '../mock/vertex.mjs';
import { MODEL, importError, gcpProvider, client, collect, joinContent } from '../mock/gateway.mjs';

const P = gcpProvider();
const chatUrl = (l = P.L) => `${l.url}${P.base}/chat/completions`;
const user = (text) => [{ role: 'user', content: text }];

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });

test('start the mock Google endpoints and lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  P.G = await P.setup();
  P.G.mock.reset();
  P.L = await P.start();
  ok(P.L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

test('401 from Vertex: the token is refreshed once and the request retried, then success', async () => {
  const G = P.G;
  const L = P.L;
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

sharedTests(P, 'errors');

test('429 with retry-after: 2 → 429 whose Retry-After follows the upstream', async () => {
  await fresh(P, async (l) => {
    const m = mark('rate429ra', 'ns');
    const r = await fetchText(chatUrl(l), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: user(`Busy ${m}`) }), timeout: 90000 });
    equal(r.status, 429, 'status 429', r.body);
    const ra = Number(r.headers['retry-after']);
    ok(Number.isInteger(ra) && ra >= 1 && ra <= 2, 'Retry-After 1..2 (the upstream said 2)', r.headers['retry-after']);
    const n = P.G.mock.find(m).length;
    ok(n >= 1 && n <= 3, 'between 1 and 3 upstream attempts', n);
  });
}, { timeout: 120000 });

test('token endpoint invalid_grant → 502/503 in the client format, nothing sent to Vertex', async () => {
  const G = P.G;
  await fresh(P, async (l) => {
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

sharedTests(P, 'end');

// The Anthropic-native route BASE/gcp/claude/v1/messages against the mock Vertex endpoint: the
// body passes through with only what Vertex needs changed (model moved to the URL,
// anthropic_version set), responses and SSE events pass through unchanged (ping included),
// errors come back in the Anthropic shape, anthropic-beta stays a header minus
// DROP_ANTHROPIC_BETAS, and the §12 passthrough rules (sampling, empty text blocks) apply.
import { test, ok, equal, deepEqual, match } from '../lib/tap.mjs';
import { requireBin, fetchText, isAnthropicError } from '../lib/harness.mjs';
import { mark } from '../mock/vertex.mjs';
import { GCP, MODEL, VERTEX_MODEL, HOST, vertexPath, ANTHROPIC_HEADERS, setupMock, startGateway, postStream } from '../mock/gateway.mjs';

let G;
let L;
const DROPPED = 'context-1m-2025-08-07';
const msgUrl = (base = GCP) => `${L.url}${base}/messages`;
/** POST to the messages route; a header set to null is left out. */
const post = (body, headers = {}, base) => {
  const h = Object.fromEntries(Object.entries({ ...ANTHROPIC_HEADERS, ...headers }).filter(([, v]) => v !== null && v !== undefined));
  return fetchText(msgUrl(base), { method: 'POST', headers: h, body: JSON.stringify(body) });
};
const seen = (marker) => {
  const r = G.mock.last(marker);
  ok(r, 'the request reached the mock');
  return r || { body: null, headers: {}, reply: null, path: null, sent: [] };
};
const noViolations = (marker) => deepEqual(G.mock.violations.filter((x) => G.mock.find(marker).some((r) => r.seq === x.seq)), [], 'the mock accepted the upstream request');
/** What the client body becomes upstream: model dropped, anthropic_version added. */
const upstreamOf = (body) => {
  const { model, ...rest } = body;
  void model;
  return { ...rest, anthropic_version: 'vertex-2023-10-16' };
};
const eventsOf = (s) => s.events.map((e) => ({ event: e.event, data: e.json }));
const sentOf = (rec) => rec.sent.map((e) => ({ event: e.type, data: e }));

test('start the mock Google endpoints and lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  G = await setupMock();
  L = await startGateway(G, { DROP_ANTHROPIC_BETAS: DROPPED });
  ok(L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

test('non-stream passthrough: body in, message out, unchanged', async () => {
  const m = mark('text', 'ns');
  const body = { model: MODEL, max_tokens: 300, system: 'Be brief.', temperature: 0.5, metadata: { user_id: 'u-1' }, messages: [{ role: 'user', content: [{ type: 'text', text: `Hello ${m}` }] }] };
  const r = await post(body);
  equal(r.status, 200, 'status', r.body);
  match(r.headers['content-type'], /^application\/json/, 'content-type');
  const rec = seen(m);
  deepEqual(r.json, rec.reply, 'the response is the upstream message, unchanged');
  equal(rec.host, HOST, 'host');
  equal(rec.path, vertexPath(VERTEX_MODEL, 'rawPredict'), 'rawPredict path with the Vertex id');
  deepEqual(rec.body, upstreamOf(body), 'upstream body = client body without model, with anthropic_version');
  ok(!('x-api-key' in rec.headers) && !('anthropic-version' in rec.headers), 'client x-api-key and anthropic-version headers not forwarded', rec.headers);
  match(rec.headers.authorization, /^Bearer ya29\./, 'our bearer token');
  noViolations(m);
});

test('the route also answers without /v1 and with the client key in Authorization', async () => {
  const m = mark('text', 'nov1');
  const body = { model: 'claude-sonnet-4-5-20250929', max_tokens: 50, messages: [{ role: 'user', content: `Hello ${m}` }] };
  const r = await post(body, { 'x-api-key': null, authorization: 'Bearer sk-client-never-forwarded' }, '/proxy/gcp/claude');
  equal(r.status, 200, 'status', r.body);
  const rec = seen(m);
  equal(rec.path, vertexPath(VERTEX_MODEL, 'rawPredict'), 'Anthropic id → Vertex id');
  match(rec.headers.authorization, /^Bearer ya29\./, 'the client Authorization is replaced by ours');
  equal(r.json && r.json.model, 'claude-sonnet-4-5-20250929', 'model in the answer is what Vertex said');
  noViolations(m);
});

test('stream passthrough: every event unchanged, ping included', async () => {
  const m = mark('tools', 'st');
  const body = { model: MODEL, max_tokens: 500, stream: true, tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }, { name: 'get_time', input_schema: { type: 'object', properties: { tz: { type: 'string' } } } }], messages: [{ role: 'user', content: `Weather? ${m}` }] };
  const s = await postStream(msgUrl(), body, { headers: ANTHROPIC_HEADERS });
  equal(s.status, 200, 'status', s.body);
  match(s.headers['content-type'], /^text\/event-stream/, 'content-type');
  equal(s.headers['cache-control'], 'no-cache', 'cache-control');
  equal(s.headers['x-accel-buffering'], 'no', 'x-accel-buffering');
  const rec = seen(m);
  const got = eventsOf(s);
  deepEqual(got.filter((e) => e.event === 'ping').length, 1, 'the ping is passed through');
  deepEqual(got, sentOf(rec), 'the events are the upstream events, in order, unchanged');
  ok(got.every((e) => e.data && e.data.type === e.event), 'each event name matches its data type');
  ok(!/\[DONE\]/.test(s.items.map((i) => i.data || '').join('\n')), 'no [DONE] on the Anthropic stream');
  equal(rec.path, vertexPath(VERTEX_MODEL, 'streamRawPredict'), 'streamRawPredict');
  deepEqual(rec.body, upstreamOf(body), 'upstream body = client body without model (stream: true kept)');
  noViolations(m);
});

test('stream passthrough of thinking (signature_delta) and a gzip-encoded upstream', async () => {
  for (const scen of ['thinking', 'gzip']) {
    const m = mark(scen, 'st');
    const body = { model: MODEL, max_tokens: 4000, stream: true, messages: [{ role: 'user', content: `Go ${m}` }] };
    if (scen === 'thinking') body.thinking = { type: 'enabled', budget_tokens: 2048 };
    const s = await postStream(msgUrl(), body, { headers: ANTHROPIC_HEADERS });
    equal(s.status, 200, `${scen}: status`);
    deepEqual(eventsOf(s), sentOf(seen(m)), `${scen}: events unchanged`);
    noViolations(m);
  }
});

test('anthropic-beta stays a header upstream; DROP_ANTHROPIC_BETAS removes a flag', async () => {
  const flags = (rec) => (rec.headers['anthropic-beta'] === undefined ? null : rec.headers['anthropic-beta'].split(',').map((x) => x.trim()).filter(Boolean));
  const cases = [
    ['a, b', 'interleaved-thinking-2025-05-14, prompt-caching-2024-07-31', ['interleaved-thinking-2025-05-14', 'prompt-caching-2024-07-31']],
    ['one dropped', `interleaved-thinking-2025-05-14, ${DROPPED}`, ['interleaved-thinking-2025-05-14']],
    ['only dropped', DROPPED, null],
    ['none', undefined, null],
  ];
  for (const [i, [what, header, want]] of cases.entries()) {
    const m = mark('text', `beta${i}`);
    const r = await post({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: `Hello ${m}` }] }, header === undefined ? {} : { 'anthropic-beta': header });
    equal(r.status, 200, `${what}: status`, r.body);
    const rec = seen(m);
    deepEqual(flags(rec), want, `${what}: upstream anthropic-beta flags`);
    ok(rec.body && !('anthropic_beta' in rec.body), `${what}: no anthropic_beta in the Vertex body`);
  }
});

test('passthrough rules: empty text blocks dropped, top_p dropped with temperature on Sonnet 4.5, top_k 0 dropped', async () => {
  const m = mark('text', 'rules');
  const body = {
    model: MODEL, max_tokens: 100, temperature: 0.3, top_p: 0.8, top_k: 0,
    system: [{ type: 'text', text: '', cache_control: { type: 'ephemeral' } }],
    messages: [{ role: 'user', content: [{ type: 'text', text: '' }, { type: 'text', text: `Hello ${m}` }] }],
  };
  const r = await post(body);
  equal(r.status, 200, 'status', r.body);
  const b = seen(m).body || {};
  ok(!('system' in b), 'a system with no text left is omitted', b.system);
  deepEqual(b.messages, [{ role: 'user', content: [{ type: 'text', text: `Hello ${m}` }] }], 'the empty text block is dropped, the rest unchanged');
  equal(b.temperature, 0.3, 'temperature kept');
  ok(!('top_p' in b), 'top_p dropped');
  ok(!('top_k' in b), 'top_k 0 dropped');
  noViolations(m);
});

test('errors in the Anthropic shape: upstream 400, unknown model', async () => {
  const m = mark('bad400', 'ns');
  const r = await post({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: `Long ${m}` }] });
  equal(r.status, 400, 'upstream 400 → 400');
  ok(isAnthropicError(r.json), 'Anthropic error shape', r.body);
  equal(r.json && r.json.error && r.json.error.type, 'invalid_request_error', 'invalid_request_error');
  match(r.json && r.json.error && r.json.error.message, /prompt is too long/, 'upstream message kept');
  const s = await postStream(msgUrl(), { model: MODEL, max_tokens: 50, stream: true, messages: [{ role: 'user', content: `Long ${mark('bad400', 'st')}` }] }, { headers: ANTHROPIC_HEADERS });
  equal(s.status, 400, 'stream: 400 before any event');
  ok(isAnthropicError(s.json), 'stream: Anthropic error shape', s.body);
  const m2 = mark('text', 'unknown');
  const u = await post({ model: 'claude-nonexistent-9', max_tokens: 50, messages: [{ role: 'user', content: `Hi there ${m2}` }] });
  equal(u.status, 404, 'unknown model → 404');
  ok(isAnthropicError(u.json), 'Anthropic error shape', u.body);
  equal(u.json && u.json.error && u.json.error.type, 'not_found_error', 'not_found_error');
  match(u.json && u.json.error && u.json.error.message, /claude-sonnet-4-5/, 'lists available models');
  equal(G.mock.find(m2).length, 0, 'nothing sent upstream');
});

test('mid-stream error: the upstream error event is passed through and ends the stream', async () => {
  const m = mark('midstream_error', 'st');
  const s = await postStream(msgUrl(), { model: MODEL, max_tokens: 50, stream: true, messages: [{ role: 'user', content: `Go ${m}` }] }, { headers: ANTHROPIC_HEADERS });
  equal(s.status, 200, 'status 200 (the stream had started)');
  deepEqual(eventsOf(s), sentOf(seen(m)), 'events unchanged, the error event last');
  const last = s.events[s.events.length - 1] || {};
  equal(last.event, 'error', 'last event is error');
  ok(isAnthropicError(last.json), 'error event data in the Anthropic shape', last.data);
});

test('truncated upstream stream (no message_stop) ends with an error event', async () => {
  for (const scen of ['truncated', 'truncated_reset']) {
    const m = mark(scen, 'st');
    const s = await postStream(msgUrl(), { model: MODEL, max_tokens: 50, stream: true, messages: [{ role: 'user', content: `Go ${m}` }] }, { headers: ANTHROPIC_HEADERS });
    equal(s.status, 200, `${scen}: status 200`);
    const rec = seen(m);
    deepEqual(eventsOf(s).slice(0, rec.sent.length), sentOf(rec), `${scen}: what arrived upstream is passed through`);
    const last = s.events[s.events.length - 1] || {};
    equal(last.event, 'error', `${scen}: then an error event`, s.events.map((e) => e.event));
    ok(isAnthropicError(last.json), `${scen}: error event in the Anthropic shape`, last.data);
    ok(!s.events.some((e) => e.event === 'message_stop'), `${scen}: no made-up message_stop`);
  }
});

test('the mock saw no malformed upstream request', () => {
  deepEqual(G.mock.violations, [], 'no check failed at the mock');
});

test('stop lighttpd', async () => {
  if (!L) return;
  ok((await L.stop()) !== null, 'lighttpd stopped');
  await L.stopAndClean();
});

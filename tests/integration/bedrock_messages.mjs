// The Anthropic-native route BASE/aws/claude/v1/messages against the mock Bedrock Runtime, with the
// official `@anthropic-ai/sdk` as the client (baseURL <lighttpd>/proxy/aws/claude): the body passes
// through with only what Bedrock needs changed (model moved to the URL as a Bedrock id,
// anthropic_version "bedrock-2023-05-31" set, no "stream", the anthropic-beta header moved into the
// body as "anthropic_beta" minus DROP_ANTHROPIC_BETAS); the Messages JSON comes back unchanged; the
// event stream comes back as Anthropic SSE event for event, exactly as the mock encoded it
// (amazon-bedrock-invocationMetrics in message_stop included); exception messages and corrupted
// frames become `event: error`; errors before the first byte are in the Anthropic shape.
import { test, ok, equal, deepEqual, match, fail } from '../lib/tap.mjs';
import { requireBin, fetchText, isAnthropicError } from '../lib/harness.mjs';
import { fresh, noViolations } from '../lib/scenarios.mjs';
import { mark } from '../mock/claude.mjs';
import {
  MODEL, BEDROCK_MODEL, BEDROCK_HOST, ANTHROPIC_HEADERS, Anthropic, anthropicImportError, bedrockImportError, awsProvider,
  anthropicClient, bedrockPath, postStream,
} from '../mock/gateway.mjs';

const P = awsProvider();
const DROPPED = 'context-1m-2025-08-07';
const sdk = (opts) => anthropicClient(P.L, P.root, opts);
const msgUrl = (base = P.base, l = P.L) => `${l.url}${base}/messages`;
/** POST to the messages route; a header set to null is left out. */
const post = (body, headers = {}, base, l) => {
  const h = Object.fromEntries(Object.entries({ ...ANTHROPIC_HEADERS, ...headers }).filter(([, v]) => v !== null && v !== undefined));
  return fetchText(msgUrl(base, l), { method: 'POST', headers: h, body: JSON.stringify(body), timeout: 90000 });
};
const seen = (marker) => {
  const r = P.mock.last(marker);
  ok(r, 'the request reached the mock');
  return r || { body: null, headers: {}, reply: null, path: null, sent: [], frames: [] };
};
/** What the client body becomes upstream: model and stream dropped, anthropic_version added. */
const upstreamOf = (body, extra = {}) => {
  const { model, stream, ...rest } = body;
  void model;
  void stream;
  return { ...rest, anthropic_version: 'bedrock-2023-05-31', ...extra };
};
/** A JSON round trip (drops the SDK's non-enumerable extras). */
const plain = (x) => JSON.parse(JSON.stringify(x));
const eventsOf = (s) => s.events.map((e) => ({ event: e.event, data: e.json }));
const sentOf = (rec) => rec.sent.map((e) => ({ event: e.type, data: e }));
const TOOLS = [
  { name: 'get_weather', description: 'Current weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
  { name: 'get_time', description: 'Local time in a time zone', input_schema: { type: 'object', properties: { tz: { type: 'string' } } } },
];

if (anthropicImportError) test('@anthropic-ai/sdk is installed', () => { fail('import @anthropic-ai/sdk (run `npm ci` in tests/)', anthropicImportError.message); });
if (bedrockImportError) test('the Bedrock mock loads', () => { fail('import tests/mock/bedrock.mjs (run `npm ci` in tests/)', bedrockImportError.stack); });

test('start the mock Bedrock endpoint and lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  P.G = await P.setup();
  P.L = await P.start({ DROP_ANTHROPIC_BETAS: DROPPED });
  ok(P.L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

test('SDK messages.create: the Messages JSON unchanged, the body passed through to InvokeModel', async () => {
  const m = mark('text', 'ns');
  const body = { model: MODEL, max_tokens: 300, system: 'Be brief.', temperature: 0.5, metadata: { user_id: 'u-1' }, messages: [{ role: 'user', content: [{ type: 'text', text: `Hello ${m}` }] }] };
  const msg = await sdk().messages.create(body);
  const rec = seen(m);
  deepEqual(plain(msg), rec.reply, 'the SDK got the upstream message, unchanged');
  equal(msg.content && msg.content[0] && msg.content[0].text, P.hello, 'text');
  equal(msg.model, 'claude-sonnet-4-5-20250929', 'model in the answer is what Bedrock said');
  equal(rec.host, BEDROCK_HOST, 'host');
  equal(rec.path, bedrockPath(BEDROCK_MODEL, false), 'InvokeModel path with the us. profile id (%3A)');
  deepEqual(rec.body, upstreamOf(body), 'upstream body = client body without model, with anthropic_version bedrock-2023-05-31');
  ok(!('x-api-key' in rec.headers) && !('anthropic-version' in rec.headers) && !('anthropic-beta' in rec.headers), 'client x-api-key, anthropic-version, anthropic-beta headers not forwarded', Object.keys(rec.headers));
  match(rec.headers['content-type'], /^application\/json/, 'Content-Type application/json');
  P.checkAuth(rec);
  noViolations(P, m);
});

test('SDK messages.stream: every event as the mock encoded it, amazon-bedrock-invocationMetrics included', async () => {
  const m = mark('tools', 'st');
  const body = { model: MODEL, max_tokens: 500, tools: TOOLS, messages: [{ role: 'user', content: `Weather? ${m}` }] };
  const stream = sdk().messages.stream(body);
  const got = [];
  for await (const ev of stream) got.push(plain(ev));
  const final = plain(await stream.finalMessage());
  // The gateway ends the transfer at message_stop, so the SDK can finish before the mock's last
  // write has resolved and recorded its reply: wait for the record.
  const rec = await P.G.mock.waitFor(() => { const r = seen(m); return r && r.reply ? r : null; }, 5000) || seen(m);
  const want = rec.sent.filter((e) => e.type !== 'ping'); // the SDK skips pings
  deepEqual(got, want, 'the SDK saw the upstream events, in order, unchanged');
  const stop = got.find((e) => e.type === 'message_stop') || {};
  const metrics = stop['amazon-bedrock-invocationMetrics'];
  ok(metrics && Number.isInteger(metrics.inputTokenCount) && Number.isInteger(metrics.outputTokenCount) && Number.isInteger(metrics.invocationLatency) && Number.isInteger(metrics.firstByteLatency), 'message_stop carries amazon-bedrock-invocationMetrics', stop);
  deepEqual(metrics && [metrics.inputTokenCount, metrics.outputTokenCount], [420, 47], 'input/output token counts of the stream');
  deepEqual(final.content, rec.reply && rec.reply.content, 'finalMessage() content = the assembled reply (two tool_use blocks)');
  equal(final.stop_reason, 'tool_use', 'stop_reason tool_use');
  equal(rec.path, bedrockPath(BEDROCK_MODEL, true), 'InvokeModelWithResponseStream path');
  deepEqual(rec.body, upstreamOf(body), 'upstream body = client body without model and without stream');
  equal(rec.headers.accept, 'application/vnd.amazon.eventstream', 'Accept: application/vnd.amazon.eventstream');
  equal(rec.headers['x-amzn-bedrock-accept'], 'application/json', 'X-Amzn-Bedrock-Accept: application/json');
  noViolations(P, m);
});

test('raw SSE: headers, event names = data types, ping kept, no [DONE]', async () => {
  const m = mark('tools', 'raw');
  const body = { model: MODEL, max_tokens: 500, stream: true, tools: TOOLS, messages: [{ role: 'user', content: `Weather? ${m}` }] };
  const s = await postStream(msgUrl(), body, { headers: ANTHROPIC_HEADERS });
  equal(s.status, 200, 'status', s.body);
  match(s.headers['content-type'], /^text\/event-stream/, 'content-type');
  equal(s.headers['cache-control'], 'no-cache', 'cache-control');
  equal(s.headers['x-accel-buffering'], 'no', 'x-accel-buffering');
  const rec = seen(m);
  const got = eventsOf(s);
  deepEqual(got, sentOf(rec), 'the events are the upstream events, in order, unchanged');
  equal(got.filter((e) => e.event === 'ping').length, 1, 'the ping is passed through');
  ok(got.every((e) => e.data && e.data.type === e.event), 'each event name matches its data type');
  ok(!/\[DONE\]/.test(s.items.map((i) => i.data || '').join('\n')), 'no [DONE] on the Anthropic stream');
  ok(got.length && got[got.length - 1].event === 'message_stop' && got[got.length - 1].data['amazon-bedrock-invocationMetrics'], 'the last event is message_stop with the invocation metrics');
  noViolations(P, m);
});

test('stream passthrough of thinking (signature_delta) and of a slow stream', async () => {
  for (const scen of ['thinking', 'slow']) {
    const m = mark(scen, 'st');
    const body = { model: MODEL, max_tokens: 4000, stream: true, messages: [{ role: 'user', content: `Go ${m}` }] };
    if (scen === 'thinking') body.thinking = { type: 'enabled', budget_tokens: 2048 };
    const s = await postStream(msgUrl(), body, { headers: ANTHROPIC_HEADERS });
    equal(s.status, 200, `${scen}: status`);
    deepEqual(eventsOf(s), sentOf(seen(m)), `${scen}: events unchanged`);
    if (scen === 'slow') {
      const deltas = s.items.filter((i) => i.event === 'content_block_delta');
      const gaps = deltas.slice(1).map((x, i) => x.t - deltas[i].t);
      ok(gaps.length === 4 && Math.min(...gaps) >= 200, 'slow: deltas arrive as the mock sends them (>= 200 ms apart)', gaps);
    }
    noViolations(P, m);
  }
});

test('anthropic-beta header → "anthropic_beta" array in the Bedrock body; DROP_ANTHROPIC_BETAS removes a flag', async () => {
  const cases = [
    ['a, b', 'interleaved-thinking-2025-05-14, prompt-caching-2024-07-31', ['interleaved-thinking-2025-05-14', 'prompt-caching-2024-07-31']],
    ['one dropped', `interleaved-thinking-2025-05-14, ${DROPPED}`, ['interleaved-thinking-2025-05-14']],
    ['only dropped', DROPPED, undefined],
    ['none', undefined, undefined],
  ];
  for (const [i, [what, header, want]] of cases.entries()) {
    const m = mark('text', `beta${i}`);
    const r = await post({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: `Hello ${m}` }] }, header === undefined ? {} : { 'anthropic-beta': header });
    equal(r.status, 200, `${what}: status`, r.body);
    const rec = seen(m);
    deepEqual(rec.body && rec.body.anthropic_beta, want, `${what}: upstream anthropic_beta`);
    ok(!('anthropic-beta' in rec.headers), `${what}: no anthropic-beta header upstream`);
  }
  // the SDK's beta API sends the header itself
  const m = mark('text', 'beta-sdk');
  const r = await sdk().beta.messages.create({ model: MODEL, max_tokens: 50, betas: ['interleaved-thinking-2025-05-14', DROPPED], messages: [{ role: 'user', content: `Hello ${m}` }] });
  equal(r.content && r.content[0] && r.content[0].text, P.hello, 'SDK beta.messages.create: answered');
  deepEqual(seen(m).body && seen(m).body.anthropic_beta, ['interleaved-thinking-2025-05-14'], 'SDK betas → anthropic_beta (minus the dropped flag)');
  noViolations(P);
});

test('the route also answers without /v1 and with the client key in Authorization', async () => {
  const m = mark('text', 'nov1');
  const body = { model: 'claude-sonnet-4-5-20250929', max_tokens: 50, messages: [{ role: 'user', content: `Hello ${m}` }] };
  const r = await post(body, { 'x-api-key': null, authorization: 'Bearer sk-client-never-forwarded' }, P.root);
  equal(r.status, 200, 'status', r.body);
  const rec = seen(m);
  equal(rec.path, bedrockPath(BEDROCK_MODEL), 'Anthropic id → us. profile id');
  match(rec.headers.authorization, /^AWS4-HMAC-SHA256 /, 'the client Authorization is replaced by our SigV4 one');
  ok(!JSON.stringify(rec.headers).includes('sk-client'), 'the client credential is not forwarded');
  noViolations(P, m);
});

test('Bedrock ids and ARNs go verbatim on /messages', async () => {
  const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0';
  for (const [i, id] of ['us.anthropic.claude-haiku-4-5-20251001-v1:0', 'anthropic.claude-3-haiku-20240307-v1:0', arn].entries()) {
    const m = mark('text', `verbatim${i}`);
    let msg = null;
    try { msg = await sdk().messages.create({ model: id, max_tokens: 50, messages: [{ role: 'user', content: `Hello ${m}` }] }); } catch (e) { fail(`${id}: request`, e.message); }
    equal((P.mock.last(m) || {}).path, bedrockPath(id), `${id} → ${bedrockPath(id)}`);
    ok(msg && msg.type === 'message', `${id}: answered`);
  }
  noViolations(P);
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
  noViolations(P, m);
});

test('errors in the Anthropic shape: ValidationException 400, unknown model 404 (SDK and raw)', async () => {
  const m = mark('bad400', 'ns');
  let e = null;
  try { await sdk().messages.create({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: `Long ${m}` }] }); } catch (x) { e = x; }
  ok(e instanceof Anthropic.BadRequestError, 'SDK: BadRequestError', e && `${e.status} ${e.message}`);
  equal(e && e.error && e.error.error && e.error.error.type, 'invalid_request_error', 'SDK: invalid_request_error');
  match(e && e.message, /prompt is too long/, 'SDK: Bedrock\'s message kept');
  const s = await postStream(msgUrl(), { model: MODEL, max_tokens: 50, stream: true, messages: [{ role: 'user', content: `Long ${mark('bad400', 'st')}` }] }, { headers: ANTHROPIC_HEADERS });
  equal(s.status, 400, 'stream: 400 before any event');
  ok(isAnthropicError(s.json), 'stream: Anthropic error shape', s.body);
  const m2 = mark('text', 'unknown');
  const u = await post({ model: 'claude-nonexistent-9', max_tokens: 50, messages: [{ role: 'user', content: `Hi there ${m2}` }] });
  equal(u.status, 404, 'unknown model → 404');
  ok(isAnthropicError(u.json), 'Anthropic error shape', u.body);
  equal(u.json && u.json.error && u.json.error.type, 'not_found_error', 'not_found_error');
  match(u.json && u.json.error && u.json.error.message, /claude-sonnet-4-5/, 'lists available models');
  equal(P.mock.find(m2).length, 0, 'nothing sent upstream');
});

test('403 AccessDeniedException → 403 permission_error; 403 UnrecognizedClientException → 502', async () => {
  await fresh(P, async (l) => {
    const r = await post({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: `Go ${mark('denied403', 'msg')}` }] }, {}, P.base, l);
    equal(r.status, 403, 'AccessDenied: 403', r.body);
    ok(isAnthropicError(r.json), 'Anthropic error shape', r.body);
    equal(r.json && r.json.error && r.json.error.type, 'permission_error', 'permission_error');
  });
  await fresh(P, async (l) => {
    const r = await post({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: `Go ${mark('unrecognized403', 'msg')}` }] }, {}, P.base, l);
    equal(r.status, 502, 'UnrecognizedClient: 502', r.body);
    ok(isAnthropicError(r.json), 'Anthropic error shape', r.body);
    ok(!r.body.includes(P.G.key.accessKeyId) && !r.body.includes(P.G.key.secretAccessKey), 'no credential in the error', r.body);
  });
}, { timeout: 120000 });

test('mid-stream exceptions: throttlingException and modelStreamErrorException → the events so far, then event: error', async () => {
  for (const scen of ['midstream_throttle', 'midstream_error']) {
    const m = mark(scen, 'st');
    const s = await postStream(msgUrl(), { model: MODEL, max_tokens: 50, stream: true, messages: [{ role: 'user', content: `Go ${m}` }] }, { headers: ANTHROPIC_HEADERS });
    equal(s.status, 200, `${scen}: status 200 (the stream had started)`);
    const rec = seen(m);
    const got = eventsOf(s);
    deepEqual(got.slice(0, -1), sentOf(rec), `${scen}: the events before the exception, unchanged`);
    const last = s.events[s.events.length - 1] || {};
    equal(last.event, 'error', `${scen}: then event: error`, got.map((e) => e.event));
    ok(isAnthropicError(last.json), `${scen}: error data in the Anthropic shape`, last.data);
    ok(!got.some((e) => e.event === 'message_stop'), `${scen}: no made-up message_stop`);
    noViolations(P, m);
  }
  // the SDK raises the error event as an APIError after the partial text
  let text = '';
  let e = null;
  try {
    const st = sdk().messages.stream({ model: MODEL, max_tokens: 50, messages: [{ role: 'user', content: `Go ${mark('midstream_throttle', 'sdk')}` }] });
    for await (const ev of st) if (ev.type === 'content_block_delta') text += ev.delta.text || '';
  } catch (x) { e = x; }
  ok(e instanceof Anthropic.APIError, 'SDK: APIError mid-stream', e && e.message);
  equal(text, 'Partial', 'SDK: after the partial text');
});

test('a frame with a corrupted CRC ends the stream with event: error; nothing after it is delivered', async () => {
  const m = mark('corrupt_crc', 'st');
  const s = await postStream(msgUrl(), { model: MODEL, max_tokens: 50, stream: true, messages: [{ role: 'user', content: `Go ${m}` }] }, { headers: ANTHROPIC_HEADERS });
  equal(s.status, 200, 'status 200');
  const rec = seen(m);
  const got = eventsOf(s);
  deepEqual(got.slice(0, -1), sentOf(rec), 'the events before the corrupted frame, unchanged');
  const last = s.events[s.events.length - 1] || {};
  equal(last.event, 'error', 'then event: error', got.map((e) => e.event));
  ok(isAnthropicError(last.json), 'error data in the Anthropic shape', last.data);
  ok(!got.some((e) => e.event === 'message_stop'), 'the valid frames after the bad one are not delivered');
  noViolations(P, m);
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
  deepEqual(P.mock.violations, [], 'no check failed at the mock');
});

test('stop lighttpd', async () => {
  if (!P.L) return;
  ok((await P.L.stop()) !== null, 'lighttpd stopped');
  await P.L.stopAndClean();
});

// The official `openai` client (and fetch for the Anthropic /messages routes) against the
// gateway under lighttpd: test message non-stream and stream, usage chunk, error mapping, models.
import { test, ok, equal, deepEqual, match, fail } from '../lib/tap.mjs';
import { startLighttpd, fetchText, sse, requireBin, TEST_MESSAGE, NON_TEST_MESSAGE, isAnthropicError } from '../lib/harness.mjs';

const BASES = ['/proxy/gcp/claude/v1', '/proxy/aws/claude', '/proxy/azure/openai/v1', '/v1'];
const MSG_ROUTES = ['/v1/messages', '/proxy/gcp/claude/v1/messages', '/proxy/aws/claude/messages'];
const MODEL = 'claude-sonnet-4-5';
let L;

// The SDK comes from tests/node_modules (`cd tests && npm ci`); say so instead of a bare crash.
let OpenAI = null;
try {
  ({ default: OpenAI } = await import('openai'));
} catch (e) {
  test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', e && e.message); });
}

// organization/project explicitly null: never pick up OPENAI_* from the caller's environment.
const client = (base, opts = {}) => new OpenAI({ baseURL: L.url + base, apiKey: 'x', organization: null, project: null, maxRetries: 0, timeout: 20000, ...opts });
const nowS = () => Math.floor(Date.now() / 1000);

test('start lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  L = await startLighttpd({});
  ok(L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

for (const base of BASES) {
  test(`SDK non-stream test message on ${base}`, async () => {
    const r = await client(base).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }] });
    equal(r.id, 'test-message', 'id');
    equal(r.object, 'chat.completion', 'object');
    equal(r.model, MODEL, 'model');
    ok(Number.isInteger(r.created) && Math.abs(r.created - nowS()) < 120, 'created in seconds, about now', r.created);
    equal(r.choices.length, 1, 'one choice');
    deepEqual(r.choices[0].message && { role: r.choices[0].message.role, content: r.choices[0].message.content },
      { role: 'assistant', content: 'Hello!' }, 'message');
    equal(r.choices[0].finish_reason, 'stop', 'finish_reason');
    equal(r.choices[0].index, 0, 'index');
    deepEqual(r.usage, { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, input_tokens: 0, output_tokens: 0 }, 'usage');
    equal(r.type, 'message', 'Anthropic-compatible type');
    equal(r.stop_reason, 'end_turn', 'stop_reason');
    equal(r.stop_sequence, null, 'stop_sequence');
    equal(typeof r.proxy_note, 'string', 'proxy_note');
  });

  test(`SDK stream test message on ${base}`, async () => {
    const stream = await client(base).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    equal(chunks.length, 3, 'three chunks (role, content, finish)', chunks);
    const ids = new Set(chunks.map((c) => c.id));
    equal(ids.size, 1, 'one shared id', [...ids]);
    match(chunks[0] && chunks[0].id, /^chatcmpl-./, 'id starts with chatcmpl-');
    const created = new Set(chunks.map((c) => c.created));
    equal(created.size, 1, 'one shared created');
    ok(Number.isInteger(chunks[0] && chunks[0].created) && Math.abs(chunks[0].created - nowS()) < 120, 'created in seconds, about now', chunks[0] && chunks[0].created);
    ok(chunks.every((c) => c.object === 'chat.completion.chunk'), 'object chat.completion.chunk');
    ok(chunks.every((c) => c.model === MODEL), 'model echoed in every chunk');
    ok(chunks.every((c) => Array.isArray(c.choices)), 'every chunk has a choices array');
    const ch = (i) => (chunks[i] && chunks[i].choices && chunks[i].choices[0]) || {};
    deepEqual(ch(0).delta, { role: 'assistant', content: '' }, 'role chunk delta');
    equal(ch(0).finish_reason ?? null, null, 'role chunk has no finish_reason');
    deepEqual(ch(1).delta, { content: 'Hello!' }, 'content chunk delta');
    deepEqual(ch(2).delta, {}, 'finish chunk delta');
    equal(ch(2).finish_reason, 'stop', 'finish_reason stop');
    equal(chunks.map((c) => (c.choices[0] && c.choices[0].delta && c.choices[0].delta.content) || '').join(''), 'Hello!', 'content joins to Hello!');
  });

  test(`SDK stream with include_usage on ${base}`, async () => {
    const stream = await client(base).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    equal(chunks.length, 4, 'four chunks');
    const last = chunks[chunks.length - 1] || {};
    deepEqual(last.choices, [], 'last chunk has choices: []');
    ok(last.usage && Number.isInteger(last.usage.prompt_tokens) && Number.isInteger(last.usage.completion_tokens) && Number.isInteger(last.usage.total_tokens), 'last chunk has usage', last.usage);
    equal(new Set(chunks.map((c) => c.id)).size, 1, 'usage chunk shares the id');
    equal(chunks[2] && chunks[2].choices[0] && chunks[2].choices[0].finish_reason, 'stop', 'finish chunk before the usage chunk');
  });

  test(`SDK models.list() on ${base}`, async () => {
    const page = await client(base).models.list();
    deepEqual(page.data, [], 'empty list');
  });

  test(`SDK error mapping on ${base}`, async () => {
    let err = null;
    try {
      await client(base).chat.completions.create(NON_TEST_MESSAGE);
    } catch (e) { err = e; }
    ok(err instanceof OpenAI.APIError, 'non-test request raises APIError', err && err.message);
    equal(err && err.status, 503, 'status 503');
    equal(err && err.code, 'no_keys', 'error.code');
    equal(err && err.type, 'server_error', 'error.type');
    let serr = null;
    try {
      const s = await client(base).chat.completions.create({ ...NON_TEST_MESSAGE, stream: true });
      for await (const c of s) { void c; }
    } catch (e) { serr = e; }
    ok(serr instanceof OpenAI.APIError && serr.status === 503, 'stream request: APIError 503 before any chunk', serr && `${serr.status} ${serr.message}`);
    let berr = null;
    try {
      await client(base).chat.completions.create({ model: MODEL, messages: 'Hi' });
    } catch (e) { berr = e; }
    ok(berr instanceof OpenAI.BadRequestError, 'bad messages raises BadRequestError', berr && berr.message);
    equal(berr && berr.param, 'messages', 'param messages');
  });
}

test('SDK with a retry still ends with the 503, in bounded time', async () => {
  let err = null;
  const t0 = Date.now();
  try {
    await client('/v1', { maxRetries: 1 }).chat.completions.create(NON_TEST_MESSAGE);
  } catch (e) { err = e; }
  equal(err && err.status, 503, 'status 503 after retry');
  ok(Date.now() - t0 < 15000, 'bounded time', Date.now() - t0);
});

test('raw SSE of the chat stream', async () => {
  const r = await fetchText(`${L.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...TEST_MESSAGE, stream: true }) });
  equal(r.status, 200, 'status');
  match(r.headers['content-type'], /^text\/event-stream/, 'content-type');
  equal(r.headers['cache-control'], 'no-cache', 'cache-control');
  equal(r.headers['x-accel-buffering'], 'no', 'x-accel-buffering');
  equal(r.headers['access-control-allow-origin'], '*', 'CORS');
  const { events } = sse(r.body);
  equal(events.length, 4, 'three chunks + [DONE]', r.body);
  equal(events[events.length - 1] && events[events.length - 1].data, '[DONE]', 'ends with data: [DONE]');
  ok(events.slice(0, -1).every((e) => e.event === 'message' && e.json && Array.isArray(e.json.choices)), 'every data event is a JSON object with choices');
  match(r.body, /^data: /, 'starts with a data line');
});

test('legacy prompt test message', async () => {
  for (const prompt of ['\n\nHuman: Hi\n\nAssistant:', 'Hi\n\nSomething else']) {
    const r = await fetchText(`${L.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt }) });
    equal(r.status, 200, `prompt ${JSON.stringify(prompt)}: status`, r.body);
    equal(r.json && r.json.completion, 'Hello!', `prompt ${JSON.stringify(prompt)}: completion`);
  }
});

const anthropicHeaders = { 'content-type': 'application/json', 'x-api-key': 'x', 'anthropic-version': '2023-06-01' };

for (const route of MSG_ROUTES) {
  test(`Anthropic test message non-stream on ${route}`, async () => {
    const r = await fetchText(`${L.url}${route}`, { method: 'POST', headers: anthropicHeaders, body: JSON.stringify({ ...TEST_MESSAGE, max_tokens: 16 }) });
    equal(r.status, 200, 'status', r.body);
    const j = r.json || {};
    equal(j.type, 'message', 'type');
    equal(j.role, 'assistant', 'role');
    deepEqual(j.content, [{ type: 'text', text: 'Hello!' }], 'content');
    equal(j.stop_reason, 'end_turn', 'stop_reason');
    equal(j.stop_sequence, null, 'stop_sequence');
    equal(j.model, MODEL, 'model');
    ok(j.usage && j.usage.input_tokens === 0 && j.usage.output_tokens === 0, 'usage input/output tokens', j.usage);
  });

  test(`Anthropic test message stream on ${route}`, async () => {
    const r = await fetchText(`${L.url}${route}`, { method: 'POST', headers: anthropicHeaders, body: JSON.stringify({ ...TEST_MESSAGE, max_tokens: 16, stream: true }) });
    equal(r.status, 200, 'status', r.body);
    match(r.headers['content-type'], /^text\/event-stream/, 'content-type');
    equal(r.headers['cache-control'], 'no-cache', 'cache-control');
    equal(r.headers['x-accel-buffering'], 'no', 'x-accel-buffering');
    const evs = sse(r.body).events.filter((e) => e.event !== 'ping');
    deepEqual(evs.map((e) => e.event), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'], 'event sequence', r.body);
    ok(evs.every((e) => e.json && e.json.type === e.event), 'each data.type equals its event name');
    const start = evs[0] && evs[0].json && evs[0].json.message;
    ok(start && start.type === 'message' && start.role === 'assistant' && Array.isArray(start.content) && start.model === MODEL, 'message_start carries the message', start);
    deepEqual(evs[1] && evs[1].json && evs[1].json.content_block, { type: 'text', text: '' }, 'content_block_start block');
    deepEqual(evs[2] && evs[2].json && evs[2].json.delta, { type: 'text_delta', text: 'Hello!' }, 'text_delta Hello!');
    equal(evs[4] && evs[4].json && evs[4].json.delta && evs[4].json.delta.stop_reason, 'end_turn', 'message_delta stop_reason');
    ok(!/\[DONE\]/.test(r.body), 'no OpenAI [DONE] on the Anthropic stream');
  });

  test(`Anthropic error shape for a non-test request on ${route}`, async () => {
    const r = await fetchText(`${L.url}${route}`, { method: 'POST', headers: anthropicHeaders, body: JSON.stringify({ ...NON_TEST_MESSAGE, max_tokens: 16 }) });
    equal(r.status, 503, 'status');
    ok(isAnthropicError(r.json), 'Anthropic error shape', r.body);
    equal(r.json && r.json.error && r.json.error.type, 'overloaded_error', 'error.type');
  });
}

test('stop lighttpd', async () => {
  if (!L) return;
  ok((await L.stop()) !== null, 'lighttpd stopped');
  await L.stopAndClean();
});

// Azure OpenAI through the OpenAI API (BASE/azure/openai/v1/chat/completions) with the official
// `openai` client, against the mock Azure OpenAI (tests/mock/azure.mjs) reached over TLS under the
// real hostnames res1.openai.azure.com and res2.openai.azure.com, with three deployments
// (res1: gpt4o-prod → gpt-4o-2024-11-20, mini → gpt-4o-mini-2024-07-18; res2: gpt-4o →
// gpt-4o-2024-08-06). First the mock itself (it refuses what Azure refuses), then the gateway
// (SPEC §5 "Azure", §11 "Azure usage"; wire-formats §6): the start-up probe of each deployment;
// text and streams with Azure's prompt-filter and async-filter chunks removed (one id, a role chunk
// first, one [DONE] last); include_usage on the GA api-version 2024-10-21 (no stream_options
// upstream, the gateway's own usage chunk) and on 2024-12-01-preview (stream_options forwarded,
// Azure's usage chunk passed through); max_completion_tokens → max_tokens and other fields the GA
// schema lacks dropped; tools; the output filtered mid-stream; incremental delivery and client
// disconnects; the deployment chosen by name, by model, by model without its date; unknown models;
// the client's Authorization / api-key never reaching Azure; /models; /status; the log.
// Upstream errors (content filter 400, 429, 401, 500, DeploymentNotFound, truncated streams) are in
// tests/integration/azure_errors.mjs.
import https from 'node:https';
import { test, ok, equal, deepEqual, match, fail, diag } from '../lib/tap.mjs';
import { requireBin, fetchText } from '../lib/harness.mjs';
import { noViolations, sdkError, WEATHER_TOOLS } from '../lib/scenarios.mjs';
import {
  OpenAI, importError, AZ, AZ_ROOT, AZURE_CLIENT_KEY, setupAzure, startGateway, azureClient, collect, postStream, chunksOf,
  joinContent, toolCallsOf, status,
} from '../mock/gateway.mjs';
import { mark, DEPLOYMENTS, HELLO } from '../mock/azure.mjs';

const GA = '2024-10-21';
const PREVIEW = '2024-12-01-preview';
const P = { G: null, L: null, get mock() { return P.G.mock; } };
const sdk = (l = P.L) => azureClient(l);
const chatUrl = (l = P.L) => `${l.url}${AZ}/chat/completions`;
const user = (text) => [{ role: 'user', content: text }];
const finishes = (chunks) => chunks.flatMap((c) => c.choices || []).filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason);
const lastData = (s) => s.events[s.events.length - 1] && s.events[s.events.length - 1].data;
const keyOf = (res) => P.G.keys[res];
const MODEL_OF = Object.assign({}, ...Object.values(DEPLOYMENTS));
const RESOURCE_OF = Object.fromEntries(Object.entries(DEPLOYMENTS).flatMap(([r, d]) => Object.keys(d).map((x) => [x, r])));
const deploymentPath = (d) => `/openai/deployments/${d}/chat/completions`;

/** The mock's last record for `marker` (asserting there is one), or an empty stand-in. */
function seen(marker) {
  const r = P.mock.last(marker);
  ok(r, 'the request reached the mock');
  return r || { body: null, headers: {}, reply: null, path: null, sent: [] };
}

/** Where the request went: resource host, deployment path, api-version, that resource's key, no client credential. */
function checkUpstream(rec, deployment, apiVersion = GA) {
  const res = RESOURCE_OF[deployment];
  equal(rec.host, `${res}.openai.azure.com`, `${deployment}: host ${res}.openai.azure.com`);
  equal(rec.path, deploymentPath(deployment), `${deployment}: path /openai/deployments/${deployment}/chat/completions`);
  equal(rec.query, `api-version=${apiVersion}`, `${deployment}: query api-version=${apiVersion}`);
  equal(rec.headers['api-key'], keyOf(res), `${deployment}: api-key is ${res}'s key`);
  ok(!('authorization' in rec.headers), `${deployment}: no Authorization header upstream`, rec.headers.authorization);
}

/** Stream invariants a strict OpenAI client relies on (no Azure-only chunks left). */
function checkStreamShape(s, chunks, { usageChunk = false } = {}) {
  equal(s.done, 1, 'one [DONE]');
  equal(lastData(s), '[DONE]', '[DONE] last');
  ok(chunks.every((c) => c && c.object === 'chat.completion.chunk'), 'every chunk: object chat.completion.chunk (no Azure filter chunk with object "")', chunks.filter((c) => !c || c.object !== 'chat.completion.chunk'));
  ok(chunks.length > 0 && chunks[0].id && chunks.every((c) => c.id === chunks[0].id), 'one non-empty id in every chunk', [...new Set(chunks.map((c) => c && c.id))]);
  equal(new Set(chunks.map((c) => c && c.created)).size, 1, 'one created');
  ok(chunks.every((c) => c.created > 0), 'created is not 0 (no Azure filter chunk)');
  const empty = chunks.filter((c) => !Array.isArray(c.choices) || c.choices.length === 0);
  const allowed = usageChunk ? empty.filter((c) => c.usage) : [];
  ok(empty.length === allowed.length && allowed.length <= 1, usageChunk ? 'no choices:[] chunk except the one usage chunk' : 'no choices:[] chunk reaches the client', empty);
  ok(chunks.every((c) => (c.choices || []).every((ch) => ch && typeof ch.delta === 'object' && ch.delta !== null)), 'every choice has a delta object (no async-filter annotation)', chunks.filter((c) => (c.choices || []).some((ch) => !ch || !ch.delta)));
  const c0 = chunks[0] && chunks[0].choices && chunks[0].choices[0];
  equal(c0 && c0.delta && c0.delta.role, 'assistant', 'the first chunk carries role assistant');
}

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });

// ---- the mock itself -------------------------------------------------------------------------------
/** POST straight to the mock (no gateway) under a resource host. */
function direct(res, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const b = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = https.request({
      host: '127.0.0.1', port: P.mock.port, servername: `${res}.openai.azure.com`, ca: P.mock.tls.ca, method: 'POST', path,
      headers: { host: `${res}.openai.azure.com`, 'content-type': 'application/json', 'content-length': String(b.length), ...headers },
    }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { /* SSE */ }
        resolve({ status: r.statusCode, headers: r.headers, body: text, json });
      });
    });
    req.on('error', reject);
    req.end(b);
  });
}

test('start the mock Azure OpenAI resources', async () => {
  P.G = await setupAzure();
  ok(P.mock.port > 0, 'listening');
  match(P.G.env.AZURE_CREDENTIALS, /^res1:gpt4o-prod:[0-9a-f]{32},res1:mini:[0-9a-f]{32},res2:gpt-4o:[0-9a-f]{32}$/, 'AZURE_CREDENTIALS: resource:deployment:key, three deployments');
}, { timeout: 30000 });

test('the mock refuses what Azure refuses (and records the violations)', async () => {
  const q = `?api-version=${GA}`;
  const k1 = { 'api-key': keyOf('res1') };
  const body = (extra = {}) => ({ messages: user(`Hi there ${mark('text', 'self')}`), ...extra });
  const cases = [
    ['a good request', 'res1', deploymentPath('gpt4o-prod') + q, body(), k1, 200, null],
    ['stream_options on 2024-10-21', 'res1', deploymentPath('gpt4o-prod') + q, body({ stream: true, stream_options: { include_usage: true } }), k1, 400, 'unknown-key'],
    ['max_completion_tokens on 2024-10-21', 'res1', deploymentPath('gpt4o-prod') + q, body({ max_completion_tokens: 10 }), k1, 400, 'unknown-key'],
    ['store on 2024-10-21', 'res1', deploymentPath('mini') + q, body({ store: true }), k1, 400, 'unknown-key'],
    ['an Authorization header', 'res1', deploymentPath('gpt4o-prod') + q, body(), { ...k1, authorization: 'Bearer sk-x' }, 400, 'client-credential'],
    ['another resource\'s key', 'res2', deploymentPath('gpt-4o') + q, body(), k1, 401, 'api-key'],
    ['no api-key', 'res1', deploymentPath('gpt4o-prod') + q, body(), {}, 401, 'api-key-missing'],
    ['another api-version', 'res1', `${deploymentPath('gpt4o-prod')}?api-version=2024-06-01`, body(), k1, 400, 'api-version'],
    ['no api-version', 'res1', deploymentPath('gpt4o-prod'), body(), k1, 404, 'api-version'],
    ['the developer role on 2024-10-21', 'res1', deploymentPath('gpt4o-prod') + q, { messages: [{ role: 'developer', content: 'x' }, ...user('y')] }, k1, 400, 'role'],
  ];
  for (const [what, res, path, b, h, want, check] of cases) {
    P.mock.reset();
    const r = await direct(res, path, b, h);
    equal(r.status, want, `${what}: ${want}`, r.body);
    deepEqual(P.mock.violations.map((v) => v.check), check ? [check] : [], `${what}: ${check ? `violation ${check}` : 'no violation'}`);
  }
  P.mock.reset();
  const nf = await direct('res1', deploymentPath('ghost') + q, body(), k1);
  equal(nf.status, 404, 'unknown deployment: 404');
  equal(nf.json && nf.json.error && nf.json.error.code, 'DeploymentNotFound', 'unknown deployment: DeploymentNotFound');
  deepEqual(P.mock.violations, [], 'unknown deployment: Azure\'s answer, not a violation');
  const ns = await direct('res1', deploymentPath('gpt4o-prod') + q, body(), k1);
  equal(ns.json && ns.json.model, 'gpt-4o-2024-11-20', 'replies name the deployment\'s model');
  ok(ns.json && ns.json.prompt_filter_results && ns.json.choices[0].content_filter_results, 'prompt_filter_results and content_filter_results');
  P.mock.apiVersions.add(PREVIEW);
  const pv = await direct('res1', `${deploymentPath('gpt4o-prod')}?api-version=${PREVIEW}`, body({ stream: true, stream_options: { include_usage: true }, max_completion_tokens: 20 }), k1);
  P.mock.apiVersions.delete(PREVIEW);
  equal(pv.status, 200, `stream_options and max_completion_tokens on ${PREVIEW}: 200`, pv.body);
  const data = pv.body.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  equal(data[0] && JSON.parse(data[0]).id, '', 'the stream starts with the prompt-filter chunk (id "")');
  deepEqual(JSON.parse(data[0]).choices, [], 'with choices: []');
  ok(data.length > 2 && JSON.parse(data[data.length - 2]).usage && data[data.length - 1] === '[DONE]', 'ends with the usage chunk, then [DONE]', data.slice(-2));
  deepEqual(P.mock.violations, [], 'no violation');
  P.mock.reset();
});

// ---- the gateway ---------------------------------------------------------------------------------
test('start lighttpd with three Azure deployments', async () => {
  if (!requireBin()) throw new Error('no binary');
  P.L = await startGateway(P.G, { HEARTBEAT_S: 1, KEY_CHECK_PERIOD_S: 3600 });
  ok(P.L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

test('the start-up checker probes each deployment (max_tokens 1) on its resource with its key', async () => {
  const want = Object.keys(MODEL_OF);
  const got = await P.mock.waitFor(() => { const d = new Set(P.mock.probes().map((r) => r.deployment)); return want.every((x) => d.has(x)) ? d : null; }, 15000);
  ok(got, 'a probe reached every deployment within 15 s', P.mock.probes().map((r) => `${r.host}${r.path}`));
  for (const d of want) {
    const rec = P.mock.probes().find((r) => r.deployment === d);
    if (!rec) continue;
    checkUpstream(rec, d);
    equal(rec.status, 200, `${d}: answered 200`);
  }
  noViolations(P);
}, { timeout: 30000 });

test('non-stream text: Azure\'s answer passed through, the upstream request', async () => {
  const m = mark('text', 'ns');
  const msgs = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Say hello ${m}` }];
  const r = await sdk().chat.completions.create({ model: 'gpt4o-prod', messages: msgs, temperature: 0.5 });
  const rec = seen(m);
  const reply = rec.reply || {};
  equal(r.id, reply.id, 'id is Azure\'s');
  equal(r.object, 'chat.completion', 'object');
  equal(r.model, 'gpt-4o-2024-11-20', 'model is what the deployment reports (body passed through)');
  equal(r.choices.length, 1, 'one choice');
  equal(r.choices[0].message.role, 'assistant', 'role');
  equal(r.choices[0].message.content, HELLO, 'content');
  equal(r.choices[0].finish_reason, 'stop', 'finish_reason stop');
  deepEqual(r.usage && [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens], [12, 7, 19], 'usage 12 + 7 = 19');
  diag(`Azure-only fields kept: prompt_filter_results ${'prompt_filter_results' in r}, content_filter_results ${'content_filter_results' in r.choices[0]}`);
  checkUpstream(rec, 'gpt4o-prod');
  match(rec.headers['content-type'], /^application\/json/, 'Content-Type application/json');
  deepEqual(rec.body && rec.body.messages, msgs, 'messages passed through unchanged');
  equal(rec.body && rec.body.temperature, 0.5, 'temperature passed through');
  ok(rec.body && rec.body.stream !== true, 'no stream:true', rec.body && rec.body.stream);
  noViolations(P, m);
});

test('the route without /v1 serves the same', async () => {
  const m = mark('text', 'nov1');
  const r = await azureClient(P.L, AZ_ROOT).chat.completions.create({ model: 'mini', messages: user(`Hi there ${m}`) });
  equal(r.choices[0].message.content, HELLO, 'answered');
  checkUpstream(seen(m), 'mini');
  noViolations(P, m);
});

test('stream text: role chunk first, no empty-choice chunk, one id, content, one finish, [DONE] last', async () => {
  const m = mark('text', 'st');
  const s = await postStream(chatUrl(), { model: 'gpt4o-prod', stream: true, messages: user(`Say hello ${m}`) });
  equal(s.status, 200, 'status 200');
  match(s.headers['content-type'], /^text\/event-stream/, 'text/event-stream');
  const rec = seen(m);
  deepEqual(rec.sent[0] && rec.sent[0].choices, [], '(the mock did send its leading prompt-filter chunk)');
  const cs = chunksOf(s);
  checkStreamShape(s, cs);
  equal(joinContent(cs), HELLO, 'content deltas join to the reply');
  deepEqual(finishes(cs), ['stop'], 'exactly one finish chunk, stop');
  ok(cs.every((c) => c.usage === undefined || c.usage === null), 'no usage without include_usage', cs.filter((c) => c.usage));
  ok(cs.every((c) => c.model === 'gpt-4o-2024-11-20'), 'model: the deployment\'s, in every chunk', [...new Set(cs.map((c) => c.model))]);
  equal(rec.body && rec.body.stream, true, 'stream:true upstream');
  checkUpstream(rec, 'gpt4o-prod');
  // the same through the SDK
  const m2 = mark('text', 'st-sdk');
  const st = await sdk().chat.completions.create({ model: 'gpt4o-prod', stream: true, messages: user(`Say hello ${m2}`) });
  const chunks = (await collect(st)).map((x) => x.chunk);
  equal(joinContent(chunks), HELLO, 'SDK: content');
  deepEqual(finishes(chunks), ['stop'], 'SDK: finish stop');
  noViolations(P, m);
  noViolations(P, m2);
});

test('asynchronous filter: annotation chunks (no delta, empty delta, choices: []) do not reach the client', async () => {
  const m = mark('async_filter', 'st');
  const s = await postStream(chatUrl(), { model: 'gpt4o-prod', stream: true, messages: user(`Say hello ${m}`) });
  equal(s.status, 200, 'status 200');
  const rec = seen(m);
  equal(rec.sent.filter((c) => c.id === '').length, 4, '(the mock sent 4 chunks with id "": prompt filter, 2 annotations, trailing choices: [])');
  const cs = chunksOf(s);
  checkStreamShape(s, cs);
  equal(joinContent(cs), HELLO, 'content intact');
  deepEqual(finishes(cs), ['stop'], 'one finish chunk');
  const fin = cs.findIndex((c) => c.choices.some((ch) => ch.finish_reason));
  equal(fin, cs.length - 1, 'nothing after the finish chunk');
  noViolations(P, m);
});

test('include_usage on 2024-10-21: no stream_options upstream; the gateway sends one usage chunk of its own', async () => {
  const m = mark('text', 'usage-ga');
  const s = await postStream(chatUrl(), { model: 'gpt4o-prod', stream: true, stream_options: { include_usage: true }, messages: user(`Say hello ${m}`) });
  equal(s.status, 200, 'status 200', s.body);
  const rec = seen(m);
  ok(rec.body && !('stream_options' in rec.body), 'stream_options not sent (2024-10-21 has none)', rec.body);
  const cs = chunksOf(s);
  checkStreamShape(s, cs, { usageChunk: true });
  equal(joinContent(cs), HELLO, 'content');
  const withUsage = cs.filter((c) => c.usage);
  equal(withUsage.length, 1, 'exactly one chunk with usage');
  const last = cs[cs.length - 1] || {};
  deepEqual(last.choices, [], 'the usage chunk is last, with choices: []');
  const u = last.usage || {};
  ok(Number.isInteger(u.prompt_tokens) && Number.isInteger(u.completion_tokens) && Number.isInteger(u.total_tokens), 'integer prompt_tokens, completion_tokens, total_tokens', u);
  equal(u.total_tokens, u.prompt_tokens + u.completion_tokens, 'total = prompt + completion');
  ok(u.prompt_tokens > 0 && u.completion_tokens > 0, 'an estimate above 0 for both (there was a prompt and an answer)', u);
  diag(`gateway's estimate: ${JSON.stringify(u)} (Azure would have said 12 + 7)`);
  const fin = cs.findIndex((c) => c.choices.some((ch) => ch.finish_reason));
  ok(fin >= 0 && fin === cs.length - 2, 'the finish chunk comes right before the usage chunk', fin);
  // the SDK sees it too
  const st = await sdk().chat.completions.create({ model: 'mini', stream: true, stream_options: { include_usage: true }, messages: user(`Say hello ${mark('text', 'usage-ga-sdk')}`) });
  const chunks = (await collect(st)).map((x) => x.chunk);
  ok(chunks.length && chunks[chunks.length - 1].usage && Number.isInteger(chunks[chunks.length - 1].usage.total_tokens), 'SDK: the last chunk carries usage', chunks[chunks.length - 1]);
  noViolations(P, m);
});

test('max_completion_tokens → max_tokens on 2024-10-21 (non-stream and stream)', async () => {
  const m = mark('text', 'mct');
  await sdk().chat.completions.create({ model: 'gpt4o-prod', max_completion_tokens: 77, messages: user(`Hi there ${m}`) });
  const b = seen(m).body || {};
  equal(b.max_tokens, 77, 'max_tokens 77');
  ok(!('max_completion_tokens' in b), 'no max_completion_tokens', b);
  const m2 = mark('text', 'mct-st');
  const st = await sdk().chat.completions.create({ model: 'gpt4o-prod', stream: true, max_completion_tokens: 55, messages: user(`Hi there ${m2}`) });
  await collect(st);
  const b2 = seen(m2).body || {};
  equal(b2.max_tokens, 55, 'stream: max_tokens 55');
  ok(!('max_completion_tokens' in b2), 'stream: no max_completion_tokens', b2);
  const m3 = mark('text', 'mt');
  await sdk().chat.completions.create({ model: 'gpt4o-prod', max_tokens: 33, messages: user(`Hi there ${m3}`) });
  equal((seen(m3).body || {}).max_tokens, 33, 'a plain max_tokens is kept');
  noViolations(P, m);
  noViolations(P, m2);
  noViolations(P, m3);
});

test('2024-10-21: the schema\'s fields pass through; fields it lacks (store, metadata, service_tier, reasoning_effort) are dropped', async () => {
  const m = mark('text', 'fields');
  const kept = { temperature: 0.3, top_p: 0.9, presence_penalty: 0.1, frequency_penalty: 0.2, seed: 42, user: 'user-1', stop: ['END'], logit_bias: { 50256: -100 }, n: 1, response_format: { type: 'text' } };
  const r = await fetchText(chatUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt4o-prod', ...kept, store: false, metadata: { k: 'v' }, service_tier: 'auto', reasoning_effort: 'low', messages: user(`Hi there ${m}`) }) });
  equal(r.status, 200, 'status 200', r.body);
  const b = seen(m).body || {};
  for (const [k, v] of Object.entries(kept)) deepEqual(b[k], v, `${k} passed through`);
  for (const k of ['store', 'metadata', 'service_tier', 'reasoning_effort']) ok(!(k in b), `${k} dropped`, b[k]);
  noViolations(P, m);
});

test('tools non-stream: Azure\'s tool calls passed through', async () => {
  const m = mark('tools', 'ns');
  const r = await sdk().chat.completions.create({ model: 'gpt4o-prod', tools: WEATHER_TOOLS, tool_choice: 'auto', messages: user(`Weather and time in Paris? ${m}`) });
  const rec = seen(m);
  const want = (rec.reply && rec.reply.choices[0].message.tool_calls) || [];
  const c = r.choices[0];
  equal(c.finish_reason, 'tool_calls', 'finish_reason tool_calls');
  const tc = c.message.tool_calls || [];
  equal(tc.length, 2, 'two tool calls');
  deepEqual(tc.map((t) => t.id), want.map((t) => t.id), 'ids are Azure\'s');
  deepEqual(tc.map((t) => t.function.name), ['get_weather', 'get_time'], 'names');
  let args = null;
  try { args = tc.map((t) => JSON.parse(t.function.arguments)); } catch (e) { fail('arguments are JSON', e.message); }
  deepEqual(args, [{ city: 'Paris' }, { tz: 'Europe/Paris' }], 'arguments');
  deepEqual(rec.body && rec.body.tools, WEATHER_TOOLS, 'tools passed through unchanged');
  equal(rec.body && rec.body.tool_choice, 'auto', 'tool_choice passed through');
  noViolations(P, m);
});

test('tools stream: indexes 0 and 1, id/type/name once, arguments reassembled, finish tool_calls', async () => {
  const m = mark('tools', 'st');
  const s = await postStream(chatUrl(), { model: 'gpt4o-prod', stream: true, tools: WEATHER_TOOLS, messages: user(`Weather and time in Paris? ${m}`) });
  const cs = chunksOf(s);
  checkStreamShape(s, cs);
  const calls = toolCallsOf(cs);
  deepEqual(Object.keys(calls).map(Number).sort(), [0, 1], 'tool call indexes 0 and 1');
  deepEqual([calls[0] && calls[0].name, calls[1] && calls[1].name], ['get_weather', 'get_time'], 'names');
  deepEqual([calls[0] && calls[0].headers, calls[1] && calls[1].headers], [1, 1], 'id sent once per call');
  let a = null;
  try { a = [JSON.parse(calls[0].arguments), JSON.parse(calls[1].arguments)]; } catch (e) { fail('arguments concatenate to JSON', e.message); }
  deepEqual(a, [{ city: 'Paris' }, { tz: 'Europe/Paris' }], 'arguments');
  deepEqual(finishes(cs), ['tool_calls'], 'one finish chunk: tool_calls');
  const st = await sdk().chat.completions.create({ model: 'gpt4o-prod', stream: true, tools: WEATHER_TOOLS, messages: user(`Weather? ${mark('tools', 'st-sdk')}`) });
  const chunks = (await collect(st)).map((x) => x.chunk);
  equal(Object.keys(toolCallsOf(chunks)).length, 2, 'SDK: two tool calls');
  noViolations(P, m);
});

test('tool round trip: assistant tool_calls and tool messages reach Azure unchanged', async () => {
  const m = mark('text', 'tool-rt');
  const msgs = [
    { role: 'user', content: 'Weather and time in Paris?' },
    { role: 'assistant', content: null, tool_calls: [
      { id: 'call_rt_weather', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      { id: 'call_rt_time', type: 'function', function: { name: 'get_time', arguments: '{"tz":"Europe/Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_rt_weather', content: 'Sunny, 21 C' },
    { role: 'tool', tool_call_id: 'call_rt_time', content: '14:05' },
    { role: 'user', content: `Thanks ${m}` },
  ];
  const r = await sdk().chat.completions.create({ model: 'gpt4o-prod', tools: WEATHER_TOOLS, messages: msgs });
  equal(r.choices[0].message.content, HELLO, 'answered');
  deepEqual(seen(m).body && seen(m).body.messages, msgs, 'messages unchanged');
  noViolations(P, m);
});

test('output filtered mid-stream: finish_reason content_filter passes through (stream and not)', async () => {
  const m = mark('filtered', 'st');
  const s = await postStream(chatUrl(), { model: 'gpt4o-prod', stream: true, messages: user(`Tell a story ${m}`) });
  equal(s.status, 200, 'status 200');
  const cs = chunksOf(s);
  checkStreamShape(s, cs);
  equal(joinContent(cs), 'Once upon a time', 'the content before the filter');
  deepEqual(finishes(cs), ['content_filter'], 'finish_reason content_filter');
  ok(!s.events.some((e) => e.json && e.json.error), 'no error event');
  const r = await sdk().chat.completions.create({ model: 'gpt4o-prod', messages: user(`Tell a story ${mark('filtered', 'ns')}`) });
  equal(r.choices[0].finish_reason, 'content_filter', 'non-stream: finish_reason content_filter');
  noViolations(P, m);
});

test('incremental delivery: chunks arrive as Azure sends them', async () => {
  const m = mark('slow', 'inc');
  const s = await sdk().chat.completions.create({ model: 'gpt4o-prod', stream: true, messages: user(`Slowly ${m}`) });
  const got = await collect(s);
  const texts = got.filter((x) => x.chunk.choices[0] && x.chunk.choices[0].delta && x.chunk.choices[0].delta.content);
  equal(texts.map((x) => x.chunk.choices[0].delta.content).join(''), 'one two three four five', 'content');
  const gaps = texts.slice(1).map((x, i) => x.t - texts[i].t);
  ok(gaps.length === 4 && Math.min(...gaps) >= 200, 'consecutive content chunks arrive >= 200 ms apart (the mock sends every 300 ms)', gaps);
}, { timeout: 20000 });

test('client disconnect aborts the upstream transfer', async () => {
  const m = mark('endless', 'dc');
  let n = 0;
  const s = await postStream(chatUrl(), { model: 'gpt4o-prod', stream: true, messages: user(`Forever ${m}`) }, {
    onItem: (it, ctl) => { if (it.json && it.json.choices && joinContent([it.json])) n++; if (n >= 3) ctl.abort(); },
  });
  ok(s.aborted, 'client read 3 content chunks, then disconnected');
  const rec = await P.mock.waitFor(() => { const r = P.mock.last(m); return r && r.closedAt ? r : null; }, 5000);
  ok(rec && rec.closedEarly, 'the mock saw the upstream connection close mid-stream', rec && { closedAt: rec.closedAt, closedEarly: rec.closedEarly });
  ok(rec && rec.closedAt - s.abortedAt <= 2000, 'within 2 s of the client disconnect', rec && rec.closedAt - s.abortedAt);
}, { timeout: 20000 });

test('deployment choice: by name, by model, by model without its date', async () => {
  const cases = [
    // [client model, deployment, why]
    ['gpt4o-prod', 'gpt4o-prod', 'deployment name'],
    ['mini', 'mini', 'deployment name'],
    ['gpt-4o', 'gpt-4o', 'deployment name (wins over gpt4o-prod, whose model is gpt-4o-2024-11-20)'],
    ['gpt-4o-2024-11-20', 'gpt4o-prod', 'model'],
    ['gpt-4o-2024-08-06', 'gpt-4o', 'model'],
    ['gpt-4o-mini-2024-07-18', 'mini', 'model'],
    ['gpt-4o-mini', 'mini', 'model without -YYYY-MM-DD'],
  ];
  for (const [i, [model, dep, why]] of cases.entries()) {
    const m = mark('text', `dep${i}`);
    let r = null;
    try { r = await sdk().chat.completions.create({ model, messages: user(`Hi there ${m}`) }); } catch (e) { fail(`${model}: request (${why})`, `${e.status} ${e.message}; upstream ${(P.mock.last(m) || {}).path}`); continue; }
    const rec = P.mock.last(m);
    if (!ok(rec, `${model}: reached the mock`)) continue;
    equal(`${rec.host}${rec.path}`, `${RESOURCE_OF[dep]}.openai.azure.com${deploymentPath(dep)}`, `${model} → ${RESOURCE_OF[dep]}/${dep} (${why})`);
    equal(rec.headers['api-key'], keyOf(RESOURCE_OF[dep]), `${model}: ${RESOURCE_OF[dep]}'s key`);
    equal(r.model, MODEL_OF[dep], `${model}: the answer names ${MODEL_OF[dep]}`);
  }
  noViolations(P);
}, { timeout: 60000 });

test('unknown model → 404 model_not_found listing what exists; nothing sent upstream', async () => {
  const m = mark('text', 'unknown');
  const e = await sdkError(sdk().chat.completions.create({ model: 'gpt-5-turbo', messages: user(`Hi there ${m}`) }));
  ok(e instanceof OpenAI.NotFoundError, 'NotFoundError', e && `${e.status} ${e.message}`);
  equal(e && e.code, 'model_not_found', 'code model_not_found');
  match(e && e.error && e.error.message, /gpt4o-prod|gpt-4o-2024-11-20/, 'the message lists what exists');
  const e2 = await sdkError(sdk().chat.completions.create({ model: 'gpt-4o-2024-05-13', messages: user(`Hi there ${mark('text', 'unknown-date')}`) }));
  equal(e2 && e2.status, 404, 'another date of a known family is no match either (gpt-4o-2024-05-13)', e2 && e2.message);
  equal(P.mock.find(m).length + P.mock.find(mark('text', 'unknown-date')).length, 0, 'nothing sent upstream');
});

test('the client\'s Authorization, api-key and x-api-key never reach Azure', async () => {
  const m = mark('text', 'creds');
  const secrets = ['sk-client-bearer-never-forwarded', 'sk-client-apikey-never-forwarded', 'sk-client-xapikey-never-forwarded'];
  const r = await fetchText(chatUrl(), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${secrets[0]}`, 'api-key': secrets[1], 'x-api-key': secrets[2] },
    body: JSON.stringify({ model: 'gpt4o-prod', messages: user(`Hi there ${m}`) }),
  });
  equal(r.status, 200, 'status 200', r.body);
  const rec = seen(m);
  ok(!('authorization' in rec.headers), 'no Authorization', rec.headers.authorization);
  equal(rec.headers['api-key'], keyOf('res1'), 'api-key is the resource\'s');
  ok(!('x-api-key' in rec.headers), 'no x-api-key');
  const all = JSON.stringify(rec.headers) + rec.bodyText;
  ok(secrets.every((x) => !all.includes(x)) && !all.includes(AZURE_CLIENT_KEY), 'no client secret anywhere in the upstream request');
  // the SDK's own Authorization + api-key (every earlier request) never arrived either
  ok(P.mock.requests.every((x) => !('authorization' in x.headers)), 'no request so far carried an Authorization header');
  noViolations(P, m);
});

test('models: the deployments\' models, object model, owned_by azure-openai (with and without /v1)', async () => {
  const page = await sdk().models.list();
  const ids = page.data.map((x) => x.id);
  diag(`/models ids: ${ids.join(', ')}`);
  for (const [dep, model] of Object.entries(MODEL_OF)) ok(ids.includes(model) || ids.includes(dep), `lists ${model} (or ${dep})`, ids);
  ok(page.data.length > 0 && page.data.every((x) => x.object === 'model' && x.owned_by === 'azure-openai'), 'each entry: object model, owned_by azure-openai', page.data);
  ok(!ids.some((id) => /claude/.test(id)), 'no Claude model (no gcp/aws key)', ids);
  const r = await fetchText(`${P.L.url}${AZ_ROOT}/models`);
  equal(r.status, 200, 'without /v1 too');
  deepEqual(r.json && r.json.data && r.json.data.map((x) => x.id).sort(), [...ids].sort(), 'same list');
});

test(`AZURE_API_VERSION=${PREVIEW}: stream_options and max_completion_tokens forwarded; Azure's usage chunk passed through`, async () => {
  P.mock.apiVersions.add(PREVIEW);
  const l = await startGateway(P.G, { AZURE_API_VERSION: PREVIEW });
  try {
    const m = mark('text', 'usage-pv');
    const s = await postStream(chatUrl(l), { model: 'gpt4o-prod', stream: true, stream_options: { include_usage: true }, max_completion_tokens: 77, messages: user(`Say hello ${m}`) });
    equal(s.status, 200, 'status 200', s.body);
    const rec = seen(m);
    checkUpstream(rec, 'gpt4o-prod', PREVIEW);
    deepEqual(rec.body && rec.body.stream_options, { include_usage: true }, 'stream_options reached Azure');
    equal(rec.body && rec.body.max_completion_tokens, 77, 'max_completion_tokens kept');
    ok(rec.body && !('max_tokens' in rec.body), 'no max_tokens added', rec.body);
    const cs = chunksOf(s);
    checkStreamShape(s, cs, { usageChunk: true });
    equal(joinContent(cs), HELLO, 'content');
    const withUsage = cs.filter((c) => c.usage);
    equal(withUsage.length, 1, 'exactly one chunk with usage');
    const last = cs[cs.length - 1] || {};
    deepEqual(last.choices, [], 'the usage chunk is last, with choices: []');
    const azureUsage = (rec.sent.find((c) => c.usage) || {}).usage;
    ok(azureUsage, '(the mock sent its usage chunk)');
    deepEqual(last.usage, azureUsage, 'Azure\'s usage, unchanged (12 + 7 = 19 with details)');
    const m2 = mark('text', 'nousage-pv');
    const s2 = await postStream(chatUrl(l), { model: 'gpt4o-prod', stream: true, messages: user(`Say hello ${m2}`) });
    const cs2 = chunksOf(s2);
    checkStreamShape(s2, cs2);
    ok(cs2.every((c) => !c.usage), 'without include_usage: no usage chunk');
    ok(seen(m2).body && !('stream_options' in seen(m2).body), 'and no stream_options upstream');
    noViolations(P, m);
    noViolations(P, m2);
  } finally {
    await l.stopAndClean();
    P.mock.apiVersions.delete(PREVIEW);
  }
}, { timeout: 60000 });

test('/status counts the Azure keys and the generations', async () => {
  const j = await status(P.L);
  equal(j && j.azureKeys, 3, 'azureKeys 3');
  ok(j && !('gcpKeys' in j) && !('awsKeys' in j), 'no gcpKeys / awsKeys');
  ok(j && Number.isInteger(j.proompts) && j.proompts > 0, 'proompts > 0', j && j.proompts);
  ok(j && typeof j.tookens === 'string' && j.tookens !== '0', 'tookens above "0"', j && j.tookens);
  match(j && j.endpoints && j.endpoints.azure, /\/proxy\/azure\/openai$/, 'endpoints.azure');
  const blocks = Object.keys(j || {}).filter((k) => /^azure-/.test(k));
  diag(`family blocks: ${blocks.map((b) => `${b} ${JSON.stringify(j[b])}`).join('; ')}`);
  const fam = (j && j['azure-gpt4o']) || {};
  equal(fam.activeKeys, 2, 'azure-gpt4o: 2 active keys (gpt4o-prod and gpt-4o, models learned)');
  ok(typeof fam.usage === 'string' && !/^0\b/.test(fam.usage), 'azure-gpt4o: usage above 0', fam.usage);
  equal(blocks.reduce((a, b) => a + ((j[b] && j[b].activeKeys) || 0), 0), 3, 'the azure-* blocks count 3 active keys in all');
  ok(!('azure-unknown' in j) || !j['azure-unknown'].activeKeys, 'no deployment left in azure-unknown after the probes', j && j['azure-unknown']);
});

test('the gateway log (LOG_LEVEL=debug) holds no key, no client credential, no prompt or completion text', () => {
  const log = P.L.errorLog();
  ok(log.length > 0, 'there is a log');
  for (const [res, k] of Object.entries(P.G.keys)) ok(!log.includes(k), `no ${res} key`);
  ok(!log.includes('sk-client'), 'no client credential');
  ok(!log.includes('<<mock:') && !log.includes('Weather and time in Paris'), 'no prompt text');
  ok(!log.includes(HELLO), 'no completion text');
});

test('every upstream request carried its resource\'s key', () => {
  deepEqual(P.mock.authFailures, [], 'no 401 at the mock');
});

test('the mock saw no malformed upstream request', () => {
  deepEqual(P.mock.violations, [], 'no check failed at the mock');
});

test('stop lighttpd', async () => {
  if (!P.L) return;
  ok((await P.L.stop()) !== null, 'lighttpd stopped');
  await P.L.stopAndClean();
});

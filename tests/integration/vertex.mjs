// Claude on Vertex AI through the OpenAI API (BASE/gcp/claude/v1/chat/completions) with the
// official `openai` client, against the mock Google endpoints (tests/mock/vertex.mjs) reached
// over TLS under the real hostnames: one OAuth token for many requests, text, tools, reasoning,
// usage, stops, refusals, incremental delivery, heartbeats, client disconnects, models, aliases,
// n fan-out, whitespace stops, gzip, a 2 MB stream and the info page counters.
import crypto from 'node:crypto';
import { test, ok, equal, deepEqual, match, fail, diag } from '../lib/tap.mjs';
import path from 'node:path';
import { requireBin, fetchText, procStatus, sleep, startListen, tmpDir } from '../lib/harness.mjs';
import { FcgiConn } from '../lib/fcgi.mjs';
import { mark, bigText, BIG_DELTAS, BIG_DELTA_LEN } from '../mock/vertex.mjs';
import {
  GCP, MODEL, VERTEX_MODEL, HOST, vertexPath, nowS, OpenAI, importError, setupMock, startGateway, client,
  collect, systemText, contentText, postStream, chunksOf, joinContent, toolCallsOf, status,
} from '../mock/gateway.mjs';

let G; // mock Google
let L; // lighttpd + gateway
const sdk = () => client(L);
const chatUrl = () => `${L.url}${GCP}/chat/completions`;
/** The mock's last record for `marker` (asserting there is one), or an empty stand-in. */
const seen = (marker) => {
  const r = G.mock.last(marker);
  ok(r, 'the request reached the mock');
  return r || { body: null, headers: {}, reply: null, path: null };
};
const noViolations = (marker, what = 'the mock accepted every upstream request') => {
  const v = G.mock.violations.filter((x) => !marker || G.mock.find(marker).some((r) => r.seq === x.seq));
  return deepEqual(v, [], what);
};

const WEATHER_TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'Local time in a time zone', parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } } },
];

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });

test('start the mock Google endpoints and lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  G = await setupMock();
  L = await startGateway(G, { HEARTBEAT_S: 1, MODEL_ALIASES: 'gpt-4o=claude-sonnet-4-5' });
  ok(L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

test('several requests, concurrent and sequential, share ONE OAuth token', async () => {
  const before = G.mock.tokenCalls;
  const conc = await Promise.allSettled(Array.from({ length: 6 }, (_, i) =>
    sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `Hello ${mark('text', `tok-c${i}`)}` }] })));
  equal(conc.filter((r) => r.status === 'fulfilled').length, 6, '6 concurrent requests succeed', conc.filter((r) => r.status === 'rejected').map((r) => r.reason && r.reason.message));
  for (let i = 0; i < 5; i++) {
    const m = mark('text', `tok-s${i}`);
    try {
      if (i % 2) {
        const s = await sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Hello ${m}` }] });
        await collect(s);
      } else await sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `Hello ${m}` }] });
    } catch (e) { fail(`sequential request ${i}`, e.message); }
  }
  const recs = G.mock.requests.filter((r) => /tok-[cs]\d/.test(r.marker || ''));
  equal(recs.length, 11, 'the mock saw all 11 requests');
  equal(G.mock.tokenCalls - before, 1, 'the token endpoint was called once', G.mock.tokenLog);
  equal(G.mock.tokensSeen().length, 1, 'every Vertex request carried the same bearer token');
  ok(G.mock.tokenLog.every((t) => t.status === 200), 'the token request passed every check (JWT signature, iss, scope, aud, exp)', G.mock.tokenLog.map((t) => t.error));
  noViolations();
}, { timeout: 60000 });

test('non-stream text: the OpenAI answer and the upstream request', async () => {
  const m = mark('text', 'ns');
  const r = await sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Say hello ${m}` }] });
  match(r.id, /^chatcmpl-./, 'id chatcmpl-…');
  equal(r.object, 'chat.completion', 'object');
  ok(Number.isInteger(r.created) && Math.abs(r.created - nowS()) < 120, 'created in seconds, about now', r.created);
  equal(r.model, MODEL, 'model is the name the client asked for');
  equal(r.choices.length, 1, 'one choice');
  const c = r.choices[0] || {};
  equal(c.index, 0, 'index 0');
  equal(c.message && c.message.role, 'assistant', 'role');
  equal(c.message && c.message.content, 'Hello from the Vertex mock.', 'content');
  equal(c.finish_reason, 'stop', 'finish_reason stop (end_turn)');
  ok(r.usage && r.usage.prompt_tokens === 12 && r.usage.completion_tokens === 7 && r.usage.total_tokens === 19, 'usage 12 + 7 = 19', r.usage);
  const rec = G.mock.last(m);
  if (!ok(rec, 'the mock saw the request')) return;
  equal(rec.host, HOST, 'regional host');
  equal(rec.path, vertexPath(VERTEX_MODEL, 'rawPredict'), 'rawPredict path with the Vertex id');
  match(rec.headers.authorization, /^Bearer ya29\./, 'bearer token from the token endpoint');
  match(rec.headers['content-type'], /^application\/json/, 'JSON content type');
  equal(rec.body && rec.body.anthropic_version, 'vertex-2023-10-16', 'anthropic_version');
  ok(rec.body && !('model' in rec.body), 'no model in the body');
  ok(rec.body && (rec.body.stream === undefined || rec.body.stream === false), 'no stream:true on rawPredict', rec.body && rec.body.stream);
  equal(rec.body && rec.body.max_tokens, 4096, 'max_tokens = DEFAULT_MAX_TOKENS');
  equal(systemText(rec.body && rec.body.system), 'Be brief.', 'leading system message → top-level system');
  equal(rec.body && rec.body.messages.length, 1, 'one message upstream');
  equal(rec.body && rec.body.messages[0].role, 'user', 'user role');
  equal(contentText(rec.body && rec.body.messages[0].content), `Say hello ${m}`, 'user text unchanged');
  ok(!('x-api-key' in rec.headers) && !/sk-client/.test(JSON.stringify(rec.headers)), 'the client credential is not forwarded');
  noViolations(m);
});

test('stream text: role chunk, content deltas, one finish chunk, [DONE], streamRawPredict', async () => {
  const m = mark('text', 'st');
  const s = await sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Say hello ${m}` }] });
  const chunks = (await collect(s)).map((x) => x.chunk);
  ok(chunks.length >= 3, 'at least role, content and finish chunks', chunks);
  equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id');
  match(chunks[0] && chunks[0].id, /^chatcmpl-./, 'id chatcmpl-…');
  equal(new Set(chunks.map((c) => c.created)).size, 1, 'one created');
  ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === MODEL), 'object and model in every chunk');
  deepEqual(chunks[0] && chunks[0].choices[0] && chunks[0].choices[0].delta && chunks[0].choices[0].delta.role, 'assistant', 'first chunk carries role assistant');
  equal(joinContent(chunks), 'Hello from the Vertex mock.', 'content deltas join to the reply');
  const fins = chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason);
  deepEqual(fins.map((f) => f.finish_reason), ['stop'], 'exactly one finish chunk, stop');
  ok(chunks.every((c) => c.usage === undefined || c.usage === null), 'no usage without include_usage');
  const rec = G.mock.last(m);
  equal(rec && rec.path, vertexPath(VERTEX_MODEL, 'streamRawPredict'), 'streamRawPredict path');
  equal(rec && rec.body && rec.body.stream, true, 'stream: true in the body');
  noViolations(m);
});

test('sampling: temperature with top_p on Sonnet 4.5 drops top_p; top_k 0 dropped; stream_options never forwarded', async () => {
  const m = mark('text', 'samp');
  const r = await fetchText(chatUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, temperature: 0.7, top_p: 0.9, top_k: 0, max_tokens: 200, stream: false, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `Hi there ${m}` }] }) });
  equal(r.status, 200, 'status', r.body);
  const b = seen(m).body || {};
  equal(b.temperature, 0.7, 'temperature kept');
  ok(!('top_p' in b), 'top_p dropped', b);
  ok(!('top_k' in b), 'top_k: 0 dropped', b);
  equal(b.max_tokens, 200, 'max_tokens from the client');
  noViolations(m);
});

test('tools non-stream: parallel calls with ids, names and parsed arguments', async () => {
  const m = mark('tools', 'ns');
  const r = await sdk().chat.completions.create({ model: MODEL, tools: WEATHER_TOOLS, tool_choice: 'auto', messages: [{ role: 'user', content: `Weather and time in Paris? ${m}` }] });
  const rec = G.mock.last(m);
  const uses = ((rec && rec.reply && rec.reply.content) || []).filter((b) => b.type === 'tool_use');
  const c = r.choices[0];
  equal(c.finish_reason, 'tool_calls', 'finish_reason tool_calls');
  equal(c.message.content, 'Checking both.', 'text before the calls kept');
  const tc = c.message.tool_calls || [];
  equal(tc.length, 2, 'two tool calls');
  deepEqual(tc.map((t) => t.id), uses.map((u) => u.id), 'ids are the tool_use ids');
  deepEqual(tc.map((t) => t.type), ['function', 'function'], 'type function');
  deepEqual(tc.map((t) => t.function.name), ['get_weather', 'get_time'], 'names');
  let args = null;
  try { args = tc.map((t) => JSON.parse(t.function.arguments)); } catch (e) { fail('arguments are JSON', e.message); }
  deepEqual(args, [{ city: 'Paris' }, { tz: 'Europe/Paris' }], 'arguments');
  const b = (rec && rec.body) || {};
  deepEqual(b.tools, WEATHER_TOOLS.map((t) => ({ name: t.function.name, description: t.function.description, input_schema: t.function.parameters })), 'tools → name/description/input_schema');
  deepEqual(b.tool_choice, { type: 'auto' }, 'tool_choice auto');
  noViolations(m);
});

test('tools stream: dense indexes 0 and 1, id/type/name once, arguments reassembled', async () => {
  const m = mark('tools', 'st');
  const s = await sdk().chat.completions.create({ model: MODEL, stream: true, tools: WEATHER_TOOLS, messages: [{ role: 'user', content: `Weather and time in Paris? ${m}` }] });
  const chunks = (await collect(s)).map((x) => x.chunk);
  const rec = G.mock.last(m);
  const uses = ((rec && rec.reply && rec.reply.content) || []).filter((b) => b.type === 'tool_use');
  const calls = toolCallsOf(chunks);
  deepEqual(Object.keys(calls).map(Number).sort(), [0, 1], 'tool call indexes are 0 and 1 (not the Anthropic block indexes 1, 2)');
  const c0 = calls[0] || {};
  const c1 = calls[1] || {};
  deepEqual([c0.id, c1.id], uses.map((u) => u.id), 'ids');
  deepEqual([c0.name, c1.name], ['get_weather', 'get_time'], 'names');
  deepEqual([c0.type, c1.type], ['function', 'function'], 'type function');
  deepEqual([c0.headers, c1.headers], [1, 1], 'id sent once per call');
  let a0 = null;
  let a1 = null;
  try { a0 = JSON.parse(c0.arguments); a1 = JSON.parse(c1.arguments); } catch (e) { fail('arguments concatenate to JSON', `${e.message}: ${c0.arguments} / ${c1.arguments}`); }
  deepEqual([a0, a1], [{ city: 'Paris' }, { tz: 'Europe/Paris' }], 'arguments');
  // the first fragment of each call carries the header (id, type, name)
  const firstFrag = {};
  for (const ch of chunks.flatMap((c) => c.choices)) for (const t of (ch.delta && ch.delta.tool_calls) || []) if (!(t.index in firstFrag)) firstFrag[t.index] = t;
  ok([0, 1].every((i) => firstFrag[i] && firstFrag[i].id && firstFrag[i].type === 'function' && firstFrag[i].function && firstFrag[i].function.name), 'first fragment of each call has id, type, name', firstFrag);
  equal(joinContent(chunks), 'Checking both.', 'text content');
  const fins = chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason);
  deepEqual(fins.map((f) => f.finish_reason), ['tool_calls'], 'one finish chunk: tool_calls');
  noViolations(m);
});

test('tool round trip: assistant tool_calls + tool messages → tool_use / tool_result upstream', async () => {
  const m = mark('text', 'tool-rt');
  const calls = [
    { id: 'toolu_rt_weather', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
    { id: 'toolu_rt_time', type: 'function', function: { name: 'get_time', arguments: '{"tz":"Europe/Paris"}' } },
  ];
  const r = await sdk().chat.completions.create({
    model: MODEL, tools: WEATHER_TOOLS,
    messages: [
      { role: 'user', content: 'Weather and time in Paris?' },
      { role: 'assistant', content: 'Checking both.', tool_calls: calls },
      { role: 'tool', tool_call_id: 'toolu_rt_weather', content: 'Sunny, 21 C' },
      { role: 'tool', tool_call_id: 'toolu_rt_time', content: `14:05 ${m}` },
    ],
  });
  equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'answer after the tool results');
  const b = seen(m).body || { messages: [] };
  deepEqual(b.messages.map((x) => x.role), ['user', 'assistant', 'user'], 'user, assistant, user (tool results merged into one user turn)');
  const asst = Array.isArray(b.messages[1] && b.messages[1].content) ? b.messages[1].content : [];
  deepEqual(asst.filter((x) => x.type === 'tool_use').map((x) => ({ id: x.id, name: x.name, input: x.input })),
    [{ id: 'toolu_rt_weather', name: 'get_weather', input: { city: 'Paris' } }, { id: 'toolu_rt_time', name: 'get_time', input: { tz: 'Europe/Paris' } }], 'tool_use blocks');
  const res = Array.isArray(b.messages[2] && b.messages[2].content) ? b.messages[2].content : [];
  deepEqual(res.filter((x) => x.type === 'tool_result').map((x) => [x.tool_use_id, contentText(x.content)]),
    [['toolu_rt_weather', 'Sunny, 21 C'], ['toolu_rt_time', `14:05 ${m}`]], 'tool_result blocks');
  noViolations(m);
});

let thinkingReply = null;
test('reasoning_effort → thinking budget upstream; reasoning_content and signed thinking_blocks back', async () => {
  const budgets = {};
  for (const effort of ['low', 'high']) {
    const m = mark('thinking', `eff-${effort}`);
    const r = await sdk().chat.completions.create({ model: MODEL, max_tokens: 32000, reasoning_effort: effort, messages: [{ role: 'user', content: `What is 2 + 2? ${m}` }] });
    const rec = G.mock.last(m) || {};
    const th = rec.body && rec.body.thinking;
    ok(th && th.type === 'enabled' && Number.isInteger(th.budget_tokens) && th.budget_tokens >= 1024 && th.budget_tokens < 32000, `${effort}: thinking enabled with 1024 <= budget < max_tokens`, th);
    budgets[effort] = th && th.budget_tokens;
    const msg = r.choices[0].message;
    const block = rec.reply && rec.reply.content[0];
    equal(msg.content, 'The answer is 4.', `${effort}: content is the text only`);
    equal(msg.reasoning_content, block && block.thinking, `${effort}: reasoning_content is the thinking text`);
    deepEqual(msg.thinking_blocks, [block], `${effort}: thinking_blocks carries the block with its signature`);
    thinkingReply = { msg, block };
    noViolations(m);
  }
  ok(budgets.low < budgets.high, 'a higher effort gets a larger budget', budgets);
});

test('reasoning stream: reasoning_content deltas, one thinking_blocks delta with the signature', async () => {
  const m = mark('thinking', 'st');
  const s = await sdk().chat.completions.create({ model: MODEL, max_tokens: 16000, reasoning_effort: 'medium', stream: true, messages: [{ role: 'user', content: `What is 2 + 2? ${m}` }] });
  const chunks = (await collect(s)).map((x) => x.chunk);
  const block = (G.mock.last(m) || {}).reply?.content?.[0];
  equal(joinContent(chunks, 'reasoning_content'), block && block.thinking, 'reasoning_content deltas join to the thinking text');
  equal(joinContent(chunks), 'The answer is 4.', 'content deltas');
  const tb = chunks.flatMap((c) => c.choices).filter((ch) => ch.delta && ch.delta.thinking_blocks);
  equal(tb.length, 1, 'one delta carries thinking_blocks');
  deepEqual(tb[0] && tb[0].delta.thinking_blocks, [block], 'the whole block with its signature');
  const deltas = chunks.flatMap((c) => c.choices).map((ch) => ch.delta || {});
  const lastReason = deltas.map((d) => Boolean(d.reasoning_content)).lastIndexOf(true);
  const firstText = deltas.findIndex((d) => d.content);
  ok(lastReason >= 0 && firstText > lastReason, 'reasoning arrives before the text');
  noViolations(m);
});

test('thinking round trip: the signed block goes first in the upstream assistant turn', async () => {
  if (!thinkingReply) { fail('no reply from the reasoning test'); return; }
  const m = mark('text', 'think-rt');
  const { msg, block } = thinkingReply;
  const r = await sdk().chat.completions.create({
    model: MODEL, max_tokens: 16000, reasoning_effort: 'low',
    messages: [
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: msg.content, reasoning_content: msg.reasoning_content, thinking_blocks: msg.thinking_blocks },
      { role: 'user', content: `And 3 + 3? ${m}` },
    ],
  });
  equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'answered (the mock verified the signature)');
  const b = seen(m).body || { messages: [] };
  const asst = b.messages[1] && b.messages[1].content;
  ok(Array.isArray(asst), 'assistant content is a block list', asst);
  deepEqual(Array.isArray(asst) ? asst[0] : null, block, 'first block: the thinking block verbatim (signature included)');
  equal(Array.isArray(asst) ? contentText(asst) : null, 'The answer is 4.', 'then the text');
  noViolations(m);
});

test('usage with cached tokens (non-stream)', async () => {
  const m = mark('cached', 'ns');
  const r = await sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `Cached? ${m}` }] });
  const u = r.usage || {};
  equal(u.prompt_tokens, 130, 'prompt_tokens = input 10 + cache read 100 + cache write 20');
  equal(u.completion_tokens, 5, 'completion_tokens');
  equal(u.total_tokens, 135, 'total_tokens');
  equal(u.prompt_tokens_details && u.prompt_tokens_details.cached_tokens, 100, 'prompt_tokens_details.cached_tokens');
  noViolations(m);
});

test('usage chunk only when asked (stream)', async () => {
  const m1 = mark('cached', 'st-nousage');
  const a = await postStream(chatUrl(), { model: MODEL, stream: true, messages: [{ role: 'user', content: `Cached? ${m1}` }] });
  equal(a.status, 200, 'status');
  const ca = chunksOf(a);
  ok(ca.every((c) => c.usage === undefined || c.usage === null), 'no usage without include_usage', ca.filter((c) => c.usage));
  ok(ca.every((c) => Array.isArray(c.choices) && c.choices.length > 0), 'no choices:[] chunk');
  equal(a.events[a.events.length - 1] && a.events[a.events.length - 1].data, '[DONE]', '[DONE] last');
  const m2 = mark('cached', 'st-usage');
  const b = await postStream(chatUrl(), { model: MODEL, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `Cached? ${m2}` }] });
  const cb = chunksOf(b);
  const withUsage = cb.filter((c) => c.usage);
  equal(withUsage.length, 1, 'exactly one chunk with usage');
  const last = cb[cb.length - 1] || {};
  deepEqual(last.choices, [], 'the usage chunk is last, with choices: []');
  const u = last.usage || {};
  ok(u.prompt_tokens === 130 && u.completion_tokens === 5 && u.total_tokens === 135, 'usage 130 + 5 = 135', u);
  equal(u.prompt_tokens_details && u.prompt_tokens_details.cached_tokens, 100, 'cached_tokens 100');
  equal(new Set(cb.map((c) => c.id)).size, 1, 'usage chunk shares the id');
  const finIdx = cb.findIndex((c) => c.choices && c.choices.some((ch) => ch.finish_reason));
  ok(finIdx >= 0 && finIdx < cb.length - 1, 'finish chunk before the usage chunk');
  equal(b.done, 1, 'one [DONE]');
  equal(b.events[b.events.length - 1] && b.events[b.events.length - 1].data, '[DONE]', '[DONE] last');
  noViolations(m1);
  noViolations(m2);
});

test('stop sequence: stop → stop_sequences, finish_reason stop', async () => {
  const m = mark('stop_sequence', 'ns');
  const r = await sdk().chat.completions.create({ model: MODEL, stop: 'END', messages: [{ role: 'user', content: `Count ${m}` }] });
  deepEqual(seen(m).body?.stop_sequences, ['END'], 'a string stop becomes a one-element stop_sequences');
  equal(r.choices[0].finish_reason, 'stop', 'finish_reason stop');
  equal(r.choices[0].message.content, 'Counting: 1, 2, 3', 'content');
  const m2 = mark('stop_sequence', 'st');
  const s = await sdk().chat.completions.create({ model: MODEL, stream: true, stop: ['END', 'STOP'], messages: [{ role: 'user', content: `Count ${m2}` }] });
  const chunks = (await collect(s)).map((x) => x.chunk);
  deepEqual(seen(m2).body?.stop_sequences, ['END', 'STOP'], 'array stop → stop_sequences');
  deepEqual(chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason), ['stop'], 'stream finish_reason stop');
  noViolations(m);
  noViolations(m2);
});

test('refusal → finish_reason content_filter', async () => {
  const m = mark('refusal', 'ns');
  const r = await sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `Something bad ${m}` }] });
  equal(r.choices[0].finish_reason, 'content_filter', 'non-stream');
  const m2 = mark('refusal', 'st');
  const s = await sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Something bad ${m2}` }] });
  const chunks = (await collect(s)).map((x) => x.chunk);
  deepEqual(chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason), ['content_filter'], 'stream');
});

test('max_tokens → finish_reason length', async () => {
  const m = mark('max_tokens', 'ns');
  const r = await sdk().chat.completions.create({ model: MODEL, max_tokens: 3, messages: [{ role: 'user', content: `Talk ${m}` }] });
  equal(r.choices[0].finish_reason, 'length', 'finish_reason length');
  equal((G.mock.last(m) || {}).body?.max_tokens, 3, 'max_tokens sent');
});

test('incremental delivery: chunks of the slow stream arrive as the mock sends them', async () => {
  const m = mark('slow', 'inc');
  const s = await sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Slowly ${m}` }] });
  const got = await collect(s);
  const texts = got.filter((x) => x.chunk.choices[0] && x.chunk.choices[0].delta && x.chunk.choices[0].delta.content);
  equal(texts.map((x) => x.chunk.choices[0].delta.content).join(''), 'one two three four five', 'content');
  equal(texts.length, 5, 'five content chunks');
  const gaps = texts.slice(1).map((x, i) => x.t - texts[i].t);
  ok(gaps.length === 4 && Math.min(...gaps) >= 200, 'consecutive content chunks arrive >= 200 ms apart (mock sends every 300 ms)', gaps);
  const rec = G.mock.last(m);
  ok(rec && rec.endedAt && texts.length && texts[0].t < rec.endedAt - 1000, 'the first chunk arrived > 1 s before the mock finished sending', rec && { first: texts[0] && texts[0].t, ended: rec.endedAt });
});

test('heartbeat comments during 2.5 s of upstream silence (HEARTBEAT_S=1)', async () => {
  const m = mark('silent', 'hb');
  const s = await postStream(chatUrl(), { model: MODEL, stream: true, messages: [{ role: 'user', content: `Wait ${m}` }] });
  equal(s.status, 200, 'status');
  const ev = (re) => s.items.findIndex((it) => it.json && it.json.choices && it.json.choices.some((c) => re.test((c.delta && c.delta.content) || '')));
  const before = ev(/^Before$/);
  const after = ev(/after/);
  const hbs = s.items.filter((it, i) => it.comment !== undefined && i > before && i < after);
  ok(before >= 0 && after > before, 'content before and after the silence', s.items.map((i) => i.comment !== undefined ? `:${i.comment}` : i.data).slice(0, 20));
  ok(hbs.length >= 1, 'at least one heartbeat comment during the silence', hbs.length);
  ok(hbs.every((h) => h.comment === 'keep-alive'), 'comments are ": keep-alive"', hbs.map((h) => h.comment));
  diag(`${hbs.length} heartbeat(s) during 2.5 s of silence`);
  equal(joinContent(chunksOf(s)), 'Before and after.', 'the stream completes');
  equal(s.events[s.events.length - 1] && s.events[s.events.length - 1].data, '[DONE]', '[DONE] last');
}, { timeout: 20000 });

test('client disconnect aborts the upstream transfer (stream)', async () => {
  const m = mark('endless', 'dc-st');
  let n = 0;
  const s = await postStream(chatUrl(), { model: MODEL, stream: true, messages: [{ role: 'user', content: `Forever ${m}` }] }, {
    onItem: (it, ctl) => { if (it.json && it.json.choices && joinContent([it.json])) n++; if (n >= 3) ctl.abort(); },
  });
  ok(s.aborted, 'client read 3 content chunks, then disconnected');
  const rec = await G.mock.waitFor(() => { const r = G.mock.last(m); return r && r.closedAt ? r : null; }, 5000);
  ok(rec && rec.closedEarly, 'the mock saw the upstream connection close mid-stream', rec && { closedAt: rec.closedAt, closedEarly: rec.closedEarly });
  ok(rec && rec.closedAt - s.abortedAt <= 2000, 'within 2 s of the client disconnect', rec && rec.closedAt - s.abortedAt);
}, { timeout: 20000 });

// A non-stream request writes nothing until the upstream answers, so a gone client can only be
// noticed if the web server drops the FastCGI connection. nginx does that on a client abort;
// lighttpd 1.4.69 keeps the connection until the backend answers (measured), so this case talks
// FastCGI to a --listen gateway directly and closes the connection as nginx would.
test('web server drops the FastCGI connection during a non-stream request: upstream aborted', async () => {
  const m = mark('endless', 'dc-ns');
  const sock = path.join(tmpDir('vx-listen-'), 'gw.sock');
  const gw = await startListen(['--listen', sock], { ...G.env, STATE_PATH: path.join(path.dirname(sock), 'state.db') });
  try {
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `Forever ${m}` }] });
    const c = await FcgiConn.connect(sock);
    c.begin().params({ REQUEST_METHOD: 'POST', REQUEST_URI: `${GCP}/chat/completions`, SCRIPT_NAME: '', CONTENT_TYPE: 'application/json',
      CONTENT_LENGTH: String(Buffer.byteLength(body)), REMOTE_ADDR: '127.0.0.1', HTTP_HOST: 'localhost' }).stdin(body).endStdin();
    const reached = await G.mock.waitFor(() => G.mock.last(m), 5000);
    ok(reached, 'the request reached the mock');
    await sleep(300);
    const t = Date.now();
    c.destroy();
    const rec = await G.mock.waitFor(() => { const r = G.mock.last(m); return r && r.closedAt ? r : null; }, 5000);
    ok(rec && rec.closedEarly && rec.closedAt - t <= 2000, 'the mock saw the upstream connection close within 2 s', rec && rec.closedAt - t);
  } finally {
    await gw.stop();
  }
}, { timeout: 20000 });

test('models: the catalogue when a key is configured', async () => {
  const page = await sdk().models.list();
  const ids = page.data.map((x) => x.id);
  for (const id of ['claude-opus-4-5-20251101', 'claude-opus-4-1-20250805', 'claude-opus-4-20250514', 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-20250514',
    'claude-3-7-sonnet-20250219', 'claude-haiku-4-5-20251001', 'claude-3-5-haiku-20241022', 'claude-3-haiku-20240307']) {
    ok(ids.includes(id), `lists ${id}`, ids);
  }
  ok(page.data.length > 0 && page.data.every((x) => x.object === 'model' && typeof x.owned_by === 'string' && x.owned_by && Number.isInteger(x.created)), 'each entry: object model, owned_by, created', page.data.slice(0, 3));
  const r = await fetchText(`${L.url}/proxy/gcp/claude/models`);
  equal(r.status, 200, 'without /v1 too');
  equal(r.json && r.json.object, 'list', 'object list');
  deepEqual(r.json && r.json.data.map((x) => x.id).sort(), [...ids].sort(), 'same list');
});

test('unknown model → 404 model_not_found listing what exists', async () => {
  const m = mark('text', 'unknown');
  let err = null;
  try { await sdk().chat.completions.create({ model: 'claude-nonexistent-9', messages: [{ role: 'user', content: `Hi there ${m}` }] }); } catch (e) { err = e; }
  ok(err instanceof OpenAI.NotFoundError, 'NotFoundError', err && err.message);
  equal(err && err.status, 404, 'status 404');
  equal(err && err.code, 'model_not_found', 'code model_not_found');
  match(err && err.error && err.error.message, /claude-sonnet-4-5/, 'the message lists available models');
  equal(G.mock.find(m).length, 0, 'nothing sent upstream');
});

test('MODEL_ALIASES gpt-4o=claude-sonnet-4-5 → upstream claude-sonnet-4-5@20250929', async () => {
  const m = mark('text', 'alias');
  const r = await sdk().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `Hi there ${m}` }] });
  equal(seen(m).path, vertexPath('claude-sonnet-4-5@20250929'), 'upstream path');
  equal(r.model, 'gpt-4o', 'the answer names the model the client asked for');
});

test('model names: Vertex ids verbatim, Anthropic ids mapped', async () => {
  const cases = [
    ['claude-sonnet-4-5@20250929', 'claude-sonnet-4-5@20250929'],
    ['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5@20250929'],
    ['claude-opus-4-5', 'claude-opus-4-5@20251101'],
    ['claude-3-5-sonnet-20241022', 'claude-3-5-sonnet-v2@20241022'],
    ['claude-haiku-4-5-20251001', 'claude-haiku-4-5@20251001'],
  ];
  for (const [i, [name, vid]] of cases.entries()) {
    const m = mark('text', `name${i}`);
    let r = null;
    try { r = await sdk().chat.completions.create({ model: name, messages: [{ role: 'user', content: `Hi there ${m}` }] }); } catch (e) { fail(`${name}: request`, e.message); continue; }
    equal((G.mock.last(m) || {}).path, vertexPath(vid), `${name} → ${vid}`);
    equal(r.model, name, `${name}: model echoed`);
  }
});

test('gzip-encoded upstream (stream and non-stream)', async () => {
  const m = mark('gzip', 'st');
  const s = await sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Zip ${m}` }] });
  const chunks = (await collect(s)).map((x) => x.chunk);
  equal(joinContent(chunks), 'Gzipped hello.', 'stream content');
  deepEqual(chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason), ['stop'], 'stream finish');
  const m2 = mark('gzip', 'ns');
  const r = await sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `Zip ${m2}` }] });
  equal(r.choices[0].message.content, 'Gzipped hello.', 'non-stream content');
  noViolations(m);
});

test('n=2 non-stream: two upstream requests, choices 0 and 1, usage summed', async () => {
  const m = mark('choice', 'n2-ns');
  const r = await sdk().chat.completions.create({ model: MODEL, n: 2, messages: [{ role: 'user', content: `Two please ${m}` }] });
  const recs = G.mock.find(m);
  equal(recs.length, 2, 'two upstream requests');
  deepEqual(r.choices.map((c) => c.index), [0, 1], 'indexes 0, 1');
  ok(r.choices.every((c) => /^Reply #\d+$/.test(c.message.content) && c.finish_reason === 'stop'), 'each choice is a reply', r.choices);
  equal(new Set(r.choices.map((c) => c.message.content)).size, 2, 'distinct replies');
  deepEqual(r.choices.map((c) => c.message.content).sort(), recs.map((x) => contentText(x.reply.content)).sort(), 'the replies the mock sent');
  const out = recs.reduce((a, x) => a + x.reply.usage.output_tokens, 0);
  equal(r.usage && r.usage.completion_tokens, out, 'completion_tokens summed');
  equal(r.usage && r.usage.prompt_tokens, 24, 'prompt_tokens summed');
  ok(recs.every((x) => x.body && !('n' in x.body)), 'n is not forwarded');
  noViolations(m);
});

test('n=2 stream: chunks for index 0 and 1, one finish each, one [DONE]', async () => {
  const m = mark('choice', 'n2-st');
  const s = await postStream(chatUrl(), { model: MODEL, n: 2, stream: true, messages: [{ role: 'user', content: `Two please ${m}` }] });
  equal(s.status, 200, 'status');
  const cs = chunksOf(s);
  equal(s.done, 1, 'one [DONE]');
  equal(s.events[s.events.length - 1] && s.events[s.events.length - 1].data, '[DONE]', '[DONE] last');
  equal(new Set(cs.map((c) => c && c.id)).size, 1, 'one id for the whole stream');
  const idx = new Set(cs.flatMap((c) => c.choices.map((ch) => ch.index)));
  deepEqual([...idx].sort(), [0, 1], 'choice indexes 0 and 1');
  const texts = [joinContent(cs, 'content', 0), joinContent(cs, 'content', 1)];
  ok(texts.every((t) => /^Reply #\d+$/.test(t)) && texts[0] !== texts[1], 'each index carries its own reply', texts);
  for (const i of [0, 1]) {
    equal(cs.flatMap((c) => c.choices).filter((ch) => ch.index === i && ch.finish_reason).length, 1, `one finish chunk for index ${i}`);
  }
  equal(G.mock.find(m).length, 2, 'two upstream requests');
});

test('whitespace stop ["\\n"]: output cut at the newline, finish_reason stop', async () => {
  const m = mark('ws_stop', 'ns');
  const r = await sdk().chat.completions.create({ model: MODEL, stop: ['\n'], messages: [{ role: 'user', content: `Lines ${m}` }] });
  equal(r.choices[0].message.content, 'line one', 'content cut at the first newline');
  equal(r.choices[0].finish_reason, 'stop', 'finish_reason stop');
  const b = seen(m).body || {};
  ok(!(b.stop_sequences || []).includes('\n'), 'the whitespace stop is not sent upstream', b.stop_sequences);
  const m2 = mark('ws_stop', 'st');
  const s = await postStream(chatUrl(), { model: MODEL, stream: true, stop: ['\n'], messages: [{ role: 'user', content: `Lines ${m2}` }] });
  const cs = chunksOf(s);
  equal(joinContent(cs), 'line one', 'stream content cut at the first newline');
  deepEqual(cs.flatMap((c) => c.choices).filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason), ['stop'], 'stream finish_reason stop');
  equal(s.events[s.events.length - 1] && s.events[s.events.length - 1].data, '[DONE]', '[DONE] last');
  const rec = await G.mock.waitFor(() => { const x = G.mock.last(m2); return x && x.closedAt ? x : null; }, 4000);
  ok(rec && rec.closedEarly, 'the upstream transfer was aborted', rec && { closedEarly: rec.closedEarly, sent: rec.sent.length });
  noViolations(m);
  noViolations(m2);
}, { timeout: 20000 });

test('a 2 MB stream arrives complete (peak RSS printed)', async () => {
  const pids = L.gatewayPids();
  ok(pids.length > 0, 'gateway processes found', pids);
  const hwm = () => Object.fromEntries(pids.map((p) => [p, (procStatus(p) || {}).VmHWM]));
  const h0 = hwm();
  const small = await sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Small ${mark('small', 'mem')}` }] });
  const sc = (await collect(small)).map((x) => x.chunk);
  equal(joinContent(sc).length, 2 * BIG_DELTA_LEN, '2 KB stream complete');
  const h1 = hwm();
  const m = mark('big', 'mem');
  const s = await sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Big ${m}` }] });
  const chunks = (await collect(s)).map((x) => x.chunk);
  const h2 = hwm();
  const text = joinContent(chunks);
  const want = bigText();
  equal(text.length, BIG_DELTAS * BIG_DELTA_LEN, `content length ${BIG_DELTAS * BIG_DELTA_LEN}`);
  equal(crypto.createHash('sha256').update(text).digest('hex'), crypto.createHash('sha256').update(want).digest('hex'), 'content identical (sha256)');
  deepEqual(chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason), ['stop'], 'finish_reason stop');
  const line = pids.map((p) => `pid ${p}: start ${h0[p]} kB, after 2 KB stream ${h1[p]} kB, after 2 MB stream ${h2[p]} kB`).join('; ');
  diag(`peak RSS (VmHWM) ${line}`);
}, { timeout: 60000 });

test('/status counts generations, tokens and the key', async () => {
  const j = await status(L);
  ok(j && Number.isInteger(j.proompts) && j.proompts > 0, 'proompts > 0', j && j.proompts);
  ok(j && typeof j.tookens === 'string' && j.tookens !== '0' && j.tookens !== '', 'tookens is a string above "0"', j && j.tookens);
  equal(j && j.gcpKeys, 1, 'gcpKeys 1');
});

test('the gateway log (LOG_LEVEL=debug) holds no secret and no prompt text', () => {
  const log = L.errorLog();
  ok(log.length > 0, 'there is a log');
  const pemBody = G.sa.pem.split('\n')[5];
  ok(!log.includes('ya29.'), 'no access token');
  ok(!/PRIVATE KEY/.test(log) && !log.includes(pemBody), 'no private key');
  ok(!log.includes('sk-client-never-forwarded'), 'no client credential');
  ok(!log.includes('<<mock:') && !log.includes('Weather and time in Paris'), 'no prompt text');
  ok(!log.includes('Hello from the Vertex mock'), 'no completion text');
});

test('the mock saw no malformed upstream request', () => {
  deepEqual(G.mock.violations, [], 'no check failed at the mock');
});

test('stop lighttpd', async () => {
  if (!L) return;
  ok((await L.stop()) !== null, 'lighttpd stopped');
  await L.stopAndClean();
});

// The provider-agnostic scenario list: what every Claude provider (Vertex: gcp, Bedrock: aws) must do
// through the OpenAI API (BASE/<provider>/claude/v1/chat/completions) with the official `openai`
// client, against its mock upstream reached over TLS under the real hostnames. One list, run per
// provider by thin files (tests/integration/vertex.mjs and vertex_errors.mjs for gcp,
// bedrock.mjs and bedrock_errors.mjs for aws) with a provider descriptor from
// tests/mock/gateway.mjs (gcpProvider() / awsProvider()): its routes, the upstream path and model
// id it should reach, how it authenticates and marks a stream, the secrets its log must not hold.
//
//   const P = awsProvider();
//   test('start …', async () => { P.G = await P.setup(); P.L = await P.start({ HEARTBEAT_S: 1, … }); });
//   sharedTests(P, 'chat');          // text, tools, reasoning, usage, stops, n, streams, models, …
//   … provider-only tests …
//   sharedTests(P, 'report');        // /status counters, no secret or prompt in the log
//   sharedTests(P, 'end');           // no mock violations, stop lighttpd
//
// Groups: 'chat' and 'report' expect one gateway in P.L started with HEARTBEAT_S=1 and
// MODEL_ALIASES=gpt-4o=claude-sonnet-4-5; 'errors' expects P.L started with the plain mock
// environment and starts fresh gateways (their own state store) for errors that cool the only key;
// 'end' closes any file.
import crypto from 'node:crypto';
import path from 'node:path';
import { test, ok, equal, deepEqual, match, fail, diag } from './tap.mjs';
import { fetchText, procStatus, sleep, startListen, tmpDir, isOpenAIError, isAnthropicError } from './harness.mjs';
import { FcgiConn } from './fcgi.mjs';
import { mark, bigText, BIG_DELTAS, BIG_DELTA_LEN } from '../mock/claude.mjs';
import {
  nowS, OpenAI, ANTHROPIC_HEADERS, client, collect, systemText, contentText, postStream, chunksOf, joinContent,
  toolCallsOf, status,
} from '../mock/gateway.mjs';

export const WEATHER_TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'Local time in a time zone', parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } } },
];

const sdk = (P) => client(P.L, P.base);
const chatUrl = (P, l = P.L) => `${l.url}${P.base}/chat/completions`;
const msgUrl = (P, l = P.L) => `${l.url}${P.base}/messages`;
const user = (text) => [{ role: 'user', content: text }];
const finishes = (chunks) => chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason);
/** The mock's last record for `marker` (asserting there is one), or an empty stand-in. */
function seen(P, marker) {
  const r = P.mock.last(marker);
  ok(r, 'the request reached the mock');
  return r || { body: null, headers: {}, reply: null, path: null };
}
function noViolations(P, marker, what = 'the mock accepted every upstream request') {
  const v = P.mock.violations.filter((x) => !marker || P.mock.find(marker).some((r) => r.seq === x.seq));
  return deepEqual(v, [], what);
}
async function sdkError(p) {
  try { await p; } catch (e) { return e; }
  return null;
}
/** Run fn(gateway) on a gateway with a fresh state store, stopped afterwards. */
async function fresh(P, fn, env = {}) {
  const l = await P.start(env);
  try { return await fn(l); } finally { await l.stopAndClean(); }
}

/** [group, name, fn(P), timeout?] */
export const SCENARIO_LIST = [
  // ---- chat: one gateway, HEARTBEAT_S=1, MODEL_ALIASES=gpt-4o=claude-sonnet-4-5 -------------------
  ['chat', 'non-stream text: the OpenAI answer and the upstream request', async (P) => {
    const m = mark('text', 'ns');
    const r = await sdk(P).chat.completions.create({ model: P.model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Say hello ${m}` }] });
    match(r.id, /^chatcmpl-./, 'id chatcmpl-…');
    equal(r.object, 'chat.completion', 'object');
    ok(Number.isInteger(r.created) && Math.abs(r.created - nowS()) < 120, 'created in seconds, about now', r.created);
    equal(r.model, P.model, 'model is the name the client asked for');
    equal(r.choices.length, 1, 'one choice');
    const c = r.choices[0] || {};
    equal(c.index, 0, 'index 0');
    equal(c.message && c.message.role, 'assistant', 'role');
    equal(c.message && c.message.content, P.hello, 'content');
    equal(c.finish_reason, 'stop', 'finish_reason stop (end_turn)');
    ok(r.usage && r.usage.prompt_tokens === 12 && r.usage.completion_tokens === 7 && r.usage.total_tokens === 19, 'usage 12 + 7 = 19', r.usage);
    const rec = P.mock.last(m);
    if (!ok(rec, 'the mock saw the request')) return;
    equal(rec.host, P.host, 'regional host');
    equal(rec.path, P.path(P.upstreamId, false), `non-stream path with the ${P.label} id`);
    P.checkAuth(rec);
    match(rec.headers['content-type'], /^application\/json/, 'JSON content type');
    equal(rec.body && rec.body.anthropic_version, P.version, 'anthropic_version');
    ok(rec.body && !('model' in rec.body), 'no model in the body');
    P.checkStreamFlag(rec, false);
    equal(rec.body && rec.body.max_tokens, 4096, 'max_tokens = DEFAULT_MAX_TOKENS');
    equal(systemText(rec.body && rec.body.system), 'Be brief.', 'leading system message → top-level system');
    equal(rec.body && rec.body.messages.length, 1, 'one message upstream');
    equal(rec.body && rec.body.messages[0].role, 'user', 'user role');
    equal(contentText(rec.body && rec.body.messages[0].content), `Say hello ${m}`, 'user text unchanged');
    ok(!('x-api-key' in rec.headers) && !/sk-client/.test(JSON.stringify(rec.headers)), 'the client credential is not forwarded');
    noViolations(P, m);
  }],

  ['chat', 'stream text: role chunk, content deltas, one finish chunk, [DONE], the streaming operation', async (P) => {
    const m = mark('text', 'st');
    const s = await sdk(P).chat.completions.create({ model: P.model, stream: true, messages: [{ role: 'user', content: `Say hello ${m}` }] });
    const chunks = (await collect(s)).map((x) => x.chunk);
    ok(chunks.length >= 3, 'at least role, content and finish chunks', chunks);
    equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id');
    match(chunks[0] && chunks[0].id, /^chatcmpl-./, 'id chatcmpl-…');
    equal(new Set(chunks.map((c) => c.created)).size, 1, 'one created');
    ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === P.model), 'object and model in every chunk');
    deepEqual(chunks[0] && chunks[0].choices[0] && chunks[0].choices[0].delta && chunks[0].choices[0].delta.role, 'assistant', 'first chunk carries role assistant');
    equal(joinContent(chunks), P.hello, 'content deltas join to the reply');
    deepEqual(finishes(chunks), ['stop'], 'exactly one finish chunk, stop');
    ok(chunks.every((c) => c.usage === undefined || c.usage === null), 'no usage without include_usage');
    const rec = P.mock.last(m);
    equal(rec && rec.path, P.path(P.upstreamId, true), 'streaming path');
    if (rec) P.checkStreamFlag(rec, true);
    noViolations(P, m);
  }],

  ['chat', 'sampling: temperature with top_p on Sonnet 4.5 drops top_p; top_k 0 dropped; stream_options never forwarded', async (P) => {
    const m = mark('text', 'samp');
    const r = await fetchText(chatUrl(P), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: P.model, temperature: 0.7, top_p: 0.9, top_k: 0, max_tokens: 200, stream: false, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `Hi there ${m}` }] }) });
    equal(r.status, 200, 'status', r.body);
    const b = seen(P, m).body || {};
    equal(b.temperature, 0.7, 'temperature kept');
    ok(!('top_p' in b), 'top_p dropped', b);
    ok(!('top_k' in b), 'top_k: 0 dropped', b);
    equal(b.max_tokens, 200, 'max_tokens from the client');
    noViolations(P, m);
  }],

  ['chat', 'tools non-stream: parallel calls with ids, names and parsed arguments', async (P) => {
    const m = mark('tools', 'ns');
    const r = await sdk(P).chat.completions.create({ model: P.model, tools: WEATHER_TOOLS, tool_choice: 'auto', messages: [{ role: 'user', content: `Weather and time in Paris? ${m}` }] });
    const rec = P.mock.last(m);
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
    noViolations(P, m);
  }],

  ['chat', 'tools stream: dense indexes 0 and 1, id/type/name once, arguments reassembled', async (P) => {
    const m = mark('tools', 'st');
    const s = await sdk(P).chat.completions.create({ model: P.model, stream: true, tools: WEATHER_TOOLS, messages: [{ role: 'user', content: `Weather and time in Paris? ${m}` }] });
    const chunks = (await collect(s)).map((x) => x.chunk);
    // the gateway ends the transfer at message_stop, possibly before the mock recorded its reply
    const rec = await P.mock.waitFor(() => { const x = P.mock.last(m); return x && x.reply ? x : null; }, 5000) || P.mock.last(m);
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
    deepEqual(finishes(chunks), ['tool_calls'], 'one finish chunk: tool_calls');
    noViolations(P, m);
  }],

  ['chat', 'tool round trip: assistant tool_calls + tool messages → tool_use / tool_result upstream', async (P) => {
    const m = mark('text', 'tool-rt');
    const calls = [
      { id: 'toolu_rt_weather', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      { id: 'toolu_rt_time', type: 'function', function: { name: 'get_time', arguments: '{"tz":"Europe/Paris"}' } },
    ];
    const r = await sdk(P).chat.completions.create({
      model: P.model, tools: WEATHER_TOOLS,
      messages: [
        { role: 'user', content: 'Weather and time in Paris?' },
        { role: 'assistant', content: 'Checking both.', tool_calls: calls },
        { role: 'tool', tool_call_id: 'toolu_rt_weather', content: 'Sunny, 21 C' },
        { role: 'tool', tool_call_id: 'toolu_rt_time', content: `14:05 ${m}` },
      ],
    });
    equal(r.choices[0].message.content, P.hello, 'answer after the tool results');
    const b = seen(P, m).body || { messages: [] };
    deepEqual(b.messages.map((x) => x.role), ['user', 'assistant', 'user'], 'user, assistant, user (tool results merged into one user turn)');
    const asst = Array.isArray(b.messages[1] && b.messages[1].content) ? b.messages[1].content : [];
    deepEqual(asst.filter((x) => x.type === 'tool_use').map((x) => ({ id: x.id, name: x.name, input: x.input })),
      [{ id: 'toolu_rt_weather', name: 'get_weather', input: { city: 'Paris' } }, { id: 'toolu_rt_time', name: 'get_time', input: { tz: 'Europe/Paris' } }], 'tool_use blocks');
    const res = Array.isArray(b.messages[2] && b.messages[2].content) ? b.messages[2].content : [];
    deepEqual(res.filter((x) => x.type === 'tool_result').map((x) => [x.tool_use_id, contentText(x.content)]),
      [['toolu_rt_weather', 'Sunny, 21 C'], ['toolu_rt_time', `14:05 ${m}`]], 'tool_result blocks');
    noViolations(P, m);
  }],

  ['chat', 'reasoning_effort → thinking budget upstream; reasoning_content and signed thinking_blocks back', async (P) => {
    const budgets = {};
    for (const effort of ['low', 'high']) {
      const m = mark('thinking', `eff-${effort}`);
      const r = await sdk(P).chat.completions.create({ model: P.model, max_tokens: 32000, reasoning_effort: effort, messages: [{ role: 'user', content: `What is 2 + 2? ${m}` }] });
      const rec = P.mock.last(m) || {};
      const th = rec.body && rec.body.thinking;
      ok(th && th.type === 'enabled' && Number.isInteger(th.budget_tokens) && th.budget_tokens >= 1024 && th.budget_tokens < 32000, `${effort}: thinking enabled with 1024 <= budget < max_tokens`, th);
      budgets[effort] = th && th.budget_tokens;
      const msg = r.choices[0].message;
      const block = rec.reply && rec.reply.content[0];
      equal(msg.content, 'The answer is 4.', `${effort}: content is the text only`);
      equal(msg.reasoning_content, block && block.thinking, `${effort}: reasoning_content is the thinking text`);
      deepEqual(msg.thinking_blocks, [block], `${effort}: thinking_blocks carries the block with its signature`);
      P.state.thinkingReply = { msg, block };
      noViolations(P, m);
    }
    ok(budgets.low < budgets.high, 'a higher effort gets a larger budget', budgets);
  }],

  ['chat', 'reasoning stream: reasoning_content deltas, one thinking_blocks delta with the signature', async (P) => {
    const m = mark('thinking', 'st');
    const s = await sdk(P).chat.completions.create({ model: P.model, max_tokens: 16000, reasoning_effort: 'medium', stream: true, messages: [{ role: 'user', content: `What is 2 + 2? ${m}` }] });
    const chunks = (await collect(s)).map((x) => x.chunk);
    const rec = await P.mock.waitFor(() => { const x = P.mock.last(m); return x && x.reply ? x : null; }, 5000) || P.mock.last(m) || {};
    const block = rec.reply?.content?.[0];
    equal(joinContent(chunks, 'reasoning_content'), block && block.thinking, 'reasoning_content deltas join to the thinking text');
    equal(joinContent(chunks), 'The answer is 4.', 'content deltas');
    const tb = chunks.flatMap((c) => c.choices).filter((ch) => ch.delta && ch.delta.thinking_blocks);
    equal(tb.length, 1, 'one delta carries thinking_blocks');
    deepEqual(tb[0] && tb[0].delta.thinking_blocks, [block], 'the whole block with its signature');
    const deltas = chunks.flatMap((c) => c.choices).map((ch) => ch.delta || {});
    const lastReason = deltas.map((d) => Boolean(d.reasoning_content)).lastIndexOf(true);
    const firstText = deltas.findIndex((d) => d.content);
    ok(lastReason >= 0 && firstText > lastReason, 'reasoning arrives before the text');
    noViolations(P, m);
  }],

  ['chat', 'thinking round trip: the signed block goes first in the upstream assistant turn', async (P) => {
    if (!P.state.thinkingReply) { fail('no reply from the reasoning test'); return; }
    const m = mark('text', 'think-rt');
    const { msg, block } = P.state.thinkingReply;
    const r = await sdk(P).chat.completions.create({
      model: P.model, max_tokens: 16000, reasoning_effort: 'low',
      messages: [
        { role: 'user', content: 'What is 2 + 2?' },
        { role: 'assistant', content: msg.content, reasoning_content: msg.reasoning_content, thinking_blocks: msg.thinking_blocks },
        { role: 'user', content: `And 3 + 3? ${m}` },
      ],
    });
    equal(r.choices[0].message.content, P.hello, 'answered (the mock verified the signature)');
    const b = seen(P, m).body || { messages: [] };
    const asst = b.messages[1] && b.messages[1].content;
    ok(Array.isArray(asst), 'assistant content is a block list', asst);
    deepEqual(Array.isArray(asst) ? asst[0] : null, block, 'first block: the thinking block verbatim (signature included)');
    equal(Array.isArray(asst) ? contentText(asst) : null, 'The answer is 4.', 'then the text');
    noViolations(P, m);
  }],

  ['chat', 'usage with cached tokens (non-stream)', async (P) => {
    const m = mark('cached', 'ns');
    const r = await sdk(P).chat.completions.create({ model: P.model, messages: [{ role: 'user', content: `Cached? ${m}` }] });
    const u = r.usage || {};
    equal(u.prompt_tokens, 130, 'prompt_tokens = input 10 + cache read 100 + cache write 20');
    equal(u.completion_tokens, 5, 'completion_tokens');
    equal(u.total_tokens, 135, 'total_tokens');
    equal(u.prompt_tokens_details && u.prompt_tokens_details.cached_tokens, 100, 'prompt_tokens_details.cached_tokens');
    noViolations(P, m);
  }],

  ['chat', 'usage chunk only when asked (stream)', async (P) => {
    const m1 = mark('cached', 'st-nousage');
    const a = await postStream(chatUrl(P), { model: P.model, stream: true, messages: [{ role: 'user', content: `Cached? ${m1}` }] });
    equal(a.status, 200, 'status');
    const ca = chunksOf(a);
    ok(ca.every((c) => c.usage === undefined || c.usage === null), 'no usage without include_usage', ca.filter((c) => c.usage));
    ok(ca.every((c) => Array.isArray(c.choices) && c.choices.length > 0), 'no choices:[] chunk');
    equal(a.events[a.events.length - 1] && a.events[a.events.length - 1].data, '[DONE]', '[DONE] last');
    const m2 = mark('cached', 'st-usage');
    const b = await postStream(chatUrl(P), { model: P.model, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `Cached? ${m2}` }] });
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
    noViolations(P, m1);
    noViolations(P, m2);
  }],

  ['chat', 'stop sequence: stop → stop_sequences, finish_reason stop', async (P) => {
    const m = mark('stop_sequence', 'ns');
    const r = await sdk(P).chat.completions.create({ model: P.model, stop: 'END', messages: [{ role: 'user', content: `Count ${m}` }] });
    deepEqual(seen(P, m).body?.stop_sequences, ['END'], 'a string stop becomes a one-element stop_sequences');
    equal(r.choices[0].finish_reason, 'stop', 'finish_reason stop');
    equal(r.choices[0].message.content, 'Counting: 1, 2, 3', 'content');
    const m2 = mark('stop_sequence', 'st');
    const s = await sdk(P).chat.completions.create({ model: P.model, stream: true, stop: ['END', 'STOP'], messages: [{ role: 'user', content: `Count ${m2}` }] });
    const chunks = (await collect(s)).map((x) => x.chunk);
    deepEqual(seen(P, m2).body?.stop_sequences, ['END', 'STOP'], 'array stop → stop_sequences');
    deepEqual(finishes(chunks), ['stop'], 'stream finish_reason stop');
    noViolations(P, m);
    noViolations(P, m2);
  }],

  ['chat', 'refusal → finish_reason content_filter', async (P) => {
    const m = mark('refusal', 'ns');
    const r = await sdk(P).chat.completions.create({ model: P.model, messages: [{ role: 'user', content: `Something bad ${m}` }] });
    equal(r.choices[0].finish_reason, 'content_filter', 'non-stream');
    const m2 = mark('refusal', 'st');
    const s = await sdk(P).chat.completions.create({ model: P.model, stream: true, messages: [{ role: 'user', content: `Something bad ${m2}` }] });
    const chunks = (await collect(s)).map((x) => x.chunk);
    deepEqual(finishes(chunks), ['content_filter'], 'stream');
  }],

  ['chat', 'max_tokens → finish_reason length', async (P) => {
    const m = mark('max_tokens', 'ns');
    const r = await sdk(P).chat.completions.create({ model: P.model, max_tokens: 3, messages: [{ role: 'user', content: `Talk ${m}` }] });
    equal(r.choices[0].finish_reason, 'length', 'finish_reason length');
    equal((P.mock.last(m) || {}).body?.max_tokens, 3, 'max_tokens sent');
  }],

  ['chat', 'incremental delivery: chunks of the slow stream arrive as the mock sends them', async (P) => {
    const m = mark('slow', 'inc');
    const s = await sdk(P).chat.completions.create({ model: P.model, stream: true, messages: [{ role: 'user', content: `Slowly ${m}` }] });
    const got = await collect(s);
    const texts = got.filter((x) => x.chunk.choices[0] && x.chunk.choices[0].delta && x.chunk.choices[0].delta.content);
    equal(texts.map((x) => x.chunk.choices[0].delta.content).join(''), 'one two three four five', 'content');
    equal(texts.length, 5, 'five content chunks');
    const gaps = texts.slice(1).map((x, i) => x.t - texts[i].t);
    ok(gaps.length === 4 && Math.min(...gaps) >= 200, 'consecutive content chunks arrive >= 200 ms apart (mock sends every 300 ms)', gaps);
    const rec = P.mock.last(m);
    ok(rec && rec.endedAt && texts.length && texts[0].t < rec.endedAt - 1000, 'the first chunk arrived > 1 s before the mock finished sending', rec && { first: texts[0] && texts[0].t, ended: rec.endedAt });
  }],

  ['chat', 'heartbeat comments during 2.5 s of upstream silence (HEARTBEAT_S=1)', async (P) => {
    const m = mark('silent', 'hb');
    const s = await postStream(chatUrl(P), { model: P.model, stream: true, messages: [{ role: 'user', content: `Wait ${m}` }] });
    equal(s.status, 200, 'status');
    const ev = (re) => s.items.findIndex((it) => it.json && it.json.choices && it.json.choices.some((c) => re.test((c.delta && c.delta.content) || '')));
    const before = ev(/^Before$/);
    const after = ev(/after/);
    const hbs = s.items.filter((it, i) => it.comment !== undefined && i > before && i < after);
    ok(before >= 0 && after > before, 'content before and after the silence', s.items.map((i) => (i.comment !== undefined ? `:${i.comment}` : i.data)).slice(0, 20));
    ok(hbs.length >= 1, 'at least one heartbeat comment during the silence', hbs.length);
    ok(hbs.every((h) => h.comment === 'keep-alive'), 'comments are ": keep-alive"', hbs.map((h) => h.comment));
    diag(`${hbs.length} heartbeat(s) during 2.5 s of silence`);
    equal(joinContent(chunksOf(s)), 'Before and after.', 'the stream completes');
    equal(s.events[s.events.length - 1] && s.events[s.events.length - 1].data, '[DONE]', '[DONE] last');
  }, 20000],

  ['chat', 'client disconnect aborts the upstream transfer (stream)', async (P) => {
    const m = mark('endless', 'dc-st');
    let n = 0;
    const s = await postStream(chatUrl(P), { model: P.model, stream: true, messages: [{ role: 'user', content: `Forever ${m}` }] }, {
      onItem: (it, ctl) => { if (it.json && it.json.choices && joinContent([it.json])) n++; if (n >= 3) ctl.abort(); },
    });
    ok(s.aborted, 'client read 3 content chunks, then disconnected');
    const rec = await P.mock.waitFor(() => { const r = P.mock.last(m); return r && r.closedAt ? r : null; }, 5000);
    ok(rec && rec.closedEarly, 'the mock saw the upstream connection close mid-stream', rec && { closedAt: rec.closedAt, closedEarly: rec.closedEarly });
    ok(rec && rec.closedAt - s.abortedAt <= 2000, 'within 2 s of the client disconnect', rec && rec.closedAt - s.abortedAt);
  }, 20000],

  // A non-stream request writes nothing until the upstream answers, so a gone client can only be
  // noticed if the web server drops the FastCGI connection. nginx does that on a client abort;
  // lighttpd 1.4.69 keeps the connection until the backend answers (measured), so this case talks
  // FastCGI to a --listen gateway directly and closes the connection as nginx would.
  ['chat', 'web server drops the FastCGI connection during a non-stream request: upstream aborted', async (P) => {
    const m = mark('endless', 'dc-ns');
    const sock = path.join(tmpDir(`${P.id}-listen-`), 'gw.sock');
    const gw = await startListen(['--listen', sock], { ...P.G.env, STATE_PATH: path.join(path.dirname(sock), 'state.db') });
    try {
      const body = JSON.stringify({ model: P.model, messages: [{ role: 'user', content: `Forever ${m}` }] });
      const c = await FcgiConn.connect(sock);
      c.begin().params({ REQUEST_METHOD: 'POST', REQUEST_URI: `${P.base}/chat/completions`, SCRIPT_NAME: '', CONTENT_TYPE: 'application/json',
        CONTENT_LENGTH: String(Buffer.byteLength(body)), REMOTE_ADDR: '127.0.0.1', HTTP_HOST: 'localhost' }).stdin(body).endStdin();
      const reached = await P.mock.waitFor(() => P.mock.last(m), 5000);
      ok(reached, 'the request reached the mock');
      await sleep(300);
      const t = Date.now();
      c.destroy();
      const rec = await P.mock.waitFor(() => { const r = P.mock.last(m); return r && r.closedAt ? r : null; }, 5000);
      ok(rec && rec.closedEarly && rec.closedAt - t <= 2000, 'the mock saw the upstream connection close within 2 s', rec && rec.closedAt - t);
    } finally {
      await gw.stop();
    }
  }, 20000],

  ['chat', 'models: the catalogue when a key is configured', async (P) => {
    const page = await sdk(P).models.list();
    const ids = page.data.map((x) => x.id);
    for (const id of ['claude-opus-4-5-20251101', 'claude-opus-4-1-20250805', 'claude-opus-4-20250514', 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-20250514',
      'claude-3-7-sonnet-20250219', 'claude-haiku-4-5-20251001', 'claude-3-5-haiku-20241022', 'claude-3-haiku-20240307']) {
      ok(ids.includes(id), `lists ${id}`, ids);
    }
    ok(page.data.length > 0 && page.data.every((x) => x.object === 'model' && typeof x.owned_by === 'string' && x.owned_by && Number.isInteger(x.created)), 'each entry: object model, owned_by, created', page.data.slice(0, 3));
    const r = await fetchText(`${P.L.url}${P.root}/models`);
    equal(r.status, 200, 'without /v1 too');
    equal(r.json && r.json.object, 'list', 'object list');
    deepEqual(r.json && r.json.data && r.json.data.map((x) => x.id).sort(), [...ids].sort(), 'same list');
  }],

  ['chat', 'unknown model → 404 model_not_found listing what exists', async (P) => {
    const m = mark('text', 'unknown');
    let err = null;
    try { await sdk(P).chat.completions.create({ model: 'claude-nonexistent-9', messages: [{ role: 'user', content: `Hi there ${m}` }] }); } catch (e) { err = e; }
    ok(err instanceof OpenAI.NotFoundError, 'NotFoundError', err && err.message);
    equal(err && err.status, 404, 'status 404');
    equal(err && err.code, 'model_not_found', 'code model_not_found');
    match(err && err.error && err.error.message, /claude-sonnet-4-5/, 'the message lists available models');
    equal(P.mock.find(m).length, 0, 'nothing sent upstream');
  }],

  ['chat', 'MODEL_ALIASES gpt-4o=claude-sonnet-4-5 → the upstream id of claude-sonnet-4-5', async (P) => {
    const m = mark('text', 'alias');
    const r = await sdk(P).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: `Hi there ${m}` }] });
    equal(seen(P, m).path, P.path(P.upstreamId), 'upstream path');
    equal(r.model, 'gpt-4o', 'the answer names the model the client asked for');
  }],

  ['chat', 'model names: provider ids verbatim, Anthropic ids mapped', async (P) => {
    for (const [i, [name, id]] of P.nameCases.entries()) {
      const m = mark('text', `name${i}`);
      let r = null;
      try { r = await sdk(P).chat.completions.create({ model: name, messages: [{ role: 'user', content: `Hi there ${m}` }] }); } catch (e) { fail(`${name}: request`, `${e.message}; upstream path ${(P.mock.last(m) || {}).path}`); continue; }
      equal((P.mock.last(m) || {}).path, P.path(id), `${name} → ${id}`);
      equal(r.model, name, `${name}: model echoed`);
    }
  }],

  ['chat', 'n=2 non-stream: two upstream requests, choices 0 and 1, usage summed', async (P) => {
    const m = mark('choice', 'n2-ns');
    const r = await sdk(P).chat.completions.create({ model: P.model, n: 2, messages: [{ role: 'user', content: `Two please ${m}` }] });
    const recs = P.mock.find(m);
    equal(recs.length, 2, 'two upstream requests');
    deepEqual(r.choices.map((c) => c.index), [0, 1], 'indexes 0, 1');
    ok(r.choices.every((c) => /^Reply #\d+$/.test(c.message.content) && c.finish_reason === 'stop'), 'each choice is a reply', r.choices);
    equal(new Set(r.choices.map((c) => c.message.content)).size, 2, 'distinct replies');
    deepEqual(r.choices.map((c) => c.message.content).sort(), recs.map((x) => contentText(x.reply.content)).sort(), 'the replies the mock sent');
    const out = recs.reduce((a, x) => a + x.reply.usage.output_tokens, 0);
    equal(r.usage && r.usage.completion_tokens, out, 'completion_tokens summed');
    equal(r.usage && r.usage.prompt_tokens, 24, 'prompt_tokens summed');
    ok(recs.every((x) => x.body && !('n' in x.body)), 'n is not forwarded');
    noViolations(P, m);
  }],

  ['chat', 'n=2 stream: chunks for index 0 and 1, one finish each, one [DONE]', async (P) => {
    const m = mark('choice', 'n2-st');
    const s = await postStream(chatUrl(P), { model: P.model, n: 2, stream: true, messages: [{ role: 'user', content: `Two please ${m}` }] });
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
    equal(P.mock.find(m).length, 2, 'two upstream requests');
  }],

  ['chat', 'whitespace stop ["\\n"]: output cut at the newline, finish_reason stop', async (P) => {
    const m = mark('ws_stop', 'ns');
    const r = await sdk(P).chat.completions.create({ model: P.model, stop: ['\n'], messages: [{ role: 'user', content: `Lines ${m}` }] });
    equal(r.choices[0].message.content, 'line one', 'content cut at the first newline');
    equal(r.choices[0].finish_reason, 'stop', 'finish_reason stop');
    const b = seen(P, m).body || {};
    ok(!(b.stop_sequences || []).includes('\n'), 'the whitespace stop is not sent upstream', b.stop_sequences);
    const m2 = mark('ws_stop', 'st');
    const s = await postStream(chatUrl(P), { model: P.model, stream: true, stop: ['\n'], messages: [{ role: 'user', content: `Lines ${m2}` }] });
    const cs = chunksOf(s);
    equal(joinContent(cs), 'line one', 'stream content cut at the first newline');
    deepEqual(finishes(cs), ['stop'], 'stream finish_reason stop');
    equal(s.events[s.events.length - 1] && s.events[s.events.length - 1].data, '[DONE]', '[DONE] last');
    const rec = await P.mock.waitFor(() => { const x = P.mock.last(m2); return x && x.closedAt ? x : null; }, 4000);
    ok(rec && rec.closedEarly, 'the upstream transfer was aborted', rec && { closedEarly: rec.closedEarly, sent: rec.sent.length });
    noViolations(P, m);
    noViolations(P, m2);
  }, 20000],

  ['chat', 'a 2 MB stream arrives complete (peak RSS printed)', async (P) => {
    const pids = P.L.gatewayPids();
    ok(pids.length > 0, 'gateway processes found', pids);
    const hwm = () => Object.fromEntries(pids.map((p) => [p, (procStatus(p) || {}).VmHWM]));
    const h0 = hwm();
    const small = await sdk(P).chat.completions.create({ model: P.model, stream: true, messages: [{ role: 'user', content: `Small ${mark('small', 'mem')}` }] });
    const sc = (await collect(small)).map((x) => x.chunk);
    equal(joinContent(sc).length, 2 * BIG_DELTA_LEN, '2 KB stream complete');
    const h1 = hwm();
    const m = mark('big', 'mem');
    const s = await sdk(P).chat.completions.create({ model: P.model, stream: true, messages: [{ role: 'user', content: `Big ${m}` }] });
    const chunks = (await collect(s)).map((x) => x.chunk);
    const h2 = hwm();
    const text = joinContent(chunks);
    const want = bigText();
    equal(text.length, BIG_DELTAS * BIG_DELTA_LEN, `content length ${BIG_DELTAS * BIG_DELTA_LEN}`);
    equal(crypto.createHash('sha256').update(text).digest('hex'), crypto.createHash('sha256').update(want).digest('hex'), 'content identical (sha256)');
    deepEqual(finishes(chunks), ['stop'], 'finish_reason stop');
    const line = pids.map((p) => `pid ${p}: start ${h0[p]} kB, after 2 KB stream ${h1[p]} kB, after 2 MB stream ${h2[p]} kB`).join('; ');
    diag(`peak RSS (VmHWM) ${line}`);
  }, 60000],

  // ---- report: after the provider's own tests, on the same gateway --------------------------------
  ['report', '/status counts generations, tokens and the key', async (P) => {
    const j = await status(P.L);
    ok(j && Number.isInteger(j.proompts) && j.proompts > 0, 'proompts > 0', j && j.proompts);
    ok(j && typeof j.tookens === 'string' && j.tookens !== '0' && j.tookens !== '', 'tookens is a string above "0"', j && j.tookens);
    equal(j && j[P.keysField], 1, `${P.keysField} 1`);
  }],

  ['report', 'the gateway log (LOG_LEVEL=debug) holds no secret and no prompt text', (P) => {
    const log = P.L.errorLog();
    ok(log.length > 0, 'there is a log');
    for (const [what, text] of P.secrets()) ok(text && !log.includes(text), `no ${what}`);
    ok(!log.includes('sk-client-never-forwarded'), 'no client credential');
    ok(!log.includes('<<mock:') && !log.includes('Weather and time in Paris'), 'no prompt text');
    ok(!log.includes(P.hello), 'no completion text');
  }],

  // ---- end: the last tests of every file -----------------------------------------------------------
  ['end', 'the mock saw no malformed upstream request', (P) => {
    deepEqual(P.mock.violations, [], 'no check failed at the mock');
  }],

  ['end', 'stop lighttpd', async (P) => {
    if (!P.L) return;
    ok((await P.L.stop()) !== null, 'lighttpd stopped');
    await P.L.stopAndClean();
  }],

  // ---- errors: upstream errors before and after the first byte (SPEC §6, §11; wire-formats §7) -----
  ['errors', 'upstream 400 → 400 invalid_request_error before the first byte (non-stream and stream)', async (P) => {
    const e = await sdkError(client(P.L, P.base).chat.completions.create({ model: P.model, messages: user(`Long ${mark('bad400', 'ns')}`) }));
    ok(e instanceof OpenAI.BadRequestError, 'BadRequestError', e && e.message);
    equal(e && e.status, 400, 'status 400');
    equal(e && e.type, 'invalid_request_error', 'type invalid_request_error');
    match(e && e.message, /prompt is too long/, 'the upstream message is kept');
    const r = await postStream(chatUrl(P), { model: P.model, stream: true, messages: user(`Long ${mark('bad400', 'st')}`) });
    equal(r.status, 400, 'stream: status 400 (decided before the first byte)');
    ok(isOpenAIError(r.json), 'stream: OpenAI error body', r.body);
  }],

  ['errors', 'upstream 404 keeps its status', async (P) => {
    const r = await fetchText(chatUrl(P), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: P.model, messages: user(`Where ${mark('notfound404', 'ns')}`) }) });
    equal(r.status, 404, 'status 404', r.body);
    ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
  }],

  ['errors', 'mid-stream error → an error event, then [DONE]', async (P) => {
    const m = mark('midstream_error', 'raw');
    const s = await postStream(chatUrl(P), { model: P.model, stream: true, messages: user(`Go ${m}`) });
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
      const st = await client(P.L, P.base).chat.completions.create({ model: P.model, stream: true, messages: user(`Go ${mark('midstream_error', 'sdk')}`) });
      for await (const c of st) got += (c.choices[0] && c.choices[0].delta && c.choices[0].delta.content) || '';
    })());
    ok(e instanceof OpenAI.APIError, 'the SDK raises APIError mid-stream', e && e.message);
    equal(got, 'Partial', 'after the partial content');
  }],

  ['errors', 'truncated upstream stream (no message_stop) → an error event, then [DONE]', async (P) => {
    for (const scen of ['truncated', 'truncated_reset']) {
      const s = await postStream(chatUrl(P), { model: P.model, stream: true, messages: user(`Go ${mark(scen, 'raw')}`) });
      equal(s.status, 200, `${scen}: status 200`);
      const n = s.events.length;
      equal(s.events[n - 1] && s.events[n - 1].data, '[DONE]', `${scen}: [DONE] last`);
      const errEv = s.events[n - 2] || {};
      ok(errEv.json && isOpenAIError(errEv.json) && !('choices' in errEv.json), `${scen}: an error event before [DONE]`, s.events.map((x) => x.data));
      ok(!chunksOf(s).some((c) => c.choices && c.choices.some((ch) => ch.finish_reason === 'stop')), `${scen}: not reported as a normal stop`);
    }
  }],

  ['errors', '429 without Retry-After → 429 with Retry-After, after at most 3 attempts', async (P) => {
    await fresh(P, async (l) => {
      const m = mark('rate429', 'ns');
      const t0 = Date.now();
      const r = await fetchText(chatUrl(P, l), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: P.model, messages: user(`Busy ${m}`) }), timeout: 90000 });
      equal(r.status, 429, 'status 429', r.body);
      ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
      match(r.headers['retry-after'], /^[1-9][0-9]*$/, 'Retry-After in whole seconds');
      equal(r.json && r.json.error && r.json.error.code, 'rate_limit_exceeded', 'code rate_limit_exceeded (wire-formats §7.4)');
      const n = P.mock.find(m).length;
      ok(n >= 1 && n <= 3, 'between 1 and 3 upstream attempts', n);
      ok(Date.now() - t0 < 60000, 'answered within the wait bound', Date.now() - t0);
    });
    // a fresh gateway again: the key above cools down for every later request (shared state)
    await fresh(P, async (l) => {
      const e = await sdkError(client(l, P.base).chat.completions.create({ model: P.model, stream: true, messages: user(`Busy ${mark('rate429', 'st')}`) }));
      ok(e instanceof OpenAI.RateLimitError, 'stream: RateLimitError before any chunk', e && `${e.status} ${e.message}`);
    });
  }, 120000],

  ['errors', 'one 429, then success: the request waits for the cooldown and is retried', async (P) => {
    await fresh(P, async (l) => {
      const m = mark('rate429once', 'ns');
      const r = await client(l, P.base).chat.completions.create({ model: P.model, messages: user(`Busy ${m}`) });
      equal(r.choices[0].message.content, P.hello, 'answered');
      deepEqual(P.mock.find(m).map((x) => x.status), [429, 200], 'upstream: 429, then 200');
    });
  }, 120000],

  ['errors', 'overloaded → 503 server_is_overloaded after the retries', async (P) => {
    await fresh(P, async (l) => {
      const m = mark(P.scen.overloaded, 'ns');
      const e = await sdkError(client(l, P.base).chat.completions.create({ model: P.model, messages: user(`Busy ${m}`) }));
      ok(e instanceof OpenAI.APIError, 'APIError', e && e.message);
      equal(e && e.status, 503, 'status 503');
      equal(e && e.code, 'server_is_overloaded', 'code server_is_overloaded');
      equal(e && e.type, 'server_error', 'type server_error');
      const n = P.mock.find(m).length;
      ok(n >= 1 && n <= 3, 'between 1 and 3 upstream attempts', n);
    });
  }, 120000],

  ['errors', '/messages: 429 → 429 rate_limit_error with retry-after; overloaded → 503 overloaded_error', async (P) => {
    await fresh(P, async (l) => {
      const r = await fetchText(msgUrl(P, l), { method: 'POST', headers: ANTHROPIC_HEADERS, body: JSON.stringify({ model: P.model, max_tokens: 50, messages: user(`Busy ${mark('rate429', 'msg')}`) }), timeout: 90000 });
      equal(r.status, 429, '429', r.body);
      ok(isAnthropicError(r.json), 'Anthropic error shape', r.body);
      equal(r.json && r.json.error && r.json.error.type, 'rate_limit_error', 'rate_limit_error');
      match(r.headers['retry-after'], /^[1-9][0-9]*$/, 'retry-after in whole seconds');
    });
    await fresh(P, async (l) => {
      const r = await fetchText(msgUrl(P, l), { method: 'POST', headers: ANTHROPIC_HEADERS, body: JSON.stringify({ model: P.model, max_tokens: 50, messages: user(`Busy ${mark(P.scen.overloaded, 'msg')}`) }), timeout: 90000 });
      equal(r.status, 503, '503', r.body);
      ok(isAnthropicError(r.json), 'Anthropic error shape', r.body);
      equal(r.json && r.json.error && r.json.error.type, 'overloaded_error', 'overloaded_error');
    });
  }, 180000],
];

/** Register the tests of `group` ('chat', 'report', 'errors', 'end') for provider `P`. */
export function sharedTests(P, group) {
  for (const [g, name, fn, timeout] of SCENARIO_LIST) {
    if (g === group) test(name, () => fn(P), timeout ? { timeout } : {});
  }
}

export { seen, noViolations, sdkError, fresh };

// What Claude itself does, shared by the mock upstreams (tests/mock/vertex.mjs, tests/mock/bedrock.mjs):
// the scenario markers, the Anthropic stream events each scenario produces (wire-formats §2.6),
// folding events into a Messages JSON (§2.5), and the request-body checks Claude applies
// (§2.2-§2.4, §2.8) whatever platform it runs on. The platform mocks add their own transport
// (SSE vs AWS event-stream), auth, paths and error shapes.
//
// A scenario is chosen by a marker in the last user message text: `<<mock:NAME[ TAG]>>` (use
// `mark(NAME, TAG)`). Scenario functions get a context `c` with at least: seq (the mock's request
// number), seen (earlier requests with the same marker), body (the upstream body), msgId,
// anthropicModel, label ('Vertex' / 'Bedrock', used in reply texts), tag ('vrtx' / 'bdrk', used in
// ids), sign(text) (thinking signatures), closed() (the connection is gone).
import crypto from 'node:crypto';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const rand = (n) => crypto.randomBytes(n).toString('hex');
export const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
export const b64u = (buf) => Buffer.from(buf).toString('base64url');

/** The marker that selects scenario `name` (TAG keeps one test's requests apart). */
export const mark = (name, tag = '') => `<<mock:${name}${tag ? ' ' + tag : ''}>>`;
export const MARK_RE = /<<mock:([a-z0-9_]+)(?: ([^<>]*))?>>/;

/** The marker of a request body (last user message text first, then anywhere): [full, name] or null. */
export function findMarker(body, bodyText) {
  const msgs = isObj(body) && Array.isArray(body.messages) ? body.messages : [];
  const lastUser = [...msgs].reverse().find((m) => isObj(m) && m.role === 'user');
  const mm = MARK_RE.exec(lastUser ? blockText(lastUser.content) : '') || MARK_RE.exec(String(bodyText || '').replace(/\\n/g, '\n'));
  return mm ? [mm[0], mm[1]] : null;
}

/** Resolve with the request body as a Buffer. */
export function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
  });
}

/** The 2 MB scenario's text, delta by delta (2048 × 1024 bytes, no newlines). */
export const BIG_DELTAS = 2048;
export const BIG_DELTA_LEN = 1024;
const BIG_FILL = 'abcdefghijklmnopqrstuvwxyz0123456789 '.repeat(30);
export const bigDelta = (i) => {
  const head = `[${String(i).padStart(5, '0')}]`;
  return head + BIG_FILL.slice(0, BIG_DELTA_LEN - head.length);
};
export const bigText = () => Array.from({ length: BIG_DELTAS }, (_, i) => bigDelta(i)).join('');

// ---- event builders (§2.6) -------------------------------------------------------------------
export const usage0 = (u = {}) => ({ input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1, ...u });
export const evStart = (ctx, u) => ({ type: 'message_start', message: { id: ctx.msgId, type: 'message', role: 'assistant', model: ctx.anthropicModel, content: [], stop_reason: null, stop_sequence: null, usage: usage0(u) } });
export const cbStart = (index, block) => ({ type: 'content_block_start', index, content_block: block });
export const cbDelta = (index, delta) => ({ type: 'content_block_delta', index, delta });
export const cbStop = (index) => ({ type: 'content_block_stop', index });
export const PING = { type: 'ping' };
export const textBlock = (i, parts) => [cbStart(i, { type: 'text', text: '' }), ...parts.map((t) => cbDelta(i, { type: 'text_delta', text: t })), cbStop(i)];
export const toolBlock = (i, id, name, parts) => [cbStart(i, { type: 'tool_use', id, name, input: {} }), ...parts.map((p) => cbDelta(i, { type: 'input_json_delta', partial_json: p })), cbStop(i)];
export const thinkingBlock = (i, parts, signature) => [cbStart(i, { type: 'thinking', thinking: '' }), ...parts.map((t) => cbDelta(i, { type: 'thinking_delta', thinking: t })), cbDelta(i, { type: 'signature_delta', signature }), cbStop(i)];
export const evEnd = (stop_reason, outTokens, stop_sequence = null) => [{ type: 'message_delta', delta: { stop_reason, stop_sequence }, usage: { output_tokens: outTokens } }, { type: 'message_stop' }];
/** Insert {delay: ms} between the items of `events` (after the first `skip`). */
export const spaced = (events, ms, skip = 1) => events.flatMap((e, i) => (i < skip ? [e] : [{ delay: ms }, e]));

/** Fold an event list into the Messages JSON the same reply would be without streaming (§2.5). */
export function assemble(events) {
  let msg = null;
  const partial = new Map();
  for (const e of events) {
    if (!e || !e.type) continue;
    if (e.type === 'message_start') msg = structuredClone(e.message);
    else if (!msg) continue;
    else if (e.type === 'content_block_start') { msg.content[e.index] = structuredClone(e.content_block); partial.set(e.index, ''); }
    else if (e.type === 'content_block_delta') {
      const b = msg.content[e.index];
      const d = e.delta;
      if (d.type === 'text_delta') b.text += d.text;
      else if (d.type === 'thinking_delta') b.thinking += d.thinking;
      else if (d.type === 'signature_delta') b.signature = d.signature;
      else if (d.type === 'input_json_delta') partial.set(e.index, partial.get(e.index) + d.partial_json);
    } else if (e.type === 'content_block_stop') {
      const b = msg.content[e.index];
      if (b.type === 'tool_use') b.input = partial.get(e.index) ? JSON.parse(partial.get(e.index)) : {};
    } else if (e.type === 'message_delta') {
      Object.assign(msg, e.delta);
      msg.usage = { ...msg.usage, ...(e.usage || {}) };
    }
  }
  if (msg) msg.content = msg.content.filter(Boolean);
  return msg;
}

// ---- scenarios -------------------------------------------------------------------------------
// Each returns {events, gzip?, end?} (end: 'stop' (default, clean end), 'destroy' (connection
// reset mid-body)), {gen} (an async generator of events, for endless streams), or
// {status, json, headers} (an error / fixed answer; those are platform-specific and live in the
// platform mocks, which spread CLAUDE_SCENARIOS into their own table). An event list may hold
// {delay: ms} items (a pause) and {type: 'error', error} (Claude's mid-stream error event, which
// each platform delivers its own way).
export const CLAUDE_SCENARIOS = {
  text: (c) => ({ events: [evStart(c), ...textBlock(0, ['Hello', ' from the', ` ${c.label} mock.`]), ...evEnd('end_turn', 7)] }),
  // a distinct reply per upstream request (n fan-out)
  choice: (c) => ({ events: [evStart(c), ...textBlock(0, ['Reply ', `#${c.seq}`]), ...evEnd('end_turn', 3 + (c.seq % 5))] }),
  tools: (c) => ({
    events: [evStart(c, { input_tokens: 420 }),
      ...textBlock(0, ['Checking ', 'both.']),
      ...toolBlock(1, `toolu_${c.tag}_${c.seq}A${rand(4)}`, 'get_weather', ['', '{"city":', ' "Paris"}']),
      PING,
      ...toolBlock(2, `toolu_${c.tag}_${c.seq}B${rand(4)}`, 'get_time', ['{"tz":"Eur', 'ope/Paris"', '}']),
      ...evEnd('tool_use', 47)],
  }),
  thinking: (c) => {
    const parts = ['Let me think', ' about 2 + 2.', ' It is 4.'];
    return { events: [evStart(c), ...thinkingBlock(0, parts, c.sign(parts.join(''))), ...textBlock(1, ['The answer', ' is 4.']), ...evEnd('end_turn', 30)] };
  },
  cached: (c) => ({ events: [evStart(c, { input_tokens: 10, cache_creation_input_tokens: 20, cache_read_input_tokens: 100 }), ...textBlock(0, ['Cached ', 'hello.']), ...evEnd('end_turn', 5)] }),
  stop_sequence: (c) => {
    const seq = (c.body && Array.isArray(c.body.stop_sequences) && c.body.stop_sequences[0]) || 'END';
    return { events: [evStart(c), ...textBlock(0, ['Counting: 1,', ' 2, 3']), ...evEnd('stop_sequence', 9, seq)] };
  },
  refusal: (c) => ({ events: [evStart(c), ...textBlock(0, ['I cannot ', 'help with that.']), ...evEnd('refusal', 8)] }),
  max_tokens: (c) => ({ events: [evStart(c), ...textBlock(0, ['Cut off mid']), ...evEnd('max_tokens', 3)] }),
  slow: (c) => ({ events: spaced([evStart(c), ...textBlock(0, ['one ', 'two ', 'three ', 'four ', 'five']), ...evEnd('end_turn', 5)], 300) }),
  // 2.5 s of silence after the first text delta (heartbeats)
  silent: (c) => ({ events: [evStart(c), cbStart(0, { type: 'text', text: '' }), cbDelta(0, { type: 'text_delta', text: 'Before' }), { delay: 2500 }, cbDelta(0, { type: 'text_delta', text: ' and after.' }), cbStop(0), ...evEnd('end_turn', 4)] }),
  big: (c) => ({ events: [evStart(c), ...textBlock(0, Array.from({ length: BIG_DELTAS }, (_, i) => bigDelta(i))), ...evEnd('end_turn', 500000)] }),
  small: (c) => ({ events: [evStart(c), ...textBlock(0, Array.from({ length: 2 }, (_, i) => bigDelta(i))), ...evEnd('end_turn', 500)] }),
  gzip: (c) => ({ gzip: true, events: spaced([evStart(c), ...textBlock(0, ['Gzip', 'ped ', 'hello.']), ...evEnd('end_turn', 4)], 50) }),
  // never ends: a text delta every 100 ms until the gateway closes the connection
  endless: (c) => ({
    gen: async function* () {
      yield evStart(c);
      yield cbStart(0, { type: 'text', text: '' });
      for (let i = 0; i < 1200 && !c.closed(); i++) {
        yield cbDelta(0, { type: 'text_delta', text: `tick ${i} ` });
        await sleep(100);
      }
    },
  }),
  // the first "\n" arrives inside a delta; then the stream goes on for ~2 s (is it aborted?)
  ws_stop: (c) => ({ events: [evStart(c), ...spaced(textBlock(0, ['line one', '\nline', ' two\n', 'line three', ...Array(40).fill(' more')]), 50), ...evEnd('end_turn', 60)] }),
  midstream_error: (c) => ({ events: [evStart(c), cbStart(0, { type: 'text', text: '' }), cbDelta(0, { type: 'text_delta', text: 'Partial' }), { delay: 50 }, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }] }),
  truncated: (c) => ({ events: [evStart(c), cbStart(0, { type: 'text', text: '' }), cbDelta(0, { type: 'text_delta', text: 'Partial' }), { delay: 50 }, cbDelta(0, { type: 'text_delta', text: ' answer' })] }),
  truncated_reset: (c) => ({ end: 'destroy', events: [evStart(c), cbStart(0, { type: 'text', text: '' }), cbDelta(0, { type: 'text_delta', text: 'Partial' }), { delay: 50 }] }),
};

// ---- request checks (what Claude refuses, on any platform) ------------------------------------
const FORBIDDEN_KEYS = ['model', 'stream_options', 'n', 'logprobs', 'top_logprobs', 'frequency_penalty',
  'presence_penalty', 'seed', 'response_format', 'user', 'max_completion_tokens', 'reasoning_effort', 'functions',
  'function_call', 'parallel_tool_calls', 'stop', 'logit_bias', 'modalities', 'prediction', 'store', 'service_tier_openai'];
const ALLOWED_KEYS = new Set(['anthropic_version', 'messages', 'max_tokens', 'system', 'temperature', 'top_p', 'top_k',
  'stop_sequences', 'metadata', 'tools', 'tool_choice', 'thinking', 'stream', 'service_tier', 'container', 'mcp_servers',
  'context_management', 'anthropic_beta']);
const NO_TEMP_AND_TOP_P = /^claude-(sonnet-4-5|haiku-4-5|opus-4-1|opus-4-5)/;
const BLOCK_TYPES = new Set(['text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking', 'search_result']);

export function blockText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((b) => {
    if (!isObj(b)) return '';
    if (b.type === 'text') return b.text || '';
    if (b.type === 'tool_result') return blockText(b.content);
    return '';
  }).join('\n');
}

/**
 * Returns [check, detail] for the first thing Claude would refuse, or null. `platform` is
 * 'vertex' (the stream flag is in the body: "stream": true iff streamRawPredict; betas are a
 * header, so no "anthropic_beta") or 'bedrock' (no "stream" key at all: the operation decides;
 * betas in the body as "anthropic_beta": [strings]). `model` is the Anthropic-style model name
 * (`claude-sonnet-4-5…`) used for per-model rules.
 */
export function checkBody(b, { stream, version, model, verifySig, platform = 'vertex' }) {
  if (!isObj(b)) return ['body-json', 'the body is not a JSON object'];
  if (b.anthropic_version !== version) return ['anthropic_version', `expected ${JSON.stringify(version)}, got ${JSON.stringify(b.anthropic_version)}`];
  if (platform === 'bedrock') {
    if ('model' in b) return ['no-model', 'the body has "model" (Bedrock takes the model id from the URL): extraneous key [model] is not permitted'];
    if ('stream' in b) return ['no-stream', `the body has "stream": ${JSON.stringify(b.stream)} (the operation decides): extraneous key [stream] is not permitted`];
    if ('anthropic_beta' in b) {
      const ab = b.anthropic_beta;
      if (!Array.isArray(ab) || !ab.length || ab.some((x) => typeof x !== 'string' || !/^[a-z0-9][a-z0-9.-]*$/.test(x))) return ['anthropic_beta', `anthropic_beta must be a non-empty array of flag strings, got ${JSON.stringify(ab)}`];
    }
  } else {
    if ('model' in b) return ['no-model', 'the body has "model" (Vertex takes the model from the URL)'];
    if (stream) {
      if (b.stream !== true) return ['stream-flag', `streamRawPredict needs "stream": true, got ${JSON.stringify(b.stream)}`];
    } else if ('stream' in b && b.stream !== false) return ['stream-flag', `rawPredict with "stream": ${JSON.stringify(b.stream)}`];
    if ('anthropic_beta' in b) return ['forbidden-key', '"anthropic_beta" is not a Messages API field on Vertex (betas go in the anthropic-beta header)'];
  }
  for (const k of FORBIDDEN_KEYS) if (k in b) return ['forbidden-key', `"${k}" is not a Messages API field`];
  for (const k of Object.keys(b)) if (!ALLOWED_KEYS.has(k)) return ['unknown-key', `${k}: Extra inputs are not permitted`];
  if (!Number.isInteger(b.max_tokens) || b.max_tokens < 1) return ['max_tokens', `max_tokens must be an integer >= 1, got ${JSON.stringify(b.max_tokens)}`];
  if ('system' in b) {
    if (typeof b.system === 'string') {
      if (b.system === '') return ['system', 'system is "" (omit it)'];
    } else if (Array.isArray(b.system)) {
      if (!b.system.length) return ['system', 'system is an empty array (omit it)'];
      for (const [i, blk] of b.system.entries()) {
        if (!isObj(blk) || blk.type !== 'text' || typeof blk.text !== 'string') return ['system', `system.${i} is not a text block`];
        if (blk.text === '') return ['empty-text', `system.${i}: text content blocks must be non-empty`];
      }
    } else return ['system', 'system must be a string or an array of text blocks'];
  }
  const msgs = b.messages;
  if (!Array.isArray(msgs) || !msgs.length) return ['messages', 'messages must be a non-empty array'];
  for (const [i, m] of msgs.entries()) {
    if (!isObj(m)) return ['messages', `messages.${i} is not an object`];
    const extra = Object.keys(m).filter((k) => k !== 'role' && k !== 'content');
    if (extra.length) return ['messages', `messages.${i}.${extra[0]}: Extra inputs are not permitted`];
    if (m.role !== 'user' && m.role !== 'assistant') return ['roles', `messages.${i}.role must be user or assistant, got ${JSON.stringify(m.role)}`];
    if (i === 0 && m.role !== 'user') return ['roles', 'the first message must use the user role'];
    if (i > 0 && m.role === msgs[i - 1].role) return ['roles', `messages.${i - 1} and messages.${i} are both ${m.role}: roles must alternate`];
    const last = i === msgs.length - 1;
    if (typeof m.content === 'string') {
      if (m.content === '' && !(last && m.role === 'assistant')) return ['empty-content', `messages.${i}: all messages must have non-empty content except for the optional final assistant message`];
      if (last && m.role === 'assistant' && /\s$/.test(m.content)) return ['trailing-whitespace', 'final assistant content cannot end with trailing whitespace'];
    } else if (Array.isArray(m.content)) {
      if (!m.content.length && !(last && m.role === 'assistant')) return ['empty-content', `messages.${i}: content is an empty array`];
      let sawOther = false;
      for (const [j, blk] of m.content.entries()) {
        if (!isObj(blk) || !BLOCK_TYPES.has(blk.type)) return ['content', `messages.${i}.content.${j}: unknown block ${JSON.stringify(blk && blk.type)}`];
        if (blk.type === 'text' && (typeof blk.text !== 'string' || blk.text === '')) return ['empty-text', `messages.${i}.content.${j}: text content blocks must be non-empty`];
        if (blk.type === 'thinking' || blk.type === 'redacted_thinking') {
          if (m.role !== 'assistant') return ['thinking', `messages.${i}.content.${j}: thinking blocks belong to assistant turns`];
          if (sawOther) return ['thinking-order', `messages.${i}.content.${j}: thinking blocks must come first in the assistant message`];
          if (blk.type === 'thinking' && !verifySig(blk.thinking, blk.signature)) return ['thinking-signature', `messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`];
        } else sawOther = true;
        if (blk.type === 'tool_use' && (m.role !== 'assistant' || typeof blk.id !== 'string' || typeof blk.name !== 'string' || !isObj(blk.input))) return ['tool_use', `messages.${i}.content.${j}: bad tool_use block`];
        if (blk.type === 'tool_result' && (m.role !== 'user' || typeof blk.tool_use_id !== 'string')) return ['tool_result', `messages.${i}.content.${j}: bad tool_result block`];
      }
    } else return ['content', `messages.${i}.content must be a string or an array`];
  }
  // tool_use ids answered by tool_result blocks in the very next (user) message, results first
  for (const [i, m] of msgs.entries()) {
    const uses = Array.isArray(m.content) ? m.content.filter((x) => x.type === 'tool_use').map((x) => x.id) : [];
    const next = msgs[i + 1];
    const results = next && Array.isArray(next.content) ? next.content.filter((x) => x.type === 'tool_result').map((x) => x.tool_use_id) : [];
    if (m.role === 'assistant' && uses.length && next) {
      for (const id of uses) if (!results.includes(id)) return ['tool-pairing', `messages.${i + 1}: tool_use ids were found without tool_result blocks immediately after: ${id}`];
      const firstOther = next.content.findIndex((x) => x.type !== 'tool_result');
      if (firstOther >= 0 && next.content.slice(firstOther).some((x) => x.type === 'tool_result')) return ['tool-pairing', `messages.${i + 1}: tool_result blocks must come first`];
    }
    if (m.role === 'user' && Array.isArray(m.content)) {
      const prev = msgs[i - 1];
      const prevUses = prev && Array.isArray(prev.content) ? prev.content.filter((x) => x.type === 'tool_use').map((x) => x.id) : [];
      for (const x of m.content) if (x.type === 'tool_result' && !prevUses.includes(x.tool_use_id)) return ['tool-pairing', `messages.${i}: unexpected tool_use_id ${x.tool_use_id} in tool_result blocks`];
    }
  }
  if ('temperature' in b && (typeof b.temperature !== 'number' || b.temperature < 0 || b.temperature > 1)) return ['temperature', `temperature must be a number in 0..1, got ${JSON.stringify(b.temperature)}`];
  if ('top_p' in b && (typeof b.top_p !== 'number' || b.top_p < 0 || b.top_p > 1)) return ['top_p', `top_p must be in 0..1, got ${JSON.stringify(b.top_p)}`];
  if ('top_k' in b && (!Number.isInteger(b.top_k) || b.top_k < 1)) return ['top_k', `top_k must be an integer >= 1 (0 means off and must be dropped), got ${JSON.stringify(b.top_k)}`];
  if (NO_TEMP_AND_TOP_P.test(model) && 'temperature' in b && 'top_p' in b) return ['temperature-top_p', '`temperature` and `top_p` cannot both be specified for this model. Please use only one.'];
  if ('stop_sequences' in b) {
    if (!Array.isArray(b.stop_sequences) || b.stop_sequences.some((s) => typeof s !== 'string')) return ['stop_sequences', 'stop_sequences must be an array of strings'];
    if (b.stop_sequences.some((s) => !/\S/.test(s))) return ['stop_sequences', 'stop_sequences: each stop sequence must contain non-whitespace'];
  }
  if ('metadata' in b && (!isObj(b.metadata) || Object.keys(b.metadata).some((k) => k !== 'user_id'))) return ['metadata', 'metadata may only hold user_id'];
  if ('tools' in b) {
    if (!Array.isArray(b.tools)) return ['tools', 'tools must be an array'];
    for (const [i, t] of b.tools.entries()) {
      if (!isObj(t) || typeof t.name !== 'string' || !/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) return ['tools', `tools.${i}.name is missing or invalid`];
      if (!t.type && (!isObj(t.input_schema) || t.input_schema.type !== 'object')) return ['tools', `tools.${i}.input_schema must be an object schema`];
    }
  }
  if ('tool_choice' in b) {
    const tc = b.tool_choice;
    if (!isObj(tc) || !['auto', 'any', 'tool', 'none'].includes(tc.type)) return ['tool_choice', `bad tool_choice ${JSON.stringify(tc)}`];
    if (tc.type === 'tool' && typeof tc.name !== 'string') return ['tool_choice', 'tool_choice.name is required for type tool'];
  }
  if ('thinking' in b) {
    const th = b.thinking;
    if (!isObj(th) || !['enabled', 'disabled'].includes(th.type)) return ['thinking', `bad thinking ${JSON.stringify(th)}`];
    if (th.type === 'enabled') {
      if (!Number.isInteger(th.budget_tokens) || th.budget_tokens < 1024) return ['thinking', `thinking.budget_tokens must be an integer >= 1024, got ${JSON.stringify(th.budget_tokens)}`];
      if (th.budget_tokens >= b.max_tokens) return ['thinking', `\`max_tokens\` must be greater than \`thinking.budget_tokens\` (${b.max_tokens} <= ${th.budget_tokens})`];
      if ('temperature' in b && b.temperature !== 1) return ['thinking', '`temperature` may only be set to 1 when thinking is enabled'];
      if ('top_k' in b) return ['thinking', '`top_k` must be unset when thinking is enabled'];
      if ('top_p' in b && b.top_p < 0.95) return ['thinking', '`top_p` must be >= 0.95 or unset when thinking is enabled'];
      if (isObj(b.tool_choice) && (b.tool_choice.type === 'any' || b.tool_choice.type === 'tool')) return ['thinking', 'Thinking may not be enabled when tool_choice forces tool use.'];
    }
  }
  return null;
}


// Mock Azure OpenAI (data plane) for the integration tests: chat completions on deployments
// (reference/wire-formats.md §6, §8; SPEC §5 "Azure", §11 "Azure usage"), served over TLS under the
// real hostnames (<resource>.openai.azure.com). The gateway reaches it through UPSTREAM_CONNECT_TO +
// UPSTREAM_CA_BUNDLE.
//
//   const z = await azureSetup();           // certs, keys for res1 and res2, the mock
//   L = await startLighttpd({ env: { ...z.env } });
//   … body with mark('tools', 't1') in the last user message …
//   const rec = z.mock.last(mark('tools', 't1'));   // what the gateway sent, what the mock answered
//
// Resources and deployments: each resource (res1, res2, …) has one api key (made at test time) and
// deployments, each serving one model version (gpt4o-prod → gpt-4o-2024-11-20, mini →
// gpt-4o-mini-2024-07-18 on res1; gpt-4o → gpt-4o-2024-08-06 on res2 by default). Replies name
// that model version, as Azure does, whatever the body's "model" says.
//
// Checked on every request, in Azure's order: the host is a known resource; POST
// /openai/deployments/{deployment}/chat/completions?api-version=V with V one of `apiVersions`
// (default just 2024-10-21) and no other query parameter (or the v1 API: POST
// /openai/v1/chat/completions, no api-version, body "model" = the deployment); no Authorization
// header (the gateway only has keys: an Authorization header would be the client's); `api-key`
// equal to the resource's key (401 as Azure words it otherwise); Content-Type application/json;
// the body a JSON object; the deployment exists (404 DeploymentNotFound otherwise — what Azure
// says, recorded in rec.refused, no violation); then the body against the api-version's request
// schema: only known keys (2024-10-21, the latest GA, has neither stream_options nor
// max_completion_tokens; previews from 2024-09-01 have both), stream_options only with stream:true,
// not both max_tokens and max_completion_tokens, roles (developer only from 2024-12-01-preview),
// tool messages with tool_call_id, sane numbers. A failed check answers 400
// {"error":{"message":"mock check \"…\" failed: …","type":"invalid_request_error","param":null,"code":null}}
// and is recorded in `violations` (404 for an unknown host or path).
//
// Replies come from scenarios chosen by the marker convention of tests/mock/claude.mjs
// (`<<mock:NAME[ TAG]>>` in the last user message; `mark(NAME, TAG)`); without a marker the
// request takes the next name from `queue`, else `text` — and a marker-less request with
// max_tokens (or max_completion_tokens) 1 is taken for the gateway's deployment probe and gets a
// one-token answer (rec.probe). Every reply looks like Azure's: top-level prompt_filter_results,
// per-choice content_filter_results, the deployment's model version, apim-request-id /
// x-request-id / x-ratelimit-* headers. A stream starts with Azure's prompt-filter chunk
// (`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[…]}`), then
// the role chunk, content chunks carrying content_filter_results, the finish chunk, Azure's usage
// chunk (choices: [] + usage) only when the body asked stream_options.include_usage, then
// `data: [DONE]`. The `async_filter` scenario adds the asynchronous-filter annotation chunks
// (a choice without delta, one with an empty delta, one chunk with choices: [] — id "", model "",
// object "", created 0). Error scenarios answer with Azure's bodies (§6.4): the prompt blocked by
// the content filter (400 content_filter with innererror), 429 with retry-after / retry-after-ms,
// 401, 500. Every request is recorded in `requests` (rec.sent: the chunks delivered, in order;
// rec.reply: the JSON answered).
import crypto from 'node:crypto';
import https from 'node:https';
import { makeTls, AZURE_HOSTS, listenLoopback, closeLoopback } from './tls.mjs';
import { sleep, rand, isObj, mark, findMarker, readBody } from './claude.mjs';

export { AZURE_HOSTS, mark };
export const DEFAULT_API_VERSION = '2024-10-21';
/** GA (dated, non-preview) api-versions of the chat completions data plane (wire-formats §6.1). */
export const GA_VERSIONS = ['2022-12-01', '2023-05-15', '2024-02-01', '2024-06-01', '2024-10-21'];
/** Deployments per resource, and the model version each serves. */
export const DEPLOYMENTS = {
  res1: { 'gpt4o-prod': 'gpt-4o-2024-11-20', mini: 'gpt-4o-mini-2024-07-18' },
  res2: { 'gpt-4o': 'gpt-4o-2024-08-06' },
};
export const HELLO = 'Hello from the Azure mock.';

// ---- keys ------------------------------------------------------------------------------------
/** A throwaway Azure OpenAI key made now (32 hex characters, like a classic Azure key; never a real one). */
export const azureKey = () => crypto.randomBytes(16).toString('hex');

/** AZURE_CREDENTIALS from [[resource, deployment, key], …]. */
export const azureCredentials = (entries) => entries.map((e) => e.join(':')).join(',');

// ---- request schema per api-version ------------------------------------------------------------
// The chat completions request keys of the stable 2024-10-21 spec (wire-formats §6.1: no
// stream_options, no max_completion_tokens).
export const GA_KEYS = ['messages', 'temperature', 'top_p', 'stream', 'stop', 'max_tokens', 'presence_penalty',
  'frequency_penalty', 'logit_bias', 'user', 'n', 'seed', 'logprobs', 'top_logprobs', 'response_format', 'tools',
  'tool_choice', 'functions', 'function_call', 'parallel_tool_calls', 'data_sources', 'model'];
// What the previews from 2024-09-01 add (stream_options and max_completion_tokens among them).
export const PREVIEW_KEYS = ['stream_options', 'max_completion_tokens', 'store', 'metadata', 'reasoning_effort',
  'prediction', 'modalities', 'audio', 'user_security_context'];
const PREVIEW_RE = /^(\d{4}-\d{2}-\d{2})-preview$/;

/** Is `v` an api-version Azure knows the shape of (GA or YYYY-MM-DD-preview)? */
export const knownVersion = (v) => GA_VERSIONS.includes(v) || PREVIEW_RE.test(String(v));
/** The preview date of `v` ('2024-12-01' for 2024-12-01-preview), or null for a GA version. */
const previewDate = (v) => { const m = PREVIEW_RE.exec(String(v)); return m ? m[1] : null; };
/** Request keys an api-version accepts ('v1' = the v1 API: everything). */
export function allowedKeys(v) {
  const d = previewDate(v);
  if (v === 'v1' || (d && d >= '2024-09-01')) return new Set([...GA_KEYS, ...PREVIEW_KEYS]);
  return new Set(GA_KEYS);
}
/** Message roles an api-version accepts (developer came with 2024-12-01-preview). */
export function allowedRoles(v) {
  const d = previewDate(v);
  const roles = ['system', 'user', 'assistant', 'tool', 'function'];
  if (v === 'v1' || (d && d >= '2024-12-01')) roles.push('developer');
  return new Set(roles);
}

const isInt = (x) => Number.isInteger(x);
const isNum = (x) => typeof x === 'number' && Number.isFinite(x);

/** [check, detail] for the first thing this api-version's schema refuses in body `b`, or null. */
export function checkChatBody(b, version) {
  const keys = allowedKeys(version);
  for (const k of Object.keys(b)) {
    if (!keys.has(k)) return ['unknown-key', `Unrecognized request argument supplied: ${k} (api-version ${version})`];
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) return ['messages', "'messages' must be a non-empty array"];
  if ('model' in b && typeof b.model !== 'string') return ['model', '"model" must be a string'];
  if ('stream' in b && typeof b.stream !== 'boolean') return ['stream', `"stream" must be a boolean (got ${JSON.stringify(b.stream)})`];
  if ('stream_options' in b) {
    if (b.stream !== true) return ['stream-options', "The 'stream_options' parameter is only allowed when 'stream' is enabled."];
    if (!isObj(b.stream_options)) return ['stream-options', '"stream_options" must be an object'];
    if ('include_usage' in b.stream_options && typeof b.stream_options.include_usage !== 'boolean') return ['stream-options', 'stream_options.include_usage must be a boolean'];
  }
  if ('max_tokens' in b && b.max_tokens !== null && !(isInt(b.max_tokens) && b.max_tokens >= 1)) return ['max-tokens', `max_tokens ${JSON.stringify(b.max_tokens)} is not an integer >= 1`];
  if ('max_completion_tokens' in b && b.max_completion_tokens !== null && !(isInt(b.max_completion_tokens) && b.max_completion_tokens >= 1)) return ['max-completion-tokens', `max_completion_tokens ${JSON.stringify(b.max_completion_tokens)} is not an integer >= 1`];
  if (b.max_tokens != null && b.max_completion_tokens != null) return ['max-tokens', "max_tokens and max_completion_tokens cannot both be set"];
  if ('temperature' in b && b.temperature !== null && !(isNum(b.temperature) && b.temperature >= 0 && b.temperature <= 2)) return ['temperature', `temperature ${JSON.stringify(b.temperature)} not in [0, 2]`];
  if ('top_p' in b && b.top_p !== null && !(isNum(b.top_p) && b.top_p >= 0 && b.top_p <= 1)) return ['top-p', `top_p ${JSON.stringify(b.top_p)} not in [0, 1]`];
  for (const k of ['presence_penalty', 'frequency_penalty']) {
    if (k in b && b[k] !== null && !(isNum(b[k]) && b[k] >= -2 && b[k] <= 2)) return [k, `${k} ${JSON.stringify(b[k])} not in [-2, 2]`];
  }
  if ('n' in b && b.n !== null && !(isInt(b.n) && b.n >= 1 && b.n <= 128)) return ['n', `n ${JSON.stringify(b.n)} not in [1, 128]`];
  if ('stop' in b && b.stop !== null && typeof b.stop !== 'string' && !(Array.isArray(b.stop) && b.stop.length <= 4 && b.stop.every((s) => typeof s === 'string'))) return ['stop', `stop ${JSON.stringify(b.stop)} is not a string or up to 4 strings`];
  if ('tools' in b && !(Array.isArray(b.tools) && b.tools.every((t) => isObj(t) && t.type === 'function' && isObj(t.function) && typeof t.function.name === 'string'))) return ['tools', 'tools must be [{type:"function", function:{name, …}}]'];
  const roles = allowedRoles(version);
  for (const [i, m] of b.messages.entries()) {
    if (!isObj(m)) return ['message', `messages[${i}] is not an object`];
    if (!roles.has(m.role)) return ['role', `messages[${i}].role ${JSON.stringify(m.role)} is not one of ${[...roles].join(', ')} (api-version ${version})`];
    const c = m.content;
    const contentOk = typeof c === 'string' || (Array.isArray(c) && c.every((p) => isObj(p) && typeof p.type === 'string'))
      || ((c === null || c === undefined) && m.role === 'assistant' && (Array.isArray(m.tool_calls) || isObj(m.function_call)));
    if (!contentOk) return ['content', `messages[${i}].content ${JSON.stringify(c)} is not a string or a part list`];
    if (m.role === 'tool' && typeof m.tool_call_id !== 'string') return ['tool-call-id', `messages[${i}] (tool) has no tool_call_id`];
    if (m.role === 'assistant' && 'tool_calls' in m) {
      const ok = Array.isArray(m.tool_calls) && m.tool_calls.every((t) => isObj(t) && typeof t.id === 'string' && t.type === 'function'
        && isObj(t.function) && typeof t.function.name === 'string' && typeof t.function.arguments === 'string');
      if (!ok) return ['tool-calls', `messages[${i}].tool_calls must be [{id, type:"function", function:{name, arguments (string)}}]`];
    }
  }
  return null;
}

// ---- response shapes (wire-formats §6.3, §6.4) ------------------------------------------------
const safe = () => ({ filtered: false, severity: 'safe' });
/** The four severity categories, all safe (with `over` replacing some). */
export const filterCategories = (over = {}) => ({ hate: safe(), self_harm: safe(), sexual: safe(), violence: safe(), ...over });
/** Top-level prompt_filter_results of a reply. */
export const promptFilterResults = () => [{ prompt_index: 0, content_filter_results: { ...filterCategories(), jailbreak: { filtered: false, detected: false } } }];
/** Per-choice content_filter_results of an output. */
export const outputFilterResults = (over = {}) => ({
  ...filterCategories(over),
  protected_material_code: { filtered: false, detected: false }, protected_material_text: { filtered: false, detected: false },
});
/** Azure's error body for a failed mock check (OpenAI shape). */
export const checkError = (message) => ({ error: { message, type: 'invalid_request_error', param: null, code: null } });
export const DEPLOYMENT_NOT_FOUND = { error: { code: 'DeploymentNotFound', message: 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.' } };
export const INVALID_KEY_MSG = 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.';
export const PROMPT_BLOCKED_MSG = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766";
/** The 400 Azure answers when the prompt is blocked (§6.4; note innererror.content_filter_result, singular). */
export const promptBlocked = () => ({
  error: {
    message: PROMPT_BLOCKED_MSG, type: null, param: 'prompt', code: 'content_filter', status: 400,
    innererror: { code: 'ResponsibleAIPolicyViolation', content_filter_result: { ...filterCategories({ sexual: { filtered: true, severity: 'high' } }), jailbreak: { filtered: false, detected: false } } },
  },
});
const rateMsg = (v, s) => `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${v} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${s} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`;
const chatId = () => `chatcmpl-${crypto.randomBytes(15).toString('base64url').replace(/[-_]/g, 'x')}`;
const FINGERPRINT = 'fp_b705f0c291';

// ---- scenarios -------------------------------------------------------------------------------
// Each returns {status, json, headers?} (an error / fixed answer), or a reply plan:
//   {deltas: [delta | {delay: ms} | {annotation: true}], finish, usage: {prompt_tokens, completion_tokens},
//    role?: 'merge' (the role goes into the first delta, as OpenAI does for tool calls; default: a
//    role chunk of its own), filter?: content_filter_results of the finish chunk, async?: true
//    (asynchronous filter: content chunks carry {} and annotation chunks follow), end?: 'truncate'
//    (stop writing after the deltas: no finish, no [DONE]) | 'destroy' (reset the connection there)}
// or {gen: async generator of deltas, …} (endless streams).
const usage = (p, c) => ({ prompt_tokens: p, completion_tokens: c });
const words = (...w) => w.map((content) => ({ content }));
const spacedOut = (items, ms) => items.flatMap((x, i) => (i ? [{ delay: ms }, x] : [x]));
const err = (status, json, headers = {}) => ({ status, json, headers });

export const SCENARIOS = {
  text: () => ({ deltas: words('Hello', ' from the', ' Azure mock.'), finish: 'stop', usage: usage(12, 7) }),
  // asynchronous filter mode: annotation chunks mid-stream and after the finish chunk
  async_filter: () => ({ async: true, deltas: [...words('Hello', ' from the'), { annotation: true }, ...words(' Azure mock.')], finish: 'stop', usage: usage(12, 7) }),
  // the deployment probe (no marker, max_tokens 1)
  probe: () => ({ deltas: words('Hello'), finish: 'length', usage: usage(8, 1) }),
  tools: (c) => ({
    role: 'merge',
    deltas: [
      { content: null, refusal: null, tool_calls: [{ index: 0, id: `call_${c.seq}A${rand(8)}`, type: 'function', function: { name: 'get_weather', arguments: '' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] },
      { tool_calls: [{ index: 0, function: { arguments: 'ty": "Pa' } }] },
      { tool_calls: [{ index: 0, function: { arguments: 'ris"}' } }] },
      { tool_calls: [{ index: 1, id: `call_${c.seq}B${rand(8)}`, type: 'function', function: { name: 'get_time', arguments: '' } }] },
      { tool_calls: [{ index: 1, function: { arguments: '{"tz":' } }] },
      { tool_calls: [{ index: 1, function: { arguments: '"Europe/Paris"}' } }] },
    ],
    finish: 'tool_calls', usage: usage(80, 41),
  }),
  // the output is filtered mid-stream: some content, then finish_reason content_filter
  filtered: () => ({ deltas: words('Once upon', ' a time'), finish: 'content_filter', filter: outputFilterResults({ violence: { filtered: true, severity: 'medium' } }), usage: usage(15, 4) }),
  slow: () => ({ deltas: spacedOut(words('one', ' two', ' three', ' four', ' five'), 300), finish: 'stop', usage: usage(10, 5) }),
  // never ends: a content delta every 100 ms until the gateway closes the connection
  endless: (c) => ({
    finish: 'stop', usage: usage(10, 1200),
    gen: async function* () {
      for (let i = 0; i < 1200 && !c.closed(); i++) {
        yield { content: `tick ${i} ` };
        await sleep(100);
      }
    },
  }),
  truncated: () => ({ end: 'truncate', deltas: [...words('Partial'), { delay: 50 }, ...words(' answer')], finish: 'stop', usage: usage(10, 2) }),
  truncated_reset: () => ({ end: 'destroy', deltas: [...words('Partial'), { delay: 50 }], finish: 'stop', usage: usage(10, 1) }),
  // errors (§6.4)
  prompt_blocked: () => err(400, promptBlocked()),
  rate429: (c) => err(429, { error: { code: '429', message: rateMsg(c.apiVersion, 3) } }, { 'retry-after': '3', 'retry-after-ms': '2500' }),
  rate429ms: (c) => err(429, { error: { code: '429', message: rateMsg(c.apiVersion, 2) } }, { 'retry-after-ms': '1200' }),
  // 429 on the first request with this marker, then a normal answer
  rate429once: (c) => (c.seen === 0 ? err(429, { error: { code: '429', message: rateMsg(c.apiVersion, 1) } }, { 'retry-after': '1', 'retry-after-ms': '1000' }) : SCENARIOS.text(c)),
  auth401: () => err(401, { error: { code: '401', message: INVALID_KEY_MSG } }),
  server500: () => err(500, { error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } }),
};

/** The non-stream chat.completion Azure would answer for a reply plan (deltas folded into one message). */
export function assembleReply(plan, { id, created, model, preview }) {
  const msg = { content: null, refusal: null, role: 'assistant' };
  const calls = [];
  for (const d of plan.deltas || []) {
    if (typeof d.content === 'string') msg.content = (msg.content || '') + d.content;
    for (const t of d.tool_calls || []) {
      const e = calls[t.index] || (calls[t.index] = { id: null, type: 'function', function: { name: null, arguments: '' } });
      if (t.id) e.id = t.id;
      if (t.function && t.function.name) e.function.name = t.function.name;
      if (t.function && typeof t.function.arguments === 'string') e.function.arguments += t.function.arguments;
    }
  }
  if (calls.length) msg.tool_calls = calls;
  if (plan.finish === 'content_filter') msg.content = null; // the filtered output is omitted
  return {
    choices: [{ content_filter_results: plan.filter || outputFilterResults(), finish_reason: plan.finish, index: 0, logprobs: null, message: msg }],
    created, id, model, object: 'chat.completion', prompt_filter_results: promptFilterResults(), system_fingerprint: FINGERPRINT,
    usage: usageOf(plan, preview),
  };
}

function usageOf(plan, preview) {
  const u = plan.usage || usage(0, 0);
  const out = { completion_tokens: u.completion_tokens, prompt_tokens: u.prompt_tokens, total_tokens: u.prompt_tokens + u.completion_tokens };
  if (preview) {
    out.completion_tokens_details = { accepted_prediction_tokens: 0, audio_tokens: 0, reasoning_tokens: 0, rejected_prediction_tokens: 0 };
    out.prompt_tokens_details = { audio_tokens: 0, cached_tokens: 0 };
  }
  return out;
}

// ---- the mock --------------------------------------------------------------------------------
const DEPLOYMENT_PATH = /^\/openai\/deployments\/([^/?]+)\/chat\/completions$/;
const V1_PATH = /^\/openai\/v1\/chat\/completions$/;

function sendJson(res, status, body, headers = {}) {
  const buf = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json', 'content-length': String(buf.length),
    'apim-request-id': crypto.randomUUID(), 'x-request-id': crypto.randomUUID(), 'x-ms-region': 'Sweden Central',
    ...headers,
  });
  res.end(buf);
}

export class MockAzure {
  /** `resources`: [{name, key, deployments: {deployment: model}}]. */
  constructor(tls, resources = []) {
    this.tls = tls;
    this.caFile = tls.caFile;
    this.resources = new Map();
    for (const r of resources) this.addResource(r.name, r.key, r.deployments);
    this.apiVersions = new Set([DEFAULT_API_VERSION]); // what api-version may be
    this.quietKeys = new Set(); // wrong keys a test sends on purpose (their 401s are no violation)
    this.sockets = new Set();
    this.seq = 0;
    this.reset();
  }

  /** Forget records and counters. */
  reset() {
    this.requests = [];
    this.violations = [];
    this.authFailures = [];
    this.queue = [];
    this.markerSeen = new Map();
  }

  addResource(name, key, deployments = {}) {
    this.resources.set(name, { name, key, deployments: new Map(Object.entries(deployments)) });
  }

  /** Records whose scenario marker (the full `<<mock:…>>` text) is `marker`. */
  find(marker) { return this.requests.filter((r) => r.marker === marker); }
  last(marker) { const a = this.find(marker); return a[a.length - 1]; }
  /** The deployment probes seen (marker-less requests with max_tokens 1). */
  probes() { return this.requests.filter((r) => r.probe); }

  /** Resolves with pred()'s value once it is truthy, or null after `ms`. */
  async waitFor(pred, ms = 5000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (Date.now() > deadline) return null;
      await sleep(20);
    }
  }

  /** UPSTREAM_CONNECT_TO for every resource host (and the named hosts of the certificate). */
  get connectTo() {
    const hosts = new Set([...AZURE_HOSTS.filter((h) => !h.includes('*')), ...[...this.resources.keys()].map((r) => `${r}.openai.azure.com`)]);
    return [...hosts].map((h) => `${h}:443:127.0.0.1:${this.port}`).join(',');
  }

  listen() {
    this.server = https.createServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => {
      this.handle(req, res).catch((e) => {
        this.violations.push({ check: 'mock-internal', detail: e && e.stack || String(e) });
        try { if (!res.headersSent) sendJson(res, 500, checkError(`mock failure: ${e && e.message}`)); else res.destroy(); } catch { /* gone */ }
      });
    });
    return listenLoopback(this);
  }

  close() {
    return closeLoopback(this);
  }

  async handle(req, res) {
    const raw = await readBody(req);
    const host = String(req.headers.host || '').replace(/:443$/, '').toLowerCase();
    const seq = ++this.seq;
    const q = req.url.indexOf('?');
    const rec = {
      seq, at: Date.now(), method: req.method, host, resource: null, url: req.url, path: q < 0 ? req.url : req.url.slice(0, q),
      query: q < 0 ? '' : req.url.slice(q + 1), apiVersion: null, style: null, deployment: null, model: null,
      headers: { ...req.headers }, bodyText: raw.toString('utf8'), body: null, stream: false, probe: false,
      scenario: null, marker: null, status: 0, reply: null, refused: null, sent: [], violations: [],
      closedEarly: false, closedAt: null, endedAt: null,
    };
    this.requests.push(rec);
    let closed = false;
    res.on('close', () => {
      closed = true;
      rec.closedAt = Date.now();
      rec.closedEarly = !res.writableFinished;
    });
    const record = (check, detail) => {
      const v = { seq, check, detail, path: req.url };
      rec.violations.push(v);
      this.violations.push(v);
      return v;
    };
    const answer = (status, json, headers) => {
      rec.status = status;
      rec.reply = json;
      return sendJson(res, status, json, headers);
    };
    const violation = (check, detail, status = 400, json = checkError(`mock check "${check}" failed: ${detail}`)) => {
      record(check, detail);
      return answer(status, json);
    };
    const notFound = { error: { code: '404', message: 'Resource not found' } };
    const hm = /^([a-z0-9][a-z0-9-]*)\.openai\.azure\.com$/.exec(host);
    const resource = hm && this.resources.get(hm[1]);
    if (!resource) return violation('host', `request for unknown host ${JSON.stringify(host)} ${req.method} ${req.url}`, 404, notFound);
    rec.resource = resource.name;
    let pm = null;
    if ((pm = DEPLOYMENT_PATH.exec(rec.path))) rec.style = 'deployments';
    else if (V1_PATH.test(rec.path)) rec.style = 'v1';
    if (!rec.style) return violation('path', `${req.method} ${req.url} is not /openai/deployments/{deployment}/chat/completions or /openai/v1/chat/completions`, 404, notFound);
    if (req.method !== 'POST') return violation('method', `${req.method} ${req.url} (want POST)`, 404, notFound);
    const params = new URLSearchParams(rec.query);
    const names = [...params.keys()];
    if (rec.style === 'deployments') {
      try { rec.deployment = decodeURIComponent(pm[1]); } catch { return violation('path-encoding', `deployment label ${pm[1]} is not valid percent-encoding`); }
      rec.apiVersion = params.get('api-version');
      if (rec.apiVersion === null) return violation('api-version', `no api-version in ${req.url} (Azure: 404 Resource not found)`, 404, notFound);
      if (params.getAll('api-version').length !== 1) return violation('api-version', `api-version given ${params.getAll('api-version').length} times`);
      if (!knownVersion(rec.apiVersion)) return violation('api-version', `api-version ${JSON.stringify(rec.apiVersion)} is not a known version`);
      if (!this.apiVersions.has(rec.apiVersion)) return violation('api-version', `api-version ${rec.apiVersion}; the configured one is ${[...this.apiVersions].join(' or ')}`);
    } else if (params.has('api-version') && !['preview', 'latest'].includes(params.get('api-version'))) {
      return violation('api-version', `the v1 API takes no dated api-version (got ${params.get('api-version')})`);
    } else rec.apiVersion = 'v1';
    if (names.some((n) => n !== 'api-version')) return violation('query', `unexpected query parameters in ${req.url}`);
    // credentials: exactly the resource's key, nothing of the client's
    if ('authorization' in req.headers) return violation('client-credential', `an Authorization header was sent (${String(req.headers.authorization).slice(0, 12)}…): the gateway has only api keys, so it is the client's`);
    const key = req.headers['api-key'];
    if (key === undefined) {
      this.authFailures.push({ seq, check: 'api-key-missing' });
      return violation('api-key-missing', 'no api-key header', 401, { error: { code: '401', message: 'Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.' } });
    }
    if (key !== resource.key) {
      this.authFailures.push({ seq, check: 'api-key' });
      if (this.quietKeys.has(key)) return answer(401, { error: { code: '401', message: INVALID_KEY_MSG } });
      return violation('api-key', `api-key is not ${resource.name}'s key${/sk-|client/.test(key) ? ' (it looks like the client\'s credential)' : ''}`, 401, { error: { code: '401', message: INVALID_KEY_MSG } });
    }
    if (!/^application\/json\b/i.test(String(req.headers['content-type'] || ''))) return violation('content-type', `Content-Type ${JSON.stringify(req.headers['content-type'])} (want application/json)`);
    try { rec.body = JSON.parse(rec.bodyText); } catch { return violation('body-json', 'the body is not JSON'); }
    if (!isObj(rec.body)) return violation('body-json', 'the body is not a JSON object');
    rec.stream = rec.body.stream === true;
    // scenario (chosen before the checks fail so that records carry the marker)
    const mm = findMarker(rec.body, rec.bodyText);
    if (mm) [rec.marker, rec.scenario] = mm;
    else if (rec.body.max_tokens === 1 || rec.body.max_completion_tokens === 1) { rec.probe = true; rec.scenario = 'probe'; }
    else rec.scenario = this.queue.length ? this.queue.shift() : 'text';
    if (rec.style === 'v1') rec.deployment = typeof rec.body.model === 'string' ? rec.body.model : null;
    rec.model = resource.deployments.get(rec.deployment) || null;
    if (!rec.model) {
      rec.refused = 'deployment';
      return answer(404, DEPLOYMENT_NOT_FOUND);
    }
    const bad = checkChatBody(rec.body, rec.apiVersion);
    if (bad) return violation(bad[0], bad[1]);
    const fn = SCENARIOS[rec.scenario];
    if (!fn) return violation('scenario', `no scenario ${JSON.stringify(rec.scenario)}`);
    const mk = rec.marker || rec.scenario;
    const seen = this.markerSeen.get(mk) || 0;
    this.markerSeen.set(mk, seen + 1);
    const ctx = { seq, seen, body: rec.body, apiVersion: rec.apiVersion, deployment: rec.deployment, model: rec.model, resource: resource.name, closed: () => closed };
    const out = fn(ctx);
    if (out.status) return answer(out.status, out.json, out.headers);
    const meta = { id: chatId(), created: Math.floor(Date.now() / 1000), model: rec.model, preview: rec.apiVersion === 'v1' || Boolean(previewDate(rec.apiVersion)) };
    const okHeaders = { 'x-ratelimit-remaining-requests': '99', 'x-ratelimit-remaining-tokens': '99000', 'azureml-model-session': 'd012-20241112155612' };
    if (!rec.stream) {
      if (out.gen) { // never answers: wait for the gateway to give up
        await new Promise((r) => res.on('close', r));
        return undefined;
      }
      answer(200, assembleReply(out, meta), okHeaders);
      rec.endedAt = Date.now();
      return undefined;
    }
    return this.stream(rec, res, out, meta, okHeaders, () => closed);
  }

  async stream(rec, res, plan, meta, headers, isClosed) {
    rec.status = 200;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache',
      'apim-request-id': crypto.randomUUID(), 'x-request-id': crypto.randomUUID(), 'x-ms-region': 'Sweden Central', ...headers,
    });
    res.flushHeaders();
    if (res.socket) res.socket.setNoDelay(true);
    const closedP = new Promise((r) => res.once('close', r));
    const includeUsage = Boolean(rec.body.stream_options && rec.body.stream_options.include_usage);
    const base = { created: meta.created, id: meta.id, model: meta.model, object: 'chat.completion.chunk', system_fingerprint: FINGERPRINT };
    const withUsage = (c) => (includeUsage ? { ...c, usage: null } : c);
    const choice = (delta, cfr, finish = null) => ({ content_filter_results: cfr, delta, finish_reason: finish, index: 0, logprobs: null });
    let offset = 0;
    const annotation = (withDelta) => ({
      choices: [{ content_filter_offsets: { check_offset: offset, start_offset: offset, end_offset: offset + 40 }, content_filter_results: outputFilterResults(),
        ...(withDelta ? { delta: {} } : {}), finish_reason: null, index: 0 }],
      created: 0, id: '', model: '', object: '',
    });
    const send = async (chunk) => {
      if (isClosed()) return false;
      rec.sent.push(chunk);
      let more = true;
      try { more = res.write(`data: ${JSON.stringify(chunk)}\n\n`); } catch { return false; }
      if (!more) await Promise.race([new Promise((r) => res.once('drain', r)), closedP]);
      else await new Promise((r) => setImmediate(r));
      return !isClosed();
    };
    // Azure's prompt-filter chunk first, then the role chunk (or the role in the first delta)
    await send({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: promptFilterResults() });
    const cfr = () => (plan.async ? {} : outputFilterResults());
    let first = true;
    if (plan.role !== 'merge') {
      await send(withUsage({ choices: [choice({ content: '', refusal: null, role: 'assistant' }, {})], ...base }));
      first = false;
    }
    const source = plan.gen ? plan.gen() : (async function* () { yield* plan.deltas; })();
    for await (const d of source) {
      if (isClosed()) break;
      if (d.delay) { await Promise.race([sleep(d.delay), closedP]); continue; }
      if (d.annotation) { await send(annotation(false)); continue; }
      const delta = first ? { role: 'assistant', ...d } : d;
      first = false;
      if (typeof d.content === 'string') offset += d.content.length;
      await send(withUsage({ choices: [choice(delta, cfr())], ...base }));
    }
    if (isClosed()) return;
    if (plan.end === 'destroy') {
      await sleep(20);
      if (res.socket) res.socket.destroy();
      return;
    }
    if (plan.end !== 'truncate') {
      await send(withUsage({ choices: [choice({}, plan.filter || (plan.async ? {} : outputFilterResults()), plan.finish)], ...base }));
      if (plan.async) {
        await send(annotation(true));
        await send({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: promptFilterResults() });
      }
      if (includeUsage) await send({ choices: [], ...base, usage: usageOf(plan, meta.preview) });
      if (!isClosed()) res.write('data: [DONE]\n\n');
    }
    if (!plan.gen) rec.reply = assembleReply(plan, meta);
    rec.endedAt = Date.now();
    res.end();
  }
}

/** Start the mock (TLS material made in `dir` unless `tls` is given) with `resources`. */
export async function startMockAzure({ dir, tls, resources = [] } = {}) {
  const t = tls || await makeTls(dir, AZURE_HOSTS);
  const m = new MockAzure(t, resources);
  await m.listen();
  return m;
}

/**
 * Everything an Azure test needs: TLS material in `dir`, one key per resource of `deployments`
 * (default DEPLOYMENTS: res1 with gpt4o-prod and mini, res2 with gpt-4o), the mock, and the gateway
 * environment (AZURE_CREDENTIALS naming every deployment, UPSTREAM_CONNECT_TO, UPSTREAM_CA_BUNDLE).
 * Returns {mock, keys: {resource: key}, entries: [[resource, deployment, key], …], env, dir,
 * credentials(entries)}.
 */
export async function azureSetup({ dir, deployments = DEPLOYMENTS } = {}) {
  const keys = Object.fromEntries(Object.keys(deployments).map((r) => [r, azureKey()]));
  const mock = await startMockAzure({ dir, resources: Object.entries(deployments).map(([name, d]) => ({ name, key: keys[name], deployments: d })) });
  const entries = Object.entries(deployments).flatMap(([r, d]) => Object.keys(d).map((dep) => [r, dep, keys[r]]));
  return {
    mock, keys, entries, dir, credentials: azureCredentials,
    env: { AZURE_CREDENTIALS: azureCredentials(entries), UPSTREAM_CONNECT_TO: mock.connectTo, UPSTREAM_CA_BUNDLE: mock.caFile },
  };
}

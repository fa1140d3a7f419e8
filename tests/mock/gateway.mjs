// Helpers shared by the tests/integration/vertex*.mjs files: the gateway under lighttpd pointed at
// the mock Google endpoints, clients for both APIs, and stream summaries.
import { startLighttpd, fetchText, sseItems, tmpDir } from '../lib/harness.mjs';
import { onCleanup } from '../lib/tap.mjs';
import { vertexSetup } from './vertex.mjs';

export const GCP = '/proxy/gcp/claude/v1';
export const MODEL = 'claude-sonnet-4-5';
export const VERTEX_MODEL = 'claude-sonnet-4-5@20250929';
export const PROJECT = 'oai-it-project';
export const REGION = 'us-east5';
export const HOST = 'us-east5-aiplatform.googleapis.com';
export const vertexPath = (model = VERTEX_MODEL, verb = 'rawPredict', loc = REGION, project = PROJECT) =>
  `/v1/projects/${project}/locations/${loc}/publishers/anthropic/models/${model}:${verb}`;
export const ANTHROPIC_HEADERS = { 'content-type': 'application/json', 'x-api-key': 'sk-client-never-forwarded', 'anthropic-version': '2023-06-01' };
export const nowS = () => Math.floor(Date.now() / 1000);

let OpenAI = null;
let importError = null;
try {
  ({ default: OpenAI } = await import('openai'));
} catch (e) { importError = e; }
export { OpenAI, importError };

/** Certificates, a service account and the mock; closed at the end of the run. */
export async function setupMock(opts = {}) {
  const G = await vertexSetup({ dir: tmpDir('vx-tls-'), ...opts });
  onCleanup(() => G.mock.close());
  return G;
}

/** lighttpd + gateway with the mock's environment (GCP_CREDENTIALS, connect-to, CA) plus `env`. */
export function startGateway(G, env = {}, opts = {}) {
  return startLighttpd({ ...opts, env: { ...G.env, LOG_LEVEL: 'debug', ...env } });
}

/** The official client on `base` (no retries; never reads OPENAI_* from the environment). */
export function client(L, base = GCP, opts = {}) {
  return new OpenAI({ baseURL: L.url + base, apiKey: 'sk-client-never-forwarded', organization: null, project: null, maxRetries: 0, timeout: 30000, ...opts });
}

/** Iterate an SDK stream, stamping each chunk: [{t, chunk}]. */
export async function collect(stream) {
  const out = [];
  for await (const chunk of stream) out.push({ t: Date.now(), chunk });
  return out;
}

/** The text of an Anthropic `system` (string or text blocks), or null. */
export function systemText(sys) {
  if (sys === undefined || sys === null) return null;
  if (typeof sys === 'string') return sys;
  return sys.map((b) => b.text).join('\n\n');
}

/** Plain text of an Anthropic message content (string or blocks). */
export function contentText(c) {
  if (typeof c === 'string') return c;
  return (c || []).filter((b) => b.type === 'text').map((b) => b.text).join('');
}

/**
 * POST `body` (JSON) and read the SSE answer incrementally: {status, headers, items, events,
 * comments, done (count of [DONE]), body (raw text when not SSE), json}. `onItem(item, ctl)` may
 * call ctl.abort() to drop the connection.
 */
export async function postStream(url, body, { headers = { 'content-type': 'application/json' }, onItem, timeout = 30000 } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeout);
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: ac.signal });
  const h = {};
  res.headers.forEach((v, k) => { h[k] = v; });
  const out = { status: res.status, headers: h, items: [], events: [], comments: [], done: 0, aborted: false, error: null };
  if (!/^text\/event-stream/.test(h['content-type'] || '')) {
    out.body = await res.text();
    try { out.json = JSON.parse(out.body); } catch { /* not JSON */ }
    clearTimeout(timer);
    return out;
  }
  const ctl = { abort: () => { out.aborted = true; out.abortedAt = Date.now(); ac.abort(); } };
  try {
    for await (const it of sseItems(res)) {
      out.items.push(it);
      if (it.comment !== undefined) out.comments.push(it);
      else {
        out.events.push(it);
        if (it.data === '[DONE]') out.done++;
      }
      if (onItem) onItem(it, ctl);
      if (out.aborted) break;
    }
  } catch (e) {
    if (!out.aborted) out.error = e;
  }
  clearTimeout(timer);
  return out;
}

/** OpenAI chunks of a raw stream (the JSON data events that are not [DONE]). */
export const chunksOf = (s) => s.events.filter((e) => e.data !== '[DONE]').map((e) => e.json);

/** Joined delta.content (per choice index) of OpenAI chunks. */
export function joinContent(chunks, field = 'content', index = 0) {
  return chunks.filter((c) => c && Array.isArray(c.choices)).flatMap((c) => c.choices)
    .filter((ch) => ch.index === index && ch.delta && typeof ch.delta[field] === 'string').map((ch) => ch.delta[field]).join('');
}

/** Tool calls reassembled from OpenAI chunk deltas: {index: {id, type, name, arguments, fragments, headers}}. */
export function toolCallsOf(chunks) {
  const calls = {};
  for (const c of chunks) {
    for (const ch of (c && c.choices) || []) {
      for (const tc of (ch.delta && ch.delta.tool_calls) || []) {
        const k = tc.index;
        calls[k] = calls[k] || { id: null, type: null, name: null, arguments: '', fragments: 0, headers: 0 };
        const e = calls[k];
        e.fragments++;
        if (tc.id !== undefined) { e.headers++; e.id = tc.id; }
        if (tc.type !== undefined) e.type = tc.type;
        if (tc.function && tc.function.name !== undefined) e.name = tc.function.name;
        if (tc.function && typeof tc.function.arguments === 'string') e.arguments += tc.function.arguments;
      }
    }
  }
  return calls;
}

/** GET the info JSON. */
export async function status(L) {
  return (await fetchText(`${L.url}/status`)).json;
}

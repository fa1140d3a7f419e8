// Helpers shared by the provider integration tests (tests/integration/vertex*.mjs, bedrock*.mjs,
// azure*.mjs): the gateway under lighttpd pointed at the mock upstreams (Google: tests/mock/vertex.mjs;
// AWS: tests/mock/bedrock.mjs; Azure OpenAI: tests/mock/azure.mjs), clients for both APIs, stream
// summaries, and the per-provider descriptors the shared scenario list (tests/lib/scenarios.mjs)
// runs against.
import { match, ok, equal, onCleanup } from '../lib/tap.mjs';
import { startLighttpd, fetchText, sseItems, tmpDir } from '../lib/harness.mjs';
import { vertexSetup } from './vertex.mjs';
import { azureSetup } from './azure.mjs';

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

export const AWS = '/proxy/aws/claude/v1';
export const AWS_REGION = 'us-east-1';
export const BEDROCK_HOST = 'bedrock-runtime.us-east-1.amazonaws.com';
/** The Bedrock id the gateway should send for MODEL with a us-* key (inference profile). */
export const BEDROCK_MODEL = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';

export const AZ = '/proxy/azure/openai/v1';
export const AZ_ROOT = '/proxy/azure/openai';
/** An `api-key` header a client may send to the gateway (Azure SDK habit); it must never reach Azure. */
export const AZURE_CLIENT_KEY = 'sk-client-azure-api-key-never-forwarded';

let OpenAI = null;
let importError = null;
try {
  ({ default: OpenAI } = await import('openai'));
} catch (e) { importError = e; }
export { OpenAI, importError };

// The Bedrock mock and the Anthropic SDK need npm packages the Vertex tests do not: load them
// here so that a missing package fails only the tests that need it.
let bedrock = null;
let bedrockImportError = null;
try {
  bedrock = await import('./bedrock.mjs');
} catch (e) { bedrockImportError = e; }
let Anthropic = null;
let anthropicImportError = null;
try {
  ({ default: Anthropic } = await import('@anthropic-ai/sdk'));
} catch (e) { anthropicImportError = e; }
export { bedrock, bedrockImportError, Anthropic, anthropicImportError };

/** The wire path of a Bedrock InvokeModel[WithResponseStream] call for `modelId` (`:` as %3A, `/` as %2F). */
export const bedrockPath = (modelId = BEDROCK_MODEL, stream = false) => bedrock.bedrockPath(modelId, stream);

/** Certificates, a service account and the mock; closed at the end of the run. */
export async function setupMock(opts = {}) {
  const G = await vertexSetup({ dir: tmpDir('vx-tls-'), ...opts });
  onCleanup(() => G.mock.close());
  return G;
}

/** TLS material, an access key and the Bedrock mock (bedrockSetup options); closed at the end of the run. */
export async function setupBedrock(opts = {}) {
  if (!bedrock) throw new Error(`tests/mock/bedrock.mjs did not load (run \`npm ci\` in tests/): ${bedrockImportError && bedrockImportError.message}`);
  const B = await bedrock.bedrockSetup({ dir: tmpDir('bd-tls-'), ...opts });
  onCleanup(() => B.mock.close());
  return B;
}

/** TLS material, one key per resource and the Azure OpenAI mock (azureSetup options); closed at the end of the run. */
export async function setupAzure(opts = {}) {
  const Z = await azureSetup({ dir: tmpDir('az-tls-'), ...opts });
  onCleanup(() => Z.mock.close());
  return Z;
}

/** lighttpd + gateway with the mock's environment (credentials, connect-to, CA) plus `env`. */
export function startGateway(G, env = {}, opts = {}) {
  return startLighttpd({ ...opts, env: { ...G.env, LOG_LEVEL: 'debug', ...env } });
}

/** The official Anthropic client on `base` (the SDK appends /v1/messages; no retries; never reads ANTHROPIC_* from the environment). */
export function anthropicClient(L, base = '/proxy/aws/claude', opts = {}) {
  return new Anthropic({ baseURL: L.url + base, apiKey: 'sk-client-never-forwarded', authToken: null, maxRetries: 0, timeout: 30000, ...opts });
}

/** The official client on `base` (no retries; never reads OPENAI_* from the environment). */
export function client(L, base = GCP, opts = {}) {
  return new OpenAI({ baseURL: L.url + base, apiKey: 'sk-client-never-forwarded', organization: null, project: null, maxRetries: 0, timeout: 30000, ...opts });
}

/** The official client on the Azure route, also sending an `api-key` header of its own (never forwarded). */
export function azureClient(L, base = AZ, opts = {}) {
  return client(L, base, { defaultHeaders: { 'api-key': AZURE_CLIENT_KEY }, ...opts });
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

// ---- provider descriptors for the shared scenario list (tests/lib/scenarios.mjs) ---------------
// Each holds the provider's routes, the upstream request the gateway should make, and (once the
// file's start-up test has set them) G (the mock setup: {mock, env, …}) and L (lighttpd).

/** Claude on Vertex AI against tests/mock/vertex.mjs. */
export function gcpProvider() {
  const P = {
    id: 'gcp', label: 'Vertex', base: GCP, root: '/proxy/gcp/claude', keysField: 'gcpKeys',
    model: MODEL, upstreamId: VERTEX_MODEL, host: HOST, version: 'vertex-2023-10-16',
    hello: 'Hello from the Vertex mock.',
    scen: { overloaded: 'overloaded529' },
    G: null, L: null, state: {},
    get mock() { return P.G.mock; },
    setup: (opts) => setupMock(opts),
    start: (env, opts) => startGateway(P.G, env, opts),
    /** The upstream path for a model id. */
    path: (id = VERTEX_MODEL, stream = false) => vertexPath(id, stream ? 'streamRawPredict' : 'rawPredict'),
    /** Client model names and the Vertex id each must reach. */
    nameCases: [
      ['claude-sonnet-4-5@20250929', 'claude-sonnet-4-5@20250929'],
      ['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5@20250929'],
      ['claude-opus-4-5', 'claude-opus-4-5@20251101'],
      ['claude-3-5-sonnet-20241022', 'claude-3-5-sonnet-v2@20241022'],
      ['claude-haiku-4-5-20251001', 'claude-haiku-4-5@20251001'],
    ],
    /** Assertions on the credential the gateway sent upstream. */
    checkAuth: (rec) => match(rec.headers.authorization, /^Bearer ya29\./, 'bearer token from the token endpoint'),
    /** Assertions on how the upstream request says stream / no stream. */
    checkStreamFlag(rec, stream) {
      if (stream) return equal(rec.body && rec.body.stream, true, 'stream: true in the body');
      return ok(rec.body && (rec.body.stream === undefined || rec.body.stream === false), 'no stream:true on rawPredict', rec.body && rec.body.stream);
    },
    /** [what, text] pairs that must never appear in the gateway's log. */
    secrets: () => [['access token', 'ya29.'], ['private key', 'PRIVATE KEY'], ['private key body', P.G.sa.pem.split('\n')[5]]],
  };
  return P;
}

/** Claude on Bedrock against tests/mock/bedrock.mjs. */
export function awsProvider() {
  const P = {
    id: 'aws', label: 'Bedrock', base: AWS, root: '/proxy/aws/claude', keysField: 'awsKeys',
    model: MODEL, upstreamId: BEDROCK_MODEL, host: BEDROCK_HOST, version: 'bedrock-2023-05-31',
    hello: 'Hello from the Bedrock mock.',
    scen: { overloaded: 'unavailable503' },
    G: null, L: null, state: {},
    get mock() { return P.G.mock; },
    setup: (opts) => setupBedrock(opts),
    start: (env, opts) => startGateway(P.G, env, opts),
    path: (id = BEDROCK_MODEL, stream = false) => bedrockPath(id, stream),
    nameCases: [
      ['claude-sonnet-4-5-20250929', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0'],
      ['claude-opus-4-5', 'us.anthropic.claude-opus-4-5-20251101-v1:0'],
      ['claude-haiku-4-5-20251001', 'us.anthropic.claude-haiku-4-5-20251001-v1:0'],
      ['claude-3-5-sonnet-20241022', 'us.anthropic.claude-3-5-sonnet-20241022-v2:0'],
      ['claude-sonnet-4-5@20250929', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0'],
      ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0'],
    ],
    checkAuth(rec) {
      const k = P.G.key;
      match(rec.headers.authorization, new RegExp(`^AWS4-HMAC-SHA256 Credential=${k.accessKeyId}/\\d{8}/${k.region}/bedrock/aws4_request, ?SignedHeaders=[^ ]+, ?Signature=[0-9a-f]{64}$`), 'SigV4 Authorization with our access key, region and service bedrock');
      return ok(rec.auth && rec.auth.expected && rec.auth.expected === rec.auth.signature, 'the signature verified (recomputed with SignatureV4)', rec.auth && { signedHeaders: rec.auth.signedHeaders });
    },
    checkStreamFlag(rec, stream) {
      ok(rec.body && !('stream' in rec.body), 'no "stream" key in the Bedrock body', rec.body && rec.body.stream);
      if (stream) {
        equal(rec.headers.accept, 'application/vnd.amazon.eventstream', 'Accept: application/vnd.amazon.eventstream');
        return equal(rec.headers['x-amzn-bedrock-accept'], 'application/json', 'X-Amzn-Bedrock-Accept: application/json');
      }
      return ok(rec.headers.accept === undefined || rec.headers.accept === 'application/json', 'Accept application/json (or none) on InvokeModel', rec.headers.accept);
    },
    secrets: () => [['secret access key', P.G.key.secretAccessKey], ...(P.G.key.sessionToken ? [['session token', P.G.key.sessionToken]] : [])],
  };
  return P;
}

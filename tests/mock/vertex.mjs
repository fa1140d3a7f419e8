// Mock Google endpoints for the integration tests: the OAuth token endpoint and Claude on Vertex AI
// (reference/wire-formats.md §2.5-§2.7, §3.1-§3.6, §7.1, §8), served over TLS under the real
// hostnames. The gateway reaches it through UPSTREAM_CONNECT_TO + UPSTREAM_CA_BUNDLE.
//
//   const g = await vertexSetup();          // certs, one service account, the mock
//   L = await startLighttpd({ env: { ...g.env, HEARTBEAT_S: 1 } });
//   … body with mark('tools', 't1') in the last user message …
//   const rec = g.mock.last(mark('tools', 't1'));   // what the gateway sent, what the mock answered
//
// Token endpoint (POST https://oauth2.googleapis.com/token): checks the form body and grant type,
// parses the JWT, checks the header (alg RS256, typ JWT, kid if the account has one), VERIFIES the
// RS256 signature with the public key of the service account named by `iss`, checks scope, aud,
// exp - iat <= 3600 and iat within 5 min of now, and answers a fresh `ya29.` token. Every call is
// counted (`tokenCalls`) and logged (`tokenLog`). `failToken()` scripts invalid_grant answers.
//
// Vertex endpoint (<region>-aiplatform / aiplatform / aiplatform.<us|eu>.rep .googleapis.com):
// checks the path, that the location matches the host and the project the token's account, the
// bearer token (issued here and not revoked, else 401 in Google's shape), the content type, and the
// body the way Claude checks it (anthropic_version, no model, stream flag, max_tokens, roles,
// non-empty content, thinking rules and signatures, tool_use/tool_result pairing, no OpenAI-only
// keys). A failed check answers 400 in the Anthropic error shape naming the check and is recorded
// in `violations`, so a test sees exactly what was wrong. Every request is recorded in `requests`.
//
// Replies come from scenarios chosen by a marker in the last user message text:
// `<<mock:NAME[ TAG]>>` (use `mark(NAME, TAG)`; a unique TAG per test keeps records apart and
// gives per-marker state: `ctx.seen` counts earlier requests with the same marker). Without a
// marker the request takes the next name from `queue`, else `text`. Streaming scenarios are event
// lists (§2.6); a rawPredict call gets the same events assembled into one Messages JSON (§2.5). The
// markers, the Claude scenarios, the event builders and the body checks are shared with the Bedrock
// mock (tests/mock/claude.mjs); the Google shapes, auth and error scenarios live here.
//
// Per-credential behaviour (key pools), as the real services differ per service account. Every
// Vertex record carries `rec.account`: the email of the account the bearer token was issued to
// (also on a 401 for a revoked token; null when the token is missing or was never issued here).
//   keyScenario(email, name)     every request with a token of that account is answered with
//                                scenario `name` (a key of SCENARIOS) instead of the one its marker
//                                / the queue selects (the queue is then not consumed); rec.marker
//                                still holds the marker, rec.scenario the name used. Body checks
//                                still fail first. `keyScenario(email, null)` clears it.
//   disableAccount(email[, on])  the token endpoint answers that account's (otherwise valid) JWT
//                                with 400 {"error":"invalid_grant","error_description":"Invalid
//                                grant: account not found"} (counted in tokenCalls / tokenLog like
//                                failToken(), rec.disabled, no violation) and the tokens already
//                                issued to it are revoked: Vertex answers them 401 UNAUTHENTICATED
//                                (rec.refused 'disabled', no violation). `disableAccount(email,
//                                false)` lets new tokens be issued again (the old ones stay revoked).
//   modelAccess(email, ids)      the account may only use the Vertex model ids in `ids` (as in the
//                                URL: 'claude-sonnet-4-5@20250929'); any other model answers 404
//                                NOT_FOUND "Publisher Model `projects/P/locations/L/publishers/
//                                anthropic/models/M` was not found or your project does not have
//                                access to it. …" (notfound404's shape; rec.refused 'model-access',
//                                no violation). `modelAccess(email, null)` allows every model again.
// Order on a Vertex request: path / host, auth (disabled → 401), header checks, the scenario
// (marker / queue / keyScenario), model access, the body checks, then the scenario's answer.
// reset() keeps these settings (tests reset records between steps); clearKeyModes() drops all three.
// Faults: `mock.faults.set(marker, spec)` makes every request with that marker (after the auth
// and body checks passed) get the fault `spec` instead of a well-formed answer: a reply cut at a
// byte offset, a stall, an endless header, a 100 MB body, hand-made bytes (tests/mock/faults.mjs).
// reset() drops them.
import crypto from 'node:crypto';
import https from 'node:https';
import zlib from 'node:zlib';
import { makeTls, GOOGLE_HOSTS, listenLoopback, closeLoopback } from './tls.mjs';
import { playFault } from './faults.mjs';
import {
  sleep, rand, b64u, mark, findMarker, readBody, assemble, checkBody, bigDelta, bigText, BIG_DELTAS, BIG_DELTA_LEN,
  CLAUDE_SCENARIOS,
} from './claude.mjs';

export { mark, assemble, bigDelta, bigText, BIG_DELTAS, BIG_DELTA_LEN };

export { GOOGLE_HOSTS };
export const DEFAULT_VERSION = 'vertex-2023-10-16';
export const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
export const TOKEN_URI = 'https://oauth2.googleapis.com/token';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const MAX_SKEW_S = 300;

// ---- service accounts ------------------------------------------------------------------------
/**
 * A throwaway service account: an RSA-2048 key pair made now. `credentials(region)` is the seed's
 * GCP_CREDENTIALS entry (projectId:clientEmail:region:PEM with literal \n); `json` is the
 * service-account key file (§3.3).
 */
export function serviceAccount({ project = 'oai-it-project', region = 'us-east5', name, keyId } = {}) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const email = `${name || 'oai-it-' + rand(4)}@${project}.iam.gserviceaccount.com`;
  const kid = keyId === undefined ? rand(20) : keyId;
  return {
    project, email, region, keyId: kid, pem, publicKey,
    credentials: (r = region) => `${project}:${email}:${r}:${pem.replace(/\n/g, '\\n')}`,
    json: {
      type: 'service_account', project_id: project, private_key_id: kid, private_key: pem,
      client_email: email, client_id: String(100000000000000000000n + BigInt(Math.floor(Math.random() * 1e9))),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: TOKEN_URI,
      auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
      client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
      universe_domain: 'googleapis.com',
    },
  };
}

// ---- response shapes -------------------------------------------------------------------------
export const googleError = (code, status, message) => ({ error: { code, message, status } });
export const anthropicError = (type, message) => ({ type: 'error', error: { type, message }, request_id: `req_vrtx_${rand(8)}` });

/** Anthropic's model name for a Vertex id: `claude-sonnet-4-5@20250929` → `claude-sonnet-4-5-20250929`. */
export const anthropicName = (vertexId) => vertexId.replace('@', '-');

// ---- scenarios -------------------------------------------------------------------------------
// The Claude scenarios shared with the Bedrock mock (tests/mock/claude.mjs), plus Vertex's own
// error answers. Each returns {events, gzip?, end?} (end: 'stop' (default, clean end), 'destroy'
// (connection reset mid-body)), {gen} (an async generator of events, for endless streams), or
// {status, json, headers} (an error / fixed answer). Error answers: rate429 (429
// RESOURCE_EXHAUSTED per-minute quota, Google's array shape), rate429ra / rate429ra1 /
// rate429ra5 (the same with Retry-After 2 / 1 / 5), rate429once, quotaDay429 (429 RESOURCE_EXHAUSTED tokens-per-day quota),
// bad400, overloaded529 (Anthropic shape), unavailable503 (503 UNAVAILABLE, array shape),
// notfound404, auth401.
const RATE_MSG = 'Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude-sonnet-4-5. Please submit a quota increase request. https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.';
const QUOTA_DAY_MSG = 'Quota exceeded for aiplatform.googleapis.com/online_prediction_tokens_per_day_per_base_model with base model: anthropic-claude-sonnet-4-5. Please submit a quota increase request.';
export const SCENARIOS = {
  ...CLAUDE_SCENARIOS, // text, choice, tools, thinking, …, truncated_reset (tests/mock/claude.mjs)
  rate429: () => ({ status: 429, json: [googleError(429, 'RESOURCE_EXHAUSTED', RATE_MSG)] }),
  rate429ra: () => ({ status: 429, headers: { 'retry-after': '2' }, json: [googleError(429, 'RESOURCE_EXHAUSTED', RATE_MSG)] }),
  rate429ra1: () => ({ status: 429, headers: { 'retry-after': '1' }, json: [googleError(429, 'RESOURCE_EXHAUSTED', RATE_MSG)] }),
  rate429ra5: () => ({ status: 429, headers: { 'retry-after': '5' }, json: [googleError(429, 'RESOURCE_EXHAUSTED', RATE_MSG)] }),
  quotaDay429: () => ({ status: 429, json: [googleError(429, 'RESOURCE_EXHAUSTED', QUOTA_DAY_MSG)] }),
  unavailable503: () => ({ status: 503, json: [googleError(503, 'UNAVAILABLE', 'The service is currently unavailable.')] }),
  // 429 on the first request with this marker, then a normal answer
  rate429once: (c) => (c.seen === 0 ? SCENARIOS.rate429(c) : SCENARIOS.text(c)),
  bad400: () => ({ status: 400, json: anthropicError('invalid_request_error', 'prompt is too long: 300000 tokens > 200000 maximum') }),
  overloaded529: () => ({ status: 529, json: anthropicError('overloaded_error', 'Overloaded') }),
  notfound404: (c) => ({ status: 404, json: googleError(404, 'NOT_FOUND', `Publisher Model \`projects/${c.project}/locations/${c.location}/publishers/anthropic/models/${c.model}\` not found.`) }),
  // the token this request carries is revoked and the request gets 401; later requests with the
  // same marker get a normal answer (the gateway must refresh once and retry once)
  auth401: (c) => {
    if (c.seen > 0) return SCENARIOS.text(c);
    c.revokeToken();
    return { status: 401, json: googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.') };
  },
};

// ---- the mock --------------------------------------------------------------------------------
const VERTEX_PATH = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/;

/** The Vertex location a host serves, or null if the host is not a Vertex host. */
export function hostLocation(host) {
  if (host === 'aiplatform.googleapis.com') return 'global';
  let m = /^aiplatform\.(us|eu)\.rep\.googleapis\.com$/.exec(host);
  if (m) return m[1];
  m = /^([a-z]+-[a-z]+[0-9]+)-aiplatform\.googleapis\.com$/.exec(host);
  return m ? m[1] : null;
}

/** The Vertex host for a location (§3.1). */
export function locationHost(loc) {
  if (loc === 'global') return 'aiplatform.googleapis.com';
  if (loc === 'us' || loc === 'eu') return `aiplatform.${loc}.rep.googleapis.com`;
  return `${loc}-aiplatform.googleapis.com`;
}

const parseOrNull = (text) => { try { return JSON.parse(text); } catch { return null; } };

function sendJson(res, status, body, headers = {}, gzip = false) {
  let buf = Buffer.from(JSON.stringify(body));
  const h = { 'content-type': 'application/json; charset=UTF-8', ...headers };
  if (gzip) {
    buf = zlib.gzipSync(buf);
    h['content-encoding'] = 'gzip';
  }
  h['content-length'] = String(buf.length);
  res.writeHead(status, h);
  res.end(buf);
}

export class MockGoogle {
  constructor(tls, accounts = []) {
    this.tls = tls;
    this.caFile = tls.caFile;
    this.accounts = new Map();
    for (const a of accounts) this.addAccount(a);
    this.anthropicVersion = DEFAULT_VERSION; // what the body's anthropic_version must be
    this.tokenExpiresIn = 3599;
    this.tokens = new Map(); // token -> {email, issuedAt, revoked}
    this.sigKey = crypto.randomBytes(32);
    this.sockets = new Set();
    this.waiters = new Set();
    this.seq = 0;
    this.clearKeyModes();
    this.reset();
  }

  /** Forget records and counters (issued tokens stay valid: the gateway may hold one; the per-account modes stay). */
  reset() {
    this.tokenCalls = 0;
    this.tokenLog = [];
    this.requests = [];
    this.violations = [];
    this.queue = [];
    this.tokenFailures = [];
    this.markerSeen = new Map();
    this.faults = new Map(); // marker -> fault spec (tests/mock/faults.mjs)
  }

  addAccount(a) { this.accounts.set(a.email, a); }

  /** The next `times` token requests (that pass every check) get invalid_grant. */
  failToken(times = 1, description = 'Invalid JWT Signature.') {
    for (let i = 0; i < times; i++) this.tokenFailures.push(description);
  }

  revokeAll() { for (const t of this.tokens.values()) t.revoked = true; }

  /** Answer every request authorised by account `email` with scenario `name` (null: back to markers / queue). */
  keyScenario(email, name) {
    if (name == null) return void this.keyScenarios.delete(email);
    if (!SCENARIOS[name]) throw new Error(`keyScenario: no scenario ${JSON.stringify(name)}`);
    this.keyScenarios.set(email, name);
  }

  /** Disable (on) or re-enable account `email`: no new tokens (invalid_grant), the issued ones revoked. */
  disableAccount(email, on = true) {
    if (!on) return void this.disabledAccounts.delete(email);
    this.disabledAccounts.add(email);
    for (const t of this.tokens.values()) if (t.email === email) t.revoked = true;
  }

  /** Let account `email` use only the Vertex model ids in `ids` (null: every model). */
  modelAccess(email, ids) {
    if (ids == null) this.allowedModels.delete(email);
    else this.allowedModels.set(email, new Set(ids));
  }

  /** Drop every keyScenario / disableAccount / modelAccess setting (revoked tokens stay revoked). */
  clearKeyModes() {
    this.keyScenarios = new Map(); // email -> scenario name
    this.disabledAccounts = new Set(); // emails
    this.allowedModels = new Map(); // email -> Set of Vertex model ids
  }

  sign(text) { return 'EqMock' + crypto.createHmac('sha256', this.sigKey).update(String(text)).digest('base64'); }
  verifySig(text, sig) { return typeof sig === 'string' && typeof text === 'string' && sig === this.sign(text); }

  /** Records whose scenario marker (the full `<<mock:…>>` text) is `marker`. */
  find(marker) { return this.requests.filter((r) => r.marker === marker); }
  last(marker) { const a = this.find(marker); return a[a.length - 1]; }
  /** Distinct bearer tokens seen on Vertex requests (optionally only those with `marker`). */
  tokensSeen(marker) { return [...new Set((marker ? this.find(marker) : this.requests).map((r) => r.token).filter(Boolean))]; }

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

  get connectTo() {
    return GOOGLE_HOSTS.filter((h) => !h.includes('*')).map((h) => `${h}:443:127.0.0.1:${this.port}`).join(',');
  }

  listen() {
    this.server = https.createServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => {
      this.handle(req, res).catch((e) => {
        this.violations.push({ check: 'mock-internal', detail: e && e.stack || String(e) });
        try { if (!res.headersSent) sendJson(res, 500, anthropicError('api_error', `mock failure: ${e && e.message}`)); else res.destroy(); } catch { /* gone */ }
      });
    });
    return listenLoopback(this);
  }

  close() {
    return closeLoopback(this);
  }

  async handle(req, res) {
    const host = String(req.headers.host || '').replace(/:443$/, '').toLowerCase();
    const body = await readBody(req);
    if (host === 'oauth2.googleapis.com') return this.token(req, res, body);
    if (hostLocation(host)) return this.vertex(req, res, host, body);
    this.violations.push({ check: 'host', detail: `request for unknown host ${JSON.stringify(host)} ${req.method} ${req.url}` });
    return sendJson(res, 404, googleError(404, 'NOT_FOUND', `mock: unknown host ${host}`));
  }

  // ---- POST /token (§3.4, §3.5) ----
  token(req, res, body) {
    this.tokenCalls++;
    const rec = { at: Date.now(), method: req.method, path: req.url, headers: { ...req.headers }, body: body.toString('utf8'), status: 0, error: null };
    this.tokenLog.push(rec);
    const bad = (check, desc, status = 400, error = 'invalid_grant') => {
      rec.status = status;
      rec.error = `${check}: ${desc}`;
      this.violations.push({ check: `token-${check}`, detail: desc });
      return sendJson(res, status, { error, error_description: `mock check "${check}" failed: ${desc}` });
    };
    if (req.method !== 'POST' || req.url !== '/token') return bad('path', `${req.method} ${req.url} (want POST /token)`, 404, 'not_found');
    const ct = String(req.headers['content-type'] || '');
    if (!/^application\/x-www-form-urlencoded\b/i.test(ct)) return bad('content-type', `Content-Type ${JSON.stringify(ct)}`, 400, 'invalid_request');
    const form = new URLSearchParams(rec.body);
    if (form.get('grant_type') !== JWT_BEARER) return bad('grant_type', `grant_type ${JSON.stringify(form.get('grant_type'))}`, 400, 'unsupported_grant_type');
    const jwt = form.get('assertion') || '';
    const parts = jwt.split('.');
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return bad('jwt-format', 'assertion is not three unpadded base64url parts');
    let header;
    let claims;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch { return bad('jwt-json', 'header or claims are not JSON'); }
    rec.header = header;
    rec.claims = claims;
    if (header.alg !== 'RS256') return bad('jwt-alg', `alg ${JSON.stringify(header.alg)}`);
    if (header.typ !== 'JWT') return bad('jwt-typ', `typ ${JSON.stringify(header.typ)}`);
    const acct = this.accounts.get(claims.iss);
    if (!acct) return bad('jwt-iss', `iss ${JSON.stringify(claims.iss)} is no known service account`);
    rec.email = acct.email;
    if ('kid' in header && acct.keyId && header.kid !== acct.keyId) return bad('jwt-kid', `kid ${JSON.stringify(header.kid)} is not the key's id`);
    const sig = Buffer.from(parts[2], 'base64url');
    if (!crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), acct.publicKey, sig)) return bad('jwt-signature', 'Invalid JWT Signature.');
    if (claims.scope !== SCOPE) return bad('jwt-scope', `scope ${JSON.stringify(claims.scope)}`);
    if (claims.aud !== TOKEN_URI) return bad('jwt-aud', `aud ${JSON.stringify(claims.aud)}`);
    const now = Math.floor(Date.now() / 1000);
    if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp)) return bad('jwt-times', 'iat/exp are not integers');
    if (claims.exp - claims.iat > 3600 || claims.exp <= claims.iat) return bad('jwt-times', `exp - iat = ${claims.exp - claims.iat} (must be 1..3600)`);
    if (Math.abs(claims.iat - now) > MAX_SKEW_S) return bad('jwt-times', `iat ${claims.iat} is ${claims.iat - now} s from now`);
    if (this.disabledAccounts.has(acct.email)) {
      const desc = 'Invalid grant: account not found';
      rec.status = 400;
      rec.error = `disabled: ${desc}`;
      rec.disabled = true;
      return sendJson(res, 400, { error: 'invalid_grant', error_description: desc });
    }
    if (this.tokenFailures.length) {
      const desc = this.tokenFailures.shift();
      rec.status = 400;
      rec.error = `scripted: ${desc}`;
      return sendJson(res, 400, { error: 'invalid_grant', error_description: desc });
    }
    const token = `ya29.c.${b64u(crypto.randomBytes(48))}`;
    this.tokens.set(token, { email: acct.email, issuedAt: Date.now(), revoked: false });
    rec.status = 200;
    rec.token = token;
    return sendJson(res, 200, { access_token: token, expires_in: this.tokenExpiresIn, token_type: 'Bearer' });
  }

  // ---- Vertex rawPredict / streamRawPredict ----
  async vertex(req, res, host, raw) {
    const seq = ++this.seq;
    const rec = {
      seq, at: Date.now(), method: req.method, host, path: req.url, headers: { ...req.headers }, bodyText: raw.toString('utf8'),
      body: null, project: null, location: null, model: null, verb: null, stream: false, token: null, account: null,
      scenario: null, marker: null, refused: null, status: 0, sent: [], reply: null, violations: [],
      closedEarly: false, closedAt: null, endedAt: null,
    };
    this.requests.push(rec);
    let closed = false;
    res.on('close', () => {
      closed = true;
      rec.closedAt = Date.now();
      rec.closedEarly = !res.writableFinished;
    });
    const violation = (check, detail) => {
      const v = { seq, check, detail, path: req.url };
      rec.violations.push(v);
      this.violations.push(v);
      rec.status = 400;
      return sendJson(res, 400, anthropicError('invalid_request_error', `mock check "${check}" failed: ${detail}`));
    };
    if (req.method !== 'POST') return violation('method', `${req.method} (want POST)`);
    const pm = VERTEX_PATH.exec(req.url);
    if (!pm) {
      const v = { seq, check: 'path', detail: `${req.url} is not /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict|streamRawPredict`, path: req.url };
      rec.violations.push(v);
      this.violations.push(v);
      rec.status = 404;
      return sendJson(res, 404, googleError(404, 'NOT_FOUND', v.detail));
    }
    [, rec.project, rec.location, rec.model, rec.verb] = pm;
    rec.stream = rec.verb === 'streamRawPredict';
    if (/%40|%3a/i.test(req.url)) return violation('path-literal', `"@" and ":" must be sent literally: ${req.url}`);
    if (hostLocation(host) !== rec.location) return violation('location-host', `location ${rec.location} sent to ${host} (serves ${hostLocation(host)})`);
    const auth = String(req.headers.authorization || '');
    const am = /^Bearer (\S+)$/.exec(auth);
    const unauth = () => {
      rec.status = 401;
      return sendJson(res, 401, googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.'));
    };
    if (!am) {
      this.violations.push({ seq, check: 'auth', detail: `Authorization ${auth ? 'is not "Bearer <token>"' : 'is missing'}` });
      return unauth();
    }
    rec.token = am[1];
    const tok = this.tokens.get(rec.token);
    if (!tok) {
      this.violations.push({ seq, check: 'auth', detail: 'bearer token was never issued by the token endpoint' });
      return unauth();
    }
    rec.account = tok.email;
    rec.marker = (findMarker(parseOrNull(rec.bodyText), rec.bodyText) || [null])[0]; // records of refused requests carry it too
    if (tok.revoked) {
      rec.revokedToken = true;
      if (this.disabledAccounts.has(tok.email)) rec.refused = 'disabled';
      return unauth();
    }
    const acct = this.accounts.get(tok.email);
    if (acct && acct.project !== rec.project) return violation('project', `project ${rec.project} with a token of ${acct.project}'s account`);
    if ('x-api-key' in req.headers) return violation('client-credential', 'x-api-key header forwarded upstream');
    if ('anthropic-version' in req.headers) return violation('anthropic-version-header', 'anthropic-version header sent to Vertex (it goes in the body)');
    if (!/^application\/json\b/i.test(String(req.headers['content-type'] || ''))) return violation('content-type', `Content-Type ${JSON.stringify(req.headers['content-type'])}`);
    try { rec.body = JSON.parse(rec.bodyText); } catch { return violation('body-json', 'the body is not JSON'); }
    const bad = checkBody(rec.body, { platform: 'vertex', stream: rec.stream, version: this.anthropicVersion, model: rec.model, verifySig: (t, s) => this.verifySig(t, s) });
    // scenario (chosen before the checks fail so that records carry the marker); a keyScenario
    // replaces what the marker selects and leaves the queue alone
    const mm = findMarker(rec.body, rec.bodyText);
    const forced = this.keyScenarios.get(tok.email);
    if (mm) [rec.marker, rec.scenario] = mm;
    else if (!forced) rec.scenario = this.queue.length ? this.queue.shift() : 'text';
    if (forced) rec.scenario = forced;
    const allowed = this.allowedModels.get(tok.email);
    if (allowed && !allowed.has(rec.model)) {
      rec.refused = 'model-access';
      rec.status = 404;
      rec.reply = googleError(404, 'NOT_FOUND', `Publisher Model \`projects/${rec.project}/locations/${rec.location}/publishers/anthropic/models/${rec.model}\` was not found or your project does not have access to it. Please ensure you are using a valid model version.`);
      return sendJson(res, 404, rec.reply);
    }
    if (bad) return violation(bad[0], bad[1]);
    const fn = SCENARIOS[rec.scenario];
    if (!fn) return violation('scenario', `no scenario ${JSON.stringify(rec.scenario)}`);
    const key = rec.marker || rec.scenario;
    const seen = this.markerSeen.get(key) || 0;
    this.markerSeen.set(key, seen + 1);
    const ctx = {
      seq, seen, body: rec.body, project: rec.project, location: rec.location, model: rec.model,
      anthropicModel: anthropicName(rec.model), msgId: `msg_vrtx_${b64u(crypto.randomBytes(18))}`, label: 'Vertex', tag: 'vrtx',
      sign: (t) => this.sign(t), closed: () => closed, revokeToken: () => { tok.revoked = true; },
    };
    const out = fn(ctx);
    const fault = rec.marker && this.faults.get(rec.marker);
    if (fault) return playFault(rec, res, fault, out.events || []);
    if (out.status) {
      rec.status = out.status;
      rec.reply = out.json;
      return sendJson(res, out.status, out.json, out.headers);
    }
    if (!rec.stream) {
      if (out.gen) { // never answers: wait for the gateway to give up
        await new Promise((r) => res.on('close', r));
        return undefined;
      }
      const errEv = out.events.find((e) => e.type === 'error');
      rec.reply = errEv ? anthropicError(errEv.error.type, errEv.error.message) : assemble(out.events);
      rec.status = errEv ? 529 : 200;
      sendJson(res, rec.status, rec.reply, {}, Boolean(out.gzip));
      rec.endedAt = Date.now();
      return undefined;
    }
    return this.stream(rec, res, out, () => closed);
  }

  async stream(rec, res, out, isClosed) {
    rec.status = 200;
    const headers = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
    let sink = res;
    let gz = null;
    if (out.gzip) {
      headers['content-encoding'] = 'gzip';
      gz = zlib.createGzip();
      gz.pipe(res);
      gz.on('error', () => {});
      sink = gz;
    }
    res.writeHead(200, headers);
    res.flushHeaders();
    const closedP = new Promise((r) => res.once('close', r));
    const events = out.events || [];
    if (!out.gen) rec.reply = events.some((e) => e.type === 'error' || e.type === 'message_stop') ? assemble(events) : null;
    const source = out.gen ? out.gen() : (async function* () { yield* events; })();
    for await (const e of source) {
      if (isClosed()) break;
      if (e.delay) {
        await Promise.race([sleep(e.delay), closedP]);
        continue;
      }
      rec.sent.push(e);
      let more = true;
      try { more = sink.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`); } catch { break; }
      if (gz) await new Promise((r) => gz.flush(zlib.constants.Z_SYNC_FLUSH, r));
      if (!more) await Promise.race([new Promise((r) => sink.once('drain', r)), closedP]);
    }
    if (isClosed()) return;
    rec.endedAt = Date.now();
    if (out.end === 'destroy') {
      await sleep(20);
      res.socket && res.socket.destroy();
      return;
    }
    sink.end();
  }
}

/** Start the mock (TLS material made in `dir` unless `tls` is given) for `accounts`. */
export async function startMockGoogle({ dir, tls, accounts = [] } = {}) {
  const t = tls || await makeTls(dir);
  const m = new MockGoogle(t, accounts);
  await m.listen();
  return m;
}

/**
 * Everything a Vertex test needs: TLS material in `dir`, service account(s), the mock, and the
 * gateway environment (GCP_CREDENTIALS in the seed format for the first account,
 * UPSTREAM_CONNECT_TO, UPSTREAM_CA_BUNDLE). Returns {mock, sa, accounts, env, dir}.
 */
export async function vertexSetup({ dir, accounts, region = 'us-east5', project = 'oai-it-project' } = {}) {
  const accts = accounts || [serviceAccount({ project, region })];
  const mock = await startMockGoogle({ dir, accounts: accts });
  const sa = accts[0];
  return {
    mock, sa, accounts: accts, dir,
    env: { GCP_CREDENTIALS: sa.credentials(), UPSTREAM_CONNECT_TO: mock.connectTo, UPSTREAM_CA_BUNDLE: mock.caFile },
  };
}

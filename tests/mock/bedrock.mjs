// Mock AWS Bedrock Runtime for the integration tests: InvokeModel and InvokeModelWithResponseStream
// with Claude (reference/wire-formats.md §2, §4.1-§4.3, §4.5, §5, §7.2, §8), served over TLS under
// the real hostnames (bedrock-runtime.<region>.amazonaws.com). The gateway reaches it through
// UPSTREAM_CONNECT_TO + UPSTREAM_CA_BUNDLE.
//
//   const b = await bedrockSetup();          // certs, one access key, the mock
//   L = await startLighttpd({ env: { ...b.env, HEARTBEAT_S: 1 } });
//   … body with mark('tools', 't1') in the last user message …
//   const rec = b.mock.last(mark('tools', 't1'));   // what the gateway sent, what the mock answered
//
// Every request is authenticated the way AWS does it: the SigV4 signature is RECOMPUTED with AWS's
// own signer (`SignatureV4` from @smithy/signature-v4, service "bedrock", region from the Host)
// from the raw request — the path exactly as received (re-encoded once, so a wire `%3A` is signed
// as `%253A`), the headers the Authorization header lists, the SHA-256 of the body — using the
// secret of the access key named in the Credential, and compared with the one sent. Also checked:
// the Credential scope (date / region / bedrock / aws4_request), x-amz-date within 5 min,
// X-Amz-Security-Token present, equal and signed when the key has a session token (absent when it
// has none), x-amz-content-sha256 (if sent) equal to the body's hash. Failures answer like AWS
// (403 with `x-amzn-ErrorType: InvalidSignatureException` / `UnrecognizedClientException` /
// `MissingAuthenticationTokenException`, body {"message": …}); the detail says which check failed.
//
// Then the request itself: POST /model/{modelId}/invoke | invoke-with-response-stream with the model
// id percent-encoded on the wire (every byte outside A-Za-z0-9-_.~, so ":" as %3A and "/" as %2F);
// a Bedrock model id or ARN; Content-Type application/json; for streams Accept
// application/vnd.amazon.eventstream and X-Amzn-Bedrock-Accept application/json; no client
// credential, no anthropic-version / anthropic-beta headers; the body checked as Claude checks it
// (tests/mock/claude.mjs) with anthropic_version "bedrock-2023-05-31" (or `anthropicVersion`), no
// "model", no "stream", "anthropic_beta" an array. A failed check answers 400 ValidationException
// {"message": "mock check \"…\" failed: …"} (404 UnknownOperationException for an unknown path) and
// is recorded in `violations`. Real Bedrock refusals that are no gateway bug (a base model id that
// needs an inference profile, a profile of another geography) answer 400 ValidationException as
// Bedrock does, without a violation (`rec.refused` says which).
//
// Replies come from the scenarios shared with the Vertex mock (same names and markers; the Claude
// events of tests/mock/claude.mjs) plus Bedrock's own errors. A non-stream call gets the events
// assembled into one Messages JSON with the x-amzn-bedrock-*-token-count headers; a stream call
// gets `application/vnd.amazon.eventstream`: each Anthropic event is one `chunk` message
// ({"bytes": base64(event JSON), "p": padding}) encoded with @smithy/eventstream-codec, the
// message_stop carrying "amazon-bedrock-invocationMetrics", written in pieces cut at awkward
// offsets (inside the prelude, the headers, the payload, the CRC; several frames per write). A
// Claude `error` event becomes a modelStreamErrorException message; the Bedrock-only scenarios add a
// throttlingException message and a frame with a corrupted CRC. Every request is recorded in
// `requests` (rec.sent: the Anthropic events delivered in valid chunk frames, in order).
// `mock.faults.set(marker, spec)` answers requests with that marker (once signed and checked)
// with a fault from tests/mock/faults.mjs, streams as event-stream messages (reset() drops them).
//
// Per-credential behaviour (key pools), as AWS differs per access key. Every record carries
// `rec.accessKeyId`: the access key id named in the SigV4 Credential once the signature verified
// (null otherwise), and, from then on, `rec.marker` even when the request is refused.
//   keyScenario(accessKeyId, name)  every request signed with that key is answered with scenario
//                                   `name` (a key of SCENARIOS: rate429, tokens429, quotaDay429,
//                                   unrecognized403, denied403, unavailable503, …) instead of the
//                                   one its marker / the queue selects (the queue is then not
//                                   consumed); rec.marker still holds the marker, rec.scenario the
//                                   name used. Body checks still fail first. `name` null clears it.
//   disableKey(accessKeyId[, on])   requests correctly signed with that key answer 403
//                                   `x-amzn-ErrorType: UnrecognizedClientException` {"message": "The
//                                   security token included in the request is invalid."}, as for
//                                   an unknown key (rec.refused 'disabled', an `authFailures` entry
//                                   with check 'disabled', no violation). `on` false re-enables it.
//   modelAccess(accessKeyId, ids)   the key may only use the Bedrock base model ids in `ids` (no
//                                   geography prefix: 'anthropic.claude-sonnet-4-5-20250929-v1:0');
//                                   a request is compared by baseModelId() of its model id (an
//                                   inference profile's geography prefix dropped, an ARN reduced to
//                                   its resource id first), any other model answers 403
//                                   AccessDeniedException "You don't have access to the model with
//                                   the specified model ID." (rec.refused 'model-access', no
//                                   violation). `ids` null allows every model again.
// The key checker's cheap availability probe: a body whose max_tokens is an integer < 1 (the
// gateway sends max_tokens: -1 on purpose) and that is otherwise valid answers as Bedrock does,
// 400 ValidationException "Malformed input request: #/max_tokens: -1 is not greater or equal to 1,
// please reformat your input and try again." (rec.refused 'max_tokens', no violation) — only once
// the signature, disableKey, modelAccess and the model id refusals (on-demand, region) passed, so
// that answer means "this key can use this model". Anything else wrong in such a body is still a
// violation; the Vertex mock keeps treating max_tokens < 1 as one. A probe takes nothing from the
// queue and ignores its marker; only a keyScenario with an error answer (rate429, quotaDay429,
// unavailable503, denied403, …) answers it instead, as that key would answer anything.
// Order: host / path, SigV4, disableKey, model id and header checks, the scenario (marker / queue /
// keyScenario), modelAccess, the body checks, the on-demand / region refusals, the probe, the
// scenario's answer. reset() keeps these settings (tests reset records between steps);
// clearKeyModes() drops all three.
import crypto from 'node:crypto';
import https from 'node:https';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { toUtf8, fromUtf8 } from '@smithy/util-utf8';
import { makeTls, AWS_HOSTS, listenLoopback, closeLoopback } from './tls.mjs';
import { playFault } from './faults.mjs';
import {
  sleep, b64u, mark, findMarker, readBody, assemble, checkBody, evStart, cbStart, cbDelta, cbStop, evEnd,
  CLAUDE_SCENARIOS,
} from './claude.mjs';

export { AWS_HOSTS, mark, assemble };
export const DEFAULT_VERSION = 'bedrock-2023-05-31';
export const SERVICE = 'bedrock';
export const EVENTSTREAM = 'application/vnd.amazon.eventstream';
const MAX_SKEW_MS = 5 * 60 * 1000;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// ---- access keys ------------------------------------------------------------------------------
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const randB32 = (n) => Array.from(crypto.randomBytes(n), (x) => B32[x & 31]).join('');

/**
 * A throwaway access key made now (never a real one): `AKIA…` (or `ASIA…` with a session token),
 * a 40-character secret with "/" and "+" in it, and `credentials(region)` in the AWS_CREDENTIALS
 * format `accessKeyId:secretAccessKey:region[:sessionToken]`.
 */
export function awsKey({ region = 'us-east-1', token = false } = {}) {
  const accessKeyId = (token ? 'ASIA' : 'AKIA') + randB32(16);
  let secretAccessKey = crypto.randomBytes(30).toString('base64');
  secretAccessKey = secretAccessKey.slice(0, 10) + '/' + secretAccessKey.slice(11, 20) + '+' + secretAccessKey.slice(21);
  const sessionToken = token ? `IQoJb3JpZ2luX2VjE${crypto.randomBytes(150).toString('base64')}` : undefined;
  return {
    accessKeyId, secretAccessKey, region, sessionToken,
    credentials: (r = region) => [accessKeyId, secretAccessKey, r, ...(sessionToken ? [sessionToken] : [])].join(':'),
  };
}

// ---- response shapes --------------------------------------------------------------------------
/** The body of a Bedrock error: {"message": …} (or {"Message": …}, as AWS's auth layer sometimes sends). */
export const awsErrorBody = (message, extra = {}, key = 'message') => ({ [key]: message, ...extra });

/** Percent-encode every byte outside A-Z a-z 0-9 - _ . ~ (botocore percent_encode; wire-formats §4.2). */
export function encodeLabel(s) {
  let out = '';
  for (const byte of Buffer.from(String(s), 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The wire path for a model id. */
export const bedrockPath = (modelId, stream = false) => `/model/${encodeLabel(modelId)}/${stream ? 'invoke-with-response-stream' : 'invoke'}`;

const GEOS = ['us-gov', 'us', 'eu', 'apac', 'jp', 'au', 'global'];
const MODEL_ID_RE = new RegExp(`^(?:(${GEOS.join('|')})\\.)?anthropic\\.(claude-[a-z0-9.-]+?)(?:-v(\\d+)(?::(\\d+))?)?$`);
const ARN_RE = /^arn:aws(?:-[a-z-]+)?:bedrock:([a-z0-9-]+):(\d{12})?:(inference-profile|application-inference-profile|provisioned-model|foundation-model|custom-model)\/(.+)$/;
// Claude models Bedrock serves on demand by their base id; the others need an inference profile.
const ON_DEMAND = new Set(['claude-3-haiku-20240307', 'claude-3-sonnet-20240229', 'claude-3-opus-20240229', 'claude-3-5-sonnet-20240620']);

/**
 * What a model id names: {kind: 'base'|'profile'|'arn', geo, claude (Anthropic-style name, e.g.
 * claude-sonnet-4-5-20250929, or null), arnRegion} or null when it is no Bedrock Claude id.
 */
export function parseModelId(id) {
  let m = MODEL_ID_RE.exec(id);
  if (m) return { kind: m[1] ? 'profile' : 'base', geo: m[1] || null, claude: m[2], arnRegion: null };
  m = ARN_RE.exec(id);
  if (!m) return null;
  const inner = m[3] === 'inference-profile' || m[3] === 'foundation-model' ? parseModelId(m[4]) : null;
  return { kind: 'arn', geo: inner ? inner.geo : null, claude: inner ? inner.claude : null, arnRegion: m[1] };
}

const GEO_PREFIX_RE = new RegExp(`^(?:${GEOS.join('|')})\\.`);
/**
 * The Bedrock base model id a model id names, as modelAccess() compares it: an ARN reduced to its
 * resource id (after the "/"), then a leading inference-profile geography ("us.", "eu.", "apac.",
 * "global.", …) dropped: `arn:…:inference-profile/us.anthropic.claude-x-v1:0` → `anthropic.claude-x-v1:0`.
 */
export function baseModelId(id) {
  const m = ARN_RE.exec(String(id));
  return (m ? m[4] : String(id)).replace(GEO_PREFIX_RE, '');
}

/** Does a profile geography serve this region? */
function geoServes(geo, region) {
  if (!geo || geo === 'global') return true;
  if (geo === 'us-gov') return region.startsWith('us-gov-');
  if (geo === 'us') return /^(us|ca)-/.test(region) && !region.startsWith('us-gov-');
  if (geo === 'eu') return region.startsWith('eu-');
  if (geo === 'apac' || geo === 'jp' || geo === 'au') return region.startsWith('ap-');
  return false;
}

/** The region a Bedrock Runtime host serves, or null. */
export function hostRegion(host) {
  const m = /^bedrock-runtime\.([a-z0-9-]+)\.amazonaws\.com$/.exec(host);
  return m ? m[1] : null;
}

// ---- SigV4 verification (wire-formats §5) ----------------------------------------------------
const AUTH_RE = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/([^/,\s]*)\/([^/,\s]*)\/([^/,\s]*)\/([^/,\s]*), ?SignedHeaders=([^,\s]*), ?Signature=([^,\s]*)$/;
const AMZ_DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

function parseAmzDate(s) {
  const m = AMZ_DATE_RE.exec(String(s || ''));
  if (!m) return null;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return Number.isNaN(t) ? null : new Date(t);
}

/** The canonical request as AWS builds it (for diagnostics only; verification uses SignatureV4). */
function canonicalRequestText(signer, method, path, query, headers, list, payloadHash) {
  const canon = {};
  for (const h of list) canon[h] = String(headers[h] ?? '').replace(/[ \t]+/g, ' ').trim();
  try {
    return signer.createCanonicalRequest({ method, path, query, headers }, canon, payloadHash);
  } catch (e) { return `(canonical request unavailable: ${e.message})`; }
}

/**
 * Verify the SigV4 signature of a raw request {method, url (path + query exactly as received),
 * headers (node's lower-case object), body (Buffer)} for the access keys in `lookup(akid)`.
 * Returns {ok: true, auth} or {ok: false, status, type, check, detail, message, auth}; `auth` holds
 * what the Authorization header said and what the mock computed.
 */
export async function verifySigV4({ method, url, headers, body }, lookup, { now = Date.now(), region, service = SERVICE } = {}) {
  const auth = { header: headers.authorization || null };
  const fail = (type, check, detail, message) => ({ ok: false, status: 403, type, check, detail, message: message || detail, auth });
  const invalidSig = (check, detail) => fail('InvalidSignatureException', check, detail,
    `The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details. (mock check "${check}" failed: ${detail})`);
  if (!auth.header) return fail('MissingAuthenticationTokenException', 'auth-missing', 'no Authorization header', 'Missing Authentication Token');
  const m = AUTH_RE.exec(auth.header);
  if (!m) return fail('IncompleteSignatureException', 'auth-format', `Authorization is not "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…": ${JSON.stringify(auth.header.replace(/Signature=[0-9a-f]+/, 'Signature=…'))}`);
  const [, akid, scopeDate, scopeRegion, scopeService, terminator, signedHeaders, signature] = m;
  Object.assign(auth, { akid, scopeDate, scopeRegion, scopeService, signedHeaders, signature });
  const key = lookup(akid);
  if (!key) return fail('UnrecognizedClientException', 'akid', `access key ${akid} is unknown`, 'The security token included in the request is invalid.');
  if (terminator !== 'aws4_request') return fail('IncompleteSignatureException', 'scope', `Credential scope ends in ${JSON.stringify(terminator)}, not "aws4_request"`);
  if (scopeService !== service) return invalidSig('scope-service', `Credential should be scoped to correct service: '${service}' (got '${scopeService}')`);
  if (scopeRegion !== region) return invalidSig('scope-region', `Credential should be scoped to a valid region: the host serves '${region}', the scope says '${scopeRegion}'`);
  const xDate = headers['x-amz-date'];
  const date = parseAmzDate(xDate);
  if (!date) return fail('IncompleteSignatureException', 'x-amz-date', `x-amz-date ${JSON.stringify(xDate)} is not YYYYMMDD'T'HHMMSS'Z'`);
  if (scopeDate !== xDate.slice(0, 8)) return invalidSig('scope-date', `Date in Credential scope (${scopeDate}) does not match YYYYMMDD from x-amz-date (${xDate})`);
  if (Math.abs(date.getTime() - now) > MAX_SKEW_MS) return invalidSig('skew', `Signature expired or not yet current: x-amz-date ${xDate} is ${Math.round((date.getTime() - now) / 1000)} s from now (max 300)`);
  const list = signedHeaders.split(';');
  if (list.some((h) => !h || h !== h.toLowerCase())) return invalidSig('signed-headers', `SignedHeaders ${JSON.stringify(signedHeaders)} must be lower-case names joined by ";"`);
  if (list.join(';') !== [...new Set(list)].sort().join(';')) return invalidSig('signed-headers', `SignedHeaders ${JSON.stringify(signedHeaders)} must be sorted and unique`);
  for (const h of ['host', 'x-amz-date']) if (!list.includes(h)) return invalidSig('signed-headers', `"${h}" is not signed (SignedHeaders=${signedHeaders})`);
  for (const h of list) if (headers[h] === undefined) return invalidSig('signed-headers', `signed header "${h}" was not sent`);
  const tok = headers['x-amz-security-token'];
  if (key.sessionToken) {
    if (tok === undefined) return fail('UnrecognizedClientException', 'security-token', 'the key has a session token but X-Amz-Security-Token was not sent', 'The security token included in the request is invalid.');
    if (tok !== key.sessionToken) return fail('UnrecognizedClientException', 'security-token', 'X-Amz-Security-Token is not the key\'s session token', 'The security token included in the request is invalid.');
    if (!list.includes('x-amz-security-token')) return invalidSig('security-token', 'X-Amz-Security-Token is sent but not signed');
  } else if (tok !== undefined) return fail('UnrecognizedClientException', 'security-token', 'X-Amz-Security-Token sent for a key without a session token', 'The security token included in the request is invalid.');
  const bodyHash = crypto.createHash('sha256').update(body).digest('hex');
  if (headers['x-amz-content-sha256'] !== undefined) {
    if (headers['x-amz-content-sha256'] !== bodyHash) return invalidSig('content-sha256', `x-amz-content-sha256 ${headers['x-amz-content-sha256']} is not the SHA-256 of the body (${bodyHash})`);
    if (!list.includes('x-amz-content-sha256')) return invalidSig('content-sha256', 'x-amz-content-sha256 is sent but not signed');
  }
  // The raw path, exactly as received (SignatureV4 re-encodes it once, as AWS does); the query, if
  // any, decoded into name -> value(s) for SignatureV4 to re-encode.
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = {};
  if (q >= 0) {
    for (const part of url.slice(q + 1).split('&').filter(Boolean)) {
      const e = part.indexOf('=');
      const k = decodeURIComponent(e < 0 ? part : part.slice(0, e));
      const v = e < 0 ? '' : decodeURIComponent(part.slice(e + 1));
      query[k] = k in query ? [].concat(query[k], v) : v;
    }
  }
  const signed = {};
  for (const h of list) signed[h] = headers[h];
  const signer = new SignatureV4({
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, sessionToken: key.sessionToken },
    region, service, sha256: Sha256, uriEscapePath: true, applyChecksum: false,
  });
  const out = await signer.sign({ method, protocol: 'https:', hostname: headers.host, path, query, headers: signed, body: body.length ? new Uint8Array(body) : undefined },
    { signingDate: date, signableHeaders: new Set(list) });
  const am = AUTH_RE.exec(out.headers.authorization || '');
  auth.expected = am ? am[7] : null;
  auth.expectedSignedHeaders = am ? am[6] : null;
  auth.canonicalRequest = canonicalRequestText(signer, method, path, query, signed, list, headers['x-amz-content-sha256'] || (body.length ? bodyHash : EMPTY_SHA256));
  if (auth.expectedSignedHeaders !== signedHeaders) return invalidSig('signed-headers', `the signer signs ${auth.expectedSignedHeaders} for SignedHeaders=${signedHeaders}`);
  if (auth.expected !== signature) {
    return invalidSig('signature', `signature ${signature} != ${auth.expected} computed by SignatureV4 over the canonical request:\n${auth.canonicalRequest}`);
  }
  return { ok: true, auth };
}

// ---- event-stream encoding (wire-formats §4.5) --------------------------------------------------
export const codec = new EventStreamCodec(toUtf8, fromUtf8);
const hs = (v) => ({ type: 'string', value: v });
const PAD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const padding = () => PAD.slice(0, crypto.randomInt(1, PAD.length + 1));

/** One `chunk` event message carrying the Anthropic event `ev` (ES-B1 shape). */
export function chunkFrame(ev, p = padding()) {
  const payload = JSON.stringify({ bytes: Buffer.from(JSON.stringify(ev)).toString('base64'), p });
  return Buffer.from(codec.encode({ headers: { ':event-type': hs('chunk'), ':content-type': hs('application/json'), ':message-type': hs('event') }, body: fromUtf8(payload) }));
}

/** One `exception` message (ES-B2 shape): `type` is the lower-camel member name, e.g. throttlingException. */
export function exceptionFrame(type, payload) {
  return Buffer.from(codec.encode({ headers: { ':exception-type': hs(type), ':content-type': hs('application/json'), ':message-type': hs('exception') }, body: fromUtf8(JSON.stringify(payload)) }));
}

/** `frame` with its message CRC (last 4 bytes) flipped. */
export function corruptCrc(frame) {
  const b = Buffer.from(frame);
  b[b.length - 2] ^= 0x5a;
  return b;
}

/** 0-3 cut points inside a frame of `len` bytes, at awkward places (prelude, headers/payload, CRC). */
function awkwardCuts(len) {
  const n = Math.random() < 0.2 ? 0 : crypto.randomInt(1, 4);
  const pick = () => {
    const where = crypto.randomInt(0, 3);
    if (where === 0) return crypto.randomInt(1, 12); // inside the prelude or its CRC
    if (where === 1) return crypto.randomInt(12, Math.max(13, len - 4)); // headers or payload
    return crypto.randomInt(Math.max(1, len - 4), len); // inside the message CRC
  };
  return [...new Set(Array.from({ length: n }, pick))].filter((k) => k > 0 && k < len).sort((a, b) => a - b);
}

/**
 * Writes frames to `res` in pieces: each frame cut at 0-3 awkward offsets, and its tail sometimes
 * held back to go out in one write with the next frame(s). `flush()` before a pause and at the end,
 * so that held bytes never wait on a delay. Each piece is its own write (and TLS record).
 */
class SplitWriter {
  constructor(res, closedP, rec) {
    this.res = res;
    this.closedP = closedP;
    this.rec = rec;
    this.pending = Buffer.alloc(0);
  }

  async frame(buf) {
    const base = this.pending.length;
    const data = Buffer.concat([this.pending, buf]);
    this.pending = Buffer.alloc(0);
    let from = 0;
    for (const c of awkwardCuts(buf.length)) {
      await this.write(data.subarray(from, base + c));
      from = base + c;
    }
    const rest = data.subarray(from);
    if (Math.random() < 0.5 && rest.length < 65536) this.pending = Buffer.from(rest);
    else await this.write(rest);
  }

  async flush() {
    const p = this.pending;
    this.pending = Buffer.alloc(0);
    await this.write(p);
  }

  async write(b) {
    if (!b.length || this.res.destroyed) return;
    this.rec.writes++;
    if (this.rec.writeSizes.length < 100) this.rec.writeSizes.push(b.length);
    let more = true;
    try { more = this.res.write(Buffer.from(b)); } catch { return; }
    if (!more) await Promise.race([new Promise((r) => this.res.once('drain', r)), this.closedP]);
    else await new Promise((r) => setImmediate(r));
  }
}

// ---- scenarios -------------------------------------------------------------------------------
// The Claude scenarios shared with the Vertex mock (tests/mock/claude.mjs; `gzip` is Vertex-only:
// Bedrock does not compress these responses), plus Bedrock's errors: each returns {status, type,
// message, extra?, messageKey?} (an HTTP error with x-amzn-ErrorType `type`), or {events} where an
// event list may also hold {exception: type, payload} (an exception message) and {corrupt: event}
// (a chunk frame with a bad CRC).
const err = (status, type, message, extra = {}, messageKey = 'message') => ({ status, type, message, extra, messageKey });
const partial = (c) => [evStart(c), cbStart(0, { type: 'text', text: '' }), cbDelta(0, { type: 'text_delta', text: 'Partial' }), { delay: 50 }];
const THROTTLE_MSG = 'Too many requests, please wait before trying again.';
const { gzip: _gzip, ...SHARED } = CLAUDE_SCENARIOS;
void _gzip;
export const SCENARIOS = {
  ...SHARED, // text, choice, tools, thinking, …, midstream_error, truncated, truncated_reset
  // the x-amzn-ErrorType value carries the coral suffix here (take the text before the first ':')
  rate429: () => err(429, 'ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/', THROTTLE_MSG),
  tokens429: () => err(429, 'ThrottlingException', 'Too many tokens, please wait before trying again.'),
  rate429once: (c) => (c.seen === 0 ? SCENARIOS.rate429(c) : SCENARIOS.text(c)),
  quotaDay429: () => err(429, 'ThrottlingException', 'Too many tokens per day, please wait before trying again.'),
  bad400: () => err(400, 'ValidationException', 'prompt is too long: 300000 tokens > 200000 maximum'),
  validation400: () => err(400, 'ValidationException', 'Malformed input request: #: extraneous key [frobnicate] is not permitted, please reformat your input and try again.'),
  notfound404: () => err(404, 'ResourceNotFoundException', 'Model not found. Check the model identifier and try again.'),
  denied403: () => err(403, 'AccessDeniedException', "You don't have access to the model with the specified model ID."),
  unrecognized403: () => err(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.'),
  badsig403: () => err(403, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'),
  expired403: () => err(403, 'ExpiredTokenException', 'The security token included in the request is expired', {}, 'Message'),
  modelerror424: (c) => err(424, 'ModelErrorException', 'Received error from model: internal failure', { originalStatusCode: 500, resourceName: c.arn }),
  unavailable503: () => err(503, 'ServiceUnavailableException', 'Bedrock is unable to process your request.'),
  midstream_throttle: (c) => ({ events: [...partial(c), { exception: 'throttlingException', payload: { message: THROTTLE_MSG } }] }),
  corrupt_crc: (c) => ({ events: [...partial(c), { corrupt: cbDelta(0, { type: 'text_delta', text: ' corrupted' }) }, cbDelta(0, { type: 'text_delta', text: ' after' }), cbStop(0), ...evEnd('end_turn', 3)] }),
};

// ---- the mock --------------------------------------------------------------------------------
const BEDROCK_PATH = /^\/model\/([^/?]+)\/(invoke|invoke-with-response-stream|converse|converse-stream)$/;

export class MockBedrock {
  constructor(tls, keys = []) {
    this.tls = tls;
    this.caFile = tls.caFile;
    this.keys = new Map();
    for (const k of keys) this.addKey(k);
    this.anthropicVersion = DEFAULT_VERSION; // what the body's anthropic_version must be
    this.quiet = new Set(); // access key ids whose auth failures a test provokes on purpose (not violations)
    this.sigKey = crypto.randomBytes(32);
    this.sockets = new Set();
    this.seq = 0;
    this.clearKeyModes();
    this.reset();
  }

  /** Forget records and counters (the per-key modes stay). */
  reset() {
    this.requests = [];
    this.violations = [];
    this.authFailures = [];
    this.queue = [];
    this.markerSeen = new Map();
    this.faults = new Map(); // marker -> fault spec (tests/mock/faults.mjs)
  }

  /** Trust `k` (an awsKey()); with `{secret}` the mock believes a different secret (signatures will not match). */
  addKey(k, { secret, quiet = false } = {}) {
    this.keys.set(k.accessKeyId, { ...k, secretAccessKey: secret || k.secretAccessKey });
    if (quiet) this.quiet.add(k.accessKeyId);
  }

  /** Answer every request signed with `accessKeyId` with scenario `name` (null: back to markers / queue). */
  keyScenario(accessKeyId, name) {
    if (name == null) return void this.keyScenarios.delete(accessKeyId);
    if (!SCENARIOS[name]) throw new Error(`keyScenario: no scenario ${JSON.stringify(name)}`);
    this.keyScenarios.set(accessKeyId, name);
  }

  /** Disable (on) or re-enable `accessKeyId`: its requests answer 403 UnrecognizedClientException. */
  disableKey(accessKeyId, on = true) {
    if (on) this.disabledKeys.add(accessKeyId);
    else this.disabledKeys.delete(accessKeyId);
  }

  /** Let `accessKeyId` use only the base model ids in `ids` (null: every model). */
  modelAccess(accessKeyId, ids) {
    if (ids == null) this.allowedModels.delete(accessKeyId);
    else this.allowedModels.set(accessKeyId, new Set(ids.map(baseModelId)));
  }

  /** Drop every keyScenario / disableKey / modelAccess setting. */
  clearKeyModes() {
    this.keyScenarios = new Map(); // access key id -> scenario name
    this.disabledKeys = new Set(); // access key ids
    this.allowedModels = new Map(); // access key id -> Set of base model ids
  }

  sign(text) { return 'EqMock' + crypto.createHmac('sha256', this.sigKey).update(String(text)).digest('base64'); }
  verifySig(text, sig) { return typeof sig === 'string' && typeof text === 'string' && sig === this.sign(text); }

  /** Records whose scenario marker (the full `<<mock:…>>` text) is `marker`. */
  find(marker) { return this.requests.filter((r) => r.marker === marker); }
  last(marker) { const a = this.find(marker); return a[a.length - 1]; }

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
    return AWS_HOSTS.filter((h) => !h.includes('*')).map((h) => `${h}:443:127.0.0.1:${this.port}`).join(',');
  }

  listen() {
    this.server = https.createServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => {
      this.handle(req, res).catch((e) => {
        this.violations.push({ check: 'mock-internal', detail: e && e.stack || String(e) });
        try { if (!res.headersSent) sendAwsError(res, 500, 'InternalServerException', `mock failure: ${e && e.message}`); else res.destroy(); } catch { /* gone */ }
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
    const rec = {
      seq, at: Date.now(), method: req.method, host, region: hostRegion(host), path: req.url, headers: { ...req.headers },
      bodyText: raw.toString('utf8'), body: null, modelId: null, model: null, op: null, stream: false, auth: null, accessKeyId: null,
      scenario: null, marker: null, status: 0, errorType: null, refused: null, sent: [], frames: [], reply: null,
      violations: [], writes: 0, writeSizes: [], closedEarly: false, closedAt: null, endedAt: null,
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
    const answer = (status, type, message, extra, messageKey) => {
      rec.status = status;
      rec.errorType = type;
      rec.reply = awsErrorBody(message, extra, messageKey);
      return sendAwsError(res, status, type, message, extra, messageKey);
    };
    const violation = (check, detail, status = 400, type = 'ValidationException') => {
      record(check, detail);
      return answer(status, type, `mock check "${check}" failed: ${detail}`);
    };
    if (!rec.region) return violation('host', `request for unknown host ${JSON.stringify(host)} ${req.method} ${req.url}`, 404, 'UnknownOperationException');
    if (req.method !== 'POST') return violation('method', `${req.method} (want POST)`, 404, 'UnknownOperationException');
    const pm = BEDROCK_PATH.exec(req.url);
    if (!pm || pm[2].startsWith('converse')) return violation('path', `${req.url} is not /model/{modelId}/invoke | invoke-with-response-stream`, 404, 'UnknownOperationException');
    rec.op = pm[2];
    rec.stream = rec.op === 'invoke-with-response-stream';
    // SigV4 first, as AWS does (an unauthenticated request learns nothing else)
    const v = await verifySigV4({ method: req.method, url: req.url, headers: req.headers, body: raw }, (id) => this.keys.get(id), { region: rec.region });
    rec.auth = v.auth;
    if (!v.ok) {
      this.authFailures.push({ seq, check: v.check, detail: v.detail });
      if (!this.quiet.has(v.auth && v.auth.akid)) record(`sigv4-${v.check}`, v.detail);
      return answer(v.status, v.type, v.message);
    }
    const akid = rec.accessKeyId = v.auth.akid;
    rec.marker = (findMarker(parseOrNull(rec.bodyText), rec.bodyText) || [null])[0]; // records of refused requests carry it too
    if (this.disabledKeys.has(akid)) {
      this.authFailures.push({ seq, check: 'disabled', detail: `access key ${akid} is disabled (disableKey)` });
      rec.refused = 'disabled';
      return answer(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
    try {
      rec.modelId = decodeURIComponent(pm[1]);
    } catch { return violation('path-encoding', `model label ${pm[1]} is not valid percent-encoding`); }
    if (encodeLabel(rec.modelId) !== pm[1]) return violation('path-encoding', `model label ${JSON.stringify(pm[1])} should be ${JSON.stringify(encodeLabel(rec.modelId))} (every byte outside A-Za-z0-9-_.~ percent-encoded, upper-case hex)`);
    const mid = parseModelId(rec.modelId);
    if (!mid) return violation('model-id', `${JSON.stringify(rec.modelId)} is no Bedrock Claude model id or ARN: The provided model identifier is invalid.`);
    rec.model = mid;
    if ('x-api-key' in req.headers) return violation('client-credential', 'x-api-key header forwarded upstream');
    if ('anthropic-version' in req.headers) return violation('anthropic-version-header', 'anthropic-version header sent to Bedrock (it goes in the body)');
    if ('anthropic-beta' in req.headers) return violation('anthropic-beta-header', 'anthropic-beta header sent to Bedrock (betas go in the body as anthropic_beta)');
    if (!/^application\/json\b/i.test(String(req.headers['content-type'] || ''))) return violation('content-type', `Content-Type ${JSON.stringify(req.headers['content-type'])} (want application/json)`);
    if (rec.stream) {
      if (req.headers.accept !== EVENTSTREAM) return violation('accept', `Accept ${JSON.stringify(req.headers.accept)} (want ${EVENTSTREAM})`);
      if (req.headers['x-amzn-bedrock-accept'] !== 'application/json') return violation('bedrock-accept', `X-Amzn-Bedrock-Accept ${JSON.stringify(req.headers['x-amzn-bedrock-accept'])} (want application/json)`);
    } else if (req.headers.accept !== undefined && !['application/json', '*/*'].includes(req.headers.accept)) {
      return violation('accept', `Accept ${JSON.stringify(req.headers.accept)} on InvokeModel (want application/json)`);
    }
    try { rec.body = JSON.parse(rec.bodyText); } catch { return violation('body-json', 'the body is not JSON'); }
    const claude = mid.claude || 'claude-unknown';
    const opts = { platform: 'bedrock', stream: rec.stream, version: this.anthropicVersion, model: claude, verifySig: (t, s) => this.verifySig(t, s) };
    let bad = checkBody(rec.body, opts);
    // the key checker's probe (max_tokens an integer < 1): refused below, once the model id passed;
    // the rest of its body must be right
    const probe = bad && bad[0] === 'max_tokens' && Number.isInteger(rec.body.max_tokens) && rec.body.max_tokens < 1;
    if (probe) bad = checkBody({ ...rec.body, max_tokens: 1 << 20 }, opts);
    // scenario (chosen before the checks fail so that records carry the marker); a keyScenario
    // replaces what the marker selects and leaves the queue alone
    const mm = findMarker(rec.body, rec.bodyText);
    const forced = this.keyScenarios.get(akid);
    if (mm) [rec.marker, rec.scenario] = mm;
    else if (!forced && !probe) rec.scenario = this.queue.length ? this.queue.shift() : 'text';
    if (forced) rec.scenario = forced;
    const allowed = this.allowedModels.get(akid);
    if (allowed && !allowed.has(baseModelId(rec.modelId))) {
      rec.refused = 'model-access';
      return answer(403, 'AccessDeniedException', "You don't have access to the model with the specified model ID.");
    }
    if (bad) return violation(bad[0], bad[1]);
    // what real Bedrock refuses for a model id that is well-formed (no gateway bug by itself)
    if (mid.kind === 'base' && !ON_DEMAND.has(mid.claude)) {
      rec.refused = 'on-demand';
      return answer(400, 'ValidationException', `Invocation of model ID ${rec.modelId} with on-demand throughput isn’t supported. Retry your request with the ID or ARN of an inference profile that contains this model.`);
    }
    if ((mid.kind === 'profile' && !geoServes(mid.geo, rec.region)) || (mid.kind === 'arn' && mid.arnRegion !== rec.region)) {
      rec.refused = 'region';
      return answer(400, 'ValidationException', 'The provided model identifier is invalid.');
    }
    const refuseProbe = () => {
      rec.refused = 'max_tokens';
      return answer(400, 'ValidationException', `Malformed input request: #/max_tokens: ${rec.body.max_tokens} is not greater or equal to 1, please reformat your input and try again.`);
    };
    if (probe && !forced) return refuseProbe();
    const fn = SCENARIOS[rec.scenario];
    if (!fn) return violation('scenario', `no scenario ${JSON.stringify(rec.scenario)}`);
    const key = rec.marker || rec.scenario;
    const seen = this.markerSeen.get(key) || 0;
    this.markerSeen.set(key, seen + 1);
    const ctx = {
      seq, seen, body: rec.body, modelId: rec.modelId, region: rec.region, anthropicModel: claude,
      arn: `arn:aws:bedrock:${rec.region}::foundation-model/anthropic.${claude}`,
      msgId: `msg_bdrk_${b64u(crypto.randomBytes(18))}`, label: 'Bedrock', tag: 'bdrk',
      sign: (t) => this.sign(t), closed: () => closed,
    };
    const out = fn(ctx);
    const fault = rec.marker && this.faults.get(rec.marker);
    // fixed padding: a faulty answer has the same layout every time, so byte offsets carry over
    if (fault) return playFault(rec, res, fault, out.events || [], { contentType: EVENTSTREAM, event: (e) => chunkFrame(e, 'pad') });
    if (out.status) return answer(out.status, out.type, out.message, out.extra, out.messageKey);
    if (probe) return refuseProbe(); // a key's error scenario answers the probe, any other gives way
    if (!rec.stream) {
      if (out.gen) { // never answers: wait for the gateway to give up
        await new Promise((r) => res.on('close', r));
        return undefined;
      }
      const errEv = out.events.find((e) => e.type === 'error' || e.exception);
      if (errEv) {
        const status = errEv.exception ? 429 : 424;
        return answer(status, errEv.exception ? 'ThrottlingException' : 'ModelErrorException',
          errEv.exception ? errEv.payload.message : `Received error from model: ${errEv.error.message}`, errEv.exception ? {} : { originalStatusCode: 529 });
      }
      const events = out.events.filter((e) => e.type).concat(out.events.filter((e) => e.corrupt).map((e) => e.corrupt));
      rec.reply = assemble(events);
      rec.status = 200;
      const u = rec.reply.usage || {};
      const buf = Buffer.from(JSON.stringify(rec.reply));
      res.writeHead(200, {
        'content-type': 'application/json', 'content-length': String(buf.length), 'x-amzn-requestid': crypto.randomUUID(),
        'x-amzn-bedrock-invocation-latency': String(crypto.randomInt(300, 3000)),
        'x-amzn-bedrock-input-token-count': String(u.input_tokens || 0), 'x-amzn-bedrock-output-token-count': String(u.output_tokens || 0),
        'x-amzn-bedrock-cache-read-input-token-count': String(u.cache_read_input_tokens || 0),
        'x-amzn-bedrock-cache-write-input-token-count': String(u.cache_creation_input_tokens || 0),
      });
      res.end(buf);
      rec.endedAt = Date.now();
      return undefined;
    }
    return this.stream(rec, res, out, () => closed);
  }

  async stream(rec, res, out, isClosed) {
    rec.status = 200;
    res.writeHead(200, { 'content-type': EVENTSTREAM, 'x-amzn-requestid': crypto.randomUUID(), 'x-amzn-bedrock-content-type': 'application/json' });
    res.flushHeaders();
    if (res.socket) res.socket.setNoDelay(true);
    const closedP = new Promise((r) => res.once('close', r));
    const w = new SplitWriter(res, closedP, rec);
    const t0 = Date.now();
    let firstByte = null;
    let inTokens = 0;
    let outTokens = 0;
    let broken = false; // after a corrupt frame: later events are recorded in rec.afterCorrupt
    const source = out.gen ? out.gen() : (async function* () { yield* out.events; })();
    for await (const e of source) {
      if (isClosed()) break;
      if (e.delay) {
        await w.flush();
        await Promise.race([sleep(e.delay), closedP]);
        continue;
      }
      let frame;
      if (e.exception) {
        frame = exceptionFrame(e.exception, e.payload);
        rec.frames.push({ kind: 'exception', type: e.exception, payload: e.payload });
      } else if (e.type === 'error') {
        const payload = { message: `The model returned an error: ${e.error.message}`, originalStatusCode: 529, originalMessage: JSON.stringify(e) };
        frame = exceptionFrame('modelStreamErrorException', payload);
        rec.frames.push({ kind: 'exception', type: 'modelStreamErrorException', payload });
      } else if (e.corrupt) {
        frame = corruptCrc(chunkFrame(e.corrupt));
        rec.frames.push({ kind: 'corrupt', event: e.corrupt });
        broken = true;
      } else {
        let ev = e;
        if (ev.type === 'message_start') inTokens = ev.message.usage.input_tokens;
        if (ev.type === 'message_delta' && ev.usage) outTokens = ev.usage.output_tokens;
        if (ev.type === 'message_stop') {
          ev = { ...ev, 'amazon-bedrock-invocationMetrics': { inputTokenCount: inTokens, outputTokenCount: outTokens, invocationLatency: Date.now() - t0 + 1, firstByteLatency: (firstByte || Date.now()) - t0 + 1 } };
        }
        frame = chunkFrame(ev);
        rec.frames.push({ kind: 'chunk', event: ev });
        if (broken) (rec.afterCorrupt = rec.afterCorrupt || []).push(ev);
        else rec.sent.push(ev);
      }
      if (firstByte === null) firstByte = Date.now();
      await w.frame(frame);
    }
    await w.flush();
    if (!out.gen) rec.reply = rec.sent.some((x) => x.type === 'message_stop') || rec.frames.some((f) => f.kind !== 'chunk') ? assemble(rec.sent) : null;
    if (isClosed()) return;
    rec.endedAt = Date.now();
    if (out.end === 'destroy') {
      await sleep(20);
      res.socket && res.socket.destroy();
      return;
    }
    res.end();
  }
}

function parseOrNull(text) {
  try { return JSON.parse(text); } catch { return null; }
}

function sendAwsError(res, status, type, message, extra = {}, messageKey = 'message') {
  const buf = Buffer.from(JSON.stringify(awsErrorBody(message, extra, messageKey)));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(buf.length), 'x-amzn-errortype': type, 'x-amzn-requestid': crypto.randomUUID() });
  res.end(buf);
}

/** Start the mock (TLS material made in `dir` unless `tls` is given) trusting `keys`. */
export async function startMockBedrock({ dir, tls, keys = [] } = {}) {
  const t = tls || await makeTls(dir, AWS_HOSTS);
  const m = new MockBedrock(t, keys);
  await m.listen();
  return m;
}

/**
 * Everything a Bedrock test needs: TLS material in `dir`, access key(s), the mock, and the gateway
 * environment (AWS_CREDENTIALS for the first key, UPSTREAM_CONNECT_TO, UPSTREAM_CA_BUNDLE).
 * Returns {mock, key, keys, env, dir}.
 */
export async function bedrockSetup({ dir, keys, region = 'us-east-1', token = false } = {}) {
  const ks = keys || [awsKey({ region, token })];
  const mock = await startMockBedrock({ dir, keys: ks });
  const key = ks[0];
  return {
    mock, key, keys: ks, dir,
    env: { AWS_CREDENTIALS: key.credentials(), UPSTREAM_CONNECT_TO: mock.connectTo, UPSTREAM_CA_BUNDLE: mock.caFile },
  };
}

// Upstream errors from the mock Bedrock Runtime and what the client sees (SPEC §6, §8, §11;
// wire-formats §4.5, §7.2, §7.4): the shared error scenarios (tests/lib/scenarios.mjs: 400, 404,
// mid-stream error, truncated streams, 429 → 429 + Retry-After, one 429 then success, overloaded →
// 503, the same on /messages) plus Bedrock's own: errors named by x-amzn-ErrorType
// (AccessDenied → 403 model_access_denied; UnrecognizedClient / InvalidSignature / ExpiredToken →
// 502 upstream_auth_failed; Validation → 400; ModelError 424 → 502; Throttling "too many tokens" →
// 429 with a computed Retry-After, since Bedrock sends none), and exception messages inside the event
// stream (a throttlingException, a frame with a corrupted CRC) → an error event, then [DONE]. Errors
// that cool or revoke the only key each get a fresh gateway with its own state store.
import { test, ok, equal, match, fail } from '../lib/tap.mjs';
import { requireBin, fetchText, isOpenAIError } from '../lib/harness.mjs';
import { sharedTests, fresh, noViolations } from '../lib/scenarios.mjs';
import { mark } from '../mock/claude.mjs';
import { MODEL, OpenAI, importError, bedrockImportError, awsProvider, client, postStream, chunksOf, joinContent } from '../mock/gateway.mjs';

const P = awsProvider();
const chatUrl = (l = P.L) => `${l.url}${P.base}/chat/completions`;
const user = (text) => [{ role: 'user', content: text }];
const post = (l, body) => fetchText(chatUrl(l), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), timeout: 90000 });
const errOf = (r) => (r.json && r.json.error) || {};

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });
if (bedrockImportError) test('the Bedrock mock loads', () => { fail('import tests/mock/bedrock.mjs (run `npm ci` in tests/)', bedrockImportError.stack); });

test('start the mock Bedrock endpoint and lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  P.G = await P.setup();
  P.L = await P.start();
  ok(P.L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

sharedTests(P, 'errors');

test('mid-stream throttlingException message → an error event, then [DONE]', async () => {
  const m = mark('midstream_throttle', 'raw');
  const s = await postStream(chatUrl(), { model: MODEL, stream: true, messages: user(`Go ${m}`) });
  equal(s.status, 200, 'status 200 (the stream had started)');
  const n = s.events.length;
  equal(s.events[n - 1] && s.events[n - 1].data, '[DONE]', '[DONE] last');
  const errEv = s.events[n - 2] || {};
  ok(errEv.json && isOpenAIError(errEv.json) && !('choices' in errEv.json), 'the event before [DONE] is {"error":{…}} without choices', s.events.map((e) => e.data));
  equal(s.events.filter((e) => e.json && e.json.error).length, 1, 'one error event');
  equal(joinContent(chunksOf(s).filter((c) => c.choices)), 'Partial', 'the content before the exception arrived');
  ok(!chunksOf(s).some((c) => c.choices && c.choices.some((ch) => ch.finish_reason)), 'no finish chunk');
  const rec = P.mock.last(m) || { frames: [] };
  ok(rec.frames.some((f) => f.kind === 'exception' && f.type === 'throttlingException'), 'the mock sent a throttlingException message');
  let got = '';
  let e = null;
  try {
    const st = await client(P.L, P.base).chat.completions.create({ model: MODEL, stream: true, messages: user(`Go ${mark('midstream_throttle', 'sdk')}`) });
    for await (const c of st) got += (c.choices[0] && c.choices[0].delta && c.choices[0].delta.content) || '';
  } catch (x) { e = x; }
  ok(e instanceof OpenAI.APIError, 'the SDK raises APIError mid-stream', e && e.message);
  equal(got, 'Partial', 'after the partial content');
  noViolations(P, m);
});

test('a frame with a corrupted CRC → an error event, then [DONE]; nothing after it is delivered', async () => {
  const m = mark('corrupt_crc', 'raw');
  const s = await postStream(chatUrl(), { model: MODEL, stream: true, messages: user(`Go ${m}`) });
  equal(s.status, 200, 'status 200 (the stream had started)');
  const n = s.events.length;
  equal(s.events[n - 1] && s.events[n - 1].data, '[DONE]', '[DONE] last');
  const errEv = s.events[n - 2] || {};
  ok(errEv.json && isOpenAIError(errEv.json) && !('choices' in errEv.json), 'the event before [DONE] is {"error":{…}}', s.events.map((e) => e.data));
  equal(joinContent(chunksOf(s).filter((c) => c.choices)), 'Partial', 'only the content of the frames before the corrupted one');
  ok(!chunksOf(s).some((c) => c.choices && c.choices.some((ch) => ch.finish_reason)), 'no finish chunk (the valid message_stop after the bad frame is not used)');
  const rec = P.mock.last(m) || { frames: [] };
  ok(rec.frames.some((f) => f.kind === 'corrupt'), 'the mock sent the corrupted frame');
  const m2 = mark('corrupt_crc', 'ns');
  const r = await post(P.L, { model: MODEL, messages: user(`Go ${m2}`) });
  equal(r.status, 200, 'non-stream: InvokeModel answers JSON (no frames): 200', r.body);
  noViolations(P, m);
});

/** One error scenario on a fresh gateway: the OpenAI answer, checked by `check(r, l)`. */
function mapping(title, scen, check) {
  test(title, async () => {
    await fresh(P, async (l) => {
      const m = mark(scen, 'map');
      const r = await post(l, { model: MODEL, messages: user(`Go ${m}`) });
      ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
      const recs = P.mock.find(m);
      ok(recs.length >= 1 && recs.length <= 3, 'between 1 and 3 upstream attempts', recs.map((x) => x.status));
      ok(recs.length && recs.every((x) => x.status >= 400 && x.errorType && x.scenario === scen), 'the mock answered the scripted error each time', recs.map((x) => [x.status, x.errorType]));
      await check(r, l, m);
      ok(!r.body.includes(P.G.key.secretAccessKey) && !r.body.includes(P.G.key.accessKeyId), 'no credential in the error', r.body);
    });
  }, { timeout: 120000 });
}

mapping('403 AccessDeniedException → 403 model_access_denied', 'denied403', (r) => {
  equal(r.status, 403, 'status 403', r.body);
  equal(errOf(r).code, 'model_access_denied', 'code model_access_denied');
  equal(errOf(r).type, 'permission_error', 'type permission_error (wire-formats §7.4)');
});

for (const [scen, name] of [['unrecognized403', 'UnrecognizedClientException'], ['badsig403', 'InvalidSignatureException'], ['expired403', 'ExpiredTokenException']]) {
  mapping(`403 ${name} → 502 upstream_auth_failed (our credential is wrong, not the client's)`, scen, (r) => {
    equal(r.status, 502, 'status 502', r.body);
    equal(errOf(r).code, 'upstream_auth_failed', 'code upstream_auth_failed');
    equal(errOf(r).type, 'server_error', 'type server_error');
  });
}

mapping('400 ValidationException → 400 invalid_request_error with the message', 'validation400', (r) => {
  equal(r.status, 400, 'status 400', r.body);
  equal(errOf(r).type, 'invalid_request_error', 'type invalid_request_error');
  match(errOf(r).message, /extraneous key \[frobnicate\]/, 'Bedrock\'s message is kept');
});

mapping('424 ModelErrorException → 502', 'modelerror424', (r) => {
  equal(r.status, 502, 'status 502', r.body);
  equal(errOf(r).type, 'server_error', 'type server_error');
});

mapping('503 ServiceUnavailableException → 503 server_is_overloaded', 'unavailable503', (r) => {
  equal(r.status, 503, 'status 503', r.body);
  equal(errOf(r).code, 'server_is_overloaded', 'code server_is_overloaded');
});

mapping('429 ThrottlingException "Too many tokens" (plain x-amzn-ErrorType) → 429 with a computed Retry-After', 'tokens429', (r) => {
  equal(r.status, 429, 'status 429', r.body);
  equal(errOf(r).code, 'rate_limit_exceeded', 'code rate_limit_exceeded');
  match(r.headers['retry-after'], /^[1-9][0-9]*$/, 'Retry-After in whole seconds (Bedrock sent none)');
});

sharedTests(P, 'end');

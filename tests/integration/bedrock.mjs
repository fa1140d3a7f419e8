// Claude on AWS Bedrock through the OpenAI API (BASE/aws/claude/v1/chat/completions) with the
// official `openai` client, against the mock Bedrock Runtime (tests/mock/bedrock.mjs) reached over
// TLS under the real hostname: the shared scenario list (tests/lib/scenarios.mjs: text, tools,
// reasoning, usage, stops, refusals, incremental delivery, heartbeats, client disconnects, models,
// aliases, n fan-out, whitespace stops, a 2 MB stream, the info page counters) with every request's
// SigV4 signature recomputed by the mock with AWS's signer, plus what only Bedrock has: the
// event-stream framing cut at awkward offsets, the model id in the URL (inference-profile prefix
// by key region, base ids for the models that predate profiles, Bedrock ids and ARNs verbatim,
// `:` as %3A and `/` as %2F on the wire).
import { test, ok, equal, deepEqual, match, fail, diag } from '../lib/tap.mjs';
import { requireBin } from '../lib/harness.mjs';
import { sharedTests, noViolations } from '../lib/scenarios.mjs';
import { mark } from '../mock/claude.mjs';
import { MODEL, OpenAI, importError, bedrockImportError, awsProvider, bedrockPath, client, collect, joinContent } from '../mock/gateway.mjs';

const P = awsProvider();
const sdk = () => client(P.L, P.base);
const ask = (model, tag) => sdk().chat.completions.create({ model, messages: [{ role: 'user', content: `Hi there ${mark('text', tag)}` }] });

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });
if (bedrockImportError) test('the Bedrock mock loads', () => { fail('import tests/mock/bedrock.mjs (run `npm ci` in tests/)', bedrockImportError.stack); });

test('start the mock Bedrock endpoint and lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  P.G = await P.setup();
  P.L = await P.start({ HEARTBEAT_S: 1, MODEL_ALIASES: 'gpt-4o=claude-sonnet-4-5' });
  ok(P.L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

test('concurrent and sequential requests are each signed correctly (SigV4 recomputed by the mock)', async () => {
  const conc = await Promise.allSettled(Array.from({ length: 6 }, (_, i) =>
    (i % 2 ? sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Hello ${mark('text', `sig-c${i}`)}` }] }).then(collect)
      : sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `Hello ${mark('text', `sig-c${i}`)}` }] }))));
  equal(conc.filter((r) => r.status === 'fulfilled').length, 6, '6 concurrent requests succeed', conc.filter((r) => r.status === 'rejected').map((r) => r.reason && r.reason.message));
  const recs = P.mock.requests.filter((r) => /sig-c\d/.test(r.marker || ''));
  equal(recs.length, 6, 'the mock saw all 6 requests');
  ok(recs.every((r) => r.auth && r.auth.expected && r.auth.signature === r.auth.expected), 'every signature matches the one SignatureV4 computes', recs.map((r) => r.auth && { sent: r.auth.signature, want: r.auth.expected }));
  const k = P.G.key;
  ok(recs.every((r) => r.auth.akid === k.accessKeyId && r.auth.scopeRegion === 'us-east-1' && r.auth.scopeService === 'bedrock'), 'Credential: our key, us-east-1, bedrock', recs.map((r) => r.auth && [r.auth.akid, r.auth.scopeRegion, r.auth.scopeService]));
  ok(recs.every((r) => r.auth.signedHeaders.split(';').includes('host') && r.auth.signedHeaders.split(';').includes('x-amz-date')), 'host and x-amz-date are signed', recs.map((r) => r.auth.signedHeaders));
  ok(recs.every((r) => !('x-amz-security-token' in r.headers)), 'no X-Amz-Security-Token for a key without a session token');
  ok(recs.every((r) => r.host === 'bedrock-runtime.us-east-1.amazonaws.com'), 'host bedrock-runtime.us-east-1.amazonaws.com', recs.map((r) => r.host));
  diag(`SignedHeaders: ${[...new Set(recs.map((r) => r.auth.signedHeaders))].join(' | ')}`);
  noViolations(P);
}, { timeout: 60000 });

sharedTests(P, 'chat');

test('event-stream frames cut at awkward offsets and grouped are reassembled exactly', async () => {
  const m = mark('tools', 'frames');
  const s = await sdk().chat.completions.create({ model: MODEL, stream: true, tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }, { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } }], messages: [{ role: 'user', content: `Weather and time? ${m}` }] });
  const chunks = (await collect(s)).map((x) => x.chunk);
  const rec = P.mock.last(m) || { frames: [], writeSizes: [] };
  diag(`${rec.frames.length} frames in ${rec.writes} writes; first write sizes: ${rec.writeSizes.slice(0, 30).join(' ')}`);
  ok(rec.frames.length >= 15 && rec.writes > 0, 'the mock wrote the frames', { frames: rec.frames.length, writes: rec.writes });
  equal(joinContent(chunks), 'Checking both.', 'text');
  const args = chunks.flatMap((c) => c.choices).flatMap((ch) => (ch.delta && ch.delta.tool_calls) || []).map((t) => (t.function && t.function.arguments) || '').join('');
  equal(args, '{"city": "Paris"}{"tz":"Europe/Paris"}', 'tool arguments, fragment by fragment');
  deepEqual(chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason), ['tool_calls'], 'finish tool_calls');
  noViolations(P, m);
});

test('models released before Claude 3.5 Sonnet v2 use their base id; later ones the us. profile', async () => {
  const cases = [
    ['claude-3-haiku-20240307', 'anthropic.claude-3-haiku-20240307-v1:0'],
    ['claude-3-5-sonnet-20240620', 'anthropic.claude-3-5-sonnet-20240620-v1:0'],
    ['claude-3-opus-20240229', 'anthropic.claude-3-opus-20240229-v1:0'],
    ['claude-3-sonnet-20240229', 'anthropic.claude-3-sonnet-20240229-v1:0'],
    ['claude-3-5-sonnet-20241022', 'us.anthropic.claude-3-5-sonnet-20241022-v2:0'],
    ['claude-3-5-haiku-20241022', 'us.anthropic.claude-3-5-haiku-20241022-v1:0'],
    ['claude-3-7-sonnet-20250219', 'us.anthropic.claude-3-7-sonnet-20250219-v1:0'],
    ['claude-sonnet-4-20250514', 'us.anthropic.claude-sonnet-4-20250514-v1:0'],
    ['claude-opus-4-1-20250805', 'us.anthropic.claude-opus-4-1-20250805-v1:0'],
  ];
  for (const [i, [name, id]] of cases.entries()) {
    const tag = `legacy${i}`;
    let r = null;
    try { r = await ask(name, tag); } catch (e) { fail(`${name}: request`, `${e.message}; upstream path ${(P.mock.last(mark('text', tag)) || {}).path}`); continue; }
    equal((P.mock.last(mark('text', tag)) || {}).path, bedrockPath(id), `${name} → ${id}`);
    equal(r.model, name, `${name}: model echoed`);
  }
  noViolations(P);
});

test('Bedrock ids and ARNs go verbatim, percent-encoded on the wire (: as %3A, / as %2F)', async () => {
  const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0';
  const cases = [
    'anthropic.claude-3-haiku-20240307-v1:0',
    'us.anthropic.claude-haiku-4-5-20251001-v1:0',
    'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
    arn,
  ];
  for (const [i, id] of cases.entries()) {
    const tag = `verbatim${i}`;
    let r = null;
    try { r = await ask(id, tag); } catch (e) { fail(`${id}: request`, `${e.message}; upstream path ${(P.mock.last(mark('text', tag)) || {}).path}`); continue; }
    const rec = P.mock.last(mark('text', tag)) || {};
    equal(rec.path, bedrockPath(id), `${id} → ${bedrockPath(id)}`);
    equal(rec.modelId, id, `${id}: the mock decoded the same id`);
    equal(r.model, id, `${id}: model echoed`);
  }
  equal((P.mock.last(mark('text', 'verbatim3')) || {}).path, '/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke', 'the ARN path, spelled out');
  // the stream operation signs the same way
  const ms = mark('text', 'verbatim-arn-st');
  try {
    const s = await sdk().chat.completions.create({ model: arn, stream: true, messages: [{ role: 'user', content: `Hi there ${ms}` }] });
    equal(joinContent((await collect(s)).map((x) => x.chunk)), P.hello, 'ARN stream: answered');
  } catch (e) { fail('ARN stream request', e.message); }
  equal((P.mock.last(ms) || {}).path, bedrockPath(arn, true), 'ARN stream path');
  // a base id Bedrock serves only through a profile: sent as given, and Bedrock's refusal comes back
  const base = 'anthropic.claude-sonnet-4-5-20250929-v1:0';
  let err = null;
  try { await ask(base, 'verbatim-base'); } catch (e) { err = e; }
  const rec = P.mock.last(mark('text', 'verbatim-base')) || {};
  equal(rec.path, bedrockPath(base), `${base} sent verbatim`);
  equal(rec.refused, 'on-demand', 'the mock refused it as Bedrock does (on-demand throughput not supported)');
  ok(err instanceof OpenAI.BadRequestError, '→ 400 BadRequestError', err && `${err.status} ${err.message}`);
  match(err && err.message, /on-demand throughput/, 'Bedrock\'s message is kept');
  noViolations(P);
});

sharedTests(P, 'report');
sharedTests(P, 'end');

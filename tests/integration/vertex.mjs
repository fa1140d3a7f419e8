// Claude on Vertex AI through the OpenAI API (BASE/gcp/claude/v1/chat/completions) with the
// official `openai` client, against the mock Google endpoints (tests/mock/vertex.mjs) reached
// over TLS under the real hostnames: the shared scenario list (tests/lib/scenarios.mjs: text,
// tools, reasoning, usage, stops, refusals, incremental delivery, heartbeats, client disconnects,
// models, aliases, n fan-out, whitespace stops, a 2 MB stream, the info page counters) plus what
// only Vertex has: one OAuth token for many requests, and gzip-encoded upstream answers.
import { test, ok, equal, deepEqual, fail } from '../lib/tap.mjs';
import { requireBin } from '../lib/harness.mjs';
import { sharedTests, noViolations } from '../lib/scenarios.mjs';
import { mark } from '../mock/vertex.mjs';
import { MODEL, importError, gcpProvider, client, collect, joinContent } from '../mock/gateway.mjs';

const P = gcpProvider();
const sdk = () => client(P.L, P.base);

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });

test('start the mock Google endpoints and lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  P.G = await P.setup();
  P.L = await P.start({ HEARTBEAT_S: 1, MODEL_ALIASES: 'gpt-4o=claude-sonnet-4-5' });
  ok(P.L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

test('several requests, concurrent and sequential, share ONE OAuth token', async () => {
  const G = P.G;
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
  noViolations(P);
}, { timeout: 60000 });

sharedTests(P, 'chat');

test('gzip-encoded upstream (stream and non-stream)', async () => {
  const m = mark('gzip', 'st');
  const s = await sdk().chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Zip ${m}` }] });
  const chunks = (await collect(s)).map((x) => x.chunk);
  equal(joinContent(chunks), 'Gzipped hello.', 'stream content');
  deepEqual(chunks.flatMap((c) => c.choices).filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason), ['stop'], 'stream finish');
  const m2 = mark('gzip', 'ns');
  const r = await sdk().chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `Zip ${m2}` }] });
  equal(r.choices[0].message.content, 'Gzipped hello.', 'non-stream content');
  noViolations(P, m);
});

sharedTests(P, 'report');
sharedTests(P, 'end');

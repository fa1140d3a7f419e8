// Key pools (issue 6, SPEC §7-§8, §11): several Vertex service accounts and Bedrock access keys
// against the mocks, each answering on its own (the mocks' keyScenario / disableAccount /
// disableKey / modelAccess). What a client sees (the official openai package and raw HTTP), which
// key the mock saw each attempt come from, and what the shared state says on the info page and
// /metrics, read through different gateway processes and across a restart.
import crypto from 'node:crypto';
import { test, ok, equal, deepEqual, match, onCleanup } from '../lib/tap.mjs';
import { requireBin, tmpDir, startLighttpd, fetchText, sleep, run, cgiEnv, baseEnv, BIN } from '../lib/harness.mjs';
import { makeTls, GOOGLE_HOSTS, AWS_HOSTS } from '../mock/tls.mjs';
import { mark, serviceAccount, startMockGoogle } from '../mock/vertex.mjs';
import { MODEL, client, anthropicClient, postStream, chunksOf, joinContent, bedrock, bedrockImportError, status } from '../mock/gateway.mjs';
import { sdkError } from '../lib/scenarios.mjs';

const user = (text) => [{ role: 'user', content: text }];
const hash12 = (s) => crypto.createHash('sha256').update(s).digest('hex').slice(0, 12);
const OPUS = 'claude-opus-4-1';
const VERTEX_HELLO = 'Hello from the Vertex mock.';
const BEDROCK_HELLO = 'Hello from the Bedrock mock.';

const A = serviceAccount({ project: 'oai-keys-a' });
const B = serviceAccount({ project: 'oai-keys-b' });
let K1, K2, K3;
let G, W, tls;

/** The environment reaching both mocks, plus `extra`. */
const envOf = (extra = {}) => ({
  UPSTREAM_CONNECT_TO: `${G.connectTo},${W.connectTo}`, UPSTREAM_CA_BUNDLE: tls.caFile, LOG_LEVEL: 'debug', ...extra,
});

/** Run fn(gateway) on a fresh gateway (own state store unless opts.stateDir), stopped afterwards. */
async function gw(env, fn, opts = {}) {
  G.reset();
  W.reset();
  G.clearKeyModes();
  W.clearKeyModes();
  const l = await startLighttpd({ ...opts, env: envOf(env) });
  try { return await fn(l); } finally { await l.stopAndClean(); }
}

async function waitFor(pred, ms = 10000, step = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) return null;
    await sleep(step);
  }
}

async function metrics(l) {
  return (await fetchText(`${l.url}/metrics`)).body;
}

const who = (recs, field) => recs.map((r) => [r[field], r.status]);
const probes = () => W.requests.filter((r) => r.body && r.body.max_tokens === -1 || r.refused === 'max_tokens');

test('start both mocks on one CA', async () => {
  if (!requireBin()) throw new Error('no binary');
  if (!bedrock) throw new Error(`the Bedrock mock did not load: ${bedrockImportError && bedrockImportError.message}`);
  tls = await makeTls(tmpDir('keys-tls-'), [...GOOGLE_HOSTS, ...AWS_HOSTS]);
  G = await startMockGoogle({ tls, accounts: [A, B] });
  onCleanup(() => G.close());
  [K1, K2, K3] = [bedrock.awsKey(), bedrock.awsKey(), bedrock.awsKey()];
  W = await bedrock.startMockBedrock({ tls, keys: [K1, K2, K3] });
  onCleanup(() => W.close());
  ok(G.port > 0 && W.port > 0, 'listening');
}, { timeout: 30000 });

test('two Vertex keys, one answering 429: the request moves to the other, the cooling key is skipped, then comes back', async () => {
  await gw({ GCP_CREDENTIALS: `${A.credentials()},${B.credentials()}` }, async (l) => {
    G.keyScenario(A.email, 'rate429');
    const m1 = mark('text', 'k429a');
    const r1 = await client(l).chat.completions.create({ model: MODEL, messages: user(`Hi ${m1}`) });
    equal(r1.choices[0].message.content, VERTEX_HELLO, 'the client got one clean answer');
    deepEqual(who(G.find(m1), 'account'), [[A.email, 429], [B.email, 200]], 'upstream: A answered 429, B answered');
    const m2 = mark('text', 'k429b');
    await client(l).chat.completions.create({ model: MODEL, messages: user(`Hi ${m2}`) });
    deepEqual(who(G.find(m2), 'account'), [[B.email, 200]], 'the next request skips the cooling key');
    const s = await status(l);
    const blk = s && s['gcp-claude'];
    ok(blk, 'gcp-claude block', s);
    equal(blk && blk.activeKeys, 2, 'activeKeys 2 (cooling is not revoked)');
    equal(blk && blk.coolingKeys, 1, 'coolingKeys 1');
    const page = await fetchText(`${l.url}/`, { headers: { accept: 'text/html' } });
    match(page.body, /<p><strong>GCP Claude \(Sonnet\)<\/strong>: no wait \/ <strong>GCP Claude \(Opus\)<\/strong>: no wait<\/p>/, 'the HTML page has the seed\'s line of wait times');
    G.keyScenario(A.email, null);
    await sleep(1300); // the first cooldown is 1 s
    const m3 = mark('text', 'k429c');
    await client(l).chat.completions.create({ model: MODEL, messages: user(`Hi ${m3}`) });
    deepEqual(who(G.find(m3), 'account'), [[A.email, 200]], 'after its cooldown the key is back (least recently used first)');
    const log = l.errorLog();
    match(log, new RegExp(`key ${hash12(A.email)} \\(gcp\\): HTTP 429, cooling gcp-claude for 1000 ms`), 'the decision is logged with the key\'s hash');
    ok(!log.includes(A.email) && !log.includes('PRIVATE KEY'), 'no account email or private key in the log');
  });
}, { timeout: 60000 });

test('three Bedrock keys: a revoked key (403) and an exhausted one (daily quota) are skipped from then on', async () => {
  await gw({ AWS_CREDENTIALS: [K1, K2, K3].map((k) => k.credentials()).join(',') }, async (l) => {
    W.disableKey(K1.accessKeyId);
    W.keyScenario(K2.accessKeyId, 'quotaDay429');
    const m1 = mark('text', 'kq1');
    const r1 = await client(l, '/proxy/aws/claude/v1').chat.completions.create({ model: MODEL, messages: user(`Hi ${m1}`) });
    equal(r1.choices[0].message.content, BEDROCK_HELLO, 'answered by the third key');
    deepEqual(who(W.find(m1), 'accessKeyId'), [[K1.accessKeyId, 403], [K2.accessKeyId, 429], [K3.accessKeyId, 200]], 'upstream: 403, 429, 200 - three attempts, three keys');
    for (const tag of ['kq2', 'kq3']) {
      const m = mark('text', tag);
      await client(l, '/proxy/aws/claude/v1').chat.completions.create({ model: MODEL, messages: user(`Hi ${m}`) });
      deepEqual(who(W.find(m), 'accessKeyId'), [[K3.accessKeyId, 200]], `${tag}: only the healthy key`);
    }
    const s = await status(l);
    const blk = s && s['aws-claude'] || {};
    equal(blk.activeKeys, 1, 'activeKeys 1');
    equal(blk.revokedKeys, 1, 'revokedKeys 1');
    equal(blk.overQuotaKeys, 1, 'overQuotaKeys 1');
    equal(s && s.awsKeys, 3, 'awsKeys 3');
    const done = /oai_fcgi_requests_total\{route="chat",provider="aws",status="200"\} 3/;
    const text = await waitFor(async () => { const t = await metrics(l); return done.test(t) ? t : null; }, 3000) || await metrics(l);
    match(text, /oai_fcgi_keys_by_state\{provider="aws",state="revoked"\} 1/, 'metrics: one revoked key');
    match(text, /oai_fcgi_keys_by_state\{provider="aws",state="over_quota"\} 1/, 'metrics: one key over quota');
    match(text, /oai_fcgi_requests_total\{route="chat",provider="aws",status="200"\} 3/, 'metrics: three answered chat requests');
    match(text, /oai_fcgi_upstream_latency_seconds_count\{provider="aws"\} 5/, 'metrics: five upstream attempts in the latency histogram');
    const log = l.errorLog();
    match(log, new RegExp(`key ${hash12(K1.accessKeyId)} \\(aws\\): HTTP 403, revoked`), 'revocation logged with the key hash');
    match(log, new RegExp(`key ${hash12(K2.accessKeyId)} \\(aws\\): HTTP 429, over quota`), 'quota logged with the key hash');
    ok(![K1, K2, K3].some((k) => log.includes(k.secretAccessKey)), 'no secret in the log');
  });
}, { timeout: 60000 });

test('every key rate-limited: 429 with Retry-After after at most 3 attempts; a stream waits in the queue with heartbeats and is answered', async () => {
  await gw({ GCP_CREDENTIALS: A.credentials(), HEARTBEAT_S: 1, MAX_QUEUE_WAIT_S: 2 }, async (l) => {
    G.keyScenario(A.email, 'rate429');
    const m1 = mark('text', 'q1');
    const r = await fetchText(`${l.url}/proxy/gcp/claude/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: user(`Hi ${m1}`) }), timeout: 30000 });
    equal(r.status, 429, 'status 429', r.body);
    match(r.headers['retry-after'] || '', /^[1-9][0-9]*$/, 'Retry-After in whole seconds');
    const n = G.find(m1).length;
    ok(n >= 1 && n <= 3, 'between 1 and 3 upstream attempts', n);
  });
  await gw({ GCP_CREDENTIALS: A.credentials(), HEARTBEAT_S: 1, MAX_QUEUE_WAIT_S: 20 }, async (l) => {
    G.keyScenario(A.email, 'rate429ra'); // Retry-After: 2
    const m = mark('text', 'q2');
    const p = postStream(`${l.url}/proxy/gcp/claude/v1/chat/completions`, { model: MODEL, stream: true, messages: user(`Hi ${m}`) });
    await waitFor(() => G.find(m).length >= 1, 5000, 20);
    await sleep(500);
    const s = await status(l);
    equal(s && s['gcp-claude'] && s['gcp-claude'].proomptersInQueue, 1, 'the info page counts the waiting request', s && s['gcp-claude']);
    G.keyScenario(A.email, null);
    const st = await p;
    equal(st.status, 200, 'stream: 200');
    ok(st.comments && st.comments.length >= 1, 'heartbeat comments while it waited', st.comments);
    equal(joinContent(chunksOf(st).filter((c) => c.choices)), VERTEX_HELLO, 'then the answer');
    deepEqual(G.find(m).map((x) => x.status), [429, 200], 'upstream: 429, then 200 after the cooldown');
    const s2 = await status(l);
    equal(s2 && s2['gcp-claude'] && s2['gcp-claude'].proomptersInQueue, 0, 'the queue is empty again');
  });
}, { timeout: 90000 });

test('unified /v1: a Claude model fails over from Vertex to Bedrock, the client sees one clean answer (chat, stream, messages)', async () => {
  await gw({ GCP_CREDENTIALS: A.credentials(), AWS_CREDENTIALS: K1.credentials() }, async (l) => {
    G.keyScenario(A.email, 'overloaded529');
    const m1 = mark('text', 'u1');
    const r = await client(l, '/v1').chat.completions.create({ model: MODEL, messages: user(`Hi ${m1}`) });
    equal(r.choices[0].message.content, BEDROCK_HELLO, 'answered by Bedrock');
    equal(r.model, MODEL, 'the model the client asked for');
    deepEqual(G.find(m1).map((x) => x.status), [529], 'Vertex tried once (529)');
    deepEqual(W.find(m1).map((x) => x.status), [200], 'Bedrock answered');
    const m2 = mark('text', 'u2');
    const s = await client(l, '/v1').chat.completions.create({ model: MODEL, stream: true, messages: user(`Hi ${m2}`) });
    let text = '';
    let finish = null;
    for await (const c of s) {
      const ch = c.choices && c.choices[0];
      if (ch && ch.delta && ch.delta.content) text += ch.delta.content;
      if (ch && ch.finish_reason) finish = ch.finish_reason;
    }
    equal(text, BEDROCK_HELLO, 'stream: Bedrock\'s text');
    equal(finish, 'stop', 'stream: finish_reason stop');
    const m3 = mark('text', 'u3');
    const msg = await anthropicClient(l, '').messages.create({ model: MODEL, max_tokens: 64, messages: user(`Hi ${m3}`) });
    equal(msg.content[0].text, BEDROCK_HELLO, '/v1/messages: answered by Bedrock');
    equal(W.find(m3).length, 1, '/v1/messages reached Bedrock');
  });
  await gw({ GCP_CREDENTIALS: A.credentials(), AWS_CREDENTIALS: K1.credentials(), PROVIDER_ORDER: 'aws,gcp' }, async (l) => {
    const m = mark('text', 'u4');
    const r = await client(l, '/v1').chat.completions.create({ model: MODEL, messages: user(`Hi ${m}`) });
    equal(r.choices[0].message.content, BEDROCK_HELLO, 'PROVIDER_ORDER=aws,gcp: Bedrock first');
    equal(G.find(m).length, 0, 'Vertex not asked');
    const e = await sdkError(client(l, '/v1').chat.completions.create({ model: 'no-such-model', messages: user('Tell me a story') }));
    equal(e && e.status, 404, 'an unknown model: 404');
  });
}, { timeout: 90000 });

test('the key checker: two gateways share one store; each key and model is probed once, without generating; a key without a model stops being used for it', async () => {
  const stateDir = tmpDir('keys-state-');
  const SONNET = 'anthropic.claude-sonnet-4-5-20250929-v1:0';
  G.reset();
  W.reset();
  G.clearKeyModes();
  W.clearKeyModes();
  W.modelAccess(K2.accessKeyId, [SONNET]);
  const env = envOf({ AWS_CREDENTIALS: [K1, K2].map((k) => k.credentials()).join(','), KEY_CHECK_PERIOD_S: 3600 });
  const [l1, l2] = await Promise.all([startLighttpd({ env, stateDir }), startLighttpd({ env, stateDir })]);
  try {
    const models = (await fetchText(`${l1.url}/proxy/aws/claude/v1/models`)).json.data.map((x) => x.id);
    ok(models.length >= 9, 'the catalogue', models);
    const want = 2 * models.length;
    const got = await waitFor(() => {
      const n = W.requests.filter((x) => x.accessKeyId && !x.marker).length;
      return n >= want ? n : null;
    }, 20000);
    await sleep(1000); // anything more would be a second checker
    const checks = W.requests.filter((x) => x.accessKeyId && !x.marker);
    equal(got && checks.length, want, `${want} probes: each of 2 keys x ${models.length} models once, although 4 processes started`);
    const pairs = new Set(checks.map((x) => `${x.accessKeyId} ${x.path}`));
    equal(pairs.size, checks.length, 'no (key, model) probed twice');
    ok(checks.every((x) => x.body && x.body.max_tokens === -1), 'every probe asks for max_tokens -1 (nothing generated)');
    ok(checks.every((x) => x.refused === 'max_tokens' || x.refused === 'model-access'), 'every probe was refused before generation', checks.map((x) => x.refused));
    equal(checks.filter((x) => x.refused === 'model-access').length, models.length - 1, 'K2 was refused every model but Sonnet 4.5');
    const [s1, s2] = [await status(l1), await status(l2)];
    const opusFamily = s1 && s1['aws-claude-opus'];
    ok(opusFamily && opusFamily.modelKeys, 'aws-claude-opus block with per-model key counts', s1);
    equal(s1 && s1['aws-claude'].modelKeys['claude-sonnet-4-5-20250929'], 2, 'Sonnet 4.5: 2 keys');
    equal(opusFamily && opusFamily.modelKeys['claude-opus-4-1-20250805'], 1, 'Opus 4.1: 1 key');
    deepEqual([s2 && s2['aws-claude'], s2 && s2['aws-claude-opus']], [s1 && s1['aws-claude'], opusFamily], 'both gateways show the same blocks');
    W.reset();
    for (let i = 0; i < 3; i++) {
      const m = mark('text', `op${i}`);
      const r = await client(i % 2 ? l2 : l1, '/proxy/aws/claude/v1').chat.completions.create({ model: OPUS, messages: user(`Hi ${m}`) });
      equal(r.choices[0].message.content, BEDROCK_HELLO, `opus ${i}: answered`);
      deepEqual(W.find(m).map((x) => x.accessKeyId), [K1.accessKeyId], `opus ${i}: only the key that has it`);
    }
  } finally {
    await l1.stopAndClean();
    await l2.stopAndClean();
  }
}, { timeout: 90000 });

test('a revoked key comes back when the checker finds it working again', async () => {
  await gw({ AWS_CREDENTIALS: K1.credentials(), KEY_CHECK_PERIOD_S: 2 }, async (l) => {
    await waitFor(() => W.requests.some((x) => x.refused === 'max_tokens'), 10000);
    W.disableKey(K1.accessKeyId);
    const m1 = mark('text', 'rv1');
    const e = await sdkError(client(l, '/proxy/aws/claude/v1').chat.completions.create({ model: MODEL, messages: user(`Hi ${m1}`) }));
    equal(e && e.status, 502, 'our key refused: 502');
    equal(e && e.code, 'upstream_auth_failed', 'code upstream_auth_failed');
    const revoked = await waitFor(async () => { const s = await status(l); return s && s['aws-claude'].revokedKeys === 1 ? s : null; }, 5000);
    ok(revoked, 'the info page shows the revoked key');
    const m2 = mark('text', 'rv2');
    const e2 = await sdkError(client(l, '/proxy/aws/claude/v1').chat.completions.create({ model: MODEL, messages: user(`Hi ${m2}`) }));
    equal(e2 && e2.status, 502, 'while revoked: 502 at once');
    equal(W.find(m2).length, 0, 'while revoked: nothing sent upstream');
    W.disableKey(K1.accessKeyId, false);
    const back = await waitFor(async () => { const s = await status(l); return s && s['aws-claude'].revokedKeys === 0 ? s : null; }, 15000, 250);
    ok(back, 'the checker brought it back');
    const m3 = mark('text', 'rv3');
    const r = await client(l, '/proxy/aws/claude/v1').chat.completions.create({ model: MODEL, messages: user(`Hi ${m3}`) });
    equal(r.choices[0].message.content, BEDROCK_HELLO, 'answered again');
  });
}, { timeout: 60000 });

test('counters are identical through two gateways, and key state and counters survive a restart', async () => {
  const stateDir = tmpDir('keys-shared-');
  G.reset();
  G.clearKeyModes();
  const env = envOf({ GCP_CREDENTIALS: `${A.credentials()},${B.credentials()}` });
  let [l1, l2] = await Promise.all([startLighttpd({ env, stateDir }), startLighttpd({ env, stateDir })]);
  try {
    for (let i = 0; i < 5; i++)
      await client(i < 3 ? l1 : l2).chat.completions.create({ model: MODEL, messages: user(`Hi ${mark('text', `c${i}`)}`) });
    G.disableAccount(B.email);
    // B's token is refused from now on: whichever key a request takes, B ends up revoked
    for (let i = 0; i < 2; i++)
      await client(l1).chat.completions.create({ model: MODEL, messages: user(`Hi ${mark('text', `d${i}`)}`) });
    // usage is recorded right after each answer has gone out: wait for the last one
    await waitFor(async () => ((await status(l1)) || {}).proompts === 7, 3000);
    const [s1, s2] = [await status(l1), await status(l2)];
    equal(s1 && s1.proompts, 7, '7 prompts counted');
    deepEqual([s2.proompts, s2.tookens, s2['gcp-claude']], [s1.proompts, s1.tookens, s1['gcp-claude']], 'both gateways read the same counters and key state');
    equal(s1['gcp-claude'].revokedKeys, 1, 'B revoked');
    const [t1, t2] = [await metrics(l1), await metrics(l2)];
    const line = /oai_fcgi_requests_total\{route="chat",provider="gcp",status="200"\} (\d+)/;
    equal(t1.match(line) && t1.match(line)[1], '7', 'metrics: 7 answered');
    equal(t2.match(line) && t2.match(line)[1], '7', 'the other gateway: 7 too');
    await l1.stopAndClean();
    await l2.stopAndClean();
    l1 = l2 = null;
    G.disableAccount(B.email, false);
    l1 = await startLighttpd({ env, stateDir });
    const s3 = await status(l1);
    equal(s3 && s3.proompts, 7, 'after a restart: 7 prompts');
    equal(s3 && s3['gcp-claude'].revokedKeys, 1, 'after a restart: B still revoked (no checker ran)');
    const m = mark('text', 'after');
    await client(l1).chat.completions.create({ model: MODEL, messages: user(`Hi ${m}`) });
    deepEqual(G.find(m).map((x) => x.account), [A.email], 'after a restart: the revoked key is not used');
  } finally {
    if (l1) await l1.stopAndClean();
    if (l2) await l2.stopAndClean();
  }
}, { timeout: 90000 });

test('KEY_MAX_CONCURRENCY=1: a key never serves two streams at once; a third waits for a free key', async () => {
  await gw({ GCP_CREDENTIALS: `${A.credentials()},${B.credentials()}`, KEY_MAX_CONCURRENCY: 1 }, async (l) => {
    const ms = [mark('slow', 'cc1'), mark('slow', 'cc2'), mark('slow', 'cc3')];
    const rs = await Promise.all(ms.map((m) => postStream(`${l.url}/proxy/gcp/claude/v1/chat/completions`, { model: MODEL, stream: true, messages: user(`Hi ${m}`) })));
    ok(rs.every((r) => r.status === 200), 'all three answered');
    const recs = await Promise.all(ms.map((m) => G.waitFor(() => { const r = G.last(m); return r && r.endedAt ? r : null; }, 5000)));
    ok(recs.every(Boolean), 'the mock saw all three end');
    const by = {};
    for (const r of recs.filter(Boolean)) (by[r.account] = by[r.account] || []).push(r);
    deepEqual(Object.keys(by).sort(), [A.email, B.email].sort(), 'both keys were used');
    // three streams on two keys: without the cap one key would carry two at the same time
    const overlap = Object.values(by).some((rs2) => rs2.some((x) => rs2.some((y) => x !== y && x.at < y.at && y.at < x.endedAt)));
    ok(!overlap, 'no key carried two streams at once', Object.values(by).map((rs2) => rs2.map((x) => [x.at, x.endedAt])));
  });
}, { timeout: 60000 });

test('CGI mode: a due key check runs after the response, detached, once', async () => {
  G.reset();
  W.reset();
  G.clearKeyModes();
  W.clearKeyModes();
  const dir = tmpDir('keys-cgi-');
  const env = baseEnv({ ...envOf({ AWS_CREDENTIALS: K1.credentials(), KEY_CHECK_PERIOD_S: 3600, STATE_PATH: `${dir}/state.db` }), ...cgiEnv({ uri: '/status' }) });
  const t0 = Date.now();
  const r1 = await run(BIN, [], { env, timeout: 10000 });
  const took = Date.now() - t0;
  equal(r1.code, 0, 'the CGI process exits 0');
  match(r1.stdout, /Status: 200/, 'the response was complete');
  ok(took < 3000, 'and did not wait for the checker', took);
  const n = await waitFor(() => { const c = W.requests.filter((x) => x.refused === 'max_tokens').length; return c >= 9 ? c : null; }, 20000);
  ok(n, 'the detached checker probed the key', W.requests.length);
  await sleep(500);
  const before = W.requests.length;
  const r2 = await run(BIN, [], { env, timeout: 10000 });
  equal(r2.code, 0, 'a second CGI request');
  await sleep(1500);
  equal(W.requests.length, before, 'no second round: the store says the last one is fresh');
}, { timeout: 60000 });

test('no unexpected check failed at the mocks', () => {
  deepEqual(G.violations, [], 'Vertex mock: no violations');
  deepEqual(W.violations, [], 'Bedrock mock: no violations');
});

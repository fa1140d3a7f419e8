// Several hosts sharing one Redis (issue 10, STATE_URL): a real redis-server on loopback with a
// password, and two lighttpd + oai-fcgi pairs on two ports standing in for two hosts (no shared
// STATE_PATH). One OAuth token serves both; a key revoked through one is skipped by the other;
// a quota spent through both is not overspent; a rate limit holds across both; counters agree.
// Then Redis is killed and restarted under them: /healthz stays up, /status says the store is
// unreachable, abuse checks fail closed (or open with STATE_FAIL_OPEN), plain requests are
// still served, and everything recovers without restarting the gateways - the usage of requests
// answered meanwhile included.
import fs from 'node:fs';
import path from 'node:path';
import { test, ok, equal, deepEqual, match, onCleanup } from '../lib/tap.mjs';
import { requireBin, tmpDir, startLighttpd, fetchText, sleep, spawnTracked, stopProc, freePort, randomSecret, run, baseEnv, BUILDDIR } from '../lib/harness.mjs';
import { makeTls, GOOGLE_HOSTS, AWS_HOSTS } from '../mock/tls.mjs';
import { mark, serviceAccount, startMockGoogle } from '../mock/vertex.mjs';
import { MODEL, client, bedrock, bedrockImportError } from '../mock/gateway.mjs';

const REDIS = '/usr/bin/redis-server';
const user = (text) => [{ role: 'user', content: text }];
const PASS = randomSecret('rp-');
const ADMIN_KEY = randomSecret('adm-');
const TEXT_TOKENS = 19;
const SA = serviceAccount({ project: 'oai-redis' });
let K1, K2, G, W, tls, redisPort, redisProc, redisDir, prefixN = 0;

async function startRedis() {
  redisProc = spawnTracked(REDIS, ['--port', String(redisPort), '--bind', '127.0.0.1', '--requirepass', PASS, '--save', '', '--appendonly', 'no', '--dir', redisDir]);
  for (let i = 0; i < 100; i++) {
    if (/Ready to accept connections/.test(redisProc.stdoutText ? redisProc.stdoutText() : '')) return;
    await sleep(50);
  }
  await sleep(500);
}

/** Two gateways (two lighttpd on two ports, each with its own run directory) on one Redis. */
async function pair(extra = {}) {
  const env = {
    GCP_CREDENTIALS: SA.credentials(), AWS_CREDENTIALS: `${K1.credentials()},${K2.credentials()}`,
    UPSTREAM_CONNECT_TO: `${G.connectTo},${W.connectTo}`, UPSTREAM_CA_BUNDLE: tls.caFile, LOG_LEVEL: 'info',
    STATE_URL: `redis://default:${PASS}@127.0.0.1:${redisPort}/3`, STATE_PREFIX: `it${process.pid}-${++prefixN}:`,
    ...extra,
  };
  const [a, b] = await Promise.all([startLighttpd({ env }), startLighttpd({ env })]);
  return [a, b];
}

async function stopAll(...ls) {
  for (const l of ls) if (l) await l.stopAndClean();
}

const chat = (l, { key, body, base = '/proxy/gcp/claude/v1' } = {}) => fetchText(`${l.url}${base}/chat/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
  body: JSON.stringify(body || { model: MODEL, max_tokens: 10, messages: user(`Hello there ${mark('text', 'r')}`) }), timeout: 30000,
});

test('start redis-server and the mocks', async () => {
  if (!requireBin()) throw new Error('no binary');
  if (!fs.existsSync(REDIS)) throw new Error(`${REDIS} is missing (scripts/install-deps.sh installs redis-server)`);
  if (!bedrock) throw new Error(`the Bedrock mock did not load: ${bedrockImportError && bedrockImportError.message}`);
  redisDir = tmpDir('redis-');
  redisPort = await freePort();
  await startRedis();
  onCleanup(() => stopProc(redisProc));
  tls = await makeTls(tmpDir('redis-tls-'), [...GOOGLE_HOSTS, ...AWS_HOSTS]);
  G = await startMockGoogle({ tls, accounts: [SA] });
  onCleanup(() => G.close());
  [K1, K2] = [bedrock.awsKey(), bedrock.awsKey()];
  W = await bedrock.startMockBedrock({ tls, keys: [K1, K2] });
  onCleanup(() => W.close());
  ok(redisProc.exitCode === null, 'redis-server runs');
}, { timeout: 30000 });

test('the state-interface suite (tests/unit/t_state) passes on Redis as on SQLite', async () => {
  const bin = path.join(BUILDDIR, 'tests/unit/t_state');
  ok(fs.existsSync(bin), 't_state is built', bin);
  const r = await run(bin, [], { env: baseEnv({ OAI_TEST_REDIS_URL: `redis://default:${PASS}@127.0.0.1:${redisPort}/4`, ASAN_OPTIONS: process.env.ASAN_OPTIONS || '', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || '' }), timeout: 120000 });
  const oks = (r.stdout.match(/^ok /gm) || []).length;
  const bad = r.stdout.split('\n').filter((l) => l.startsWith('not ok'));
  equal(r.code, 0, 't_state exits 0 against Redis', r.stderr.slice(-2000));
  deepEqual(bad, [], 'no failed check');
  ok(oks > 500 && !/# SKIP.*Redis/i.test(r.stdout), `${oks} checks, the Redis ones included (not skipped)`);
}, { timeout: 150000 });

test('two hosts on one Redis: one OAuth token, a revoked key skipped by the other, counters that agree', async () => {
  G.reset();
  W.reset();
  const [a, b] = await pair();
  try {
    for (const [i, l] of [[0, a], [1, b], [2, a], [3, b]]) {
      const r = await client(l).chat.completions.create({ model: MODEL, messages: user(`Hello there ${mark('text', `tok${i}`)}`) });
      equal(r.choices[0].message.content, 'Hello from the Vertex mock.', `request ${i} answered`);
    }
    equal(G.tokenCalls, 1, 'one OAuth token served both hosts (cached in Redis)');
    W.disableKey(K1.accessKeyId);
    const m1 = mark('text', 'rv-a');
    const r1 = await client(a, '/proxy/aws/claude/v1').chat.completions.create({ model: MODEL, messages: user(`Hi ${m1}`) });
    equal(r1.choices[0].message.content, 'Hello from the Bedrock mock.', 'host A: answered by the second key');
    deepEqual(W.find(m1).map((x) => [x.accessKeyId, x.status]), [[K1.accessKeyId, 403], [K2.accessKeyId, 200]], 'host A met the revoked key once');
    const m2 = mark('text', 'rv-b');
    await client(b, '/proxy/aws/claude/v1').chat.completions.create({ model: MODEL, messages: user(`Hi ${m2}`) });
    deepEqual(W.find(m2).map((x) => x.accessKeyId), [K2.accessKeyId], 'host B skipped the key host A revoked');
    W.clearKeyModes();
    await sleep(300);
    const [sa, sb] = [(await fetchText(`${a.url}/status`)).json, (await fetchText(`${b.url}/status`)).json];
    equal(sa && sa.proompts, 6, 'six prompts counted');
    deepEqual([sb.proompts, sb.tookens, sb['aws-claude']], [sa.proompts, sa.tookens, sa['aws-claude']], 'both hosts read the same counters and key state');
    const log = a.errorLog() + b.errorLog();
    ok(!log.includes(PASS), 'the Redis password is not logged');
  } finally {
    await stopAll(a, b);
  }
}, { timeout: 90000 });

test('a quota spent through both hosts is not overspent beyond one request; a rate limit holds across both', async () => {
  G.reset();
  let [a, b] = await pair({ GATEKEEPER: 'user_token', ADMIN_KEY, TOKEN_QUOTA_GCP_CLAUDE: 200 });
  try {
    const created = await fetchText(`${a.url}/admin/users`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: '{}' });
    const t = created.json && created.json.token;
    ok(t, 'a user made through host A', created.body);
    const rs = await Promise.all(Array.from({ length: 16 }, (_, i) => chat(i % 2 ? a : b, { key: t, body: { model: MODEL, max_tokens: 10, messages: user(`Hello there ${mark('text', `q${i}`)}`) } })));
    const admitted = rs.filter((r) => r.status === 200).length;
    ok(admitted >= 1 && rs.every((r) => r.status === 200 || (r.status === 429 && r.json.error.code === 'insufficient_quota')), 'admitted or 429 insufficient_quota', rs.map((r) => r.status));
    ok(admitted * TEXT_TOKENS <= 200 + 60, `spent ${admitted * TEXT_TOKENS} against 200: at most one request over`, admitted);
    const viewB = await fetchText(`${b.url}/admin/users/${t}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    equal(viewB.status, 200, 'host B sees the user host A made');
  } finally {
    await stopAll(a, b);
  }
  [a, b] = await pair({ TEXT_MODEL_RATE_LIMIT: 4 });
  try {
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => chat(i % 2 ? a : b)));
    equal(rs.filter((r) => r.status === 200).length, 4, '12 concurrent requests via two hosts: exactly 4 admitted');
    ok(rs.filter((r) => r.status === 429).every((r) => /^[1-9]\d*$/.test(r.headers['retry-after'] || '')), 'the rest: 429 with Retry-After');
  } finally {
    await stopAll(a, b);
  }
}, { timeout: 90000 });

test('Redis killed and restarted under the gateways: degraded, then recovered without a restart', async () => {
  let [a, b] = await pair({ TEXT_MODEL_RATE_LIMIT: 100 });
  let [fa] = [null];
  try {
    equal((await chat(a)).status, 200, 'before: answered');
    await stopProc(redisProc, 5000, 'SIGKILL');
    equal((await fetchText(`${a.url}/healthz`)).status, 200, '/healthz stays up');
    const st = await fetchText(`${a.url}/status`);
    equal(st.status, 503, '/status: 503');
    match(st.json && st.json.stateStore || '', /^unreachable/, '/status says the store is unreachable');
    const t0 = Date.now();
    const limited = await chat(a);
    equal(limited.status, 503, 'a rate limit that cannot be checked fails closed (STATE_FAIL_OPEN off): 503');
    ok(Date.now() - t0 < 5000, 'and fast', Date.now() - t0);
    const plain = await chat(a, { base: '/v1' }).catch((e) => ({ status: 0, body: e.message }));
    ok(plain.status === 503 || plain.status === 200, 'the unified route too', plain.status);
    [fa] = await Promise.all([startLighttpd({ env: { GCP_CREDENTIALS: SA.credentials(), UPSTREAM_CONNECT_TO: G.connectTo, UPSTREAM_CA_BUNDLE: tls.caFile,
      STATE_URL: `redis://default:${PASS}@127.0.0.1:${redisPort}/3`, STATE_PREFIX: 'failopen:', TEXT_MODEL_RATE_LIMIT: 100, STATE_FAIL_OPEN: 'on' } })]);
    const open = await chat(fa);
    equal(open.status, 200, 'STATE_FAIL_OPEN=on: the same request is served');
    ok(/state store unavailable; STATE_FAIL_OPEN/.test(fa.errorLog()), 'and the degradation is logged');
    await startRedis();
    let back = null;
    for (let i = 0; i < 40 && !(back && back.status === 200); i++) {
      await sleep(250);
      back = await chat(a);
    }
    equal(back && back.status, 200, 'Redis back: requests pass the rate limit again, no restart');
    // the fail-open gateway answered one request while Redis was gone: its usage never left the
    // process (no connection to be had), so it was held, and is written once Redis is back
    let after = null;
    for (let i = 0; i < 40 && !(after && after.json && after.json.proompts >= 1); i++) {
      await sleep(250);
      after = await fetchText(`${fa.url}/status`);
    }
    equal(after && after.json && after.json.proompts, 1, 'the request answered during the outage is counted, once, after it');
    equal((await fetchText(`${b.url}/status`)).status, 200, '/status is 200 again on the other host');
  } finally {
    await stopAll(a, b, fa);
  }
}, { timeout: 90000 });

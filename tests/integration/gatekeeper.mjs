// The gatekeeper and abuse control (issue 7, SPEC §6, §9) under lighttpd against the Vertex mock:
// GATEKEEPER=proxy_key and user_token with the official openai / Anthropic clients, curl and raw
// HTTP; the /admin/users API and its lock-out; MAX_IPS_PER_USER behind TRUSTED_PROXIES;
// TEXT_MODEL_RATE_LIMIT and TOKEN_QUOTA_<FAMILY>, each raced by concurrent requests through two
// gateways sharing one store; IP_BLACKLIST, BLOCKED_ORIGINS; ERROR_STYLE=completion.
import { test, ok, equal, deepEqual, match, fail } from '../lib/tap.mjs';
import { requireBin, tmpDir, startLighttpd, fetchText, curl, randomSecret } from '../lib/harness.mjs';
import { mark } from '../mock/vertex.mjs';
import { MODEL, GCP, setupMock, startGateway, client, anthropicClient, postStream, importError, Anthropic } from '../mock/gateway.mjs';
import { sdkError } from '../lib/scenarios.mjs';

const user = (text) => [{ role: 'user', content: text }];
const PROXY_KEY = randomSecret('pk-');
const ADMIN_KEY = randomSecret('adm-');
const TEXT_TOKENS = 19; // the mock's "text" answer: 12 input + 7 output
let G;

async function gw(env, fn, opts = {}) {
  G.mock.reset();
  const l = await startGateway(G, env, opts);
  try { return await fn(l); } finally { await l.stopAndClean(); }
}

const chat = (l, { key, headers = {}, body, path = `${GCP}/chat/completions` } = {}) => fetchText(`${l.url}${path}`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
  body: JSON.stringify(body || { model: MODEL, max_tokens: 10, messages: user(`Hello there ${mark('text', 'g')}`) }),
  timeout: 30000,
});

async function admin(l, method, path, body, key = ADMIN_KEY, headers = {}) {
  return fetchText(`${l.url}/admin/users${path}`, {
    method, headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined, timeout: 15000,
  });
}

/** The user's view once its gcp-claude token count is `want` (usage is recorded right after the
 * answer goes out), or the last view after 3 s. */
async function userWhen(l, t, want) {
  let v = null;
  for (let i = 0; i < 30; i++) {
    v = await admin(l, 'GET', `/${t}`);
    if ((v.json && v.json.tokenCounts && v.json.tokenCounts['gcp-claude']) === want) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return v;
}

async function newUser(l, body = {}) {
  const r = await admin(l, 'POST', '', body);
  equal(r.status, 200, 'POST /admin/users', r.body);
  return r.json && r.json.token;
}

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });

test('start the mock Google endpoints', async () => {
  if (!requireBin()) throw new Error('no binary');
  G = await setupMock();
  ok(G.mock.port > 0, 'listening');
}, { timeout: 30000 });

test('GATEKEEPER=proxy_key: Bearer or x-api-key, ADMIN_KEY too; refusals in the client\'s format; the credential never goes upstream or into the log', async () => {
  await gw({ GATEKEEPER: 'proxy_key', PROXY_KEY, ADMIN_KEY }, async (l) => {
    const none = await chat(l);
    equal(none.status, 401, 'no key: 401', none.body);
    equal(none.json && none.json.error && none.json.error.type, 'authentication_error', 'OpenAI error shape');
    equal(none.headers['www-authenticate'], 'Bearer', 'WWW-Authenticate: Bearer');
    const wrong = await chat(l, { key: 'sk-wrong' });
    equal(wrong.status, 401, 'wrong key: 401');
    const msg = await chat(l, { path: `${GCP}/messages`, body: { model: MODEL, max_tokens: 10, messages: user('Hello there') } });
    equal(msg.status, 401, '/messages without a key: 401');
    equal(msg.json && msg.json.type, 'error', 'Anthropic error shape');
    equal(msg.json && msg.json.error && msg.json.error.type, 'authentication_error', 'authentication_error');
    const models = await fetchText(`${l.url}${GCP}/models`);
    equal(models.status, 401, 'the model list is behind the gatekeeper');
    const test = await chat(l, { body: { model: MODEL, messages: user('Hi') } });
    equal(test.status, 401, 'so is the SillyTavern test message');

    const r = await client(l, GCP, { apiKey: PROXY_KEY }).chat.completions.create({ model: MODEL, messages: user(`Hello there ${mark('text', 'pk1')}`) });
    equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'the openai client with the proxy key');
    const rec = G.mock.last(mark('text', 'pk1')) || { headers: {} };
    ok(!JSON.stringify(rec.headers).includes(PROXY_KEY), 'the proxy key did not reach Vertex');
    match(rec.headers.authorization || '', /^Bearer ya29\./, 'Vertex got the gateway\'s own OAuth token');
    if (Anthropic) {
      const a = await anthropicClient(l, '/proxy/gcp/claude', { apiKey: PROXY_KEY }).messages.create({ model: MODEL, max_tokens: 20, messages: user(`Hello there ${mark('text', 'pk2')}`) });
      equal(a.content[0].text, 'Hello from the Vertex mock.', 'the Anthropic client (x-api-key)');
    }
    const c = await curl(['-H', `Authorization: Bearer ${ADMIN_KEY}`, `${l.url}${GCP}/models`]);
    equal(c.status, 200, 'curl with ADMIN_KEY: 200');
    ok(c.json && Array.isArray(c.json.data) && c.json.data.length > 0, 'the model list');
    const log = l.errorLog();
    ok(!log.includes(PROXY_KEY) && !log.includes(ADMIN_KEY) && !log.includes('sk-wrong'), 'no credential in the log');
  });
}, { timeout: 60000 });

test('GATEKEEPER=user_token: the admin API creates, lists, updates and disables users; disabled and expired tokens get 403', async () => {
  await gw({ GATEKEEPER: 'user_token', ADMIN_KEY, TRUSTED_PROXIES: 1 }, async (l) => {
    const t1 = await newUser(l, { nickname: 'ann' });
    match(t1 || '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUID v4 token');
    const sp = await newUser(l, { type: 'special' });
    const bad = await admin(l, 'POST', '', { type: 'temporary' });
    equal(bad.status, 400, 'a temporary user without expiresAt: 400');
    const tmp = await newUser(l, { type: 'temporary', expiresAt: Date.now() + 1500 });
    const r = await client(l, GCP, { apiKey: t1 }).chat.completions.create({ model: MODEL, messages: user(`Hello there ${mark('text', 'u1')}`) });
    equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'a user token works');
    const e = await sdkError(client(l, GCP, { apiKey: 'not-a-user' }).chat.completions.create({ model: MODEL, messages: user('Hello there') }));
    equal(e && e.status, 401, 'an unknown token: 401');
    const v = await userWhen(l, t1, TEXT_TOKENS);
    equal(v.status, 200, 'GET /admin/users/<token>');
    equal(v.json && v.json.promptCount, 1, 'promptCount 1');
    equal(v.json && v.json.tokenCounts && v.json.tokenCounts['gcp-claude'], TEXT_TOKENS, 'tokenCounts from the upstream usage');
    deepEqual(v.json && v.json.ip, ['127.0.0.1'], 'the address it came from');
    ok(v.json && v.json.lastUsedAt > 0, 'lastUsedAt');
    const list = await admin(l, 'GET', '');
    ok(list.json && list.json.count === 3 && list.json.users.length === 3, '{users, count}: 3', list.body);
    equal(list.json && list.json.users[0].token, t1, 'sorted by promptCount');
    const put = await admin(l, 'PUT', `/${t1}`, { nickname: null, adminNote: 'tester' });
    ok(put.status === 200 && !('nickname' in put.json && put.json.nickname) && put.json.adminNote === 'tester', 'PUT: null deletes, values set', put.body);
    const bulk = await admin(l, 'PUT', '', { users: [{ token: 'imported-user-1', type: 'normal' }] });
    ok(bulk.status === 200 && bulk.json.count === 1 && bulk.json.upserted_users[0].token === 'imported-user-1', 'bulk upsert', bulk.body);
    const del = await admin(l, 'DELETE', `/${t1}?disabledReason=${encodeURIComponent('Abuse of the service')}`);
    ok(del.status === 200 && del.json.disabledAt > 0 && del.json.disabledReason === 'Abuse of the service', 'DELETE disables with a reason', del.body);
    const e2 = await sdkError(client(l, GCP, { apiKey: t1 }).chat.completions.create({ model: MODEL, messages: user('Hello there') }));
    equal(e2 && e2.status, 403, 'a disabled token: 403');
    match(e2 && e2.message || '', /Abuse of the service/, 'with the reason');
    const rs = await chat(l, { key: sp });
    equal(rs.status, 200, 'a special user');
    await new Promise((res) => setTimeout(res, 1600));
    const rt = await chat(l, { key: tmp });
    equal(rt.status, 403, 'a temporary token after its expiry: 403');
    const m404 = await admin(l, 'GET', '/no-such-user');
    equal(m404.status, 404, 'GET an unknown user: 404');
  });
}, { timeout: 60000 });

test('MAX_IPS_PER_USER behind TRUSTED_PROXIES=1: a new address beyond the cap gets 403', async () => {
  await gw({ GATEKEEPER: 'user_token', ADMIN_KEY, TRUSTED_PROXIES: 1, MAX_IPS_PER_USER: 2 }, async (l) => {
    const t = await newUser(l);
    const from = (ip) => chat(l, { key: t, headers: { 'x-forwarded-for': ip } });
    equal((await from('203.0.113.1')).status, 200, 'first address');
    equal((await from('203.0.113.2')).status, 200, 'second address');
    equal((await from('203.0.113.1')).status, 200, 'a known address again');
    const third = await from('203.0.113.3');
    equal(third.status, 403, 'a third address: 403', third.body);
    match(third.json && third.json.error && third.json.error.message || '', /no more IP addresses/, 'says why');
    const v = await admin(l, 'GET', `/${t}`);
    deepEqual((v.json && v.json.ip || []).sort(), ['203.0.113.1', '203.0.113.2'], 'the user lists its two addresses');
  });
}, { timeout: 60000 });

test('/admin/users and /metrics: ADMIN_KEY only, and a lock-out after 5 failures', async () => {
  await gw({ GATEKEEPER: 'user_token', ADMIN_KEY }, async (l) => {
    const noKey = await fetchText(`${l.url}/admin/users`);
    equal(noKey.status, 401, 'no key: 401');
    const metrics = await fetchText(`${l.url}/metrics`);
    equal(metrics.status, 401, '/metrics without the admin key: 401');
    for (let i = 0; i < 2; i++) await admin(l, 'GET', '', null, 'wrong');
    const fifth = await admin(l, 'GET', '', null, 'wrong'); // with the two above: five failures
    equal(fifth.status, 401, 'the fifth failure: 401');
    const locked = await admin(l, 'GET', '');
    equal(locked.status, 429, 'then even the right key: 429');
    match(locked.headers['retry-after'] || '', /^[1-9][0-9]*$/, 'with Retry-After');
    const m = await fetchText(`${l.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    equal(m.status, 429, '/metrics shares the lock-out');
    ok(!l.errorLog().includes(ADMIN_KEY), 'the admin key is not logged');
  });
}, { timeout: 60000 });

test('TEXT_MODEL_RATE_LIMIT: X-RateLimit-* headers, 429 with Retry-After; concurrent requests through two gateways admit exactly the limit', async () => {
  await gw({ TEXT_MODEL_RATE_LIMIT: 3 }, async (l) => {
    const rs = [];
    for (let i = 0; i < 4; i++) rs.push(await chat(l));
    deepEqual(rs.map((r) => r.status), [200, 200, 200, 429], 'three per minute, then 429');
    deepEqual(rs.slice(0, 3).map((r) => r.headers['x-ratelimit-remaining']), ['2', '1', '0'], 'X-RateLimit-Remaining counts down');
    equal(rs[0].headers['x-ratelimit-limit'], '3', 'X-RateLimit-Limit');
    ok(Number(rs[3].headers['x-ratelimit-reset']) > Date.now(), 'X-RateLimit-Reset (epoch ms) in the future');
    const ra = Number(rs[3].headers['retry-after']);
    ok(ra >= 1 && ra <= 60, 'Retry-After in whole seconds', rs[3].headers['retry-after']);
    equal(rs[3].json && rs[3].json.error && rs[3].json.error.code, 'rate_limit_exceeded', 'code rate_limit_exceeded');
    const t = await chat(l, { body: { model: MODEL, messages: user('Hi') } });
    equal(t.status, 200, 'the test message is not rate limited');
  });
  const stateDir = tmpDir('gk-rate-');
  const env = { ...G.env, TEXT_MODEL_RATE_LIMIT: 5 };
  G.mock.reset();
  const [a, b] = await Promise.all([startLighttpd({ env, stateDir, procs: 2 }), startLighttpd({ env, stateDir, procs: 2 })]);
  try {
    const rs = await Promise.all(Array.from({ length: 14 }, (_, i) => chat(i % 2 ? a : b)));
    equal(rs.filter((r) => r.status === 200).length, 5, '14 concurrent requests via 2 gateways (4 processes): exactly 5 admitted');
    equal(rs.filter((r) => r.status === 429).length, 9, 'the other 9 got 429');
  } finally {
    await a.stopAndClean();
    await b.stopAndClean();
  }
}, { timeout: 90000 });

test('TOKEN_QUOTA_GCP_CLAUDE: checked before (estimate) and settled after (upstream usage); racing requests through two gateways overspend by at most one request', async () => {
  const QUOTA = 200;
  const stateDir = tmpDir('gk-quota-');
  const env = { ...G.env, GATEKEEPER: 'user_token', ADMIN_KEY, TOKEN_QUOTA_GCP_CLAUDE: QUOTA };
  G.mock.reset();
  const [a, b] = await Promise.all([startLighttpd({ env, stateDir }), startLighttpd({ env, stateDir })]);
  try {
    const t = await newUser(a);
    const body = (tag) => ({ model: MODEL, max_tokens: 10, messages: user(`Hello there ${mark('text', tag)}`) });
    const rs = await Promise.all(Array.from({ length: 16 }, (_, i) => chat(i % 2 ? a : b, { key: t, body: body(`q${i}`) })));
    const okN = rs.filter((r) => r.status === 200).length;
    const refused = rs.filter((r) => r.status === 429);
    ok(okN >= 1, 'some were admitted', rs.map((r) => r.status));
    ok(refused.length >= 1 && refused.every((r) => r.json && r.json.error && r.json.error.code === 'insufficient_quota'), 'the rest: 429 insufficient_quota', refused.map((r) => r.body).slice(0, 2));
    const spent = okN * TEXT_TOKENS;
    const perRequestEstimate = 60; // prompt estimate + max_tokens 10, well above one request's real 19 tokens
    ok(spent <= QUOTA + perRequestEstimate, `spent ${spent} tokens against a quota of ${QUOTA}: no overspend beyond one request`, okN);
    const v = await userWhen(b, t, spent);
    equal(v.json && v.json.tokenCounts['gcp-claude'], spent, 'the user\'s counters hold what the upstream reported');
    // sequentially the quota fills to within one request
    let last = null;
    for (let i = 0; i < 12; i++) {
      last = await chat(a, { key: t, body: body(`s${i}`) });
      if (last.status !== 200) break;
    }
    equal(last && last.status, 429, 'eventually refused');
    const v2 = await admin(a, 'GET', `/${t}`);
    const used = v2.json && v2.json.tokenCounts['gcp-claude'];
    ok(used <= QUOTA + perRequestEstimate && used >= QUOTA - perRequestEstimate, `used ${used} of ${QUOTA}`);
    const sp = await newUser(a, { type: 'special' });
    equal((await chat(a, { key: sp })).status, 200, 'special users have no quota');
    const own = await newUser(a, { tokenLimits: { 'gcp-claude': 10 } });
    const r = await chat(a, { key: own });
    equal(r.status, 429, 'a user\'s own tokenLimits beat TOKEN_QUOTA_*');
  } finally {
    await a.stopAndClean();
    await b.stopAndClean();
  }
}, { timeout: 90000 });

test('IP_BLACKLIST and BLOCKED_ORIGINS: 403 for everything but /healthz', async () => {
  await gw({ IP_BLACKLIST: '10.0.0.0/8, 127.0.0.1' }, async (l) => {
    const r = await chat(l);
    equal(r.status, 403, 'a blacklisted address: 403');
    equal(r.json && r.json.error && r.json.error.code, 'ip_blocked', 'code ip_blocked');
    equal((await fetchText(`${l.url}/status`)).status, 403, 'the info page too');
    equal((await fetchText(`${l.url}/healthz`)).status, 200, '/healthz stays up');
    equal(G.mock.requests.length, 0, 'nothing went upstream');
  });
  await gw({ BLOCKED_ORIGINS: 'janitorai.com,evil.example' }, async (l) => {
    const r = await chat(l, { headers: { origin: 'https://janitorai.com' } });
    equal(r.status, 403, 'a blocked Origin: 403');
    equal(r.json && r.json.error && r.json.error.code, 'blocked_origin', 'code blocked_origin');
    equal((await chat(l, { headers: { referer: 'https://evil.example/chat' } })).status, 403, 'a blocked Referer: 403');
    equal((await chat(l, { headers: { origin: 'https://good.example' } })).status, 200, 'another origin passes');
  });
}, { timeout: 60000 });

test('ERROR_STYLE=completion: errors become HTTP 200 completions with the seed\'s marker and headers', async () => {
  await gw({ ERROR_STYLE: 'completion', GATEKEEPER: 'proxy_key', PROXY_KEY }, async (l) => {
    const r = await chat(l);
    equal(r.status, 200, 'a 401 delivered as 200');
    equal(r.headers['x-oai-proxy-error-status'], '401', 'x-oai-proxy-error-status: 401');
    match(r.headers['x-oai-proxy-error'] || '', /Proxy error \(HTTP 401/, 'x-oai-proxy-error: the title');
    equal(r.json && r.json.object, 'chat.completion', 'a chat.completion');
    match(r.json && r.json.choices[0].message.content || '', /<!-- oai-proxy-error -->/, 'carrying the marker');
    const s = await postStream(`${l.url}${GCP}/chat/completions`, { model: MODEL, stream: true, messages: user('Hello there') });
    equal(s.status, 200, 'stream: 200');
    equal(s.events[s.events.length - 1] && s.events[s.events.length - 1].data, '[DONE]', 'stream: [DONE] last');
    match(JSON.stringify(s.events[0] && s.events[0].json), /oai-proxy-error/, 'stream: one chunk with the error');
    const up = await chat(l, { key: PROXY_KEY, body: { model: MODEL, messages: user(`Long ${mark('bad400', 'c')}`) } });
    equal(up.status, 200, 'an upstream 400 delivered as 200');
    equal(up.headers['x-oai-proxy-error-status'], '400', 'with its real status in the header');
    match(up.json && up.json.choices[0].message.content || '', /prompt is too long/, 'and its message');
    const a = await chat(l, { path: `${GCP}/messages`, body: { model: MODEL, max_tokens: 10, messages: user('Hello there') } });
    equal(a.json && a.json.type, 'message', '/messages: an Anthropic message');
  });
}, { timeout: 60000 });

// --check-config and start-up validation: a good env passes with a redacted summary, each bad
// env fails with one line naming the variable, secrets never appear in any output, and a bad env
// under lighttpd fails loudly instead of serving. Bad per-request values give a 500.
import crypto from 'node:crypto';
import path from 'node:path';
import { test, ok, equal, match } from '../lib/tap.mjs';
import {
  BIN, run, baseEnv, tmpDir, randomSecret, requireBin, startLighttpd, startListen, curlReq,
  isOpenAIError, TEST_MESSAGE, CHECKER_OFF, cgiEnv,
} from '../lib/harness.mjs';

let dir;
let statePath;
// Secret markers: random at test time; none may ever be printed.
const M = {
  proxyKey: randomSecret('pk-'),
  adminKey: randomSecret('ak-'),
  awsSecret: randomSecret('aws-'),
  awsToken: randomSecret('awst-'),
  azureKey: randomSecret('az-'),
  proxyPass: randomSecret('pp-'),
  statePass: randomSecret('sp-'),
};
let pem;
let pemMarkers = [];

function goodEnv(extra = {}) {
  return {
    STATE_PATH: statePath,
    GATEKEEPER: 'proxy_key',
    PROXY_KEY: M.proxyKey,
    ADMIN_KEY: M.adminKey,
    AWS_CREDENTIALS: `AKIAIT${crypto.randomBytes(7).toString('hex').toUpperCase()}:${M.awsSecret}:us-east-1:${M.awsToken}`,
    GCP_CREDENTIALS: `it-project:it@it-project.iam.gserviceaccount.com:us-east5:${pem.replace(/\n/g, '\\n')}`,
    AZURE_CREDENTIALS: `it-resource:gpt-4o:${M.azureKey}`,
    HTTPS_PROXY: `http://ituser:${M.proxyPass}@127.0.0.1:3128`,
    ...extra,
  };
}

function leaks(text) {
  const found = [];
  for (const [k, v] of Object.entries(M)) if (text.includes(v)) found.push(k);
  for (const p of pemMarkers) if (text.includes(p)) found.push('GCP private key');
  if (/BEGIN (RSA )?PRIVATE KEY/.test(text)) found.push('PEM header');
  return found;
}

const checkConfig = (env) => run(BIN, ['--check-config'], { env: baseEnv(env), timeout: 10000 });
const lineFor = (text, name) => text.split('\n').filter((l) => new RegExp(`(^|[^A-Z_])${name}:`).test(l));

test('setup', () => {
  ok(requireBin(), 'binary exists');
  dir = tmpDir('cc-');
  statePath = path.join(dir, 'state.db');
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const b64 = pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  pemMarkers = [b64.slice(100, 140), b64.slice(800, 840)];
  ok(pemMarkers.every((m) => m.length === 40), 'key markers');
});

test('good env: exit 0, redacted summary', async () => {
  const r = await checkConfig(goodEnv());
  equal(r.code, 0, 'exit 0', r.stdout + r.stderr);
  ok(r.stdout.trim().length > 0, 'prints a summary on stdout');
  match(r.stdout, /proxy_key/, 'summary shows the (non-secret) gatekeeper mode', r.stdout);
  equal(leaks(r.stdout + r.stderr).join(', '), '', 'no secret in the output');
});

test('good env with STATE_URL carrying a password: never printed', async () => {
  const r = await checkConfig(goodEnv({ STATE_URL: `redis://ituser:${M.statePass}@127.0.0.1:6379/0` }));
  ok(r.code === 0 || (r.code === 1 && lineFor(r.stdout + r.stderr, 'STATE_URL').length === 1), 'exit 0, or 1 with a STATE_URL line (no Redis in this build)', r.stdout + r.stderr);
  equal(leaks(r.stdout + r.stderr).join(', '), '', 'no secret in the output');
});

test('defaults only (just STATE_PATH): exit 0', async () => {
  const r = await checkConfig({ STATE_PATH: statePath });
  equal(r.code, 0, 'exit 0', r.stdout + r.stderr);
});

const BAD = [
  ['GATEKEEPER', { GATEKEEPER: 'bogus' }],
  ['PROXY_KEY', { GATEKEEPER: 'proxy_key', PROXY_KEY: undefined }],
  ['ADMIN_KEY', { GATEKEEPER: 'user_token', ADMIN_KEY: undefined }],
  ['MAX_BODY_BYTES', { MAX_BODY_BYTES: 'abc' }],
  ['HEARTBEAT_S', { HEARTBEAT_S: '0' }],
  ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
  ['SYSTEM_MESSAGE_MODE', { SYSTEM_MESSAGE_MODE: 'x' }],
  ['AWS_CREDENTIALS', { AWS_CREDENTIALS: `AKIAITONLYTWO:${M.awsSecret}` }],
  ['AZURE_CREDENTIALS', { AZURE_CREDENTIALS: `res:${M.azureKey}` }],
  ['GCP_CREDENTIALS', { GCP_CREDENTIALS: 'only:three:fields' }],
  ['STATE_PATH', { STATE_PATH: '/nonexistent-oai-it-dir/sub/state.db' }],
  ['HTTPS_PROXY', { HTTPS_PROXY: `not a url ${M.proxyPass}` }],
];

for (const [name, extra] of BAD) {
  test(`bad env: ${name}`, async () => {
    const r = await checkConfig(goodEnv(extra));
    const all = r.stdout + r.stderr;
    equal(r.code, 1, 'exit 1', all);
    equal(lineFor(all, name).length, 1, `one line naming ${name}`, all);
    equal(leaks(all).join(', '), '', 'no secret in the output', all);
  });
}

test('several problems at once: one line each', async () => {
  const names = ['GATEKEEPER', 'LOG_LEVEL', 'HEARTBEAT_S', 'MAX_BODY_BYTES', 'SYSTEM_MESSAGE_MODE'];
  const r = await checkConfig(goodEnv({ GATEKEEPER: 'bogus', LOG_LEVEL: 'loud', HEARTBEAT_S: '0', MAX_BODY_BYTES: 'abc', SYSTEM_MESSAGE_MODE: 'x' }));
  const all = r.stdout + r.stderr;
  equal(r.code, 1, 'exit 1', all);
  for (const n of names) equal(lineFor(all, n).length, 1, `one line for ${n}`, all);
  equal(leaks(all).join(', '), '', 'no secret in the output');
});

test('start-up validates the environment (--listen): exit 1 with the same line', async () => {
  const sock = path.join(dir, 'bad.sock');
  const r = await run(BIN, ['--listen', sock], { env: baseEnv(goodEnv({ LOG_LEVEL: 'loud' })), timeout: 8000 });
  ok(!r.timedOut, 'exits instead of serving');
  equal(r.code, 1, 'exit 1', r.stderr);
  equal(lineFor(r.stderr, 'LOG_LEVEL').length, 1, 'stderr names LOG_LEVEL', r.stderr);
  equal(leaks(r.stdout + r.stderr).join(', '), '', 'no secret in the output');
});

test('start-up validates the environment (CGI): no request served', async () => {
  const r = await run(BIN, [], {
    env: baseEnv(goodEnv({ GATEKEEPER: 'bogus', GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', REQUEST_URI: '/healthz', SCRIPT_NAME: '', PATH_INFO: '/healthz', HTTP_HOST: 'x' })),
    timeout: 8000,
  });
  ok(!/^ok$/m.test(r.stdout), 'does not answer ok', r.stdout);
  ok(lineFor(r.stderr, 'GATEKEEPER').length >= 1 || /GATEKEEPER/.test(r.stdout), 'names GATEKEEPER', r.stdout + r.stderr);
  equal(leaks(r.stdout + r.stderr).join(', '), '', 'no secret in the output');
});

test('bad env under lighttpd: fails loudly instead of serving', async () => {
  let L = null;
  let err = null;
  try {
    L = await startLighttpd({ env: { GATEKEEPER: 'bogus', PROXY_KEY: M.proxyKey, ADMIN_KEY: M.adminKey }, timeout: 6000 });
  } catch (e) { err = e; }
  ok(L === null, 'the gateway does not serve /healthz');
  const log = (err && err.errorLog) || '';
  match(log, /GATEKEEPER/, 'lighttpd error log names GATEKEEPER', log.slice(-3000));
  equal(leaks(log).join(', '), '', 'no secret in the error log');
  if (L) await L.stopAndClean();
  if (err && err.handle) await err.handle.stopAndClean();
});

test('bad per-request value: 500 and a log line naming the variable', async () => {
  const L = await startLighttpd({
    healthPath: null, // every request of this mount is misconfigured
    extra: `setenv.add-environment = ( "MAX_BODY_BYTES" => "abc", "PROXY_KEY" => "${M.proxyKey}" )`,
  });
  try {
    const r = await curlReq(`${L.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(TEST_MESSAGE) });
    equal(r.status, 500, 'status 500', r.body);
    ok(isOpenAIError(r.json), 'OpenAI error shape', r.body);
    equal(r.json && r.json.error && r.json.error.type, 'server_error', 'type server_error');
    match(r.json && r.json.error && r.json.error.code, /^(config_error|internal_error)$/, 'code');
    equal(leaks(r.body).join(', '), '', 'no secret in the body');
    const s = await curlReq(`${L.url}/status`);
    equal(s.status, 500, '/status also 500 (settings are per request)');
    const h = await curlReq(`${L.url}/healthz`);
    ok(h.status === 200 || h.status === 500, '/healthz answers', h.status);
    await new Promise((res) => setTimeout(res, 300));
    match(L.errorLog(), /MAX_BODY_BYTES/, 'log line names MAX_BODY_BYTES', L.errorLog().slice(-2000));
    equal(leaks(L.errorLog()).join(', '), '', 'no secret in the log');
  } finally {
    await L.stopAndClean();
  }
});

test('bad per-request secret-bearing value is not echoed', async () => {
  const L = await startLighttpd({
    healthPath: null,
    extra: `setenv.add-environment = ( "AWS_CREDENTIALS" => "AKIAX:${M.awsSecret}" )`,
  });
  try {
    const r = await curlReq(`${L.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(TEST_MESSAGE) });
    equal(r.status, 500, 'status 500', r.body);
    equal(leaks(r.body).join(', '), '', 'no secret in the body');
    await new Promise((res) => setTimeout(res, 300));
    match(L.errorLog(), /AWS_CREDENTIALS/, 'log names AWS_CREDENTIALS', L.errorLog().slice(-2000));
    equal(leaks(L.errorLog()).join(', '), '', 'no secret in the log');
  } finally {
    await L.stopAndClean();
  }
});

// Apache without CGIPassAuth On drops Authorization: the gateway sees a client with no key.
// The 401 says so, the state store remembers it, and --check-config shows a hint (not a problem).
const HINT = /^hint: .*Apache.*CGIPassAuth On/m;

/** One CGI request with no credential (plus headers) to a gatekeeper=proxy_key gateway. */
async function cgiUnauthorized(stateFile, serverSoftware, headers = {}) {
  const body = JSON.stringify({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Hello there' }] });
  const env = cgiEnv({
    method: 'POST', uri: '/proxy/gcp/claude/v1/chat/completions', body, headers,
    extra: { SERVER_SOFTWARE: serverSoftware },
  });
  const r = await run(BIN, [], {
    env: baseEnv({ ...env, ...CHECKER_OFF, STATE_PATH: stateFile, GATEKEEPER: 'proxy_key', PROXY_KEY: M.proxyKey }),
    input: body,
    timeout: 20000,
  });
  const text = r.stdout;
  const sep = text.indexOf('\r\n\r\n');
  return { ...r, statusLine: text.split('\r\n')[0], body: sep >= 0 ? text.slice(sep + 4) : '' };
}

test('CGIPassAuth hint: Apache request without a key leaves it, --check-config shows it', async () => {
  const sp = path.join(tmpDir('cc-hint-'), 'state.db');
  const before = await checkConfig(goodEnv({ STATE_PATH: sp }));
  equal(before.code, 0, 'fresh store: exit 0', before.stdout + before.stderr);
  ok(!HINT.test(before.stdout + before.stderr), 'fresh store: no hint', before.stdout);

  const r = await cgiUnauthorized(sp, 'Apache/2.4.71 (Debian)');
  equal(r.code, 0, 'CGI exits 0', r.stderr);
  match(r.statusLine, /^Status: 401/, '401', r.stdout);
  match(r.body, /CGIPassAuth On/, 'the 401 message names CGIPassAuth On', r.body);
  match(r.stderr, /CGIPassAuth/, 'one warning in the log names CGIPassAuth', r.stderr);
  equal(leaks(r.stdout + r.stderr).join(', '), '', 'no secret in the answer or the log');

  const c = await checkConfig(goodEnv({ STATE_PATH: sp }));
  equal(c.code, 0, 'still exit 0 (a hint is not a problem)', c.stdout + c.stderr);
  const lines = c.stdout.split('\n').filter((l) => HINT.test(l));
  equal(lines.length, 1, 'one hint line on stdout', c.stdout);
  match(lines[0], /GATEKEEPER=proxy_key/, 'names the gatekeeper mode', lines[0]);
  match(lines[0], /latest \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/, 'with the time of the latest request (UTC)', lines[0]);
  const latest = lines[0] && Date.parse(/latest (\S+)\)/.exec(lines[0])?.[1]);
  ok(Math.abs(Date.now() - latest) < 10 * 60 * 1000, 'which is just now', lines[0]);
  equal(leaks(c.stdout + c.stderr).join(', '), '', 'no secret in the output');

  const none = await checkConfig(goodEnv({ STATE_PATH: sp, GATEKEEPER: 'none' }));
  equal(none.code, 0, 'GATEKEEPER=none: exit 0', none.stdout + none.stderr);
  ok(!HINT.test(none.stdout), 'GATEKEEPER=none: no hint', none.stdout);
});

test('CGIPassAuth hint: not for other servers, nor for a wrong key through Apache', async () => {
  const sp = path.join(tmpDir('cc-nohint-'), 'state.db');
  const l = await cgiUnauthorized(sp, 'lighttpd/1.4.69');
  match(l.statusLine, /^Status: 401/, 'lighttpd: 401', l.stdout);
  ok(l.body.length > 0 && !/CGIPassAuth/.test(l.body), 'lighttpd: the 401 does not mention CGIPassAuth', l.body);
  const w = await cgiUnauthorized(sp, 'Apache/2.4.71 (Debian)', { Authorization: `Bearer ${randomSecret('wrong-')}` });
  match(w.statusLine, /^Status: 401/, 'Apache with a wrong key: 401', w.stdout);
  ok(w.body.length > 0 && !/CGIPassAuth/.test(w.body), 'Apache with a wrong key: no CGIPassAuth', w.body);
  const c = await checkConfig(goodEnv({ STATE_PATH: sp }));
  equal(c.code, 0, 'exit 0', c.stdout + c.stderr);
  ok(!HINT.test(c.stdout + c.stderr), 'no hint line', c.stdout);
});

void startListen;

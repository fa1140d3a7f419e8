// Run modes: CGI (direct and under lighttpd mod_cgi), `--listen` on a unix socket (driven by
// cgi-fcgi) and on 127.0.0.1:PORT (behind lighttpd), refused listen specs, usage, --version, --help.
import fs from 'node:fs';
import path from 'node:path';
import { test, ok, equal, deepEqual, match, skip } from '../lib/tap.mjs';
import {
  BIN, run, baseEnv, tmpDir, cgiEnv, cgiFcgi, sse, startListen, startLighttpd, freePort, curlReq,
  fetchText, requireBin, canConnect, TEST_MESSAGE, NON_TEST_MESSAGE, isOpenAIError,
} from '../lib/harness.mjs';

const J = JSON.stringify;
let stateDir;

/** Run the binary as a CGI program with `env` (plus STATE_PATH) and `input` on stdin. */
async function cgi(env, input) {
  const r = await run(BIN, [], { env: baseEnv({ STATE_PATH: path.join(stateDir, 'state.db'), ...env }), input: input ?? '', timeout: 20000 });
  const raw = r.stdoutBuf;
  const sep = raw.indexOf('\r\n\r\n');
  const headerText = sep >= 0 ? raw.subarray(0, sep).toString('latin1') : raw.toString('latin1');
  const headers = {};
  for (const line of headerText.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const body = sep >= 0 ? raw.subarray(sep + 4).toString('utf8') : '';
  let json;
  try { json = JSON.parse(body); } catch { /* not JSON */ }
  return { ...r, headerText, headers, body, json, statusLine: headerText.split('\r\n')[0] };
}

const SN = '/cgi-bin/oai-fcgi';
const cgiReq = (p, opts = {}) => cgiEnv({ uri: SN + p, scriptName: SN, ...opts });

test('setup', () => {
  ok(requireBin(), 'binary exists');
  stateDir = tmpDir('modes-');
});

test('CGI: GET /status', async () => {
  const r = await cgi(cgiReq('/status', { host: 'cgi.example:8080' }));
  equal(r.code, 0, 'exit code 0', r.stderr);
  match(r.statusLine, /^Status: 200 OK$/, 'first line is the Status header', r.headerText);
  match(r.headers['content-type'], /^application\/json/, 'content-type');
  equal(r.headers['access-control-allow-origin'], '*', 'CORS');
  equal(r.json && r.json.endpoints && r.json.endpoints.gcp, `http://cgi.example:8080${SN}/proxy/gcp/claude`, 'endpoints.gcp includes the script mount');
  equal(r.json && r.json.endpoints && r.json.endpoints.universal, `http://cgi.example:8080${SN}/v1`, 'endpoints.universal');
  ok(r.headerText.split('\r\n').every((l) => /^[A-Za-z0-9-]+: /.test(l)), 'headers are CRLF-separated CGI header lines', r.headerText);
});

test('CGI: HTTPS scheme in endpoints', async () => {
  const r = await cgi(cgiReq('/status', { host: 'secure.example', extra: { HTTPS: 'on', REQUEST_SCHEME: 'https', SERVER_PORT: '443' } }));
  equal(r.json && r.json.endpoints && r.json.endpoints.gcp, `https://secure.example${SN}/proxy/gcp/claude`, 'https origin');
});

test('CGI: GET / as HTML', async () => {
  const r = await cgi(cgiReq('/', { headers: { Accept: 'text/html' } }));
  equal(r.code, 0, 'exit code');
  match(r.headers['content-type'], /^text\/html/, 'content-type');
  match(r.body, /<title>/, 'has a title');
});

test('CGI: test message (non-stream)', async () => {
  const body = J(TEST_MESSAGE);
  const r = await cgi(cgiReq('/v1/chat/completions', { method: 'POST', body }), body);
  equal(r.code, 0, 'exit code 0', r.stderr);
  match(r.statusLine, /^Status: 200 OK$/, 'Status 200');
  equal(r.json && r.json.choices && r.json.choices[0].message.content, 'Hello!', 'Hello!');
  equal(r.json && r.json.id, 'test-message', 'id');
});

test('CGI: test message (stream)', async () => {
  const body = J({ ...TEST_MESSAGE, stream: true });
  const r = await cgi(cgiReq('/proxy/aws/claude/v1/chat/completions', { method: 'POST', body }), body);
  equal(r.code, 0, 'exit code 0', r.stderr);
  match(r.statusLine, /^Status: 200 OK$/, 'Status 200');
  match(r.headers['content-type'], /^text\/event-stream/, 'content-type');
  equal(r.headers['x-accel-buffering'], 'no', 'x-accel-buffering');
  const { events } = sse(r.body);
  equal(events.length, 4, 'three chunks and [DONE]', r.body);
  equal(events[3] && events[3].data, '[DONE]', '[DONE] last');
  equal(events[1] && events[1].json && events[1].json.choices[0].delta.content, 'Hello!', 'content chunk');
});

test('CGI: Anthropic stream on /messages', async () => {
  const body = J({ ...TEST_MESSAGE, max_tokens: 8, stream: true });
  const r = await cgi(cgiReq('/proxy/gcp/claude/v1/messages', { method: 'POST', body }), body);
  const names = sse(r.body).events.map((e) => e.event).filter((e) => e !== 'ping');
  deepEqual(names, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'], 'event sequence', r.body);
});

test('CGI: 404 and 503', async () => {
  const r = await cgi(cgiReq('/nope'));
  equal(r.code, 0, 'exit code 0 for a 404');
  match(r.statusLine, /^Status: 404\b/, 'Status 404');
  ok(isOpenAIError(r.json), 'OpenAI error shape', r.body);
  const body = J(NON_TEST_MESSAGE);
  const n = await cgi(cgiReq('/v1/chat/completions', { method: 'POST', body }), body);
  match(n.statusLine, /^Status: 503\b/, 'non-test request: Status 503');
  equal(n.json && n.json.error && n.json.error.code, 'no_keys', 'error.code');
});

test('CGI: body without CONTENT_LENGTH is read to EOF', async () => {
  const body = J(TEST_MESSAGE);
  const env = cgiReq('/v1/chat/completions', { method: 'POST', body });
  delete env.CONTENT_LENGTH;
  const r = await cgi(env, body);
  match(r.statusLine, /^Status: 200 OK$/, 'no CONTENT_LENGTH: Status 200', r.body);
  equal(r.json && r.json.completion, 'Hello!', 'no CONTENT_LENGTH: test reply');
  const r2 = await cgi({ ...env, CONTENT_LENGTH: '-1' }, body);
  equal(r2.json && r2.json.completion, 'Hello!', 'CONTENT_LENGTH=-1: test reply', r2.body);
  const big = J({ ...TEST_MESSAGE, pad: 'q'.repeat(300000) });
  const r3 = await cgi(env, big);
  equal(r3.json && r3.json.completion, 'Hello!', '300 KB body without CONTENT_LENGTH', r3.body.slice(0, 300));
});

test('CGI: MAX_BODY_BYTES applies without CONTENT_LENGTH', async () => {
  const body = J({ ...TEST_MESSAGE, pad: 'x'.repeat(5000) });
  const env = cgiReq('/v1/chat/completions', { method: 'POST', body, extra: { MAX_BODY_BYTES: '4096' } });
  delete env.CONTENT_LENGTH;
  const r = await cgi(env, body);
  match(r.statusLine, /^Status: 413\b/, 'Status 413', r.body);
  equal(r.json && r.json.error && r.json.error.code, 'request_too_large', 'error.code');
});

test('CGI: mount at / without fix-root-scriptname (SCRIPT_NAME = whole path, no PATH_INFO)', async () => {
  const r = await cgi(cgiEnv({ uri: '/proxy/gcp/claude/v1/models', scriptName: '/proxy/gcp/claude/v1/models', pathInfo: null }));
  match(r.statusLine, /^Status: 200 OK$/, 'Status 200', r.body);
  deepEqual(r.json, { object: 'list', data: [] }, 'models list');
  const s = await cgi(cgiEnv({ uri: '/status?x=1', scriptName: '/status', pathInfo: null }));
  equal(s.json && s.json.endpoints && s.json.endpoints.gcp, 'http://127.0.0.1:7860/proxy/gcp/claude', 'root mount endpoints');
});

test('CGI under lighttpd mod_cgi', async () => {
  if (!fs.existsSync('/usr/lib/lighttpd/mod_cgi.so')) {
    skip('CGI under lighttpd mod_cgi', 'mod_cgi not installed');
    return;
  }
  const env = baseEnv();
  let L;
  try {
    L = await startLighttpd({
      healthPath: `${SN}/healthz`,
      config: ({ port, rundir, statePath }) => {
        fs.mkdirSync(path.join(rundir, 'cgi-bin'));
        fs.symlinkSync(BIN, path.join(rundir, 'cgi-bin', 'oai-fcgi'));
        const pass = { STATE_PATH: statePath };
        for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS']) if (env[k]) pass[k] = env[k];
        return [
          'server.modules = ( "mod_cgi", "mod_setenv" )',
          'server.bind = "127.0.0.1"', `server.port = ${port}`, `server.document-root = "${rundir}"`,
          `server.errorlog = "${rundir}/lighttpd-error.log"`, `server.pid-file = "${rundir}/lighttpd.pid"`,
          'server.stream-response-body = 2',
          `setenv.add-environment = ( ${Object.entries(pass).map(([k, v]) => `"${k}" => "${v}"`).join(', ')} )`,
          '$HTTP["url"] =^ "/cgi-bin/" { cgi.assign = ( "" => "" ) }',
        ].join('\n') + '\n';
      },
    });
    const o = L.origin;
    const s = await curlReq(`${o}${SN}/status`);
    equal(s.status, 200, '/status status');
    equal(s.json && s.json.endpoints && s.json.endpoints.gcp, `${o}${SN}/proxy/gcp/claude`, 'endpoints under the script');
    const t = await curlReq(`${o}${SN}/v1/chat/completions`, { method: 'POST', body: J(TEST_MESSAGE) });
    equal(t.json && t.json.completion, 'Hello!', 'test message', t.body);
    const c = await curlReq(`${o}${SN}/v1/chat/completions`, { method: 'POST', body: J(TEST_MESSAGE), headers: { 'Transfer-Encoding': 'chunked' } });
    equal(c.json && c.json.completion, 'Hello!', 'chunked upload', c.body);
    const st = await fetchText(`${o}${SN}/proxy/gcp/claude/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: J({ ...TEST_MESSAGE, stream: true }) });
    match(st.headers['content-type'], /^text\/event-stream/, 'stream content-type');
    equal(sse(st.body).events.pop()?.data, '[DONE]', 'stream ends with [DONE]');
    const n = await curlReq(`${o}${SN}/nope`);
    equal(n.status, 404, '404');
    equal(n.headers['access-control-allow-origin'], '*', 'CORS on 404');
    const m = await curlReq(`${o}${SN}/proxy/azure/openai//models/`);
    deepEqual(m.json, { object: 'list', data: [] }, 'doubled and trailing slashes');
  } finally {
    if (L) await L.stopAndClean();
  }
});

test('--listen unix socket with cgi-fcgi', async () => {
  const dir = tmpDir('sock-');
  const sock = path.join(dir, 'gw.sock');
  const g = await startListen(['--listen', sock], { STATE_PATH: path.join(dir, 'state.db') });
  try {
    const mode = fs.statSync(sock).mode & 0o777;
    equal(mode.toString(8), '660', 'socket mode 0660');
    const h = await cgiFcgi(sock, cgiEnv({ uri: '/healthz' }));
    equal(h.code, 0, 'cgi-fcgi exit code');
    equal(h.status, 200, 'healthz status');
    equal(h.body, 'ok\n', 'healthz body');
    const s = await cgiFcgi(sock, cgiEnv({ uri: '/status', host: 'fcgi.example' }));
    equal(JSON.parse(s.body || 'null')?.endpoints?.aws, 'http://fcgi.example/proxy/aws/claude', 'status endpoints');
    const body = J({ ...TEST_MESSAGE, stream: true });
    const t = await cgiFcgi(sock, cgiEnv({ method: 'POST', uri: '/proxy/azure/openai/v1/chat/completions', body }), body);
    equal(t.status, 200, 'stream status');
    match(t.headers['content-type'], /^text\/event-stream/, 'stream content-type');
    const ev = sse(t.body).events;
    equal(ev.length, 4, 'stream events', t.body);
    equal(ev[3] && ev[3].data, '[DONE]', '[DONE]');
    const n = await cgiFcgi(sock, cgiEnv({ uri: '/proxy/gcp/claude/v1/nothing' }));
    equal(n.status, 404, '404 status');
    const nb = J(TEST_MESSAGE);
    const mounted = await cgiFcgi(sock, cgiEnv({ method: 'POST', uri: '/gw/v1/chat/completions', scriptName: '/gw', body: nb }), nb);
    equal(JSON.parse(mounted.body || 'null')?.completion, 'Hello!', 'prefix mount via SCRIPT_NAME/PATH_INFO');
  } finally {
    const r = await g.stop(5000);
    equal(r && r.code, 0, 'exits 0 on SIGTERM', g.proc.stderrText().slice(-2000));
  }
});

test('settings precedence over FastCGI: param, then REDIRECT_<NAME>, then process env; never HTTP_*', async () => {
  const dir = tmpDir('prec-');
  const sock = path.join(dir, 'gw.sock');
  const g = await startListen(['--listen', sock], { STATE_PATH: path.join(dir, 'state.db'), SERVER_TITLE: 'proc-title' });
  const title = (r) => (/<title>([^<]*)<\/title>/i.exec(r.body || '') || [])[1] || null;
  const page = (extra) => cgiFcgi(sock, cgiEnv({ uri: '/', headers: { Accept: 'text/html' }, extra }));
  try {
    match(title(await page({})), /proc-title/, 'process env only');
    match(title(await page({ REDIRECT_SERVER_TITLE: 'redirect-title' })), /redirect-title/, 'REDIRECT_ beats the process env');
    match(title(await page({ SERVER_TITLE: 'param-title', REDIRECT_SERVER_TITLE: 'redirect-title' })), /param-title/, 'param beats REDIRECT_');
    const evil = await page({ HTTP_SERVER_TITLE: 'evil', HTTP_REDIRECT_SERVER_TITLE: 'evil2' });
    match(title(evil), /proc-title/, 'HTTP_SERVER_TITLE ignored');
    ok(!/evil/.test(evil.body), 'no "evil" in the page');
    const bad = await cgiFcgi(sock, cgiEnv({ uri: '/status', extra: { REDIRECT_LOG_LEVEL: 'loud' } }));
    equal(bad.status, 500, 'bad REDIRECT_ value: 500');
    ok(isOpenAIError(JSON.parse(bad.body || 'null')), 'bad REDIRECT_ value: OpenAI error shape', bad.body);
  } finally {
    await g.stop();
  }
});

test('mount detection without PATH_INFO (mod_proxy_fcgi style) and with a rewritten SCRIPT_NAME', async () => {
  const dir = tmpDir('mount-');
  const sock = path.join(dir, 'gw.sock');
  const g = await startListen(['--listen', sock], { STATE_PATH: path.join(dir, 'state.db') });
  try {
    // SCRIPT_NAME holds the whole path, PATH_INFO unset: the longest known-route suffix wins.
    const s = await cgiFcgi(sock, cgiEnv({ uri: '/gw/status', scriptName: '/gw/status', pathInfo: null, host: 'h.example' }));
    equal(s.status, 200, 'status via suffix');
    equal(JSON.parse(s.body || 'null')?.endpoints?.gcp, 'http://h.example/gw/proxy/gcp/claude', 'mount = the part before the route');
    const body = J(TEST_MESSAGE);
    const t = await cgiFcgi(sock, cgiEnv({ method: 'POST', uri: '/gw/proxy/aws/claude/v1/chat/completions', scriptName: '/gw/proxy/aws/claude/v1/chat/completions', pathInfo: null, body }), body);
    equal(JSON.parse(t.body || 'null')?.completion, 'Hello!', 'chat route via suffix');
    // Apache .htaccess rewrite: SCRIPT_NAME is the script file, PATH_INFO the route.
    const m = await cgiFcgi(sock, cgiEnv({ uri: '/proxy/v1/models', scriptName: '/proxy/llmproxy.fcgi', pathInfo: '/v1/models' }));
    deepEqual(JSON.parse(m.body || 'null'), { object: 'list', data: [] }, 'PATH_INFO routes when set');
  } finally {
    await g.stop();
  }
});

test('--socket-mode 0666', async () => {
  const dir = tmpDir('sock-');
  const sock = path.join(dir, 'gw.sock');
  const g = await startListen(['--listen', sock, '--socket-mode', '0666'], { STATE_PATH: path.join(dir, 'state.db') });
  try {
    equal((fs.statSync(sock).mode & 0o777).toString(8), '666', 'socket mode 0666');
  } finally {
    await g.stop();
  }
});

test('--listen 127.0.0.1:PORT behind lighttpd (host/port, no bin-path)', async () => {
  const gport = await freePort();
  const dir = tmpDir('tcp-');
  const g = await startListen(['--listen', `127.0.0.1:${gport}`], { STATE_PATH: path.join(dir, 'state.db') });
  let L;
  try {
    L = await startLighttpd({
      config: ({ port, rundir }) => [
        'server.modules = ( "mod_fastcgi" )',
        'server.bind = "127.0.0.1"', `server.port = ${port}`, `server.document-root = "${rundir}"`,
        `server.errorlog = "${rundir}/lighttpd-error.log"`, `server.pid-file = "${rundir}/lighttpd.pid"`,
        'server.stream-response-body = 2',
        `fastcgi.server = ( "/" => (( "host" => "127.0.0.1", "port" => ${gport}, "check-local" => "disable", "fix-root-scriptname" => "enable" )) )`,
      ].join('\n') + '\n',
    });
    const s = await curlReq(`${L.url}/status`);
    equal(s.json && s.json.endpoints && s.json.endpoints.universal, `${L.origin}/v1`, 'endpoints use the web server origin');
    const st = await fetchText(`${L.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: J({ ...TEST_MESSAGE, stream: true }) });
    equal(st.status, 200, 'stream status');
    equal(sse(st.body).events.length, 4, 'stream events', st.body);
    const m = await curlReq(`${L.url}/proxy/gcp/claude/models`);
    deepEqual(m.json, { object: 'list', data: [] }, 'models');
  } finally {
    if (L) await L.stopAndClean();
    const r = await g.stop();
    equal(r && r.code, 0, 'TCP gateway exits 0 on SIGTERM', g.proc.stderrText().slice(-2000));
  }
});

test('--listen :9000 is refused (would bind every interface)', async () => {
  const port = await freePort();
  const r = await run(BIN, ['--listen', `:${port}`], { env: baseEnv({ STATE_PATH: path.join(stateDir, 'state.db') }), timeout: 5000 });
  ok(!r.timedOut, 'exits instead of serving');
  ok(r.code !== 0 && r.code !== null, 'non-zero exit', r.code);
  match(r.stderr, /host|127\.0\.0\.1|address/i, 'clear message on stderr', r.stderr);
  ok(!(await canConnect({ host: '127.0.0.1', port })), 'nothing listening');
});

test('--listen with a relative path or without an argument is refused', async () => {
  const r = await run(BIN, ['--listen'], { env: baseEnv({ STATE_PATH: path.join(stateDir, 'state.db') }), timeout: 5000 });
  ok(!r.timedOut && r.code !== 0, '--listen without ADDR: non-zero exit', r);
  ok(r.stderr.trim().length > 0, '--listen without ADDR: message on stderr');
  const r2 = await run(BIN, ['--listen', 'relative.sock'], { env: baseEnv({ STATE_PATH: path.join(stateDir, 'state.db') }), timeout: 5000, cwd: stateDir });
  ok(!r2.timedOut && r2.code !== 0, '--listen relative.sock: non-zero exit', r2);
  ok(!fs.existsSync(path.join(stateDir, 'relative.sock')), 'no relative socket created');
});

test('no args, no CGI env: usage, exit 2', async () => {
  const r = await run(BIN, [], { env: baseEnv(), timeout: 5000 });
  equal(r.code, 2, 'exit code 2');
  match(r.stderr, /usage/i, 'usage on stderr');
  match(r.stderr, /--listen/, 'usage mentions --listen');
  equal(r.stdout, '', 'nothing on stdout');
});

test('unknown option: exit 2', async () => {
  const r = await run(BIN, ['--bogus-option'], { env: baseEnv(), timeout: 5000 });
  equal(r.code, 2, 'exit code 2');
  match(r.stderr, /--bogus-option|unknown|usage/i, 'message on stderr');
});

test('--version', async () => {
  const r = await run(BIN, ['--version'], { env: baseEnv(), timeout: 5000 });
  equal(r.code, 0, 'exit 0');
  match(r.stdout.trim(), /^oai-fcgi 0\.1\.0 \([^)]+\)$/, 'version line');
});

test('--help lists every option and every variable', async () => {
  const r = await run(BIN, ['--help'], { env: baseEnv(), timeout: 5000 });
  equal(r.code, 0, 'exit 0');
  const text = r.stdout;
  for (const opt of ['--listen', '--socket-mode', '--check-config', '--version', '--help']) match(text, new RegExp(opt), `mentions ${opt}`);
  const vars = ['GCP_CREDENTIALS', 'GCP_CREDENTIALS_FILE', 'AWS_CREDENTIALS', 'AZURE_CREDENTIALS', 'GATEKEEPER', 'PROXY_KEY', 'ADMIN_KEY',
    'PROXY_ENDPOINT_ROUTE', 'MODEL_ALIASES', 'DEFAULT_MAX_TOKENS', 'MAX_OUTPUT_TOKENS', 'ALLOWED_MODEL_FAMILIES', 'TEXT_MODEL_RATE_LIMIT',
    'TOKEN_QUOTA_', 'MAX_IPS_PER_USER', 'BLOCKED_ORIGINS', 'IP_BLACKLIST', 'TRUSTED_PROXIES', 'STATE_PATH', 'MAX_BODY_BYTES',
    'UPSTREAM_TIMEOUT_S', 'STREAM_IDLE_TIMEOUT_S', 'HEARTBEAT_S', 'UPSTREAM_CONNECT_TO', 'UPSTREAM_CA_BUNDLE', 'HTTPS_PROXY',
    'SERVER_TITLE', 'LOG_LEVEL', 'SYSTEM_MESSAGE_MODE', 'ERROR_STYLE', 'AZURE_API_VERSION', 'MAX_CHOICES', 'DROP_ANTHROPIC_BETAS',
    'VERTEX_ANTHROPIC_VERSION', 'BEDROCK_ANTHROPIC_VERSION', 'MAX_QUEUE_WAIT_S', 'PROVIDER_ORDER', 'KEY_CHECK_PERIOD_S',
    'KEY_MAX_CONCURRENCY', 'QUOTA_REFRESH_PERIOD', 'STATE_URL', 'STATE_PREFIX', 'STATE_FAIL_OPEN'];
  const missing = vars.filter((v) => !text.includes(v));
  deepEqual(missing, [], 'every SPEC §4 variable is listed');
});

test('no stray gateway processes', async () => {
  // startListen/stopProc handled everything; a leftover would point at a shutdown bug.
  const left = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/environ`, 'latin1').includes(`STATE_PATH=${stateDir}`); } catch { return false; }
  });
  deepEqual(left, [], 'none left');
});


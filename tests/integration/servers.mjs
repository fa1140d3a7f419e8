// The gateway under each web server, with the configs from etc/ (issue 8): the same scenarios
// everywhere — the info page and a per-request setting, a stream that must arrive incrementally,
// a tool call, a 200 KiB request body, Authorization reaching the gatekeeper, and a client
// disconnect aborting the upstream transfer — against the Vertex mock.
//
// OAI_SERVERS picks the servers: unset = lighttpd (FastCGI) and lighttpd-cgi (what `make check`
// runs); "all" = every one in tests/lib/servers.mjs (what `make check-servers` runs, after
// installing them); or a comma list. A server that is not installed fails its test unless
// OAI_SERVERS is unset.
import fs from 'node:fs';
import path from 'node:path';
import { test, ok, equal, match, diag } from '../lib/tap.mjs';
import { requireBin, tmpDir, fetchText, randomSecret, SRCDIR } from '../lib/harness.mjs';
import { ALL_SERVERS, MOUNT, startServer } from '../lib/servers.mjs';
import { mark } from '../mock/vertex.mjs';
import { MODEL, setupMock, postStream, chunksOf, joinContent } from '../mock/gateway.mjs';

const want = process.env.OAI_SERVERS || '';
const SERVERS = want === 'all' ? ALL_SERVERS : want ? want.split(',').map((s) => s.trim()).filter(Boolean) : ['lighttpd', 'lighttpd-cgi'];
const PROXY_KEY = randomSecret('pk-');
const TITLE = 'My Claude gateway'; // what every etc/ config sets per request (SERVER_TITLE)
const user = (text) => [{ role: 'user', content: text }];
let G, env;

const chatUrl = (S) => `${S.url}/proxy/gcp/claude/v1/chat/completions`;
const post = (S, body, headers = { authorization: `Bearer ${PROXY_KEY}` }) => fetchText(chatUrl(S), {
  method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), timeout: 30000,
});

test('the Vertex mock and the gateway\'s settings', async () => {
  if (!requireBin()) throw new Error('no binary');
  G = await setupMock();
  const keyDir = tmpDir('srv-key-');
  const keyFile = path.join(keyDir, 'sa.json');
  fs.writeFileSync(keyFile, JSON.stringify(G.sa.json));
  env = {
    GCP_CREDENTIALS_FILE: keyFile, UPSTREAM_CONNECT_TO: G.env.UPSTREAM_CONNECT_TO, UPSTREAM_CA_BUNDLE: G.env.UPSTREAM_CA_BUNDLE,
    GATEKEEPER: 'proxy_key', PROXY_KEY, HEARTBEAT_S: '1', LOG_LEVEL: 'info',
  };
  ok(G.mock.port > 0, 'listening');
  diag(`servers: ${SERVERS.join(', ')}`);
}, { timeout: 30000 });

test('the README quotes every etc/ config verbatim', () => {
  const readme = fs.readFileSync(path.join(SRCDIR, 'README.md'), 'utf8');
  for (const f of ['lighttpd.conf', 'lighttpd-cgi.conf', 'apache-fcgid.conf', 'apache-proxy-fcgi.conf', 'nginx.conf', 'Caddyfile', 'htaccess.example', 'spawn-fcgi.sh', 'oai-fcgi.service']) {
    let text = fs.readFileSync(path.join(SRCDIR, 'etc', f), 'utf8').trimEnd();
    // for lighttpd the README quotes the part to copy into an existing configuration
    if (f.startsWith('lighttpd')) text = text.slice(text.indexOf('# Stream responses'), text.indexOf('@EXTRA@')).trimEnd();
    ok(readme.includes(text), `README holds etc/${f} as it is`);
  }
});

for (const kind of SERVERS) {
  const checks = (name, fn, timeout = 60000) => test(`${kind}: ${name}`, async () => {
    const S = await startServer(kind, { env });
    try {
      await fn(S);
    } catch (e) {
      ok(false, `${kind}: ${e.message}`, S.errorLog().slice(-3000));
    } finally {
      await S.stop();
    }
  }, { timeout });

  checks('info page, per-request setting, Authorization, a 200 KiB body, a tool call', async (S) => {
    const st = await fetchText(`${S.url}/status`);
    equal(st.status, 200, 'GET /oai/status: 200', st.body.slice(0, 300));
    equal(st.json && st.json.endpoints && st.json.endpoints.gcp, `${S.origin}${MOUNT}/proxy/gcp/claude`, 'endpoints built from the mount');
    equal(st.json && st.json.config && st.json.config.gatekeeper, 'proxy_key', 'process settings arrived (GATEKEEPER)');
    if (!kind.startsWith('lighttpd')) { // the etc/ configs of the other servers set it per request
      const page = await fetchText(`${S.url}/`, { headers: { accept: 'text/html' } });
      match(page.body, new RegExp(`<h1>${TITLE}</h1>`), 'the per-request SERVER_TITLE from the etc/ config');
    }
    const none = await post(S, { model: MODEL, messages: user('Hello there') }, {});
    equal(none.status, 401, 'no key: 401 from the gatekeeper');
    const r = await post(S, { model: MODEL, messages: user(`Hello there ${mark('text', `${kind}-auth`)}`) });
    equal(r.status, 200, 'Authorization: Bearer reached the gatekeeper: 200', r.body.slice(0, 300));
    equal(r.json && r.json.choices && r.json.choices[0].message.content, 'Hello from the Vertex mock.', 'the answer');
    const xk = await post(S, { model: MODEL, messages: user(`Hello there ${mark('text', `${kind}-xk`)}`) }, { 'x-api-key': PROXY_KEY });
    equal(xk.status, 200, 'x-api-key works too');
    const big = 'x'.repeat(200 * 1024);
    const b = await post(S, { model: MODEL, messages: user(`${big} ${mark('text', `${kind}-big`)}`) });
    equal(b.status, 200, 'a 200 KiB body: 200', b.body.slice(0, 300));
    const rec = G.mock.last(mark('text', `${kind}-big`));
    ok(rec && rec.bodyText.includes(big), 'the whole body reached the upstream');
    const t = await post(S, { model: MODEL, tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
      messages: user(`Weather in Paris? ${mark('tools', `${kind}-tools`)}`) });
    const calls = t.json && t.json.choices && t.json.choices[0].message.tool_calls;
    ok(Array.isArray(calls) && calls.length >= 1 && calls[0].function && calls[0].function.name, 'a tool call comes back', t.body.slice(0, 300));
    equal(t.json && t.json.choices[0].finish_reason, 'tool_calls', 'finish_reason tool_calls');
  });

  checks('a stream arrives incrementally; a client disconnect aborts the upstream', async (S) => {
    const times = [];
    const s = await postStream(chatUrl(S), { model: MODEL, stream: true, messages: user(`Count ${mark('slow', `${kind}-slow`)}`) }, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${PROXY_KEY}` },
      onItem: (it) => { if (it.json && it.json.choices && joinContent([it.json])) times.push(Date.now()); },
    });
    equal(s.status, 200, 'stream: 200');
    equal(joinContent(chunksOf(s).filter((c) => c.choices)), 'one two three four five', 'all the text');
    ok(times.length >= 5 && times[times.length - 1] - times[0] >= 900, 'chunks arrived as the upstream sent them (300 ms apart), not at once', times.map((t) => t - times[0]));
    const m = mark('endless', `${kind}-dc`);
    let n = 0;
    const d = await postStream(chatUrl(S), { model: MODEL, stream: true, messages: user(`Forever ${m}`) }, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${PROXY_KEY}` },
      onItem: (it, ctl) => { if (it.json && it.json.choices && joinContent([it.json])) n++; if (n >= 2) ctl.abort(); },
    });
    ok(d.aborted, 'the client read 2 chunks and left');
    const rec = await G.mock.waitFor(() => { const r = G.mock.last(m); return r && r.closedAt ? r : null; }, 15000);
    ok(rec && rec.closedEarly, 'the upstream transfer was aborted', rec && rec.closedAt - d.abortedAt);
    ok(rec && rec.closedAt - d.abortedAt <= 10000, 'within 10 s (servers notice a gone client at their next write)', rec && rec.closedAt - d.abortedAt);
  });
}

test('the mock saw no malformed upstream request', () => {
  equal(G.mock.violations.length, 0, 'no violations', G.mock.violations.slice(0, 3));
});

// Routes, errors, CORS, body limits and per-request settings, through lighttpd (the shipped
// etc/lighttpd.conf template), checked with curl and with fetch.
import { test, ok, equal, deepEqual, match, diag } from '../lib/tap.mjs';
import {
  startLighttpd, curlReq, fetchText, randomSecret, isOpenAIError, isAnthropicError, requireBin,
  TEST_MESSAGE, NON_TEST_MESSAGE, dumpLog,
} from '../lib/harness.mjs';

const J = JSON.stringify;
const PROVIDERS = ['gcp/claude', 'aws/claude', 'azure/openai'];
const CHAT_ROUTES = ['/v1/chat/completions', '/proxy/gcp/claude/v1/chat/completions',
  '/proxy/aws/claude/chat/completions', '/proxy/azure/openai/v1/chat/completions'];
const MSG_ROUTES = ['/v1/messages', '/proxy/aws/claude/v1/messages', '/proxy/gcp/claude/messages'];

let A; // default: mount "/", no settings
let B; // SERVER_TITLE in process env and as FastCGI param, ADMIN_KEY param, MAX_BODY_BYTES=65536
let C; // PROXY_ENDPOINT_ROUTE=/api
let D; // MOUNT=/oai
const procTitle = 'proc-title-' + randomSecret('');
const paramTitle = 'param-title-' + randomSecret('');
const adminKey = randomSecret('adm-');

/** Run the same request with curl and with fetch; `check(res, via)` asserts on each. */
async function both(url, init, check) {
  const c = await curlReq(url, init);
  await check(c, 'curl');
  const headers = { ...(init.headers || {}) };
  if (init.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  const f = await fetchText(url, { ...init, headers });
  await check(f, 'fetch');
}

function isOpenAIErr(res, status, code, via, param) {
  equal(res.status, status, `${via}: status`, res.body);
  ok(isOpenAIError(res.json), `${via}: OpenAI error shape`, res.body);
  if (code !== undefined) equal(res.json && res.json.error && res.json.error.code, code, `${via}: error.code`);
  if (param !== undefined) equal(res.json && res.json.error && res.json.error.param, param, `${via}: error.param`);
  equal(res.headers['access-control-allow-origin'], '*', `${via}: CORS header on ${status}`);
}

function isAnthropicErr(res, status, type, via) {
  equal(res.status, status, `${via}: status`, res.body);
  ok(isAnthropicError(res.json), `${via}: Anthropic error shape`, res.body);
  equal(res.json && res.json.error && res.json.error.type, type, `${via}: error.type`);
  equal(res.headers['access-control-allow-origin'], '*', `${via}: CORS header on ${status}`);
}

function isTestReply(res, via, model = TEST_MESSAGE.model) {
  equal(res.status, 200, `${via}: status`, res.body);
  const j = res.json || {};
  equal(j.id, 'test-message', `${via}: id`);
  equal(j.object, 'chat.completion', `${via}: object`);
  equal(j.model, model, `${via}: model echoed`);
  equal(j.choices && j.choices[0] && j.choices[0].message && j.choices[0].message.content, 'Hello!', `${via}: choices[0].message.content`);
  equal(j.completion, 'Hello!', `${via}: completion`);
  deepEqual(j.content, [{ type: 'text', text: 'Hello!' }], `${via}: content blocks`);
}

test('start lighttpd instances', async () => {
  if (!requireBin()) throw new Error('no binary');
  A = await startLighttpd({});
  B = await startLighttpd({
    env: { SERVER_TITLE: procTitle, MAX_BODY_BYTES: '65536' },
    extra: `setenv.add-environment = ( "SERVER_TITLE" => "${paramTitle}", "ADMIN_KEY" => "${adminKey}" )`,
  });
  C = await startLighttpd({ env: { PROXY_ENDPOINT_ROUTE: '/api' } });
  D = await startLighttpd({ mount: '/oai' });
  ok(A && B && C && D, 'four lighttpd instances answer /healthz');
}, { timeout: 60000 });

test('GET /healthz', async () => {
  await both(`${A.url}/healthz`, {}, (r, via) => {
    equal(r.status, 200, `${via}: status`);
    equal(r.body, 'ok\n', `${via}: body`);
    match(r.headers['content-type'], /^text\/plain/, `${via}: content-type`);
    equal(r.headers['access-control-allow-origin'], '*', `${via}: CORS header on 200`);
  });
});

test('GET /status info JSON', async () => {
  await both(`${A.url}/status`, {}, (r, via) => {
    equal(r.status, 200, `${via}: status`);
    match(r.headers['content-type'], /^application\/json/, `${via}: content-type`);
    const j = r.json || {};
    ok(Number.isInteger(j.uptime) && j.uptime >= 0, `${via}: uptime is an integer`, j.uptime);
    const o = `http://127.0.0.1:${A.port}`;
    deepEqual(j.endpoints, {
      gcp: `${o}/proxy/gcp/claude`, aws: `${o}/proxy/aws/claude`, azure: `${o}/proxy/azure/openai`, universal: `${o}/v1`,
    }, `${via}: endpoints`);
    ok(Number.isInteger(j.proompts), `${via}: proompts is an integer`, j.proompts);
    equal(typeof j.tookens, 'string', `${via}: tookens is a string`);
    ok(Number.isInteger(j.proomptersNow), `${via}: proomptersNow is an integer`, j.proomptersNow);
    ok(j.config && typeof j.config === 'object' && !Array.isArray(j.config), `${via}: config is an object`, j.config);
    ok(j.config && Object.values(j.config).every((v) => typeof v === 'string'), `${via}: config values are strings`, j.config);
    equal(typeof j.build, 'string', `${via}: build is a string`);
    ok(!('gcpKeys' in j) && !('awsKeys' in j) && !('azureKeys' in j), `${via}: no key counts without keys`, Object.keys(j));
  });
});

test('/status endpoints follow the Host header', async () => {
  const r = await curlReq(`${A.url}/status`, { headers: { Host: 'gw.example.test:8443' } });
  equal(r.json && r.json.endpoints && r.json.endpoints.gcp, 'http://gw.example.test:8443/proxy/gcp/claude', 'gcp');
  equal(r.json && r.json.endpoints && r.json.endpoints.universal, 'http://gw.example.test:8443/v1', 'universal ends in /v1');
});

test('GET / content negotiation', async () => {
  await both(`${A.url}/`, { headers: { Accept: 'text/html' } }, (r, via) => {
    equal(r.status, 200, `${via}: html status`);
    match(r.headers['content-type'], /^text\/html/, `${via}: html content-type`);
    match(r.body, /<title>[^<]*oai-fcgi[^<]*<\/title>/, `${via}: html title`);
    match(r.body, /\/proxy\/gcp\/claude/, `${via}: html shows the endpoints`);
  });
  const browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
  await both(`${A.url}/`, { headers: { Accept: browser } }, (r, via) => {
    match(r.headers['content-type'], /^text\/html/, `${via}: browser Accept gets HTML`);
  });
  await both(`${A.url}/`, { headers: { Accept: '*/*' } }, (r, via) => {
    equal(r.status, 200, `${via}: json status`);
    match(r.headers['content-type'], /^application\/json/, `${via}: */* gets JSON`);
    ok(r.json && r.json.endpoints && typeof r.json.endpoints.gcp === 'string', `${via}: JSON info`, r.body.slice(0, 300));
  });
  await both(`${A.url}/`, { headers: { Accept: 'application/json, text/html;q=0.5' } }, (r, via) => {
    match(r.headers['content-type'], /^application\/json/, `${via}: JSON preferred over html`);
  });
  const r = await curlReq(`${A.url}/status`, { headers: { Accept: 'text/html' } });
  match(r.headers['content-type'], /^application\/json/, '/status is JSON even for text/html');
});

test('GET /metrics without ADMIN_KEY', async () => {
  await both(`${A.url}/metrics`, {}, (r, via) => {
    equal(r.status, 200, `${via}: status`);
    match(r.headers['content-type'], /^text\/plain; ?version=0\.0\.4/, `${via}: content-type`);
    match(r.body, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+(Inf|NaN)?$/m, `${via}: has a sample line`, r.body.slice(0, 500));
  });
});

test('GET /metrics with ADMIN_KEY (FastCGI param)', async () => {
  await both(`${B.url}/metrics`, {}, (r, via) => isOpenAIErr(r, 401, 'invalid_api_key', `${via} no auth`));
  await both(`${B.url}/metrics`, { headers: { Authorization: 'Bearer wrong-' + adminKey } },
    (r, via) => isOpenAIErr(r, 401, 'invalid_api_key', `${via} wrong key`));
  await both(`${B.url}/metrics`, { headers: { Authorization: `Bearer ${adminKey}` } }, (r, via) => {
    equal(r.status, 200, `${via}: right key status`);
    match(r.headers['content-type'], /^text\/plain/, `${via}: content-type`);
  });
  const h = await curlReq(`${B.url}/healthz`);
  equal(h.status, 200, '/healthz needs no auth');
});

test('provider model routes (with/without /v1, doubled and trailing slashes)', async () => {
  const paths = ['/v1/models', '/v1//models', '/v1/models/'];
  for (const p of PROVIDERS) {
    paths.push(`/proxy/${p}/v1/models`, `/proxy/${p}/models`, `/proxy/${p}//models`, `/proxy/${p}/v1//models`, `//proxy/${p}/models/`);
  }
  for (const p of paths) {
    await both(`${A.url}${p}`, {}, (r, via) => {
      equal(r.status, 200, `${via} ${p}: status`, r.body);
      deepEqual(r.json, { object: 'list', data: [] }, `${via} ${p}: body`);
    });
  }
});

test('unknown route: 404 OpenAI shape', async () => {
  for (const p of ['/nope', '/proxy/gcp/claude/v1/nope', '/v2/models', '/proxy', '/v1/chat/completions/extra']) {
    await both(`${A.url}${p}`, {}, (r, via) => isOpenAIErr(r, 404, 'not_found', `${via} GET ${p}`));
  }
  // Azure has no /messages route; a path ending in /messages is answered in the Anthropic shape.
  await both(`${A.url}/proxy/azure/openai/v1/messages`, { method: 'POST', body: J(TEST_MESSAGE) },
    (r, via) => isAnthropicErr(r, 404, 'not_found_error', `${via} POST /proxy/azure/openai/v1/messages`));
});

test('wrong method: 405 with Allow', async () => {
  await both(`${A.url}/v1/chat/completions`, {}, (r, via) => {
    isOpenAIErr(r, 405, 'method_not_allowed', `${via} GET /v1/chat/completions`);
    match(r.headers.allow, /\bPOST\b/, `${via}: Allow lists POST`);
  });
  await both(`${A.url}/proxy/gcp/claude/v1/models`, { method: 'POST', body: '{}' }, (r, via) => {
    isOpenAIErr(r, 405, 'method_not_allowed', `${via} POST models`);
    match(r.headers.allow, /\bGET\b/, `${via}: Allow lists GET`);
  });
  await both(`${A.url}/v1/messages`, { method: 'GET' }, (r, via) => {
    equal(r.status, 405, `${via} GET /v1/messages status`);
    match(r.headers.allow, /\bPOST\b/, `${via}: Allow lists POST`);
  });
});

test('400 on bad bodies (OpenAI shape)', async () => {
  const cases = [
    ['malformed JSON', '{"model": "x", "messages": [', undefined, 'invalid_json'],
    ['non-object JSON', '[{"role":"user","content":"Hi"}]', undefined, undefined],
    ['JSON string', '"Hi"', undefined, undefined],
    ['empty body', '', undefined, undefined],
    ['invalid UTF-8 in a string', Buffer.concat([Buffer.from('{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"H'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]}')]), undefined, undefined],
    ['overlong UTF-8 encoding', Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}]}')]), undefined, undefined],
    ['messages not an array', J({ model: 'claude-sonnet-4-5', messages: 'Hi' }), 'messages', undefined],
    ['messages missing', J({ model: 'claude-sonnet-4-5' }), 'messages', undefined],
    ['stream not a boolean', J({ ...TEST_MESSAGE, stream: 'yes' }), 'stream', undefined],
    ['model not a string', J({ ...TEST_MESSAGE, model: 5 }), 'model', undefined],
  ];
  for (const route of ['/v1/chat/completions', '/proxy/gcp/claude/v1/chat/completions', '/proxy/azure/openai/chat/completions']) {
    for (const [name, body, param, code] of cases) {
      await both(`${A.url}${route}`, { method: 'POST', body }, (r, via) => {
        isOpenAIErr(r, 400, code, `${via} ${route} ${name}`, param);
        equal(r.json && r.json.error && r.json.error.type, 'invalid_request_error', `${via} ${route} ${name}: type`);
        if (code === undefined) match(r.json && r.json.error && r.json.error.code, /^(invalid_json|invalid_request)$/, `${via} ${route} ${name}: code`);
      });
    }
  }
});

test('400 on bad bodies on /messages (Anthropic shape)', async () => {
  for (const route of MSG_ROUTES) {
    for (const body of ['{"model": "x", "messages": [', '[]', J({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: {} }),
      Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xff]), Buffer.from('"}]}')])]) {
      await both(`${A.url}${route}`, { method: 'POST', body, headers: { 'anthropic-version': '2023-06-01' } },
        (r, via) => isAnthropicErr(r, 400, 'invalid_request_error', `${via} ${route} ${String(body).slice(0, 20)}`));
    }
  }
});

test('413 over MAX_BODY_BYTES (65536 from the process env)', async () => {
  const big = J({ ...TEST_MESSAGE, pad: 'x'.repeat(70000) });
  ok(big.length > 70000, 'body is over 70000 bytes');
  await both(`${B.url}/v1/chat/completions`, { method: 'POST', body: big },
    (r, via) => isOpenAIErr(r, 413, 'request_too_large', `${via} chat/completions`));
  await both(`${B.url}/proxy/aws/claude/v1/messages`, { method: 'POST', body: big },
    (r, via) => isAnthropicErr(r, 413, 'request_too_large', `${via} /messages`));
  // Chunked upload (no Content-Length from the client) is capped too.
  const c = await curlReq(`${B.url}/v1/chat/completions`, { method: 'POST', body: big, headers: { 'Transfer-Encoding': 'chunked' } });
  isOpenAIErr(c, 413, 'request_too_large', 'curl chunked');
  // Just under the cap is fine.
  const under = J({ ...TEST_MESSAGE, pad: 'x'.repeat(60000) });
  await both(`${B.url}/v1/chat/completions`, { method: 'POST', body: under }, (r, via) => isTestReply(r, `${via} 60 KB body`));
});

test('200 KiB bodies are accepted under the default cap', async () => {
  const pad = 'y'.repeat(200 * 1024);
  await both(`${A.url}/v1/chat/completions`, { method: 'POST', body: J({ ...TEST_MESSAGE, pad }) },
    (r, via) => isTestReply(r, `${via} test message + 200 KiB field`));
  await both(`${A.url}/v1/chat/completions`, { method: 'POST', body: J({ ...NON_TEST_MESSAGE, messages: [{ role: 'user', content: pad }] }) },
    (r, via) => isOpenAIErr(r, 503, 'no_keys', `${via} non-test 200 KiB`));
});

test('chunked upload bodies', async () => {
  const small = await curlReq(`${A.url}/v1/chat/completions`, { method: 'POST', body: J(TEST_MESSAGE), headers: { 'Transfer-Encoding': 'chunked' } });
  isTestReply(small, 'curl chunked small');
  const big = await curlReq(`${A.url}/proxy/gcp/claude/v1/chat/completions`, { method: 'POST', body: J({ ...TEST_MESSAGE, pad: 'z'.repeat(150000) }), headers: { 'Transfer-Encoding': 'chunked' } });
  isTestReply(big, 'curl chunked 150 KB');
  // fetch with a streaming body is sent chunked as well.
  const stream = new ReadableStream({
    start(ctrl) {
      const b = Buffer.from(J(TEST_MESSAGE));
      ctrl.enqueue(b.subarray(0, 10));
      ctrl.enqueue(b.subarray(10));
      ctrl.close();
    },
  });
  const f = await fetchText(`${A.url}/v1/chat/completions`, { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/json' } });
  isTestReply(f, 'fetch streamed body');
});

test('CORS preflight', async () => {
  const reqHeaders = 'authorization, content-type, x-stainless-os';
  for (const p of ['/v1/chat/completions', '/proxy/aws/claude/v1/messages', '/nope']) {
    await both(`${A.url}${p}`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': reqHeaders },
    }, (r, via) => {
      equal(r.status, 204, `${via} OPTIONS ${p}: status`);
      equal(r.headers['access-control-allow-origin'], '*', `${via} OPTIONS ${p}: allow-origin`);
      equal(r.headers['access-control-allow-methods'], 'GET, POST, OPTIONS', `${via} OPTIONS ${p}: allow-methods`);
      equal((r.headers['access-control-allow-headers'] || '').toLowerCase().replace(/\s+/g, ''), reqHeaders.replace(/\s+/g, ''), `${via} OPTIONS ${p}: allow-headers echoed`);
      equal(r.headers['access-control-max-age'], '86400', `${via} OPTIONS ${p}: max-age`);
      equal(r.body, '', `${via} OPTIONS ${p}: no body`);
    });
  }
  const r = await curlReq(`${A.url}/v1/models`, { method: 'OPTIONS', headers: { Origin: 'http://app.example' } });
  equal(r.status, 204, 'OPTIONS without request headers: status');
  equal(r.headers['access-control-allow-headers'], '*', 'without Access-Control-Request-Headers: *');
});

test('CORS header on every response', async () => {
  const cases = [
    [`${A.url}/status`, {}, 200], [`${A.url}/v1/models`, {}, 200], [`${A.url}/nope`, {}, 404],
    [`${A.url}/v1/chat/completions`, { method: 'POST', body: '{' }, 400],
    [`${A.url}/v1/chat/completions`, {}, 405],
    [`${A.url}/v1/chat/completions`, { method: 'POST', body: J(NON_TEST_MESSAGE) }, 503],
    [`${A.url}/v1/chat/completions`, { method: 'POST', body: J(TEST_MESSAGE) }, 200],
  ];
  for (const [url, init, status] of cases) {
    await both(url, init, (r, via) => {
      equal(r.status, status, `${via} ${init.method || 'GET'} ${url.slice(A.url.length)} status`);
      equal(r.headers['access-control-allow-origin'], '*', `${via} ${init.method || 'GET'} ${url.slice(A.url.length)} allow-origin`);
    });
  }
});

test('non-test generation requests: 503 (no keys)', async () => {
  for (const route of CHAT_ROUTES) {
    await both(`${A.url}${route}`, { method: 'POST', body: J(NON_TEST_MESSAGE) }, (r, via) => {
      isOpenAIErr(r, 503, 'no_keys', `${via} ${route}`);
      equal(r.json && r.json.error && r.json.error.type, 'server_error', `${via} ${route}: type`);
    });
    const s = await curlReq(`${A.url}${route}`, { method: 'POST', body: J({ ...NON_TEST_MESSAGE, stream: true }) });
    isOpenAIErr(s, 503, 'no_keys', `curl stream ${route}`);
  }
  for (const route of MSG_ROUTES) {
    await both(`${A.url}${route}`, { method: 'POST', body: J({ ...NON_TEST_MESSAGE, max_tokens: 10 }), headers: { 'anthropic-version': '2023-06-01' } },
      (r, via) => isAnthropicErr(r, 503, 'overloaded_error', `${via} ${route}`));
  }
});

function titleOf(html) {
  const m = /<title>([^<]*)<\/title>/i.exec(html || '');
  return m ? m[1] : null;
}

test('per-request settings: FastCGI param beats process env; HTTP_* is ignored', async () => {
  const html = await curlReq(`${B.url}/`, { headers: { Accept: 'text/html' } });
  match(titleOf(html.body), new RegExp(paramTitle), 'title from setenv.add-environment param');
  ok(!html.body.includes(procTitle), 'process-env title not used', titleOf(html.body));
  const evil = await curlReq(`${B.url}/`, { headers: { Accept: 'text/html', 'Server-Title': 'evil' } });
  match(titleOf(evil.body), new RegExp(paramTitle), 'Server-Title header does not override the param');
  ok(!/evil/.test(evil.body), 'no "evil" anywhere in the page');
  const evilA = await curlReq(`${A.url}/`, { headers: { Accept: 'text/html', 'Server-Title': 'evil' } });
  match(titleOf(evilA.body), /oai-fcgi/, 'Server-Title header does not override the default');
  ok(!/evil/.test(evilA.body), 'no "evil" anywhere in the default page');
  const st = await curlReq(`${A.url}/status`, { headers: { 'Server-Title': 'evil', 'Proxy-Endpoint-Route': '/evil', 'Max-Body-Bytes': '1024' } });
  ok(!/evil/.test(st.body), 'HTTP_* headers do not reach /status', st.body.slice(0, 500));
  equal(st.json && st.json.endpoints && st.json.endpoints.gcp, `http://127.0.0.1:${A.port}/proxy/gcp/claude`, 'HTTP_PROXY_ENDPOINT_ROUTE ignored');
  const big = await curlReq(`${A.url}/v1/chat/completions`, { method: 'POST', body: J({ ...TEST_MESSAGE, pad: 'p'.repeat(4096) }), headers: { 'Max-Body-Bytes': '1024' } });
  isTestReply(big, 'HTTP_MAX_BODY_BYTES ignored');
  const sb = await curlReq(`${B.url}/status`);
  ok(sb.status === 200 && !sb.body.includes(adminKey), 'ADMIN_KEY value is not on the info page', sb.status);
  const hb = await curlReq(`${B.url}/`, { headers: { Accept: 'text/html' } });
  ok(!hb.body.includes(adminKey), 'ADMIN_KEY value is not on the HTML page');
});

test('query strings do not affect routing', async () => {
  await both(`${A.url}/proxy/gcp/claude/v1/models?api-version=1&x=/v1/chat/completions`, {}, (r, via) => {
    deepEqual(r.json, { object: 'list', data: [] }, `${via}: models with a query string`);
  });
  await both(`${A.url}/v1/chat/completions?stream=true`, { method: 'POST', body: J(TEST_MESSAGE) }, (r, via) => isTestReply(r, `${via}: POST with a query string`));
});

test('/status counters after test messages', async () => {
  const r = await fetchText(`${A.url}/status`);
  const j = r.json || {};
  ok(j.proomptersNow >= 1, 'proomptersNow counts the test-message client (127.0.0.1)', j.proomptersNow);
  equal(j.tookens, '0', 'tookens is "0" (test messages use no tokens)');
});

test('PROXY_ENDPOINT_ROUTE=/api moves the provider routes', async () => {
  for (const p of PROVIDERS) {
    const r = await curlReq(`${C.url}/api/${p}/v1/models`);
    equal(r.status, 200, `/api/${p}/v1/models status`);
    deepEqual(r.json, { object: 'list', data: [] }, `/api/${p}/v1/models body`);
    const old = await curlReq(`${C.url}/proxy/${p}/v1/models`);
    equal(old.status, 404, `/proxy/${p}/v1/models is gone`);
  }
  const t = await curlReq(`${C.url}/api/gcp/claude/v1/chat/completions`, { method: 'POST', body: J(TEST_MESSAGE) });
  isTestReply(t, 'test message on /api/gcp/claude');
  const s = await fetchText(`${C.url}/status`);
  const o = `http://127.0.0.1:${C.port}`;
  deepEqual(s.json && s.json.endpoints, { gcp: `${o}/api/gcp/claude`, aws: `${o}/api/aws/claude`, azure: `${o}/api/azure/openai`, universal: `${o}/v1` }, 'endpoints use /api');
  const v = await curlReq(`${C.url}/v1/models`);
  equal(v.status, 200, '/v1/models still served');
});

test('prefix mount /oai', async () => {
  const o = `http://127.0.0.1:${D.port}`;
  await both(`${o}/oai/status`, {}, (r, via) => {
    equal(r.status, 200, `${via}: /oai/status`);
    deepEqual(r.json && r.json.endpoints, {
      gcp: `${o}/oai/proxy/gcp/claude`, aws: `${o}/oai/proxy/aws/claude`, azure: `${o}/oai/proxy/azure/openai`, universal: `${o}/oai/v1`,
    }, `${via}: endpoints include the mount`);
  });
  await both(`${o}/oai/proxy/gcp/claude/v1/models`, {}, (r, via) => {
    equal(r.status, 200, `${via}: models under the mount`);
    deepEqual(r.json, { object: 'list', data: [] }, `${via}: models body`);
  });
  const h = await curlReq(`${o}/oai/healthz`);
  equal(h.body, 'ok\n', '/oai/healthz');
  const t = await curlReq(`${o}/oai/v1/chat/completions`, { method: 'POST', body: J(TEST_MESSAGE) });
  isTestReply(t, 'test message under the mount');
  const n = await curlReq(`${o}/oai/nope`);
  isOpenAIErr(n, 404, 'not_found', 'unknown route under the mount');
});

test('no gateway errors in the lighttpd logs', async () => {
  for (const [name, h] of [['A', A], ['B', B], ['C', C], ['D', D]]) {
    const log = h ? h.errorLog() : '';
    ok(!/child (exited|signalled)|died|Segmentation|AddressSanitizer|runtime error/i.test(log), `lighttpd ${name}: no crashed gateway`, log.slice(-3000));
    ok(!log.includes(adminKey), `lighttpd ${name}: ADMIN_KEY never logged`);
  }
});

test('stop lighttpd instances', async () => {
  for (const h of [A, B, C, D]) {
    if (!h) continue;
    const r = await h.stop();
    if (!r) dumpLog(h);
    ok(r !== null, `lighttpd on ${h.port} stopped within 5 s`);
    await h.stopAndClean();
  }
});

diag(`OAI_BIN=${process.env.OAI_BIN || '(unset)'}`);

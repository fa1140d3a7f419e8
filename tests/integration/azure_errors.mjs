// Upstream errors from the mock Azure OpenAI (tests/mock/azure.mjs) and what the client sees
// (SPEC §5 "Azure", §6, §8, §11; wire-formats §6.4, §7.4): the prompt blocked by the content filter
// (Azure 400 content_filter with innererror) → 400 code content_filter; 429 with retry-after /
// retry-after-ms → 429 with Retry-After in whole seconds, rounded up; one 429 then success → waited
// and retried; 401 (our key) → 502 upstream_auth_failed; 500 → 502; a configured deployment Azure
// does not have (404 DeploymentNotFound) → 404 model_not_found explaining it; a stream that ends
// without [DONE] → an error event, then [DONE]. Errors that cool or revoke a key each get a fresh
// gateway with its own state store.
import { test, ok, equal, match, fail, diag } from '../lib/tap.mjs';
import { requireBin, fetchText, isOpenAIError } from '../lib/harness.mjs';
import { sdkError, noViolations } from '../lib/scenarios.mjs';
import { OpenAI, importError, AZ, setupAzure, startGateway, azureClient, postStream, chunksOf, joinContent } from '../mock/gateway.mjs';
import { mark, PROMPT_BLOCKED_MSG } from '../mock/azure.mjs';

const P = { G: null, L: null, get mock() { return P.G.mock; } };
const chatUrl = (l = P.L) => `${l.url}${AZ}/chat/completions`;
const user = (text) => [{ role: 'user', content: text }];
const post = (l, body) => fetchText(chatUrl(l), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), timeout: 90000 });
const errOf = (r) => (r.json && r.json.error) || {};
const lastData = (s) => s.events[s.events.length - 1] && s.events[s.events.length - 1].data;

/** Run fn(gateway) on a gateway with a fresh state store (the mock environment plus `env`), stopped afterwards. */
async function fresh(env, fn) {
  const l = await startGateway(P.G, env);
  try { return await fn(l); } finally { await l.stopAndClean(); }
}

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });

test('start the mock Azure OpenAI resources and lighttpd', async () => {
  if (!requireBin()) throw new Error('no binary');
  P.G = await setupAzure();
  P.L = await startGateway(P.G);
  ok(P.L, 'lighttpd answers /healthz');
}, { timeout: 30000 });

test('prompt blocked by the content filter → 400 content_filter (non-stream and stream, before the first byte)', async () => {
  const m = mark('prompt_blocked', 'ns');
  const e = await sdkError(azureClient(P.L).chat.completions.create({ model: 'gpt4o-prod', messages: user(`Something bad ${m}`) }));
  ok(e instanceof OpenAI.BadRequestError, 'BadRequestError', e && `${e.status} ${e.message}`);
  equal(e && e.status, 400, 'status 400');
  equal(e && e.code, 'content_filter', 'code content_filter');
  equal(e && e.type, 'invalid_request_error', 'type invalid_request_error');
  ok(e && e.message && e.message.includes(PROMPT_BLOCKED_MSG.slice(0, 90)), 'Azure\'s message is kept', e && e.message);
  equal(P.mock.find(m).length, 1, 'one upstream attempt (a 400 is not retried)');
  const r = await post(P.L, { model: 'gpt4o-prod', messages: user(`Something bad ${mark('prompt_blocked', 'raw')}`) });
  ok(isOpenAIError(r.json), 'OpenAI error shape {message, type, param, code}', r.body);
  equal(typeof errOf(r).type, 'string', 'type is a string (Azure sends null)');
  const s = await postStream(chatUrl(), { model: 'gpt4o-prod', stream: true, messages: user(`Something bad ${mark('prompt_blocked', 'st')}`) });
  equal(s.status, 400, 'stream: status 400', s.body);
  ok(isOpenAIError(s.json), 'stream: OpenAI error body', s.body);
  equal(s.json && s.json.error && s.json.error.code, 'content_filter', 'stream: code content_filter');
});

test('429 (retry-after 3, retry-after-ms 2500), MAX_QUEUE_WAIT_S=0 → 429 with Retry-After: 3 at once', async () => {
  await fresh({ MAX_QUEUE_WAIT_S: 0 }, async (l) => {
    const m = mark('rate429', 'ns');
    const t0 = Date.now();
    const r = await post(l, { model: 'gpt4o-prod', messages: user(`Busy ${m}`) });
    equal(r.status, 429, 'status 429', r.body);
    ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
    equal(r.headers['retry-after'], '3', 'Retry-After: 3 (whole seconds)');
    equal(errOf(r).code, 'rate_limit_exceeded', 'code rate_limit_exceeded');
    const n = P.mock.find(m).length;
    ok(n >= 1 && n <= 3, 'between 1 and 3 upstream attempts', n);
    ok(Date.now() - t0 < 5000, 'answered at once (no wait for the cooldown)', Date.now() - t0);
    const e = await sdkError(azureClient(l).chat.completions.create({ model: 'gpt4o-prod', stream: true, messages: user(`Busy ${mark('rate429', 'st')}`) }));
    ok(e instanceof OpenAI.RateLimitError, 'stream: RateLimitError before any chunk', e && `${e.status} ${e.message}`);
  });
}, { timeout: 60000 });

test('429 with only retry-after-ms 1200 → Retry-After: 2 (rounded up)', async () => {
  await fresh({ MAX_QUEUE_WAIT_S: 0 }, async (l) => {
    const m = mark('rate429ms', 'ns');
    const r = await post(l, { model: 'gpt4o-prod', messages: user(`Busy ${m}`) });
    equal(r.status, 429, 'status 429', r.body);
    equal(r.headers['retry-after'], '2', 'Retry-After: 2');
    ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
  });
}, { timeout: 60000 });

test('one 429 (retry-after 1), then success: the request waits for the cooldown and is retried', async () => {
  await fresh({}, async (l) => {
    const m = mark('rate429once', 'ns');
    const r = await azureClient(l).chat.completions.create({ model: 'gpt4o-prod', messages: user(`Busy ${m}`) });
    equal(r.choices[0].message.content, 'Hello from the Azure mock.', 'answered');
    const recs = P.mock.find(m);
    equal(recs.map((x) => x.status).join(','), '429,200', 'upstream: 429, then 200');
    ok(recs.length === 2 && recs[1].at - recs[0].at >= 900, 'the retry came after the 1 s retry-after', recs.length === 2 && recs[1].at - recs[0].at);
  });
}, { timeout: 60000 });

test('401 from Azure (our key) → 502 upstream_auth_failed, no key in the answer (non-stream and stream)', async () => {
  for (const stream of [false, true]) {
    await fresh({}, async (l) => {
      const m = mark('auth401', stream ? 'st' : 'ns');
      const r = await post(l, { model: 'gpt4o-prod', stream, messages: user(`Hi there ${m}`) });
      equal(r.status, 502, `${stream ? 'stream' : 'non-stream'}: status 502`, r.body);
      ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
      equal(errOf(r).code, 'upstream_auth_failed', 'code upstream_auth_failed');
      equal(errOf(r).type, 'server_error', 'type server_error');
      ok(Object.values(P.G.keys).every((k) => !r.body.includes(k)), 'no key in the body');
      ok(P.mock.find(m).length >= 1, 'the request reached Azure');
    });
  }
}, { timeout: 60000 });

test('500 from Azure → 502 server_error, after at most 3 attempts', async () => {
  await fresh({}, async (l) => {
    const m = mark('server500', 'ns');
    const r = await post(l, { model: 'gpt4o-prod', messages: user(`Hi there ${m}`) });
    equal(r.status, 502, 'status 502', r.body);
    ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
    equal(errOf(r).type, 'server_error', 'type server_error');
    const n = P.mock.find(m).length;
    ok(n >= 1 && n <= 3, 'between 1 and 3 upstream attempts', n);
  });
}, { timeout: 90000 });

test('a configured deployment Azure does not have → 404 model_not_found saying the deployment does not exist', async () => {
  const creds = `${P.G.env.AZURE_CREDENTIALS},res1:ghost:${P.G.keys.res1}`;
  await fresh({ AZURE_CREDENTIALS: creds }, async (l) => {
    for (const stream of [false, true]) {
      const m = mark('text', stream ? 'ghost-st' : 'ghost-ns');
      const r = await post(l, { model: 'ghost', stream, messages: user(`Hi there ${m}`) });
      const what = stream ? 'stream' : 'non-stream';
      equal(r.status, 404, `${what}: status 404`, r.body);
      ok(isOpenAIError(r.json), `${what}: OpenAI error body`, r.body);
      equal(errOf(r).code, 'model_not_found', `${what}: code model_not_found`);
      match(errOf(r).message, /ghost/, `${what}: the message names the deployment`);
      match(errOf(r).message, /deployment/i, `${what}: the message speaks of the deployment`);
      match(errOf(r).message, /not exist|not found/i, `${what}: … and that it does not exist`);
      const rec = P.mock.last(m);
      diag(`${what}: ${rec ? `sent to ${rec.host}${rec.path} → ${rec.status}` : 'not sent upstream (the probe had found the deployment missing)'}; message: ${errOf(r).message}`);
      ok(!rec || rec.refused === 'deployment', `${what}: if sent, Azure answered DeploymentNotFound`);
    }
    const probe = P.mock.probes().find((x) => x.deployment === 'ghost');
    diag(`the start-up probe ${probe ? 'reached' : 'did not reach'} the ghost deployment`);
  });
}, { timeout: 60000 });

test('a stream that ends without [DONE] → an error event, then [DONE]; not reported as a normal stop', async () => {
  for (const scen of ['truncated', 'truncated_reset']) {
    const s = await postStream(chatUrl(), { model: 'gpt4o-prod', stream: true, messages: user(`Go ${mark(scen, 'raw')}`) });
    equal(s.status, 200, `${scen}: status 200`);
    const n = s.events.length;
    equal(lastData(s), '[DONE]', `${scen}: [DONE] last`);
    const errEv = s.events[n - 2] || {};
    ok(errEv.json && isOpenAIError(errEv.json) && !('choices' in errEv.json), `${scen}: an error event before [DONE]`, s.events.map((x) => x.data));
    ok(!chunksOf(s).some((c) => c.choices && c.choices.some((ch) => ch.finish_reason === 'stop')), `${scen}: not reported as a normal stop`);
    match(joinContent(chunksOf(s).filter((c) => c.choices)), /^Partial/, `${scen}: the content before the end arrived`);
  }
}, { timeout: 30000 });

test('no unexpected check failed at the mock', () => {
  noViolations(P, undefined, 'the mock accepted every upstream request');
});

test('stop lighttpd', async () => {
  if (!P.L) return;
  ok((await P.L.stop()) !== null, 'lighttpd stopped');
  await P.L.stopAndClean();
});

// AWS credentials and Bedrock regions against the mock Bedrock Runtime: first the mock itself (its
// SigV4 verifier reproduces the Bedrock-shaped vectors of wire-formats §5.6 and refuses what AWS
// refuses; its event-stream encoder reproduces ES-B1 / ES-B2 of §4.6), then AWS_CREDENTIALS in the
// gateway: a session token (4th field) sent and signed as X-Amz-Security-Token, the region of the key
// choosing the host and the inference-profile prefix (us-east-1 → us., eu-west-1 → eu.,
// ap-northeast-1 → apac.), several keys, BEDROCK_ANTHROPIC_VERSION, and a key AWS does not accept
// (wrong secret, unknown access key id) → 502 upstream_auth_failed with no secret in sight.
import crypto from 'node:crypto';
import https from 'node:https';
import { test, ok, equal, deepEqual, match, fail } from '../lib/tap.mjs';
import { requireBin, fetchText, isOpenAIError } from '../lib/harness.mjs';
import { mark } from '../mock/claude.mjs';
import { MODEL, importError, bedrock, bedrockImportError, setupBedrock, startGateway, client, collect, joinContent, bedrockPath, status } from '../mock/gateway.mjs';

let B; // the mock setup
const mk = () => bedrock.awsKey({ region: 'us-east-1' });
let KEY;
let TOK;
let EU;
let AP;
let WRONG;
let UNKNOWN;

/** Reset the mock's records, then run fn(gateway) on a gateway with AWS_CREDENTIALS = `creds` (and `env`), stopped afterwards. */
async function gw(creds, fn, env = {}) {
  B.mock.reset();
  const l = await startGateway(B, { AWS_CREDENTIALS: creds, ...env });
  try { return await fn(l); } finally { await l.stopAndClean(); }
}
const ask = (l, tag, model = MODEL, stream = false) => {
  const p = client(l, '/proxy/aws/claude/v1').chat.completions.create({ model, stream, messages: [{ role: 'user', content: `Hi there ${mark('text', tag)}` }] });
  return stream ? p.then(collect).then((cs) => joinContent(cs.map((x) => x.chunk))) : p.then((r) => r.choices[0].message.content);
};
const recOf = (tag) => B.mock.last(mark('text', tag)) || { headers: {} };

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });
if (bedrockImportError) test('the Bedrock mock loads', () => { fail('import tests/mock/bedrock.mjs (run `npm ci` in tests/)', bedrockImportError.stack); });

// ---- the mock itself ---------------------------------------------------------------------------
const EXAMPLE = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const EX_TOKEN = 'FQoGZXIvYXdzEXAMPLETOKEN';
const EX_BODY = Buffer.from('{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"Hi"}]}');
const EX_NOW = Date.UTC(2015, 7, 30, 12, 36, 0);
function exReq(url, sig, { accept = 'application/json', token, host = 'bedrock-runtime.us-east-1.amazonaws.com', scope = 'us-east-1' } = {}) {
  return {
    method: 'POST', url, body: EX_BODY,
    headers: {
      host, 'x-amz-date': '20150830T123600Z', accept, 'content-type': 'application/json', ...(token ? { 'x-amz-security-token': token } : {}),
      authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/${scope}/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date${token ? ';x-amz-security-token' : ''}, Signature=${sig}`,
    },
  };
}

test('the mock verifier reproduces the SigV4 vectors SV-B1…SV-B3 (wire-formats §5.6) and refuses what AWS refuses', async () => {
  const V = bedrock.verifySigV4;
  const look = (k) => (id) => (id === k.accessKeyId ? k : null);
  const B1 = '/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke';
  const B2 = '/model/anthropic.claude-3-5-sonnet-20240620-v1:0/invoke';
  const B3 = '/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke-with-response-stream';
  const ES = 'application/vnd.amazon.eventstream';
  const good = [
    ['SV-B1', exReq(B1, '427e568b8eacdc859c7bcaca59782ba8e4559cdf3950cd107544b9f97c99e4ba'), EXAMPLE],
    ['SV-B1 with token', exReq(B1, 'a6225a9567d5db11750695889277e6872bbb7884f51af1f3f15f463b3807ba94', { token: EX_TOKEN }), { ...EXAMPLE, sessionToken: EX_TOKEN }],
    ['SV-B2 (literal colon)', exReq(B2, '7ee92bebe998816c90a34dcf9ca8c6465f841ff84f5d75b4de08bcde95a8b502'), EXAMPLE],
    ['SV-B2 with token', exReq(B2, '12c12d8f41b697411f0a3b6bf08e327d9241bcfcabadfd4ce4bfaed101d29eaf', { token: EX_TOKEN }), { ...EXAMPLE, sessionToken: EX_TOKEN }],
    ['SV-B3 (stream, profile)', exReq(B3, '9e6ec39744cd2924dabf58efe09e189a3295fee4364e75ece51f4a10491efb19', { accept: ES }), EXAMPLE],
    ['SV-B3 with token', exReq(B3, '4e37ecf4937f15544579005ac52a5334e2918e7dc4a63605778658b6fe9efc85', { accept: ES, token: EX_TOKEN }), { ...EXAMPLE, sessionToken: EX_TOKEN }],
  ];
  for (const [name, req, key] of good) {
    const r = await V(req, look(key), { now: EX_NOW, region: 'us-east-1' });
    ok(r.ok, `${name} verifies`, r.detail);
  }
  const bad = [
    // a signer that forgets to re-encode the wire path produces SV-B2's signature for SV-B1's path
    ['SV-B2 signature on the SV-B1 path', exReq(B1, '7ee92bebe998816c90a34dcf9ca8c6465f841ff84f5d75b4de08bcde95a8b502'), EXAMPLE, {}, 'signature', 'InvalidSignatureException'],
    ['another secret', exReq(B1, '427e568b8eacdc859c7bcaca59782ba8e4559cdf3950cd107544b9f97c99e4ba'), { ...EXAMPLE, secretAccessKey: 'x' + EXAMPLE.secretAccessKey.slice(1) }, {}, 'signature', 'InvalidSignatureException'],
    ['the key has a token, none sent', exReq(B1, '427e568b8eacdc859c7bcaca59782ba8e4559cdf3950cd107544b9f97c99e4ba'), { ...EXAMPLE, sessionToken: EX_TOKEN }, {}, 'security-token', 'UnrecognizedClientException'],
    ['a token sent for a key without one', exReq(B1, 'a6225a9567d5db11750695889277e6872bbb7884f51af1f3f15f463b3807ba94', { token: EX_TOKEN }), EXAMPLE, {}, 'security-token', 'UnrecognizedClientException'],
    ['x-amz-date 9 years old', exReq(B1, '427e568b8eacdc859c7bcaca59782ba8e4559cdf3950cd107544b9f97c99e4ba'), EXAMPLE, { now: Date.now() }, 'skew', 'InvalidSignatureException'],
    ['scope region ≠ host region', exReq(B1, '427e568b8eacdc859c7bcaca59782ba8e4559cdf3950cd107544b9f97c99e4ba', { host: 'bedrock-runtime.eu-west-1.amazonaws.com' }), EXAMPLE, { region: 'eu-west-1' }, 'scope-region', 'InvalidSignatureException'],
    ['unknown access key', exReq(B1, '427e568b8eacdc859c7bcaca59782ba8e4559cdf3950cd107544b9f97c99e4ba'), { ...EXAMPLE, accessKeyId: 'AKIDOTHER' }, {}, 'akid', 'UnrecognizedClientException'],
  ];
  for (const [name, req, key, opts, check, type] of bad) {
    const r = await V(req, look(key), { now: EX_NOW, region: 'us-east-1', ...opts });
    ok(!r.ok && r.check === check && r.type === type && r.status === 403, `${name}: 403 ${type} (${check})`, r);
  }
  const tampered = exReq(B1, '427e568b8eacdc859c7bcaca59782ba8e4559cdf3950cd107544b9f97c99e4ba');
  tampered.body = Buffer.from(EX_BODY.toString().replace('16', '17'));
  const r = await V(tampered, look(EXAMPLE), { now: EX_NOW, region: 'us-east-1' });
  ok(!r.ok && r.check === 'signature', 'a body changed after signing is refused', r);
});

test('the mock encoder reproduces ES-B1 and ES-B2 (wire-formats §4.6); a flipped CRC does not decode', () => {
  const ev = { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } };
  const f1 = bedrock.chunkFrame(ev, 'abcd');
  equal(f1.toString('hex'), '000000e20000004bd638d3ce0b3a6576656e742d747970650700056368756e6b0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b226279746573223a2265794a306558426c496a6f695932397564475675644639696247396a6131396b5a57783059534973496d6c755a475634496a6f774c434a6b5a5778305953493665794a306558426c496a6f69644756346446396b5a57783059534973496e526c654851694f694a4961534a3966513d3d222c2270223a2261626364227d528ecb0b', 'ES-B1 chunk');
  const f2 = bedrock.exceptionFrame('throttlingException', { message: 'Too many requests, please wait before trying again.' });
  equal(f2.toString('hex'), '000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e67457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374732c20706c656173652077616974206265666f726520747279696e6720616761696e2e227de8ffb26a', 'ES-B2 throttlingException');
  let threw = null;
  try { bedrock.codec.decode(bedrock.corruptCrc(f1)); } catch (e) { threw = e; }
  ok(threw, 'the codec refuses the corrupted frame', threw && threw.message);
});

test('start the mock Bedrock endpoint', async () => {
  if (!requireBin()) throw new Error('no binary');
  KEY = mk();
  TOK = bedrock.awsKey({ region: 'us-east-1', token: true });
  EU = bedrock.awsKey({ region: 'eu-west-1' });
  AP = bedrock.awsKey({ region: 'ap-northeast-1' });
  WRONG = mk();
  UNKNOWN = mk();
  B = await setupBedrock({ keys: [KEY, TOK, EU, AP] });
  B.mock.addKey(WRONG, { secret: crypto.randomBytes(30).toString('base64'), quiet: true }); // the mock believes another secret
  B.mock.quiet.add(UNKNOWN.accessKeyId); // never added: AWS does not know it
  ok(B.mock.port > 0, 'listening');
}, { timeout: 30000 });

test('the mock refuses a request signed with the wrong secret, and accepts one signed by SignatureV4', async () => {
  const { SignatureV4 } = await import('@smithy/signature-v4');
  const { Sha256 } = await import('@aws-crypto/sha256-js');
  const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 16, messages: [{ role: 'user', content: `Hi there ${mark('text', 'direct')}` }] });
  const send = async (secret) => {
    const host = 'bedrock-runtime.us-east-1.amazonaws.com';
    const path = bedrockPath('us.anthropic.claude-sonnet-4-5-20250929-v1:0');
    const signer = new SignatureV4({ credentials: { accessKeyId: KEY.accessKeyId, secretAccessKey: secret }, region: 'us-east-1', service: 'bedrock', sha256: Sha256 });
    const s = await signer.sign({ method: 'POST', protocol: 'https:', hostname: host, path, headers: { host, 'content-type': 'application/json', accept: 'application/json' }, body });
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: B.mock.port, servername: host, ca: B.mock.tls.ca, method: 'POST', path, headers: { ...s.headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, type: res.headers['x-amzn-errortype'], body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end(body);
    });
  };
  B.mock.quiet.add(KEY.accessKeyId);
  try {
    const bad = await send(KEY.secretAccessKey.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')));
    equal(bad.status, 403, 'wrong secret: 403', bad.body);
    equal(bad.type, 'InvalidSignatureException', 'x-amzn-ErrorType InvalidSignatureException');
    const good = await send(KEY.secretAccessKey);
    equal(good.status, 200, 'signed by SignatureV4 with the right secret: 200', good.body);
    equal(JSON.parse(good.body).content[0].text, 'Hello from the Bedrock mock.', 'answered');
  } finally { B.mock.quiet.delete(KEY.accessKeyId); }
});

// ---- AWS_CREDENTIALS in the gateway ------------------------------------------------------------
test('a session token (4th field): X-Amz-Security-Token sent, equal and signed (stream and non-stream)', async () => {
  await gw(TOK.credentials(), async (l) => {
    equal(await ask(l, 'tok'), 'Hello from the Bedrock mock.', 'non-stream answered');
    equal(await ask(l, 'tok-st', MODEL, true), 'Hello from the Bedrock mock.', 'stream answered');
    for (const tag of ['tok', 'tok-st']) {
      const rec = recOf(tag);
      equal(rec.headers['x-amz-security-token'], TOK.sessionToken, `${tag}: X-Amz-Security-Token is the key's token`);
      ok(rec.auth && rec.auth.signedHeaders.split(';').includes('x-amz-security-token'), `${tag}: and it is signed`, rec.auth && rec.auth.signedHeaders);
      equal(rec.auth && rec.auth.akid, TOK.accessKeyId, `${tag}: Credential names the ASIA key`);
      ok(rec.auth && rec.auth.expected === rec.auth.signature, `${tag}: the signature verified`);
    }
    const j = await status(l);
    equal(j && j.awsKeys, 1, 'awsKeys 1');
    ok(!JSON.stringify(j).includes(TOK.sessionToken) && !JSON.stringify(j).includes(TOK.secretAccessKey), 'no secret on the info page');
    const log = l.errorLog();
    ok(!log.includes(TOK.sessionToken) && !log.includes(TOK.secretAccessKey), 'no secret in the log');
  });
}, { timeout: 60000 });

for (const [key, region, prefix] of [['EU', 'eu-west-1', 'eu.'], ['AP', 'ap-northeast-1', 'apac.']]) {
  test(`a ${region} key → bedrock-runtime.${region}.amazonaws.com and the ${prefix} profile; base ids unprefixed`, async () => {
    const k = key === 'EU' ? EU : AP;
    await gw(k.credentials(), async (l) => {
      const tag = `geo-${region}`;
      equal(await ask(l, tag), 'Hello from the Bedrock mock.', 'answered');
      const rec = recOf(tag);
      equal(rec.host, `bedrock-runtime.${region}.amazonaws.com`, 'host of the key region');
      equal(rec.path, bedrockPath(`${prefix}anthropic.claude-sonnet-4-5-20250929-v1:0`), `${prefix} profile`);
      equal(rec.auth && rec.auth.scopeRegion, region, 'Credential scope region');
      equal(await ask(l, `${tag}-st`, MODEL, true), 'Hello from the Bedrock mock.', 'stream answered');
      equal(recOf(`${tag}-st`).path, bedrockPath(`${prefix}anthropic.claude-sonnet-4-5-20250929-v1:0`, true), 'stream path');
      equal(await ask(l, `${tag}-legacy`, 'claude-3-haiku-20240307'), 'Hello from the Bedrock mock.', 'Claude 3 Haiku answered');
      equal(recOf(`${tag}-legacy`).path, bedrockPath('anthropic.claude-3-haiku-20240307-v1:0'), 'Claude 3 Haiku: base id, no prefix');
      equal(recOf(`${tag}-legacy`).host, `bedrock-runtime.${region}.amazonaws.com`, 'Claude 3 Haiku: same regional host');
    });
  }, { timeout: 60000 });
}

test('several keys: all counted, each request signed for its own key and region', async () => {
  await gw(`${KEY.credentials()},${EU.credentials()},${TOK.credentials()}`, async (l) => {
    const j = await status(l);
    equal(j && j.awsKeys, 3, 'awsKeys 3');
    for (let i = 0; i < 6; i++) {
      try { await ask(l, `multi${i}`); } catch (e) { fail(`request ${i}`, e.message); }
    }
    const recs = B.mock.requests.filter((r) => /multi\d/.test(r.marker || ''));
    deepEqual([...new Set(recs.map((r) => r.auth && r.auth.akid))].sort(), [KEY.accessKeyId, EU.accessKeyId, TOK.accessKeyId].sort(), 'least recently used: every key served a request');
    const regionOf = { [KEY.accessKeyId]: 'us-east-1', [EU.accessKeyId]: 'eu-west-1', [TOK.accessKeyId]: 'us-east-1' };
    ok(recs.every((r) => r.auth && r.region === regionOf[r.auth.akid]), 'each key goes to its own region', recs.map((r) => [r.auth && r.auth.akid, r.region]));
    ok(recs.every((r) => (r.region === 'eu-west-1' ? /^\/model\/eu\./ : /^\/model\/us\./).test(r.path)), 'with the profile of that region', recs.map((r) => r.path));
    ok(recs.every((r) => (r.auth.akid === TOK.accessKeyId) === ('x-amz-security-token' in r.headers)), 'a token only with the key that has one');
  });
}, { timeout: 60000 });

test('BEDROCK_ANTHROPIC_VERSION overrides the body version', async () => {
  B.mock.anthropicVersion = 'bedrock-2099-01-01';
  try {
    await gw(KEY.credentials(), async (l) => {
      equal(await ask(l, 'ver'), 'Hello from the Bedrock mock.', 'answered');
      equal(recOf('ver').body && recOf('ver').body.anthropic_version, 'bedrock-2099-01-01', 'anthropic_version');
    }, { BEDROCK_ANTHROPIC_VERSION: 'bedrock-2099-01-01' });
  } finally { B.mock.anthropicVersion = 'bedrock-2023-05-31'; }
}, { timeout: 60000 });

for (const [name, keyName, type] of [['a wrong secret', 'WRONG', 'InvalidSignatureException'], ['an access key AWS does not know', 'UNKNOWN', 'UnrecognizedClientException']]) {
  test(`${name} → AWS answers 403 ${type} → 502 upstream_auth_failed, no secret in sight`, async () => {
    const k = keyName === 'WRONG' ? WRONG : UNKNOWN;
    await gw(k.credentials(), async (l) => {
      const m = mark('text', `badkey-${keyName}`);
      const r = await fetchText(`${l.url}/proxy/aws/claude/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `Hi there ${m}` }] }), timeout: 90000 });
      equal(r.status, 502, 'status 502', r.body);
      ok(isOpenAIError(r.json), 'OpenAI error body', r.body);
      equal(r.json && r.json.error && r.json.error.code, 'upstream_auth_failed', 'code upstream_auth_failed');
      equal(r.json && r.json.error && r.json.error.type, 'server_error', 'type server_error');
      const fails = B.mock.authFailures;
      ok(fails.length >= 1 && fails.every((f) => f.check === (keyName === 'WRONG' ? 'signature' : 'akid')), `the mock refused it (${type})`, fails);
      ok(!r.body.includes(k.secretAccessKey), 'no secret in the error', r.body);
      const log = l.errorLog();
      ok(!log.includes(k.secretAccessKey), 'no secret in the log');
      match(log, /upstream_auth_failed|InvalidSignature|UnrecognizedClient|403/i, 'the log says why');
    });
  }, { timeout: 60000 });
}

test('the mock saw no malformed request', () => {
  deepEqual(B.mock.violations, [], 'no check failed at the mock');
});

// Google service-account credentials and Vertex locations against the mock token endpoint and
// Vertex hosts: GCP_CREDENTIALS in the seed format, GCP_CREDENTIALS_FILE (JSON key files, with
// and without ":region"), several keys, the JWT the token endpoint receives, regional / global /
// us / eu hosts and paths, and VERTEX_ANTHROPIC_VERSION.
import fs from 'node:fs';
import path from 'node:path';
import { test, ok, equal, deepEqual, fail } from '../lib/tap.mjs';
import { requireBin, tmpDir } from '../lib/harness.mjs';
import { mark, serviceAccount, locationHost, SCOPE, TOKEN_URI } from '../mock/vertex.mjs';
import { MODEL, VERTEX_MODEL, vertexPath, importError, setupMock, startGateway, client, status } from '../mock/gateway.mjs';

let G;
const SEED = serviceAccount({ project: 'oai-it-seed', region: 'us-east5' });
const FILE = serviceAccount({ project: 'oai-it-file', region: 'europe-west1' });
const FILE2 = serviceAccount({ project: 'oai-it-file2' });
const OTHER = serviceAccount({ project: 'oai-it-other' });
let keyDir;

/** Reset the mock's records, then run fn(gateway) on a gateway with `env` (replacing the credential variables), stopped afterwards. */
async function gw(env, fn) {
  G.mock.reset();
  const l = await startGateway(G, { GCP_CREDENTIALS: null, GCP_CREDENTIALS_FILE: null, ...env });
  try { return await fn(l); } finally { await l.stopAndClean(); }
}
const ask = (l, tag, model = MODEL) => client(l).chat.completions.create({ model, messages: [{ role: 'user', content: `Hi there ${mark('text', tag)}` }] });

if (importError) test('openai package is installed', () => { fail('import openai (run `npm ci` in tests/)', importError.message); });

test('start the mock Google endpoints', async () => {
  if (!requireBin()) throw new Error('no binary');
  G = await setupMock({ accounts: [SEED, FILE, FILE2, OTHER] });
  keyDir = tmpDir('vx-keys-');
  fs.writeFileSync(path.join(keyDir, 'file.json'), JSON.stringify(FILE.json, null, 2));
  fs.writeFileSync(path.join(keyDir, 'file2.json'), JSON.stringify(FILE2.json, null, 2));
  ok(G.mock.port > 0, 'listening');
}, { timeout: 30000 });

test('GCP_CREDENTIALS (seed format): the JWT and the regional endpoint', async () => {
  await gw({ GCP_CREDENTIALS: SEED.credentials('us-east5') }, async (l) => {
    const r = await ask(l, 'seed');
    equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'answered');
    const rec = G.mock.last(mark('text', 'seed')) || {};
    equal(rec.host, 'us-east5-aiplatform.googleapis.com', 'host');
    equal(rec.path, vertexPath(VERTEX_MODEL, 'rawPredict', 'us-east5', 'oai-it-seed'), 'path with the project and region of the key');
    const t = G.mock.tokenLog.find((x) => x.status === 200) || {};
    ok(t.header && t.header.alg === 'RS256' && t.header.typ === 'JWT', 'JWT header alg RS256, typ JWT', t.header);
    deepEqual(t.claims && Object.keys(t.claims).sort(), ['aud', 'exp', 'iat', 'iss', 'scope'], 'claims iss, scope, aud, iat, exp');
    equal(t.claims && t.claims.iss, SEED.email, 'iss = client email');
    equal(t.claims && t.claims.scope, SCOPE, 'scope cloud-platform');
    equal(t.claims && t.claims.aud, TOKEN_URI, 'aud = token endpoint');
    equal(t.claims && t.claims.exp - t.claims.iat, 3600, 'exp = iat + 3600');
    equal(t.path, '/token', 'POST /token');
    const j = await status(l);
    equal(j && j.gcpKeys, 1, 'gcpKeys 1');
  });
}, { timeout: 60000 });

test('GCP_CREDENTIALS_FILE with :region — kid, project and region from the key file', async () => {
  await gw({ GCP_CREDENTIALS_FILE: `${path.join(keyDir, 'file.json')}:europe-west1` }, async (l) => {
    const r = await ask(l, 'file');
    equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'answered');
    const rec = G.mock.last(mark('text', 'file')) || {};
    equal(rec.host, 'europe-west1-aiplatform.googleapis.com', 'host of the region');
    equal(rec.path, vertexPath(VERTEX_MODEL, 'rawPredict', 'europe-west1', 'oai-it-file'), 'path with the file project and region');
    const t = G.mock.tokenLog.find((x) => x.status === 200) || {};
    equal(t.header && t.header.kid, FILE.keyId, 'JWT kid = private_key_id');
    equal(t.claims && t.claims.iss, FILE.email, 'iss = client_email of the file');
    const j = await status(l);
    equal(j && j.gcpKeys, 1, 'gcpKeys 1');
  });
}, { timeout: 60000 });

test('GCP_CREDENTIALS_FILE without a region → us-east5', async () => {
  await gw({ GCP_CREDENTIALS_FILE: path.join(keyDir, 'file2.json') }, async (l) => {
    await ask(l, 'file2');
    const rec = G.mock.last(mark('text', 'file2')) || {};
    equal(rec.host, 'us-east5-aiplatform.googleapis.com', 'default region host');
    equal(rec.path, vertexPath(VERTEX_MODEL, 'rawPredict', 'us-east5', 'oai-it-file2'), 'path');
  });
}, { timeout: 60000 });

for (const loc of ['global', 'us', 'eu']) {
  test(`location ${loc} → ${locationHost(loc)}`, async () => {
    await gw({ GCP_CREDENTIALS: SEED.credentials(loc) }, async (l) => {
      const r = await ask(l, `loc-${loc}`);
      equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'answered');
      const rec = G.mock.last(mark('text', `loc-${loc}`)) || {};
      equal(rec.host, locationHost(loc), 'host');
      equal(rec.path, vertexPath(VERTEX_MODEL, 'rawPredict', loc, 'oai-it-seed'), 'path with the location');
      const s = await client(l).chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: `Hi there ${mark('text', `loc-${loc}-st`)}` }] });
      for await (const c of s) void c;
      equal((G.mock.last(mark('text', `loc-${loc}-st`)) || {}).path, vertexPath(VERTEX_MODEL, 'streamRawPredict', loc, 'oai-it-seed'), 'stream path');
    });
  }, { timeout: 60000 });
}

test('two keys (seed list and a file): both counted, both used', async () => {
  await gw({ GCP_CREDENTIALS: `${SEED.credentials('us-east5')},${OTHER.credentials('us-east5')}`, GCP_CREDENTIALS_FILE: `${path.join(keyDir, 'file.json')}:europe-west1` }, async (l) => {
    const j = await status(l);
    equal(j && j.gcpKeys, 3, 'gcpKeys 3');
    for (let i = 0; i < 6; i++) {
      try { await ask(l, `multi${i}`); } catch (e) { fail(`request ${i}`, e.message); }
    }
    const projects = new Set(G.mock.requests.filter((r) => /multi\d/.test(r.marker || '')).map((r) => r.project));
    deepEqual([...projects].sort(), ['oai-it-file', 'oai-it-other', 'oai-it-seed'], 'least recently used: every key served a request');
  });
}, { timeout: 60000 });

test('VERTEX_ANTHROPIC_VERSION overrides the body version', async () => {
  G.mock.anthropicVersion = 'vertex-2099-01-01';
  try {
    await gw({ GCP_CREDENTIALS: SEED.credentials('us-east5'), VERTEX_ANTHROPIC_VERSION: 'vertex-2099-01-01' }, async (l) => {
      const r = await ask(l, 'ver');
      equal(r.choices[0].message.content, 'Hello from the Vertex mock.', 'answered');
      equal((G.mock.last(mark('text', 'ver')) || {}).body?.anthropic_version, 'vertex-2099-01-01', 'anthropic_version');
    });
  } finally { G.mock.anthropicVersion = 'vertex-2023-10-16'; }
}, { timeout: 60000 });

test('the mock saw no malformed request', () => {
  deepEqual(G.mock.violations, [], 'no check failed at the mock');
});

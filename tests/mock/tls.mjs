// Throwaway TLS material for the mock upstreams, made at test time with the `openssl` CLI:
// a CA (handed to the gateway as UPSTREAM_CA_BUNDLE) and one server certificate carrying every
// hostname the mocks answer for as a subjectAltName (GOOGLE_HOSTS for the Vertex mock, AWS_HOSTS for
// the Bedrock mock, AZURE_HOSTS for the Azure OpenAI mock). Nothing is committed, nothing outlives
// the run.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const GOOGLE_HOSTS = [
  'oauth2.googleapis.com',
  'aiplatform.googleapis.com',
  'us-east5-aiplatform.googleapis.com',
  'europe-west1-aiplatform.googleapis.com',
  'aiplatform.us.rep.googleapis.com',
  'aiplatform.eu.rep.googleapis.com',
  '*.googleapis.com',
];

export const AWS_HOSTS = [
  'bedrock-runtime.us-east-1.amazonaws.com',
  'bedrock-runtime.us-west-2.amazonaws.com',
  'bedrock-runtime.eu-west-1.amazonaws.com',
  'bedrock-runtime.eu-central-1.amazonaws.com',
  'bedrock-runtime.ap-northeast-1.amazonaws.com',
  'bedrock-runtime.ap-southeast-2.amazonaws.com',
  '*.amazonaws.com',
];

// Azure OpenAI resources are <resource>.openai.azure.com; the tests use res1 and res2 (and any
// other name the wildcard covers).
export const AZURE_HOSTS = [
  'res1.openai.azure.com',
  'res2.openai.azure.com',
  '*.openai.azure.com',
];

function openssl(args, cwd) {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * Make a CA and a server certificate for `hosts` in `dir`. Returns
 * {caFile, certFile, keyFile, ca, cert, key} (the last three as PEM text).
 */
export async function makeTls(dir, hosts = GOOGLE_HOSTS) {
  fs.mkdirSync(dir, { recursive: true });
  const p = (f) => path.join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2',
    '-subj', '/CN=oai-fcgi integration test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await openssl(['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/CN=${hosts[0]}`], dir);
  fs.writeFileSync(p('server.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`,
    '',
  ].join('\n'));
  await openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'),
    '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('server.ext')], dir);
  fs.rmSync(p('ca.key'), { force: true }); // nobody signs anything else with it
  return {
    caFile: p('ca.crt'), certFile: p('server.crt'), keyFile: p('server.key'),
    ca: fs.readFileSync(p('ca.crt'), 'utf8'), cert: fs.readFileSync(p('server.crt'), 'utf8'), key: fs.readFileSync(p('server.key'), 'utf8'),
  };
}

/**
 * Starts `owner.server` (an https.Server) on a free loopback port the way both mocks need it: no
 * request timeout, idle keep-alive kept, every socket tracked in `owner.sockets` so that close()
 * can end streams the gateway left open. Resolves to owner with `owner.port` set.
 */
export function listenLoopback(owner) {
  owner.sockets = owner.sockets || new Set();
  owner.server.requestTimeout = 0;
  owner.server.keepAliveTimeout = 30000;
  owner.server.on('connection', (s) => { owner.sockets.add(s); s.on('close', () => owner.sockets.delete(s)); });
  owner.server.on('tlsClientError', () => {});
  return new Promise((resolve, reject) => {
    owner.server.once('error', reject);
    owner.server.listen(0, '127.0.0.1', () => {
      owner.port = owner.server.address().port;
      resolve(owner);
    });
  });
}

/** Destroys every tracked socket and closes the server. */
export function closeLoopback(owner) {
  for (const s of owner.sockets || []) s.destroy();
  return new Promise((r) => (owner.server ? owner.server.close(() => r()) : r()));
}

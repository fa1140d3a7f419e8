// Each web server the README documents, started on a loopback port with the configuration from
// etc/ (the same files the README quotes), so a test proves the shipped configs work:
//
//   lighttpd           etc/lighttpd.conf         lighttpd spawns the gateway (FastCGI)
//   lighttpd-cgi       etc/lighttpd-cgi.conf     lighttpd runs the binary as plain CGI
//   apache-fcgid       etc/apache-fcgid.conf     Apache + mod_fcgid spawns the gateway
//   apache-proxy-fcgi  etc/apache-proxy-fcgi.conf + etc/spawn-fcgi.sh   gateway on a unix socket
//   nginx              etc/nginx.conf + etc/spawn-fcgi.sh
//   caddy              etc/Caddyfile + etc/spawn-fcgi.sh
//   apache-cgid        etc/htaccess.example      plain CGI under Apache mod_cgid + mod_rewrite
//                                                (the shared-hosting fallback)
//
// startServer(kind, {env}) mounts the gateway at /oai and passes `env` the way that server
// passes settings (bin-environment, FcgidInitialEnv, SetEnv in .htaccess, setenv for CGI, the
// spawn-fcgi environment file), then waits for /oai/healthz. What the etc/ files leave to the
// admin (ports, paths, the socket, the password placeholder) is substituted; nothing else
// changes. The server's own top-level config (modules, pid file, logs) is written here.
//
// When the tests run as root (CI), Apache and nginx workers and the gateways they or spawn-fcgi
// start run as www-data: the run directory, the state directory and the files named in `env`
// are opened to it.
import fs from 'node:fs';
import path from 'node:path';
import { BIN, SRCDIR, tmpDir, freePort, spawnTracked, stopProc, run, sleep, fetchText, baseEnv, CHECKER_OFF } from './harness.mjs';

export const ALL_SERVERS = ['lighttpd', 'lighttpd-cgi', 'apache-fcgid', 'apache-proxy-fcgi', 'nginx', 'caddy', 'apache-cgid'];
export const MOUNT = '/oai';
const ROOT = process.getuid && process.getuid() === 0;
const APACHE_MODS = '/usr/lib/apache2/modules';

/** The programs a server kind needs (to say which are missing). */
export const NEEDS = {
  lighttpd: ['/usr/sbin/lighttpd'],
  'lighttpd-cgi': ['/usr/sbin/lighttpd'],
  'apache-fcgid': ['/usr/sbin/apache2', `${APACHE_MODS}/mod_fcgid.so`],
  'apache-proxy-fcgi': ['/usr/sbin/apache2', `${APACHE_MODS}/mod_proxy_fcgi.so`, '/usr/bin/spawn-fcgi'],
  nginx: ['/usr/sbin/nginx', '/usr/bin/spawn-fcgi'],
  caddy: ['/usr/bin/caddy', '/usr/bin/spawn-fcgi'],
  'apache-cgid': ['/usr/sbin/apache2', `${APACHE_MODS}/mod_cgid.so`, `${APACHE_MODS}/mod_rewrite.so`],
};
export const missing = (kind) => (NEEDS[kind] || ['?']).filter((p) => !fs.existsSync(p));

const etc = (f) => fs.readFileSync(path.join(SRCDIR, 'etc', f), 'utf8');
/** Replace every occurrence, failing loudly when the etc/ file no longer has the text. */
function sub(text, from, to, file) {
  if (!text.includes(from)) throw new Error(`etc/${file} no longer contains ${JSON.stringify(from)}`);
  return text.split(from).join(to);
}

/** Let the server's unprivileged workers read `p` (and traverse its parents under /tmp). */
function openUp(p, writable = false) {
  if (!ROOT || !p) return;
  try {
    fs.chmodSync(p, fs.statSync(p).isDirectory() ? (writable ? 0o777 : 0o755) : 0o644);
  } catch { /* not there */ }
  for (let d = path.dirname(p); d.startsWith(path.sep + 'tmp') && d.length > 4; d = path.dirname(d)) {
    try { fs.chmodSync(d, (fs.statSync(d).mode & 0o777) | 0o755); } catch { /* ignore */ }
  }
}

const quoteApache = (v) => `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
const quoteShell = (v) => `'${String(v).replace(/'/g, `'\\''`)}'`;

async function waitHealthy(url, proc, log, timeout = 15000) {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    if (proc && proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode}): ${log()}`);
    try {
      const r = await fetchText(`${url}/healthz`, { timeout: 2000 });
      if (r.status === 200) return;
      last = `${r.status} ${r.body.slice(0, 200)}`;
    } catch (e) { last = e.message; }
    await sleep(100);
  }
  throw new Error(`${url}/healthz did not answer 200 (${last}): ${log()}`);
}

/** The gateway on a unix socket through etc/spawn-fcgi.sh (for nginx, Caddy, mod_proxy_fcgi). */
async function spawnGateway(rundir, env) {
  const envFile = path.join(rundir, 'oai-fcgi.env');
  fs.writeFileSync(envFile, Object.entries(env).map(([k, v]) => `${k}=${quoteShell(v)}`).join('\n') + '\n', { mode: 0o600 });
  const sock = path.join(rundir, 'sock', 'oai-fcgi.sock');
  const pidfile = path.join(rundir, 'sock', 'oai-fcgi.pid');
  const me = ROOT ? 'www-data' : String(process.getuid());
  const group = ROOT ? 'www-data' : String(process.getgid());
  const r = await run('sh', [path.join(SRCDIR, 'etc', 'spawn-fcgi.sh')], {
    env: baseEnv({ BIN, SOCK: sock, PIDFILE: pidfile, RUN_AS: me, SOCK_USER: me, SOCK_GROUP: group, PROCS: '2', ENV_FILE: envFile, STATE_DIR: path.dirname(env.STATE_PATH) }),
  });
  if (r.code !== 0) throw new Error(`etc/spawn-fcgi.sh failed (${r.code}): ${r.stderr}${r.stdout}`);
  const pids = () => {
    try { return fs.readFileSync(pidfile, 'utf8').split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
  };
  return {
    sock,
    pids,
    async stop() {
      for (const pid of pids()) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
      const end = Date.now() + 7000;
      while (Date.now() < end && pids().some((p) => { try { process.kill(p, 0); return true; } catch { return false; } })) await sleep(50);
      for (const pid of pids()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    },
  };
}

function apacheMain({ rundir, port, modules, extra = '', site }) {
  const loads = modules.map((m) => `LoadModule ${m}_module ${APACHE_MODS}/mod_${m}.so`).join('\n');
  return `# written by tests/lib/servers.mjs
DefaultRuntimeDir ${rundir}
PidFile ${rundir}/apache.pid
Mutex file:${rundir} default
ErrorLog ${rundir}/error.log
LogLevel warn
Listen 127.0.0.1:${port}
ServerName 127.0.0.1
${ROOT ? 'User www-data\nGroup www-data' : ''}
LoadModule mpm_event_module ${APACHE_MODS}/mod_mpm_event.so
LoadModule authz_core_module ${APACHE_MODS}/mod_authz_core.so
LoadModule mime_module ${APACHE_MODS}/mod_mime.so
LoadModule env_module ${APACHE_MODS}/mod_env.so
LoadModule alias_module ${APACHE_MODS}/mod_alias.so
${loads}
TypesConfig /etc/mime.types
StartServers 1
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
DocumentRoot ${rundir}/htdocs
${extra}
Include ${site}
`;
}

async function startApache(rundir, port, conf, log) {
  const proc = spawnTracked('/usr/sbin/apache2', ['-f', conf, '-D', 'FOREGROUND'], { env: baseEnv({ ...CHECKER_OFF }) });
  const url = `http://127.0.0.1:${port}${MOUNT}`;
  await waitHealthy(url, proc, log);
  return { proc, stop: () => stopProc(proc, 10000) };
}

/**
 * Start web server `kind` with the gateway mounted at /oai and `env` as its settings. Returns
 * {kind, url (origin + /oai), origin, errorLog(), stop()}.
 */
export async function startServer(kind, { env: env0 = {} } = {}) {
  if (!BIN) throw new Error('OAI_BIN is not set');
  const miss = missing(kind);
  if (miss.length) throw new Error(`${kind} needs ${miss.join(', ')} (make check-servers installs it)`);
  const rundir = tmpDir(`srv-${kind}-`);
  const stateDir = path.join(rundir, 'state');
  fs.mkdirSync(stateDir);
  fs.mkdirSync(path.join(rundir, 'htdocs'));
  openUp(rundir, true);
  openUp(stateDir, true);
  const env = { ...CHECKER_OFF, STATE_PATH: path.join(stateDir, 'state.db'), ...env0 };
  for (const v of Object.values(env)) if (typeof v === 'string' && v.startsWith('/tmp/') && fs.existsSync(v)) openUp(v);
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const readLog = (...files) => () => files.map((f) => { try { return fs.readFileSync(path.join(rundir, f), 'utf8'); } catch { return ''; } }).join('');
  let stopServer;
  let errorLog = readLog('error.log');
  let gateway = null;

  if (kind === 'lighttpd' || kind === 'lighttpd-cgi') {
    const file = kind === 'lighttpd' ? 'lighttpd.conf' : 'lighttpd-cgi.conf';
    const vars = { HOST: '127.0.0.1', PORT: String(port), RUNDIR: rundir, BIN, STATE_PATH: env.STATE_PATH, MOUNT, PROCS: '2' };
    let text = etc(file);
    for (const [k, v] of Object.entries(vars)) text = text.split(`@${k}@`).join(v);
    // the per-request channel: setenv (FastCGI params / CGI environment)
    const setenv = Object.entries(env).filter(([k]) => k !== 'STATE_PATH')
      .map(([k, v]) => `"${k}" => "${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(', ');
    text = sub(text, '@EXTRA@', kind === 'lighttpd-cgi' ? `setenv.add-environment += ( ${setenv} )` : '', file);
    const conf = path.join(rundir, 'lighttpd.conf');
    fs.writeFileSync(conf, text);
    // lighttpd hands its own environment to the FastCGI processes it spawns (the process channel)
    const proc = spawnTracked('/usr/sbin/lighttpd', ['-D', '-f', conf], { env: baseEnv(kind === 'lighttpd' ? env : CHECKER_OFF) });
    errorLog = () => readLog('lighttpd-error.log')() + proc.stderrText();
    await waitHealthy(`${origin}${MOUNT}`, proc, errorLog);
    stopServer = () => stopProc(proc);
  } else if (kind === 'apache-fcgid') {
    let site = etc('apache-fcgid.conf');
    site = sub(site, '<VirtualHost *:80>', `<VirtualHost *:${port}>`, 'apache-fcgid.conf');
    site = sub(site, '/usr/local/bin/oai-fcgi', BIN, 'apache-fcgid.conf');
    site = sub(site, 'FcgidInitialEnv PROXY_KEY REPLACE_WITH_A_LONG_RANDOM_PASSWORD\n', '', 'apache-fcgid.conf');
    site = sub(site, 'FcgidInitialEnv GATEKEEPER proxy_key\n', '', 'apache-fcgid.conf');
    // mod_fcgid cuts FcgidInitialEnv values at 128 characters (measured): longer ones go per
    // request with SetEnv, as etc/apache-fcgid.conf advises
    const short = Object.entries(env).filter(([, v]) => String(v).length < 120);
    const long = Object.entries(env).filter(([, v]) => String(v).length >= 120);
    site = sub(site, 'FcgidInitialEnv STATE_PATH /var/lib/oai-fcgi/state.db',
      short.map(([k, v]) => `FcgidInitialEnv ${k} ${quoteApache(v)}`).join('\n    '), 'apache-fcgid.conf');
    site = sub(site, '        SetEnv SERVER_TITLE "My Claude gateway"',
      ['        SetEnv SERVER_TITLE "My Claude gateway"', ...long.map(([k, v]) => `        SetEnv ${k} ${quoteApache(v)}`)].join('\n'), 'apache-fcgid.conf');
    const sitePath = path.join(rundir, 'site.conf');
    fs.writeFileSync(sitePath, site);
    fs.mkdirSync(path.join(rundir, 'fcgid'));
    openUp(path.join(rundir, 'fcgid'), true);
    const conf = path.join(rundir, 'apache.conf');
    fs.writeFileSync(conf, apacheMain({ rundir, port, modules: ['fcgid'], site: sitePath,
      extra: `FcgidIPCDir ${rundir}/fcgid\nFcgidProcessTableFile ${rundir}/fcgid/shm` }));
    ({ stop: stopServer } = await startApache(rundir, port, conf, errorLog));
  } else if (kind === 'apache-proxy-fcgi' || kind === 'nginx' || kind === 'caddy') {
    gateway = await spawnGateway(rundir, env);
    const conf = path.join(rundir, kind === 'caddy' ? 'Caddyfile' : `${kind}.conf`);
    if (kind === 'apache-proxy-fcgi') {
      let site = etc('apache-proxy-fcgi.conf');
      site = sub(site, '<VirtualHost *:80>', `<VirtualHost *:${port}>`, 'apache-proxy-fcgi.conf');
      site = sub(site, 'unix:/run/oai-fcgi/oai-fcgi.sock', `unix:${gateway.sock}`, 'apache-proxy-fcgi.conf');
      const sitePath = path.join(rundir, 'site.conf');
      fs.writeFileSync(sitePath, site);
      fs.writeFileSync(conf, apacheMain({ rundir, port, modules: ['proxy', 'proxy_fcgi'], site: sitePath }));
      ({ stop: stopServer } = await startApache(rundir, port, conf, errorLog));
    } else if (kind === 'nginx') {
      let site = etc('nginx.conf');
      site = sub(site, 'listen 80;', `listen 127.0.0.1:${port};`, 'nginx.conf');
      site = sub(site, 'include fastcgi_params;', 'include /etc/nginx/fastcgi_params;', 'nginx.conf');
      site = sub(site, 'unix:/run/oai-fcgi/oai-fcgi.sock', `unix:${gateway.sock}`, 'nginx.conf');
      const sitePath = path.join(rundir, 'site.conf');
      fs.writeFileSync(sitePath, site);
      const t = (d) => `${rundir}/${d}`;
      fs.writeFileSync(conf, `# written by tests/lib/servers.mjs
${ROOT ? 'user www-data;' : ''}
worker_processes 1;
pid ${t('nginx.pid')};
error_log ${t('error.log')} warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${t('body')};
    proxy_temp_path ${t('proxy')};
    fastcgi_temp_path ${t('fastcgi')};
    uwsgi_temp_path ${t('uwsgi')};
    scgi_temp_path ${t('scgi')};
    include ${sitePath};
}
`);
      const proc = spawnTracked('/usr/sbin/nginx', ['-p', rundir, '-c', conf, '-g', 'daemon off;'], { env: baseEnv() });
      await waitHealthy(`${origin}${MOUNT}`, proc, errorLog);
      stopServer = () => stopProc(proc);
    } else {
      let site = etc('Caddyfile');
      site = sub(site, 'http://gateway.example.org {', `http://127.0.0.1:${port} {`, 'Caddyfile');
      site = sub(site, 'unix//run/oai-fcgi/oai-fcgi.sock', `unix/${gateway.sock}`, 'Caddyfile');
      fs.writeFileSync(conf, site);
      const proc = spawnTracked('/usr/bin/caddy', ['run', '--config', conf, '--adapter', 'caddyfile'],
        { env: baseEnv({ HOME: rundir, XDG_DATA_HOME: rundir, XDG_CONFIG_HOME: rundir }) });
      errorLog = () => proc.stderrText();
      await waitHealthy(`${origin}${MOUNT}`, proc, errorLog);
      stopServer = () => stopProc(proc);
    }
  } else if (kind === 'apache-cgid') {
    const dir = path.join(rundir, 'htdocs', MOUNT.slice(1));
    fs.mkdirSync(dir);
    fs.copyFileSync(BIN, path.join(dir, 'oai-fcgi.cgi'));
    fs.chmodSync(path.join(dir, 'oai-fcgi.cgi'), 0o755);
    let ht = etc('htaccess.example');
    ht = sub(ht, 'SetEnv STATE_PATH /home/USER/oai-fcgi/state.db', Object.entries(env).map(([k, v]) => `SetEnv ${k} ${quoteApache(v)}`).join('\n'), 'htaccess.example');
    ht = sub(ht, 'SetEnv GATEKEEPER proxy_key\n', '', 'htaccess.example');
    ht = sub(ht, 'SetEnv PROXY_KEY REPLACE_WITH_A_LONG_RANDOM_PASSWORD\n', '', 'htaccess.example');
    fs.writeFileSync(path.join(dir, '.htaccess'), ht);
    openUp(dir);
    openUp(path.join(dir, '.htaccess'));
    const site = path.join(rundir, 'site.conf');
    fs.writeFileSync(site, `<Directory ${rundir}/htdocs>\n    AllowOverride All\n    Require all granted\n</Directory>\n`);
    const conf = path.join(rundir, 'apache.conf');
    fs.writeFileSync(conf, apacheMain({ rundir, port, modules: ['cgid', 'rewrite'], site, extra: `ScriptSock ${rundir}/cgisock` }));
    ({ stop: stopServer } = await startApache(rundir, port, conf, errorLog));
  } else {
    throw new Error(`unknown server ${kind}`);
  }
  return {
    kind, url: `${origin}${MOUNT}`, origin, rundir, gateway,
    errorLog: () => errorLog(),
    async stop() {
      try { await stopServer(); } finally { if (gateway) await gateway.stop(); }
    },
  };
}

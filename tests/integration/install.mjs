// `make install` and `make uninstall` with DESTDIR: the binary in $(bindir), the README and the
// example configurations under $(docdir) (never $(sysconfdir)), the state directory under
// $(localstatedir); nothing outside DESTDIR; uninstall removes every installed file and the state
// directory only when it is empty.
import fs from 'node:fs';
import path from 'node:path';
import { test, ok, equal, deepEqual, match } from '../lib/tap.mjs';
import { BUILDDIR, run, baseEnv, tmpDir, requireBin } from '../lib/harness.mjs';

const EXAMPLES = [
  'lighttpd.conf', 'lighttpd-cgi.conf', 'apache-fcgid.conf', 'apache-proxy-fcgi.conf', 'nginx.conf', 'Caddyfile',
  'htaccess.example', 'oai-fcgi.env.example', 'oai-fcgi.service', 'spawn-fcgi.sh',
];
const EXECUTABLE = new Set(['spawn-fcgi.sh']);

let dirs; // the configured installation directories: {prefix, bindir, docdir, localstatedir, sysconfdir}

/** The installation directories the build was configured with, expanded from its Makefile. */
function configuredDirs() {
  const vars = {};
  for (const line of fs.readFileSync(path.join(BUILDDIR, 'Makefile'), 'utf8').split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*) = (.*)$/.exec(line);
    if (m && !(m[1] in vars)) vars[m[1]] = m[2].trim();
  }
  const expand = (v, depth = 0) => (depth > 20 ? v : v.replace(/\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]/g,
    (_, n) => expand(vars[n] ?? '', depth + 1)));
  const out = {};
  for (const n of ['prefix', 'bindir', 'docdir', 'localstatedir', 'sysconfdir']) out[n] = expand(vars[n] ?? '');
  return out;
}

/** `make -C $OAI_BUILDDIR <target> DESTDIR=<destdir>`, outside the outer make's jobserver. */
function make(target, destdir) {
  return run('make', ['-C', BUILDDIR, target, `DESTDIR=${destdir}`], {
    env: baseEnv({ MAKEFLAGS: '' }),
    timeout: 170000,
  });
}

/** Installed path → expected permission bits (files) or 'dir'. */
function expected(destdir) {
  const under = (p) => path.join(destdir, p);
  const files = new Map();
  files.set(under(path.join(dirs.bindir, 'oai-fcgi')), 0o755);
  files.set(under(path.join(dirs.docdir, 'README.md')), 0o644);
  for (const f of EXAMPLES) files.set(under(path.join(dirs.docdir, 'examples', f)), EXECUTABLE.has(f) ? 0o755 : 0o644);
  return { files, stateDir: under(path.join(dirs.localstatedir, 'lib', 'oai-fcgi')) };
}

/** Every path under root (files and directories), relative to root. */
function walk(root) {
  const found = [];
  const visit = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      found.push(path.relative(root, p));
      if (e.isDirectory()) visit(p);
    }
  };
  visit(root);
  return found.sort();
}

/** What is at the real (not DESTDIR) installation paths now: to see that install left them alone. */
function realSnapshot() {
  const paths = [path.join(dirs.bindir, 'oai-fcgi'), path.join(dirs.docdir, 'README.md'),
    path.join(dirs.docdir, 'examples'), path.join(dirs.localstatedir, 'lib', 'oai-fcgi'),
    ...EXAMPLES.map((f) => path.join(dirs.sysconfdir, f))];
  return paths.map((p) => {
    try {
      const s = fs.statSync(p);
      return `${p} ${s.mode.toString(8)} ${s.size} ${s.mtimeMs} ${s.ino}`;
    } catch { return `${p} absent`; }
  });
}

const mode = (p) => fs.statSync(p).mode & 0o7777;

test('setup', () => {
  ok(requireBin(), 'binary exists');
  ok(BUILDDIR && fs.existsSync(path.join(BUILDDIR, 'Makefile')), 'OAI_BUILDDIR has a Makefile', BUILDDIR);
  dirs = configuredDirs();
  for (const [n, v] of Object.entries(dirs)) ok(path.isAbsolute(v), `${n} is an absolute path`, v);
  ok(dirs.bindir.startsWith(dirs.prefix) || dirs.prefix === '', 'bindir follows the prefix', dirs);
});

test('install, then uninstall', async () => {
  const dest = tmpDir('install-');
  const before = realSnapshot();
  const r = await make('install', dest);
  equal(r.code, 0, 'make install exits 0', r.stdout.slice(-3000) + r.stderr.slice(-3000));
  deepEqual(realSnapshot(), before, 'the real installation paths are untouched');

  const { files, stateDir } = expected(dest);
  for (const [p, m] of files) {
    const rel = path.relative(dest, p);
    if (!ok(fs.existsSync(p) && fs.statSync(p).isFile(), `${rel} is installed`)) continue;
    equal(mode(p).toString(8), m.toString(8), `${rel} has mode ${m.toString(8)}`);
  }
  ok(fs.existsSync(stateDir) && fs.statSync(stateDir).isDirectory(), 'the state directory exists', stateDir);
  equal(fs.readdirSync(stateDir).length, 0, 'the state directory is empty');

  // The README and the examples are the source files, byte for byte.
  const src = process.env.OAI_SRCDIR;
  if (src) {
    ok(fs.readFileSync(path.join(dest, dirs.docdir, 'README.md')).equals(fs.readFileSync(path.join(src, 'README.md'))), 'README.md is the source README');
    for (const f of EXAMPLES) {
      ok(fs.readFileSync(path.join(dest, dirs.docdir, 'examples', f)).equals(fs.readFileSync(path.join(src, 'etc', f))), `examples/${f} is etc/${f}`);
    }
  }

  // Nothing but the expected files and their directories; nothing in sysconfdir.
  const allowed = new Set();
  for (const p of [...files.keys(), stateDir]) {
    for (let q = path.relative(dest, p); q && q !== '.'; q = path.dirname(q)) allowed.add(q);
  }
  const extra = walk(dest).filter((p) => !allowed.has(p));
  deepEqual(extra, [], 'nothing else is installed');
  ok(!fs.existsSync(path.join(dest, dirs.sysconfdir)) || walk(path.join(dest, dirs.sysconfdir)).length === 0, 'nothing goes to sysconfdir', dirs.sysconfdir);

  const bin = path.join(dest, dirs.bindir, 'oai-fcgi');
  const v = await run(bin, ['--version'], { env: baseEnv(), timeout: 10000 });
  equal(v.code, 0, 'the installed binary answers --version', v.stderr);
  match(v.stdout, /^oai-fcgi \d+\.\d+\.\d+ \(.+\)\n?$/, '--version line', v.stdout);

  const u = await make('uninstall', dest);
  equal(u.code, 0, 'make uninstall exits 0', u.stdout.slice(-3000) + u.stderr.slice(-3000));
  deepEqual([...files.keys()].filter((p) => fs.existsSync(p)).map((p) => path.relative(dest, p)), [], 'every installed file is removed');
  ok(!fs.existsSync(stateDir), 'the empty state directory is removed', stateDir);
  deepEqual(walk(dest).filter((p) => { try { return !fs.statSync(path.join(dest, p)).isDirectory(); } catch { return true; } }), [], 'no file is left');
  deepEqual(realSnapshot(), before, 'the real installation paths are still untouched');
}, { timeout: 400000 });

test('uninstall keeps a state directory holding a database', async () => {
  const dest = tmpDir('install-kept-');
  const r = await make('install', dest);
  equal(r.code, 0, 'make install exits 0', r.stdout.slice(-3000) + r.stderr.slice(-3000));
  const { files, stateDir } = expected(dest);
  const db = path.join(stateDir, 'state.db');
  fs.writeFileSync(db, 'not really SQLite');
  const u = await make('uninstall', dest);
  equal(u.code, 0, 'make uninstall exits 0', u.stdout.slice(-3000) + u.stderr.slice(-3000));
  deepEqual([...files.keys()].filter((p) => fs.existsSync(p)).map((p) => path.relative(dest, p)), [], 'every installed file is removed');
  ok(fs.existsSync(stateDir), 'the state directory is kept');
  equal(fs.existsSync(db) && fs.readFileSync(db, 'utf8'), 'not really SQLite', 'the database in it is untouched');
}, { timeout: 400000 });

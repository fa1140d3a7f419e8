// Minimal FastCGI client (responder role) for the integration tests: lets a test hold a request
// open mid-body, which cgi-fcgi cannot do.
//
// Record: version(1)=1, type(1), requestId(2), contentLength(2), paddingLength(1), reserved(1),
// then content and padding. BEGIN_REQUEST body: role(2)=1 RESPONDER, flags(1), reserved(5).
// Params are name-value pairs with 1-byte lengths (< 128) or 4-byte lengths (high bit set); an
// empty PARAMS record ends them, an empty STDIN record ends the body.
import net from 'node:net';

export const T = {
  BEGIN_REQUEST: 1, ABORT_REQUEST: 2, END_REQUEST: 3, PARAMS: 4, STDIN: 5, STDOUT: 6, STDERR: 7,
  DATA: 8, GET_VALUES: 9, GET_VALUES_RESULT: 10, UNKNOWN_TYPE: 11,
};

export function record(type, requestId, content = Buffer.alloc(0)) {
  const chunks = [];
  let off = 0;
  do { // content over 65535 bytes is split into several records
    const part = content.subarray(off, off + 65535);
    const pad = (8 - (part.length % 8)) % 8;
    const h = Buffer.alloc(8);
    h[0] = 1;
    h[1] = type;
    h.writeUInt16BE(requestId, 2);
    h.writeUInt16BE(part.length, 4);
    h[6] = pad;
    chunks.push(h, part, Buffer.alloc(pad));
    off += part.length;
  } while (off < content.length);
  return Buffer.concat(chunks);
}

function encLen(n) {
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE((n | 0x80000000) >>> 0);
  return b;
}

export function encodeParams(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    const kb = Buffer.from(String(k));
    const vb = Buffer.from(String(v));
    parts.push(encLen(kb.length), encLen(vb.length), kb, vb);
  }
  return Buffer.concat(parts);
}

export function beginRequest(requestId = 1, keepConn = false) {
  const body = Buffer.alloc(8);
  body.writeUInt16BE(1, 0); // RESPONDER
  body[2] = keepConn ? 1 : 0;
  return record(T.BEGIN_REQUEST, requestId, body);
}

/** Split CGI output (`Status: ...` headers, blank line, body) into {status, headers, body}. */
export function parseCgi(buf) {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf);
  let sep = b.indexOf('\r\n\r\n');
  let sepLen = 4;
  const lf = b.indexOf('\n\n');
  if (sep < 0 || (lf >= 0 && lf < sep)) { sep = lf; sepLen = 2; }
  if (sep < 0) return { status: null, headers: {}, body: b.toString('utf8'), raw: b, headerText: '' };
  const headerText = b.subarray(0, sep).toString('latin1');
  const headers = {};
  for (const line of headerText.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  let status = 200;
  if (headers.status) status = parseInt(headers.status, 10);
  else if (headers.location) status = 302;
  const body = b.subarray(sep + sepLen);
  return { status, headers, body: body.toString('utf8'), bodyBuf: body, raw: b, headerText };
}

/**
 * One FastCGI connection carrying one request. Usage:
 *   const c = await FcgiConn.connect('/tmp/x.sock');   // or {host, port}
 *   c.begin(); c.params({...}); c.stdin('partial'); ... c.stdin('rest'); c.endStdin();
 *   const r = await c.response;   // {stdout, stderr, appStatus, protocolStatus, closed, ...parseCgi}
 */
export class FcgiConn {
  constructor(sock, requestId = 1) {
    this.sock = sock;
    this.id = requestId;
    this.stdoutChunks = [];
    this.stderrChunks = [];
    this.firstStdoutAt = null;
    let buf = Buffer.alloc(0);
    let ended = null;
    this.response = new Promise((resolve) => {
      const done = (why) => {
        const stdout = Buffer.concat(this.stdoutChunks);
        resolve({
          ...parseCgi(stdout), stdout, stderr: Buffer.concat(this.stderrChunks).toString('utf8'),
          appStatus: ended ? ended.appStatus : null, protocolStatus: ended ? ended.protocolStatus : null,
          ended: Boolean(ended), closedBy: why,
        });
      };
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 8) {
          const len = buf.readUInt16BE(4);
          const pad = buf[6];
          if (buf.length < 8 + len + pad) break;
          const type = buf[1];
          const content = buf.subarray(8, 8 + len);
          buf = buf.subarray(8 + len + pad);
          if (type === T.STDOUT && len) {
            if (this.firstStdoutAt === null) this.firstStdoutAt = Date.now();
            this.stdoutChunks.push(Buffer.from(content));
          } else if (type === T.STDERR && len) {
            this.stderrChunks.push(Buffer.from(content));
          } else if (type === T.END_REQUEST) {
            ended = { appStatus: content.readUInt32BE(0), protocolStatus: content[4] };
          }
        }
      });
      sock.on('error', (e) => { this.error = e; });
      sock.on('close', () => done(ended ? 'end' : 'close'));
    });
  }

  static connect(addr, requestId = 1, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const opts = typeof addr === 'string' ? { path: addr } : addr;
      const s = net.connect(opts);
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect ${JSON.stringify(addr)} timed out`)); }, timeoutMs);
      s.once('connect', () => { clearTimeout(timer); resolve(new FcgiConn(s, requestId)); });
      s.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }

  write(b) { if (!this.sock.destroyed) this.sock.write(b); return this; }
  begin() { return this.write(beginRequest(this.id)); }
  params(p) {
    const enc = encodeParams(p);
    if (enc.length) this.write(record(T.PARAMS, this.id, enc));
    return this.write(record(T.PARAMS, this.id));
  }
  stdin(data) {
    const b = Buffer.isBuffer(data) ? data : Buffer.from(String(data));
    if (b.length) this.write(record(T.STDIN, this.id, b));
    return this;
  }
  endStdin() { return this.write(record(T.STDIN, this.id)); }
  abort() { return this.write(record(T.ABORT_REQUEST, this.id)); }
  destroy() { this.sock.destroy(); }
}

/** Whole request in one go; params get CONTENT_LENGTH when a body is given and none is set. */
export async function fcgiRequest(addr, params, body = '', { timeoutMs = 15000 } = {}) {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const p = { ...params };
  if (b.length && p.CONTENT_LENGTH === undefined) p.CONTENT_LENGTH = String(b.length);
  const c = await FcgiConn.connect(addr);
  c.begin().params(p).stdin(b).endStdin();
  let timer;
  const t = new Promise((_, rej) => { timer = setTimeout(() => { c.destroy(); rej(new Error('FastCGI response timed out')); }, timeoutMs); });
  try { return await Promise.race([c.response, t]); } finally { clearTimeout(timer); }
}

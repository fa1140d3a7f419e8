// Hostile upstream answers for the fault-injection tests (tests/integration/faults.mjs). A mock
// that has authenticated and checked a request hands its socket here with a fault spec; the
// answer is written byte by byte on the raw (TLS) socket, bypassing Node's HTTP writer, so that
// it can be wrong in ways a well-behaved server never is.
//
// The well-formed answer of an event list (`rawAnswer`) is what Vertex sends: rawPredict a JSON
// body with Content-Length, streamRawPredict an SSE body in chunked encoding, one chunk per event.
// A mock whose streams look different passes its own encoding (`wire`: {contentType, event(e) →
// Buffer}); Bedrock's is one AWS event-stream message per event. 'stall' and 'bytes' work with
// any encoding; 'huge' writes SSE.
//
// Specs ({kind, …}):
//   {kind: 'cut', at}        the well-formed answer up to byte `at`, then the connection closes
//   {kind: 'stall', after}   'nothing' | 'headers' | 'events' (headers and the first three
//                            events; for JSON, half the body), then silence until the gateway
//                            hangs up
//   {kind: 'endless-header', line}  a status line, then header lines (or, with `line`, one
//                            header line that never ends) until the gateway hangs up
//   {kind: 'huge'}           a 100 MB answer: a JSON body with that Content-Length (rawPredict)
//                            or one SSE event that long (streamRawPredict), written as fast as the
//                            gateway reads it, until it hangs up
//   {kind: 'bytes', body}    a 200 with `body` (a Buffer) as the JSON body or, for a stream, as
//                            the SSE body in one chunk, then a clean end (and a close)
// The record gets rec.fault (the kind), rec.bytesSent (what was written), rec.answer (the
// well-formed answer: rawAnswer()), rec.rawLength (its length, for 'cut'), rec.closedAt (when the connection closed, by
// either side).
export const HUGE = 100 * 1024 * 1024;

// Connection: close - a faulty connection is never reused (Node's HTTP server would still think
// the request it took over is open).
const head = (lines) => Buffer.from(`${['HTTP/1.1 200 OK', ...lines, 'Connection: close'].join('\r\n')}\r\n\r\n`);
const sseEvent = (e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
const chunk = (b) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
const JSON_HEAD = (len) => head(['Content-Type: application/json; charset=UTF-8', `Content-Length: ${len}`]);
const streamHead = (type) => head([`Content-Type: ${type}`, 'Cache-Control: no-cache', 'Transfer-Encoding: chunked']);
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
/** Vertex's (and Anthropic's) stream encoding. */
export const SSE = { contentType: 'text/event-stream; charset=utf-8', event: (e) => Buffer.from(sseEvent(e)) };
const SSE_HEAD = streamHead(SSE.contentType);

/** The message JSON of an event list (message_start's message with the blocks filled in). */
export function messageOf(events) {
  let msg = null;
  for (const e of events) {
    if (e.type === 'message_start') msg = structuredClone(e.message);
    else if (!msg) continue;
    else if (e.type === 'content_block_start') msg.content[e.index] = structuredClone(e.content_block);
    else if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') msg.content[e.index].text += e.delta.text;
    else if (e.type === 'message_delta') {
      Object.assign(msg, e.delta);
      msg.usage = { ...msg.usage, ...e.usage };
    }
  }
  return msg;
}

/**
 * The bytes of the well-formed answer for `events`, and where its parts end: {bytes, headEnd,
 * marks: [{offset, what}]} (offset = first byte after the part; for an SSE event, after its data,
 * before the CRLF that ends its chunk).
 */
export function rawAnswer(events, stream, wire = SSE) {
  if (!stream) {
    const body = Buffer.from(JSON.stringify(messageOf(events)));
    const h = JSON_HEAD(body.length);
    return { bytes: Buffer.concat([h, body]), headEnd: h.length, marks: [{ offset: h.length, what: 'headers' }, { offset: h.length + body.length, what: 'body' }] };
  }
  const h = streamHead(wire.contentType);
  const parts = [h];
  const marks = [{ offset: h.length, what: 'headers' }];
  let off = h.length;
  for (const e of events) {
    if (e.delay || !e.type) continue;
    const c = chunk(wire.event(e));
    parts.push(c);
    off += c.length;
    marks.push({ offset: off - 2, what: e.type }); // the event's last byte, before the chunk's CRLF
  }
  parts.push(LAST_CHUNK);
  marks.push({ offset: off + LAST_CHUNK.length, what: 'last chunk' });
  return { bytes: Buffer.concat(parts), headEnd: h.length, marks };
}

/** Write `b` and resolve once it is flushed (or the socket is gone): false if it is gone. */
function send(rec, sock, b) {
  if (sock.destroyed) return Promise.resolve(false);
  rec.bytesSent += b.length;
  return new Promise((resolve) => {
    sock.write(b, (err) => resolve(!err && !sock.destroyed));
  });
}

/** Write `next()` chunks until the peer hangs up or `limit` bytes are out. */
async function flood(rec, sock, next, limit) {
  while (!sock.destroyed && rec.bytesSent < limit) {
    if (!(await send(rec, sock, next()))) break;
  }
}

/** Play fault `spec` on the request's socket; `events` is the scenario's well-formed answer, `wire` its stream encoding. */
export async function playFault(rec, res, spec, events, wire = SSE) {
  const sock = res.socket;
  rec.fault = spec.kind;
  rec.status = 200;
  rec.bytesSent = 0;
  rec.closedAt = null;
  const closed = new Promise((r) => sock.once('close', () => { rec.closedAt = Date.now(); r(); }));
  sock.on('error', () => {});
  const answer = rawAnswer(events, rec.stream, wire);
  rec.answer = answer;
  switch (spec.kind) {
    case 'cut': {
      rec.rawLength = answer.bytes.length;
      await send(rec, sock, answer.bytes.subarray(0, spec.at));
      sock.destroy();
      break;
    }
    case 'stall': {
      if (spec.after === 'headers') await send(rec, sock, answer.bytes.subarray(0, answer.headEnd));
      else if (spec.after === 'events' && rec.stream) await send(rec, sock, answer.bytes.subarray(0, answer.marks[3].offset));
      else if (spec.after === 'events') await send(rec, sock, answer.bytes.subarray(0, (answer.headEnd + answer.bytes.length) >> 1));
      await closed;
      return;
    }
    case 'endless-header': {
      await send(rec, sock, Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'));
      let i = 0;
      const line = Buffer.from(`X-Pad-${'p'.repeat(1000)}: ${'v'.repeat(7000)}`);
      if (spec.line) await send(rec, sock, Buffer.from('X-Endless: '));
      await flood(rec, sock, () => (spec.line ? Buffer.alloc(16384, 0x61) : Buffer.from(`X-Pad-${i++}: ${line}\r\n`)), HUGE);
      break;
    }
    case 'huge': {
      const fill = Buffer.alloc(65536, 0x61);
      if (rec.stream) {
        const first = `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`;
        await send(rec, sock, Buffer.concat([answer.bytes.subarray(0, answer.marks[2].offset), Buffer.from(`${HUGE.toString(16)}\r\n${first}`)]));
      } else {
        await send(rec, sock, Buffer.concat([JSON_HEAD(HUGE), Buffer.from('{"id":"msg_huge","type":"message","role":"assistant","content":[{"type":"text","text":"')]));
      }
      await flood(rec, sock, () => fill, HUGE);
      break;
    }
    case 'bytes': {
      const body = rec.stream ? Buffer.concat([streamHead(wire.contentType), chunk(spec.body), LAST_CHUNK]) : Buffer.concat([JSON_HEAD(spec.body.length), spec.body]);
      await send(rec, sock, body);
      rec.endedAt = Date.now();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 200))]);
      break;
    }
    default:
      throw new Error(`playFault: no fault ${JSON.stringify(spec.kind)}`);
  }
  if (!sock.destroyed) sock.destroy();
  await closed;
}

'use strict';
// One job: its request, the handler's run and its reply.
//
// A plain handler runs once the whole request has arrived; a streaming one as soon as the job
// starts, reading the request as it comes. Handlers may be async, so jobs overlap on the one
// thread; a cancel reaches a running job through `response.signal` and `response.cancelled`.

const { Cancelled, CocaineError, codeOf, isStreaming } = require('./api');
const protocol = require('./protocol');

function toBytes(chunk) {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  const kind = chunk === null ? 'null' : typeof chunk === 'object' ? chunk.constructor.name : typeof chunk;
  throw new TypeError(`a reply chunk must be a Buffer, Uint8Array or string, not ${kind}`);
}

/** The message of a 502: "<ErrorName>: <message>", or what was thrown as text. */
function describe(err) {
  if (err instanceof Error) return err.message ? `${err.name}: ${err.message}` : err.name;
  return String(err);
}

class Job {
  constructor(sid, event, meta, handler, worker) {
    this.sid = sid;
    this.event = event;
    this.meta = meta;
    this.handler = handler;
    this.worker = worker;
    this.streaming = isStreaming(handler);
    this.ended = false; // a terminal message went out
    this.cancelled = false;
    this.running = false; // the handler was called and has not settled
    this.requestEnded = false;
    this.chunks = []; // request chunks not yet handed to the handler
    this.wake = null; // a streaming handler waiting for the next chunk
    this.controller = null; // made when the handler asks for `response.signal`
  }

  // -- from the node ------------------------------------------------------------------------

  /** A request chunk; false if the request had already ended. */
  feed(data) {
    if (this.requestEnded) return false;
    this.chunks.push(data);
    this.poke();
    return true;
  }

  endRequest() {
    if (this.requestEnded) return;
    this.requestEnded = true;
    if (this.streaming) this.poke();
    else this.start();
  }

  /** [7, sid]: drops the rest of the reply; 499 goes out now if the handler is not running,
   * otherwise when it settles, so the job holds its slot until its handler has stopped. */
  cancel() {
    if (this.ended || this.cancelled) return;
    this.cancelled = true;
    if (this.controller) this.controller.abort(new Cancelled(this.sid));
    this.poke();
    if (!this.running) this.settle();
  }

  poke() {
    const wake = this.wake;
    this.wake = null;
    if (wake) wake();
  }

  // -- the handler --------------------------------------------------------------------------

  async start() {
    this.running = true;
    try {
      if (this.streaming) await this.handler(new Request(this), new Response(this));
      else await this.runPlain();
      this.finish();
    } catch (err) {
      this.fail(err);
    }
    this.running = false;
    this.settle();
  }

  async runPlain() {
    const request = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = null;
    let result = this.handler(request);
    if (result && typeof result.then === 'function') result = await result;
    if (result === undefined || result === null) return;
    if (typeof result === 'string' || result instanceof Uint8Array) result = [result];
    if (typeof result[Symbol.asyncIterator] === 'function') {
      for await (const chunk of result) if (!this.write(chunk)) break;
    } else if (typeof result[Symbol.iterator] === 'function') {
      for (const chunk of result) if (!this.write(chunk)) break;
    } else {
      throw new TypeError(`handler returned ${typeof result}; expected chunks (an array, an iterable, a string or a Buffer) or nothing`);
    }
  }

  /** Sends a reply chunk; false if it was dropped because the job has ended. */
  write(chunk) {
    const bytes = toBytes(chunk);
    if (this.ended || this.cancelled) return false;
    const frame = protocol.encode([protocol.CHUNK, this.sid, bytes]);
    if (frame.length - 4 > this.worker.maxMessage) {
      throw new CocaineError(413, `reply chunk of ${bytes.length} bytes is over max-message (${this.worker.maxMessage} bytes)`);
    }
    return this.worker.send(frame);
  }

  finish() {
    if (this.ended || this.cancelled) return false;
    this.ended = true;
    return this.worker.send(protocol.encode([protocol.CHOKE, this.sid]));
  }

  failWith(code, message) {
    if (this.ended || this.cancelled) return false;
    this.ended = true;
    return this.worker.send(errorFrame(this.sid, code, message, this.worker.maxMessage));
  }

  fail(err) {
    if (err instanceof Cancelled && this.cancelled) return; // the normal way out
    const code = codeOf(err);
    if (code !== undefined) {
      this.failWith(code, String(err.message ?? ''));
      return;
    }
    this.worker.log(`job ${this.sid} (event '${this.event}') failed: ${err instanceof Error ? err.stack : String(err)}`);
    this.failWith(502, describe(err));
  }

  /** The handler has stopped (or never ran): a cancelled job gets its 499; the job is done. */
  settle() {
    if (this.cancelled && !this.ended) {
      this.ended = true;
      this.worker.send(protocol.encode([protocol.ERROR, this.sid, 499, 'cancelled']));
    }
    this.worker.jobDone(this);
  }

  signal() {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort(new Cancelled(this.sid));
    }
    return this.controller.signal;
  }
}

/** `[6, sid, code, message]`, the message cut so the frame stays within max-message. */
function errorFrame(sid, code, message, maxMessage) {
  let frame = protocol.encode([protocol.ERROR, sid, code, message]);
  const excess = frame.length - 4 - maxMessage;
  if (excess > 0) {
    const bytes = Buffer.from(message, 'utf8');
    const cut = Math.max(0, bytes.length - excess - 16);
    frame = protocol.encode([protocol.ERROR, sid, code, bytes.subarray(0, cut).toString('utf8')]);
  }
  return frame;
}

/** A streaming job's request: `for await (const chunk of request)` yields Buffers as they
 * arrive; `await request.read()` gives the rest in one. `event` and `meta` describe the job. */
class Request {
  constructor(job) {
    this.job = job;
    this.sid = job.sid;
    this.event = job.event;
    this.meta = job.meta;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  async next() {
    const job = this.job;
    for (;;) {
      if (job.cancelled) throw new Cancelled(job.sid);
      if (job.chunks.length) return { value: job.chunks.shift(), done: false };
      if (job.requestEnded) return { value: undefined, done: true };
      await new Promise((resolve) => { job.wake = resolve; });
    }
  }

  async read() {
    const parts = [];
    for await (const chunk of this) parts.push(chunk);
    return Buffer.concat(parts);
  }
}

/** A streaming job's reply: `write(chunk)`, `close()`, `error(code, message)`. */
class Response {
  constructor(job) {
    this.job = job;
  }

  /** Sends a chunk (Buffer, Uint8Array, or a string sent as UTF-8). */
  write(chunk) {
    if (!this.job.write(chunk)) {
      if (this.job.cancelled) throw new Cancelled(this.job.sid);
      throw new Error(`job ${this.job.sid}: write after the response was closed`);
    }
  }

  /** Ends the reply; does nothing if it already ended. Returning from the handler does too. */
  close() {
    this.job.finish();
  }

  /** Ends the reply with an error code and message instead. */
  error(code, message) {
    if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) {
      throw new RangeError(`error code must be an integer in 0..2^32-1, got ${code}`);
    }
    this.job.failWith(code, String(message));
  }

  get closed() {
    return this.job.ended || this.job.cancelled;
  }

  get cancelled() {
    return this.job.cancelled;
  }

  /** An AbortSignal that fires when the node cancels the job (pass it to timers, fetch...). */
  get signal() {
    return this.job.signal();
  }
}

module.exports = { Job };

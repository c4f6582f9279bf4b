'use strict';
// What apps may use (all optional: an app needs no import to be served).

const STREAMING = Symbol.for('cocaine.streaming');

/** An error with a chosen code: `throw new CocaineError(403, 'go away')` fails the job with
 * [6, sid, 403, "go away"]. Any error with an integer `code` in 0..2^32-1 does the same. */
class CocaineError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'CocaineError';
    this.code = code;
  }
}

/** Thrown by `response.write()` and the request's iterator once the node cancelled the job;
 * letting it propagate is the normal way out of a cancelled handler. */
class Cancelled extends Error {
  constructor(sid) {
    super(`job ${sid} was cancelled`);
    this.name = 'Cancelled';
  }
}

/** Marks `fn` as a streaming handler (`fn(request, response)`), whatever its arity. */
function streaming(fn) {
  fn[STREAMING] = true;
  return fn;
}

/** Marks `fn` as a plain handler (`fn(request)`), whatever its arity. */
function plain(fn) {
  fn[STREAMING] = false;
  return fn;
}

/** A handler is streaming when marked so, or when it declares two parameters. */
function isStreaming(fn) {
  if (typeof fn[STREAMING] === 'boolean') return fn[STREAMING];
  if (typeof fn.streaming === 'boolean') return fn.streaming;
  return fn.length === 2;
}

/** The code an error carries, when it is a valid one (Node's own errors have string codes). */
function codeOf(err) {
  const code = err !== null && typeof err === 'object' ? err.code : undefined;
  return Number.isInteger(code) && code >= 0 && code <= 0xffffffff ? code : undefined;
}

module.exports = { CocaineError, Cancelled, streaming, plain, isStreaming, codeOf };

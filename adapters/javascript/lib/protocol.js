'use strict';
// The worker channel: message kinds, framing (u32 big-endian length + msgpack array) and the
// checks that turn a frame from the node into a well-formed message or a clear error.

const { Encoder, Decoder } = require('@msgpack/msgpack');

const HANDSHAKE = 1;
const HEARTBEAT = 2;
const INVOKE = 3;
const CHUNK = 4;
const CHOKE = 5;
const ERROR = 6;
const CANCEL = 7;
const TERMINATE = 8;

const PROTOCOL_VERSION = 1;
const DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024;

const encoder = new Encoder();
const decoder = new Decoder();

class ProtocolError extends Error {}

/** The whole frame (length prefix and body) for `message`, an array. */
function encode(message) {
  const body = encoder.encode(message);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, 4);
  return frame;
}

/** Cuts a byte stream into frame bodies. */
class FrameReader {
  constructor() {
    this.buffer = Buffer.alloc(0);
  }

  feed(data) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
  }

  /** The complete frame bodies buffered so far; the rest stays for the next feed. */
  frames() {
    const out = [];
    let offset = 0;
    const buf = this.buffer;
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32BE(offset);
      if (buf.length - offset - 4 < length) break;
      out.push(buf.subarray(offset + 4, offset + 4 + length));
      offset += 4 + length;
    }
    this.buffer = offset === buf.length ? Buffer.alloc(0) : buf.subarray(offset);
    return out;
  }

  /** Whether part of a frame is buffered (EOF now would cut it). */
  pending() {
    return this.buffer.length > 0;
  }
}

const isSid = (v) => Number.isSafeInteger(v) && v >= 0;
const isBytes = (v) => v instanceof Uint8Array;
const isMap = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !isBytes(v);

// Node -> worker messages: kind -> checks of the arguments after the kind.
const SHAPES = {
  [HEARTBEAT]: [],
  [INVOKE]: [isSid, (v) => typeof v === 'string', isMap],
  [CHUNK]: [isSid, isBytes],
  [CHOKE]: [isSid],
  [CANCEL]: [isSid],
  [TERMINATE]: [(v) => typeof v === 'string'],
};

/** Decodes and checks a frame body from the node: [kind, ...args], or throws ProtocolError. */
function parse(body) {
  let message;
  try {
    message = decoder.decode(body);
  } catch (e) {
    throw new ProtocolError(`not msgpack: ${e.message}`);
  }
  if (!Array.isArray(message) || message.length === 0 || !Number.isInteger(message[0])) {
    throw new ProtocolError('not an array starting with a message kind');
  }
  const checks = SHAPES[message[0]];
  if (checks === undefined) {
    throw new ProtocolError(`kind ${message[0]} is not a node-to-worker message`);
  }
  if (message.length !== checks.length + 1) {
    throw new ProtocolError(`kind ${message[0]} with ${message.length - 1} arguments, expected ${checks.length}`);
  }
  checks.forEach((check, i) => {
    if (!check(message[i + 1])) {
      throw new ProtocolError(`kind ${message[0]}: argument ${i + 1} has the wrong type`);
    }
  });
  return message;
}

module.exports = {
  HANDSHAKE, HEARTBEAT, INVOKE, CHUNK, CHOKE, ERROR, CANCEL, TERMINATE,
  PROTOCOL_VERSION, DEFAULT_MAX_MESSAGE, ProtocolError, FrameReader, encode, parse,
};

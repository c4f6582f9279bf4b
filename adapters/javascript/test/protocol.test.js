'use strict';
// The worker channel's decoder against good, truncated, malformed and hostile input.

const test = require('node:test');
const assert = require('node:assert/strict');
const { encode: msgpack } = require('@msgpack/msgpack');
const protocol = require('../lib/protocol');

const body = (message) => Buffer.from(msgpack(message));

test('frames cut anywhere come out whole, in order', () => {
  const stream = Buffer.concat([protocol.encode([3, 1, 'echo', {}]), protocol.encode([4, 1, Buffer.from('hi')]), protocol.encode([5, 1])]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const reader = new protocol.FrameReader();
    reader.feed(stream.subarray(0, cut));
    const frames = reader.frames();
    reader.feed(stream.subarray(cut));
    frames.push(...reader.frames());
    assert.deepEqual(frames.map((f) => protocol.parse(f)[0]), [3, 4, 5]);
    assert.equal(reader.pending(), false);
  }
});

test('a truncated frame stays pending', () => {
  const reader = new protocol.FrameReader();
  reader.feed(protocol.encode([5, 1]).subarray(0, 5));
  assert.deepEqual(reader.frames(), []);
  assert.equal(reader.pending(), true);
});

test('node messages of every kind parse', () => {
  assert.deepEqual(protocol.parse(body([2])), [2]);
  assert.deepEqual(protocol.parse(body([3, 7, 'echo', { timeout: 5 }])), [3, 7, 'echo', { timeout: 5 }]);
  assert.deepEqual([...protocol.parse(body([4, 7, Buffer.from('x')]))[2]], [0x78]);
  assert.deepEqual(protocol.parse(body([5, 7])), [5, 7]);
  assert.deepEqual(protocol.parse(body([7, 7])), [7, 7]);
  assert.deepEqual(protocol.parse(body([8, 'bye'])), [8, 'bye']);
});

test('malformed and hostile bodies are refused with a reason', () => {
  const bad = [
    Buffer.alloc(0), Buffer.from([0xc1]), Buffer.from([0x93, 0x04]), body(42), body([]), body(['3']),
    body([99]), body([1, 'w', 1, 1]), body([6, 1, 500, 'x']), body([3, 1]), body([3, -1, 'e', {}]),
    body([3, 1, 5, {}]), body([3, 1, 'e', []]), body([4, 1, 'text']), body([4, 1.5, Buffer.alloc(0)]),
    body([5, 1, 2]), body([8, 5]), Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]),
  ];
  for (const b of bad) {
    assert.throws(() => protocol.parse(b), protocol.ProtocolError, `accepted ${b.toString('hex')}`);
  }
});

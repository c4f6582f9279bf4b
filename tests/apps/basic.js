'use strict';
// The JavaScript twin of basic.py: one handler per behaviour the end-to-end tests need.

const { setTimeout: sleep } = require('node:timers/promises');

exports.echo = (request) => [request];

exports.zecho = (request) => {
  if (request.toString() === 'boom') throw new Error('boom');
  return [request, '|', request.toString().toUpperCase()];
};

exports.stream_echo = async (request, response) => {
  for await (const chunk of request) response.write(Buffer.concat([Buffer.from('echo:'), chunk]));
  response.close();
};

exports.code = (request) => {
  const [number, ...words] = request.toString().split(' ');
  throw Object.assign(new Error(words.join(' ')), { code: Number(number) });
};

exports.pid = () => [String(process.pid)];

// A real hang: blocks the worker's only thread for the request's seconds.
exports.sleep = (request) => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(request.toString() || '1') * 1000);
  return ['slept'];
};

exports.announce_sleep = async (request, response) => {
  const seconds = Number((await request.read()).toString() || '1');
  response.write(String(process.pid));
  await sleep(seconds * 1000);
  response.write('done');
};

'use strict';
// The conformance app for the JavaScript SDK: the events the conformance kit calls.

const { setTimeout: sleep } = require('node:timers/promises');

exports.echo = (request) => [request];

exports.count = function* (request) {
  for (let i = 1; i <= Number(request.toString()); i++) yield String(i);
};

exports.stream = async (request, response) => {
  for await (const chunk of request) response.write(chunk);
};

exports.fail = (request) => {
  throw new Error(`failed on ${request.toString()}`);
};

exports.code = (request) => {
  const [number, ...words] = request.toString().split(' ');
  throw Object.assign(new Error(words.join(' ')), { code: Number(number) });
};

exports.slow = async (request, response) => {
  const ms = Number((await request.read()).toString());
  response.write('started');
  try {
    await sleep(ms, undefined, { signal: response.signal });
  } catch (err) {
    if (response.cancelled) return;
    throw err;
  }
  response.write('done');
};

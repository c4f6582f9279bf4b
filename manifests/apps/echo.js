'use strict';
// An echo app in JavaScript: the native-server's `echo` and the zeromq-server's `upper`.
// Every exported function is an event of the same name (see adapters/javascript/README.md).

exports.echo = (request) => [request]; // plain: the whole request in, chunks out

exports.upper = (request) => [request.toString('utf8').toUpperCase()]; // strings go as UTF-8

exports.count = function* (request) { // a generator: chunks go out as they are made
  const n = Number(request.toString() || '3');
  for (let i = 1; i <= n; i++) yield String(i);
};

exports.forbidden = () => {
  throw Object.assign(new Error('go away'), { code: 403 }); // an integer code picks the error
};

exports.stream = async (request, response) => { // two parameters: streaming
  for await (const chunk of request) response.write(chunk);
};

'use strict';
// An app with a syntax error.

exports.echo = (request) => [request;

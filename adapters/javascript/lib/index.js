'use strict';
// `require('cocaine-worker')`: helpers for apps, and the worker itself for embedding.

const { CocaineError, Cancelled, streaming, plain } = require('./api');
const { Worker } = require('./worker');
const { loadApp } = require('./app');

module.exports = { CocaineError, Cancelled, streaming, plain, Worker, loadApp };

#!/usr/bin/env node
'use strict';
// `cocaine-worker-js [--socket PATH] [--app NAME] CODE_PATH`: runs one worker for a Node.js
// app (a .js/.cjs/.mjs file or a package folder). The node starts it with COCAINE_SOCKET,
// COCAINE_WORKER_ID, COCAINE_APP, COCAINE_HEARTBEAT_MS, COCAINE_TIMEOUT_MS and
// COCAINE_MAX_MESSAGE set. The app is loaded before connecting, so an app that cannot load
// fails with its error on stderr and exit code 1, which the node shows.

const net = require('node:net');
const path = require('node:path');

let sdk;
try {
  sdk = {
    ...require('../lib/app'),
    ...require('../lib/worker'),
    ...require('../lib/protocol'),
  };
} catch (err) {
  if (err.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes('@msgpack/msgpack')) throw err;
  process.stderr.write(`cocaine-worker-js: the SDK's dependency @msgpack/msgpack is not installed: run \`npm ci\` in ${path.resolve(__dirname, '..')}\n`);
  process.exit(1);
}
const { loadApp, AppLoadError, Worker, DEFAULT_MAX_MESSAGE } = sdk;

const USAGE = 'usage: cocaine-worker-js [--socket PATH] [--app NAME] CODE_PATH';
let prefix = 'cocaine worker';

function log(message) {
  process.stderr.write(`${prefix}: ${message}\n`);
}

function usage(problem) {
  process.stderr.write(`cocaine-worker-js: ${problem}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { socket: process.env.COCAINE_SOCKET, app: process.env.COCAINE_APP };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--socket' || arg === '--app') {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      args[arg.slice(2)] = argv[++i];
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg.startsWith('--')) {
      usage(`unknown option ${arg}`);
    } else if (args.codePath === undefined) {
      args.codePath = arg;
    } else {
      usage(`unexpected argument ${arg}`);
    }
  }
  if (!args.codePath) usage('no CODE_PATH');
  if (!args.socket) usage('no socket: pass --socket or set COCAINE_SOCKET');
  args.workerId = process.env.COCAINE_WORKER_ID;
  if (!args.workerId) usage('COCAINE_WORKER_ID is not set');
  args.app = args.app || path.basename(path.resolve(args.codePath));
  return args;
}

/** A positive integer from the environment, or `fallback` (with a warning if it was bad). */
function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (Number.isSafeInteger(value) && value > 0) return value;
  log(`${name}=${JSON.stringify(raw)} is not a positive integer; using ${fallback}`);
  return fallback;
}

const SDK_DIR = path.resolve(__dirname, '..') + path.sep;

/** An error's stack without the frames of Node's loader and of this SDK: what is left points
 * at the app's code. */
function appStack(err) {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return String(err);
  return err.stack
    .split('\n')
    .filter((line) => !/^\s+at /.test(line) || !(line.includes('node:internal') || line.includes(SDK_DIR)))
    .join('\n');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  prefix = `cocaine worker ${args.app}/${args.workerId}`;
  const options = {
    workerId: args.workerId,
    heartbeatMs: envNumber('COCAINE_HEARTBEAT_MS', 5000),
    timeoutMs: envNumber('COCAINE_TIMEOUT_MS', 30000),
    maxMessage: envNumber('COCAINE_MAX_MESSAGE', DEFAULT_MAX_MESSAGE),
    log,
  };
  let handlers;
  try {
    handlers = await loadApp(args.codePath);
  } catch (err) {
    if (err instanceof AppLoadError) log(`cannot load the app: ${err.message}`);
    else log(`loading ${args.codePath} failed:\n${appStack(err)}`);
    process.exit(1);
  }
  // A stray rejection in app code that no job awaits must not take the worker down.
  process.on('unhandledRejection', (reason) => {
    log(`unhandled rejection in the app: ${reason instanceof Error ? reason.stack : String(reason)}`);
  });
  const socket = net.createConnection(args.socket);
  socket.once('error', (err) => {
    log(`cannot connect to ${args.socket}: ${err.message}`);
    process.exit(1);
  });
  socket.once('connect', () => {
    socket.removeAllListeners('error');
    new Worker(socket, handlers, options).start();
  });
}

main();

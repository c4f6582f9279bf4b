'use strict';
// Loading the app and finding its handlers: every exported function whose name does not
// start with `_` is the handler of the event of that name.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

/** The app's code path is not something we can load (as opposed to the app's own errors,
 * which propagate with their stack). */
class AppLoadError extends Error {}

const EXTENSIONS = new Set(['.js', '.cjs', '.mjs']);

/** Loads a `.js`/`.cjs`/`.mjs` file or a package folder; returns Map(event -> handler). */
async function loadApp(codePath) {
  const file = resolveEntry(path.resolve(codePath));
  const exported = await importFile(file);
  const handlers = new Map();
  for (const [name, value] of Object.entries(exported ?? {})) {
    if (typeof value === 'function' && !name.startsWith('_') && name !== 'default') {
      handlers.set(name, value);
    }
  }
  if (handlers.size === 0) {
    throw new AppLoadError(`${file} exports no handlers: export a function named after each event (exports.echo = (request) => [request])`);
  }
  return handlers;
}

function resolveEntry(abs) {
  let stat;
  try {
    stat = fs.statSync(abs);
  } catch (e) {
    throw new AppLoadError(`${abs}: ${e.code === 'ENOENT' ? 'no such file or folder' : e.message}`);
  }
  if (stat.isDirectory()) {
    try {
      return require.resolve(abs);
    } catch (e) {
      throw new AppLoadError(`${abs} is a folder without an entry point: give it a package.json with "main", or an index.js`);
    }
  }
  if (!EXTENSIONS.has(path.extname(abs))) {
    throw new AppLoadError(`${abs}: expected a .js, .cjs or .mjs file or a package folder`);
  }
  return abs;
}

/** The module's exports: require() for CommonJS, import() for ES modules. */
async function importFile(file) {
  if (path.extname(file) !== '.mjs') {
    try {
      return require(file);
    } catch (e) {
      if (e.code !== 'ERR_REQUIRE_ESM') throw e;
    }
  }
  let namespace;
  try {
    namespace = await import(pathToFileURL(file).href);
  } catch (e) {
    throw e instanceof SyntaxError ? locateSyntaxError(file, e) : e;
  }
  // An ES module may also default-export an object of handlers.
  const fallback = namespace.default;
  const named = Object.keys(namespace).some((k) => k !== 'default' && typeof namespace[k] === 'function');
  return named || fallback === null || typeof fallback !== 'object' ? namespace : fallback;
}

/** Node does not say where a syntax error in an ES module is; `node --check` does. */
function locateSyntaxError(file, err) {
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' });
  const where = (check.stderr || '').split('\n').filter((line) => !/^\s+at |^Node\.js v/.test(line));
  if (check.status === 0 || where.join('').trim() === '') return err;
  err.stack = where.join('\n').trim();
  return err;
}

module.exports = { loadApp, AppLoadError };

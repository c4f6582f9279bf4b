'use strict';
// Loading apps: files of each module kind, package folders, and the errors that name the problem.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { loadApp, AppLoadError } = require('../lib/app');

function tree(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cocaine-js-app-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const names = async (p) => [...(await loadApp(p)).keys()].sort();

test('a CommonJS file: exported functions, not _private ones or values', async (t) => {
  const dir = tree({ 'app.js': 'exports.echo = (r) => [r]; exports._hidden = () => 1; exports.n = 5; exports.stream = async (q, s) => {};' });
  t.after(() => fs.rmSync(dir, { recursive: true }));
  assert.deepEqual(await names(path.join(dir, 'app.js')), ['echo', 'stream']);
});

test('an ES module, and one default-exporting an object', async (t) => {
  const dir = tree({
    'named.mjs': 'export const echo = (r) => [r];\nexport function upper(r) { return r; }\n',
    'default.mjs': 'export default { echo: (r) => [r] };\n',
  });
  t.after(() => fs.rmSync(dir, { recursive: true }));
  assert.deepEqual(await names(path.join(dir, 'named.mjs')), ['echo', 'upper']);
  assert.deepEqual(await names(path.join(dir, 'default.mjs')), ['echo']);
});

test('package folders: main of a CommonJS package, index.js of an ES module package', async (t) => {
  const dir = tree({
    'cjs/package.json': '{"main": "lib/main.js"}',
    'cjs/lib/main.js': 'exports.ping = () => ["pong"];',
    'esm/package.json': '{"type": "module"}',
    'esm/index.js': 'export const ping = () => ["pong"];',
  });
  t.after(() => fs.rmSync(dir, { recursive: true }));
  assert.deepEqual(await names(path.join(dir, 'cjs')), ['ping']);
  assert.deepEqual(await names(path.join(dir, 'esm')), ['ping']);
});

test('what cannot be an app is refused with the reason', async (t) => {
  const dir = tree({ 'empty/readme.txt': '', 'none.js': 'exports.x = 1;', 'app.py': '' });
  t.after(() => fs.rmSync(dir, { recursive: true }));
  const cases = [
    [path.join(dir, 'missing.js'), /no such file/],
    [path.join(dir, 'empty'), /without an entry point/],
    [path.join(dir, 'none.js'), /exports no handlers/],
    [path.join(dir, 'app.py'), /expected a \.js, \.cjs or \.mjs/],
  ];
  for (const [p, message] of cases) {
    await assert.rejects(loadApp(p), (e) => e instanceof AppLoadError && message.test(e.message));
  }
});

test('the app\'s own errors propagate with their location', async (t) => {
  const dir = tree({ 'bad.mjs': 'export const echo = (r) => [r;\n', 'throws.js': 'throw new Error("at load");' });
  t.after(() => fs.rmSync(dir, { recursive: true }));
  await assert.rejects(loadApp(path.join(dir, 'bad.mjs')), (e) => e instanceof SyntaxError && e.stack.includes('bad.mjs:1'));
  await assert.rejects(loadApp(path.join(dir, 'throws.js')), /at load/);
});

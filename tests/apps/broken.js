'use strict';
// An app that cannot load: it requires a module that does not exist.

require('nonexistent_module_for_e2e');

exports.echo = (request) => [request];

// hubbub's JavaScript client SDK. See README.md in this directory and index.d.ts.
export { HubbubClient } from './client.js';
export { HubbubError, cmpId, maxId, closeAction, newNonce, Emitter, BoundedSet } from './util.js';
export { KINDS, methodName } from './kinds.js';

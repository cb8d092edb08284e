// Small pieces the client is built from: an event emitter, id comparison,
// a bounded set of seen ids, close-code policy and errors.

/** A minimal event emitter (no EventTarget: React Native and old runtimes lack it). */
export class Emitter {
  constructor() { this._handlers = new Map(); }
  /** Calls `fn(...args)` on every `emit(name, ...)`; returns a function that unsubscribes. */
  on(name, fn) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this.off(name, fn);
  }
  /** Calls `fn` on the next `emit(name, ...)` only. */
  once(name, fn) {
    const off = this.on(name, (...a) => { off(); fn(...a); });
    return off;
  }
  off(name, fn) { const s = this._handlers.get(name); if (s) s.delete(fn); }
  /** A handler that throws is reported on `handler_error` and does not stop the others. */
  emit(name, ...args) {
    const s = this._handlers.get(name);
    if (!s) return;
    for (const fn of [...s]) {
      try { fn(...args); } catch (e) {
        if (name !== 'handler_error') this.emit('handler_error', e, name);
      }
    }
  }
}

/** Compares two decimal id strings (63-bit snowflakes) without losing precision. */
export function cmpId(a, b) {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The larger of two ids (either may be null). */
export function maxId(a, b) { return !a || (b && cmpId(b, a) > 0) ? b : a; }

/** A set of ids that forgets the oldest-added beyond `max` entries. */
export class BoundedSet {
  constructor(max) { this.max = max; this.set = new Set(); }
  has(id) { return this.set.has(id); }
  /** Adds `id`; returns false if it was already there. */
  add(id) {
    if (this.set.has(id)) return false;
    this.set.add(id);
    if (this.set.size > this.max) this.set.delete(this.set.values().next().value);
    return true;
  }
  clear() { this.set.clear(); }
  get size() { return this.set.size; }
}

/** A failed request: `code` is a protocol.md error code or one of the client's own
 * (`timeout`, `disconnected`, `overloaded`, `outbox_full`, `closed`). */
export class HubbubError extends Error {
  constructor(code, message) { super(message || code); this.name = 'HubbubError'; this.code = code; }
}

/** Error codes after which a `message.send` is kept and retried with the same nonce. */
export const RETRYABLE = new Set(['disconnected', 'timeout', 'unavailable', 'internal', 'rate_limited']);

/**
 * What to do after a close (protocol.md section 7): `reconnect` (with backoff),
 * `pause` (reconnect after at least `abusePauseMs`), `relogin` (the session is dead:
 * 4500-4999) or `stop` (a client bug: 1002, 1007).
 */
export function closeAction(code) {
  if (code >= 4500 && code <= 4999) return 'relogin';
  if (code === 4003) return 'pause';
  if (code === 1002 || code === 1007) return 'stop';
  return 'reconnect'; // 4000-4499, 1006 (no close frame), 1001, 1009, 1011, 1012...
}

/** A random nonce for message.send (hex, 12 bytes). */
export function newNonce(prefix = 'n') {
  const b = new Uint8Array(12);
  const c = globalThis.crypto;
  if (c && c.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256); // React Native without a polyfill
  return prefix + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// HubbubClient: one WebSocket to a hubbub server, with authentication, token
// refresh, reconnect with backoff, resume and sync, an outbox and de-duplication.
// Only the standard WebSocket API is used (browsers, Node 22, React Native; on
// Node 20 pass `WebSocket` or run with --experimental-websocket).

import { Emitter, HubbubError, BoundedSet, closeAction } from './util.js';
import { KINDS, SPECIAL, methodName } from './kinds.js';
import { sessionMethods } from './session.js';
import { deliveryMethods } from './delivery.js';

const DEFAULTS = {
  requestTimeoutMs: 15000,
  backoffMinMs: 250,
  backoffMaxMs: 8000,
  abusePauseMs: 5000,
  refreshMarginMs: 60000,
  heartbeatMs: 25000,
  maxPending: 256,
  maxOutbox: 500,
  maxSeenIds: 10000,
  maxBuffered: 1000,
  maxFrameBytes: 65536,
  syncPageSize: 200,
  retryDelayMs: 2000,
};

/** The client. See index.d.ts for the documented surface. */
export class HubbubClient extends Emitter {
  constructor(options) {
    super();
    if (!options || !options.url) throw new TypeError('HubbubClient needs { url }');
    this.opts = { ...DEFAULTS, ...options };
    this.WS = this.opts.WebSocket || globalThis.WebSocket;
    if (!this.WS) throw new TypeError('no WebSocket: pass { WebSocket } (Node 20: --experimental-websocket)');
    const store = this.opts.sessionStore;
    this._session = this.opts.session || (store && store.load()) || null;
    this._pos = this.opts.position || null;
    this._cursor = this.opts.syncCursor || null;
    this._state = 'idle';
    this._ws = null;
    this._authed = false;
    this._wanted = false;
    this._nextId = 1;
    this._pending = new Map();
    this._outbox = [];
    this._seen = new BoundedSet(this.opts.maxSeenIds);
    this._buffer = null; // live messages held while a sync runs
    this._needSync = true;
    this._backoff = this.opts.backoffMinMs;
    this._timers = { reconnect: null, refresh: null, heartbeat: null };
  }

  /** `idle`, `connecting`, `authenticating`, `online`, `offline` (reconnecting) or `ended`. */
  get state() { return this._state; }
  get session() { return this._session; }
  get user() { return this._session ? this._session.user : null; }
  get position() { return this._pos; }
  get syncCursor() { return this._cursor; }
  get outbox() { return this._outbox.map((o) => ({ nonce: o.nonce, ...o.fields, state: o.state, error: o.error })); }

  _setState(s) {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
  }

  // ---------- socket ----------

  /** Opens the socket and authenticates with the stored session (if any). */
  connect() {
    this._wanted = true;
    clearTimeout(this._timers.reconnect);
    if (this._ws) return;
    this._openSocket().then(() => (this._session ? this._authenticate() : null)).catch(() => {});
  }

  /** Closes the socket for good (no reconnect). Pending requests fail with `closed`. */
  close() {
    this._wanted = false;
    this._stopTimers();
    const ws = this._ws;
    this._ws = null;
    this._failPending('closed', 'client closed');
    if (ws) { try { ws.close(1000); } catch { /* already closing */ } }
    this._setState('idle');
  }

  /** Opens a socket; resolves when it is open. `_opening` lets others wait for it. */
  _openSocket() {
    this._opening = new Promise((resolve, reject) => {
      this._setState('connecting');
      const ws = new this.WS(this.opts.url);
      this._ws = ws;
      let opened = false;
      const failed = (code, reason) => {
        clearTimeout(openTimer);
        if (!opened) reject(new HubbubError('disconnected', 'could not connect'));
        this._abandon(ws, code, reason);
      };
      // Some runtimes (Node 20's undici) fire only `error` when the connection is refused.
      const openTimer = setTimeout(() => failed(1006, 'connect timeout'), this.opts.requestTimeoutMs);
      ws.onopen = () => { opened = true; clearTimeout(openTimer); resolve(ws); };
      ws.onmessage = (ev) => { if (this._ws === ws) this._onFrame(ev.data); };
      ws.onerror = () => { if (!opened) failed(1006, 'could not connect'); }; // else onclose follows
      ws.onclose = (ev) => failed(ev.code || 1006, ev.reason || '');
    });
    return this._opening;
  }

  async _ensureOpen() {
    this._wanted = true;
    clearTimeout(this._timers.reconnect);
    const ws = this._ws;
    if (ws && ws.readyState === 1) return;
    if (ws && ws.readyState === 0) { await this._opening; return; }
    await this._openSocket();
  }

  /** Treats `ws` as closed now (a dead peer that will never send its close). */
  _abandon(ws, code, reason) {
    if (!ws || this._ws !== ws) return;
    this._onClose(ws, code, reason);
    try { ws.close(); } catch { /* ignore: already closing, or never opened */ }
  }

  _onClose(ws, code, reason) {
    if (this._ws !== ws) return;
    this._ws = null;
    this._authed = false;
    this._stopTimers();
    this._failPending('disconnected', 'connection lost');
    this.emit('disconnected', { code, reason });
    const action = closeAction(code);
    if (action === 'relogin') return this._endSession(code, reason);
    if (action === 'stop') { this._setState('ended'); this.emit('fatal', { code, reason }); return; }
    if (!this._wanted || !this._session) { this._setState('idle'); return; }
    this._setState('offline');
    let delay = this._backoff;
    if (action === 'pause') delay = Math.max(delay, this.opts.abusePauseMs);
    this._backoff = Math.min(this._backoff * 2, this.opts.backoffMaxMs);
    delay = delay / 2 + Math.random() * delay / 2; // jitter: never all clients at once
    this._timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  _endSession(code, reason) {
    this._session = null;
    this._save();
    this._setState('ended');
    this.emit('session_ended', { code, reason });
  }

  _stopTimers() {
    clearTimeout(this._timers.refresh);
    clearTimeout(this._timers.heartbeat);
    clearTimeout(this._timers.reconnect);
  }

  _save() {
    if (this.opts.sessionStore) this.opts.sessionStore.save(this._session);
    this.emit('session', this._session);
  }

  // ---------- frames and requests ----------

  _send(obj) {
    const text = JSON.stringify(obj);
    if (text.length > this.opts.maxFrameBytes) throw new HubbubError('too_large', 'frame over the server limit');
    if (this.opts.onFrame) this.opts.onFrame('send', obj);
    this._ws.send(text);
  }

  /**
   * Sends one request and resolves with its reply `data`; rejects with a
   * HubbubError (the server's `code`, or `timeout`, `disconnected`, `overloaded`).
   */
  request(type, fields = {}, { timeoutMs } = {}) {
    return new Promise((resolve, reject) => {
      const ws = this._ws;
      if (!ws || ws.readyState !== 1) return reject(new HubbubError('disconnected', 'not connected'));
      if (this._pending.size >= this.opts.maxPending) return reject(new HubbubError('overloaded', 'too many requests in flight'));
      const id = this._nextId++;
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new HubbubError('timeout', `${type} got no reply`));
      }, timeoutMs || this.opts.requestTimeoutMs);
      this._pending.set(id, { resolve, reject, timer });
      try { this._send({ ...fields, type, id }); } catch (e) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(e);
      }
    });
  }

  _failPending(code, message) {
    for (const p of this._pending.values()) { clearTimeout(p.timer); p.reject(new HubbubError(code, message)); }
    this._pending.clear();
  }

  _onFrame(raw) {
    let f;
    try { f = JSON.parse(raw); } catch { return; }
    if (!f || typeof f !== 'object') return;
    if (this.opts.onFrame) this.opts.onFrame('recv', f);
    if (f.type === 'event') return this._onEvent(f);
    const p = this._pending.get(f.id);
    if (!p) { if (f.type === 'error') this.emit('server_error', f); return; }
    this._pending.delete(f.id);
    clearTimeout(p.timer);
    if (f.type === 'ok') p.resolve(f.data || {});
    else p.reject(new HubbubError(f.code || 'internal', f.message));
  }

  _onEvent(f) {
    const { event: name, data } = f;
    if (name === 'message.new' && data && data.message) this._deliverMessage(data.message, 'event');
    this.emit(name, data, f);
    this.emit('event', name, data, f);
    if (name === 'sync.needed') { this._needSync = true; this._catchUp(data && data.reason || 'gap'); }
    if (f.pos) { this._pos = f.pos; this.emit('position', f.pos); }
  }
}

Object.assign(HubbubClient.prototype, sessionMethods, deliveryMethods);

// A method per request kind: client.messageHistory({with: 'bob'}) etc.
for (const kind of KINDS) {
  if (SPECIAL.has(kind)) continue;
  HubbubClient.prototype[methodName(kind)] = function (fields, opts) { return this.request(kind, fields || {}, opts); };
}

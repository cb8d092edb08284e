// Authentication on HubbubClient: register/login/logout, authenticating a
// fresh socket (auth.token with resume, auth.refresh when the access token is
// stale or rejected), refresh before expiry, and an application heartbeat.

import { HubbubError } from './util.js';

function sessionFromReply(d) {
  return { user: d.user, access_token: d.access_token, refresh_token: d.refresh_token,
    expires_at: Date.now() + d.expires_in * 1000 };
}

/** Methods mixed into HubbubClient.prototype. */
export const sessionMethods = {
  /** auth.register on this client's socket (opened if needed); starts a session. */
  register(fields) { return this._credentials('auth.register', fields); },

  /** auth.login on this client's socket (opened if needed); starts a session. */
  login(fields) { return this._credentials('auth.login', fields); },

  async _credentials(kind, fields) {
    await this._ensureOpen();
    this._setState('authenticating');
    let d;
    try { d = await this.request(kind, fields); } catch (e) {
      if (this._ws) this._setState(this._session && this._authed ? 'online' : 'connecting');
      throw e;
    }
    if (!this._session || this._session.user.id !== d.user.id) this._resetUser();
    this._session = sessionFromReply(d);
    this._save();
    this._pos = d.pos || null;
    this._needSync = true;
    await this._afterAuth(false);
    return d;
  },

  /** A different user: nothing of the previous one may be sent or resumed. */
  _resetUser() {
    for (const o of this._outbox.splice(0)) o.reject(new HubbubError('closed', 'signed in as another user'));
    this._pos = null;
    this._cursor = null;
    this._seen.clear();
    this.emit('outbox', this.outbox);
  },

  /** auth.logout: the session ends on the server; the socket is closed, no reconnect. */
  async logout() {
    try { await this.request('auth.logout'); } finally {
      this._session = null;
      this._save();
      this.close();
    }
  },

  /**
   * auth.refresh with the current refresh token (adopting a newer session from
   * `sessionStore` first). Rotates and stores the tokens; authenticates this socket.
   */
  async refresh() {
    const store = this.opts.sessionStore;
    const stored = store && store.load();
    if (stored && this._session && stored.user.id === this._session.user.id
        && stored.refresh_token !== this._session.refresh_token) this._session = stored;
    const d = await this.request('auth.refresh', { refresh_token: this._session.refresh_token });
    this._session = sessionFromReply(d);
    this._save();
    this._scheduleRefresh();
    return d;
  },

  /** A fresh socket with a session: auth.token (with resume), else auth.refresh first. */
  async _authenticate() {
    const ws = this._ws;
    this._setState('authenticating');
    try {
      let s = this._session;
      const fresh = s.access_token && s.expires_at - Date.now() > this.opts.refreshMarginMs / 2;
      if (!fresh) { await this.refresh(); s = this._session; }
      const resume = this._pos ? { resume: this._pos } : {};
      let d;
      try {
        d = await this.request('auth.token', { token: s.access_token, ...resume });
      } catch (e) {
        if (e.code !== 'unauthorized' || !fresh) throw e;
        await this.refresh(); // the token was rejected (e.g. keys rotated): try the refresh token
        d = await this.request('auth.token', { token: this._session.access_token, ...resume });
      }
      if (this._ws !== ws) return;
      const recovered = d.recovered === true;
      // Replayed events follow the reply and move the position; otherwise take it now.
      if (!recovered) { this._pos = d.pos || null; this._needSync = true; }
      await this._afterAuth(recovered);
    } catch (e) {
      if (this._ws !== ws) return;
      if (e.code === 'unauthorized') {
        this._ws = null;
        try { ws.close(1000); } catch { /* ignore */ }
        this._stopTimers();
        this._failPending('closed', 'session ended');
        this._endSession(4500, 'session ended');
      } else if (e.code !== 'disconnected') {
        this.emit('server_error', { code: e.code, message: e.message });
        this._abandon(ws, 4000, 'authentication failed: ' + e.code); // reconnect with backoff
      }
    }
  },

  async _afterAuth(recovered) {
    this._authed = true;
    this._backoff = this.opts.backoffMinMs;
    this._setState('online');
    this._scheduleRefresh();
    this._scheduleHeartbeat();
    this.emit('authenticated', { user: this._session.user, recovered });
    this._pump();
    if (this._needSync) await this._catchUp(recovered ? 'gap' : 'resume');
    this.emit('online', { recovered });
  },

  _scheduleRefresh() {
    clearTimeout(this._timers.refresh);
    const s = this._session;
    if (!s) return;
    const left = s.expires_at - Date.now();
    const wait = Math.max(1000, Math.min(left - this.opts.refreshMarginMs, left * 0.8));
    this._timers.refresh = setTimeout(() => this._refreshTick(), wait);
  },

  async _refreshTick() {
    if (!this._session || !this._authed) return; // the next authentication refreshes
    try { await this.refresh(); } catch (e) {
      if (e.code === 'unauthorized') return this._abandon(this._ws, 4500, 'session ended');
      this._timers.refresh = setTimeout(() => this._refreshTick(), this.opts.retryDelayMs);
    }
  },

  /** A `ping` request when idle; no reply in time means a dead link: reconnect. */
  _scheduleHeartbeat() {
    clearTimeout(this._timers.heartbeat);
    if (!this.opts.heartbeatMs) return;
    this._timers.heartbeat = setTimeout(async () => {
      const ws = this._ws;
      try {
        await this.request('ping', {}, { timeoutMs: this.opts.requestTimeoutMs });
        if (this._ws === ws) this._scheduleHeartbeat();
      } catch (e) {
        if (e.code === 'timeout') this._abandon(ws, 1006, 'heartbeat timeout');
        else if (this._ws === ws) this._scheduleHeartbeat();
      }
    }, this.opts.heartbeatMs);
  },
};

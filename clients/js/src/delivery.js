// Messages on HubbubClient: catching up with message.sync, the de-duplicated
// `message` stream, and the outbox (message.send with a nonce, retried until
// stored exactly once).

import { HubbubError, cmpId, newNonce, RETRYABLE } from './util.js';

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** Methods mixed into HubbubClient.prototype. */
export const deliveryMethods = {
  /** Forget what was seen and sync from `cursor` next time (e.g. a stored cursor). */
  setSyncCursor(cursor) { this._cursor = cursor; },

  /** Marks a message id as seen (e.g. loaded by message.history) so it is not emitted again. */
  markSeen(id) { this._seen.add(id); },

  /**
   * Emits `message` once per message id. While a sync runs, live messages are held
   * (bounded) and emitted after it, so each conversation is seen in id order.
   */
  _deliverMessage(m, source) {
    if (this._buffer) {
      if (this._buffer.length < this.opts.maxBuffered) this._buffer.push([m, source]);
      else this._syncAgain = true; // stored anyway: the next pass from the cursor returns it
      return;
    }
    if (this._seen.add(m.id)) this.emit('message', m, { source });
  },

  /** message.sync from the cursor until `more` is false; repeats if asked meanwhile. */
  async _catchUp(reason) {
    if (this._buffer) { this._syncAgain = true; return; }
    this._buffer = [];
    try {
      do {
        this._syncAgain = false;
        await this._syncPass();
      } while (this._syncAgain);
      this._needSync = false;
      this._flushBuffer();
      this.emit('synced', { reason, cursor: this._cursor });
    } catch (e) {
      this._flushBuffer(); // what arrived live is still good; the next connect syncs again
      if (e.code !== 'disconnected' && e.code !== 'closed') this.emit('server_error', { code: e.code, message: e.message });
    }
  },

  async _syncPass() {
    let since = this._cursor;
    if (since == null) since = (this.opts.initialCursor && (await this.opts.initialCursor())) || '0';
    for (;;) {
      const d = await this.request('message.sync', { since, limit: this.opts.syncPageSize });
      for (const m of d.messages) if (this._seen.add(m.id)) this.emit('message', m, { source: 'sync' });
      since = d.next;
      this._cursor = since;
      this.emit('cursor', since);
      if (!d.more) return;
    }
  },

  _flushBuffer() {
    const held = this._buffer || [];
    this._buffer = null;
    held.sort((a, b) => cmpId(a[0].id, b[0].id));
    for (const [m, source] of held) this._deliverMessage(m, source);
  },

  /**
   * Queues a message.send (fields: `to` or `conversation`, `text`, optional `reply_to`)
   * with a nonce, sends it when online, retries it with the same nonce after a
   * disconnect or a retryable error, and resolves with the stored message.
   */
  sendMessage(fields) {
    if (this._outbox.length >= this.opts.maxOutbox) {
      return Promise.reject(new HubbubError('outbox_full', `at most ${this.opts.maxOutbox} unsent messages`));
    }
    const { nonce, ...rest } = fields;
    const item = { nonce: nonce || newNonce(), fields: rest, state: 'queued', error: null };
    const p = new Promise((resolve, reject) => { item.resolve = resolve; item.reject = reject; });
    this._outbox.push(item);
    this.emit('outbox', this.outbox);
    this._pump();
    return p;
  },

  /** Sends the outbox in order, one at a time, while online. */
  async _pump() {
    if (this._pumping) return;
    this._pumping = true;
    try {
      while (this._outbox.length && this._authed && this._ws) {
        const item = this._outbox[0];
        item.state = 'sending';
        try {
          const d = await this.request('message.send', { ...item.fields, nonce: item.nonce });
          this._outbox.shift();
          this._deliverMessage(d.message, 'sent');
          item.resolve(d.message);
        } catch (e) {
          item.state = 'queued';
          if (!RETRYABLE.has(e.code)) {
            this._outbox.shift();
            item.reject(e);
            this.emit('send_failed', { nonce: item.nonce, ...item.fields }, e);
          } else if (e.code === 'disconnected') {
            break; // flushed again after the next authentication
          } else {
            item.error = e;
            await sleep(this.opts.retryDelayMs);
          }
        }
        this.emit('outbox', this.outbox);
      }
    } finally {
      this._pumping = false;
    }
  },
};

// hubbub browser client: plain JavaScript modules, no framework, no build step.
// The connection (requests, reconnect, resume, sync, outbox, token refresh)
// is the SDK's (clients/js, served at /sdk/); this file is state and views.
// All user-provided text goes into the DOM with textContent, never innerHTML.
import { HubbubClient } from '/sdk/index.js';

(() => {
  const HISTORY_PAGE = 30;
  const SESSION_KEY = 'hubbub.session';

  // ---------- small helpers ----------
  const $ = (id) => document.getElementById(id);
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // Ids are 63-bit decimal strings: compare as strings (length first), never as numbers.
  function cmpId(a, b) {
    if (a.length !== b.length) return a.length - b.length;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function lc(s) { return String(s).toLowerCase(); }
  function hue(s) { let h = 0; for (const c of s) h = (h * 31 + c.codePointAt(0)) % 360; return h; }
  function paintAvatar(node, username, displayName, color) {
    node.textContent = (displayName || username || '?').trim().charAt(0) || '?';
    node.style.background = color || `hsl(${hue(lc(username || ''))} 55% 52%)`;
  }
  function fmtTime(iso) {
    const d = new Date(iso);
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  function fmtDay(iso) { return new Date(iso).toLocaleDateString([], { weekday: 'short', month: 'short', day: 'numeric' }); }

  // Human messages for every error code of protocol.md section 6, plus the client's own.
  const ERROR_TEXT = {
    bad_request: 'The server rejected that request',
    unknown_type: 'The server does not know this request type (client and server versions differ)',
    unauthorized: 'Not signed in, or the credentials were rejected',
    forbidden: 'Not allowed',
    not_found: 'Not found',
    conflict: 'That username is taken; pick another',
    rate_limited: 'Too many requests; slow down and try again in a moment',
    too_large: 'Too long: messages are at most 4000 characters, posts 280',
    limit_exceeded: 'Too many open tabs or devices for this account (at most 16); close one and retry',
    unavailable: 'The server is busy or its storage is unavailable; try again shortly',
    internal: 'Something went wrong on the server',
    timeout: 'The server did not answer in time',
    disconnected: 'Not connected to the server; it will retry when the connection is back',
  };
  function errorText(err) {
    const base = ERROR_TEXT[err.code] || 'Request failed';
    return err.message && err.message !== base ? `${base}: ${err.message}` : base;
  }
  function toast(text, kind, code) {
    const t = el('div', 'toast' + (kind ? ' ' + kind : ''), text);
    if (code) t.appendChild(el('span', 'code', code));
    $('toasts').appendChild(t);
    setTimeout(() => t.remove(), kind === 'error' ? 7000 : 4000);
  }
  function showError(err) { toast(errorText(err), 'error', err.code); }

  // ---------- session (tokens in localStorage) ----------
  // Tokens are never logged and never put in URLs.
  function loadSession() {
    try { return JSON.parse(localStorage.getItem(SESSION_KEY)) || null; } catch { return null; }
  }
  function saveSession(s) {
    if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else localStorage.removeItem(SESSION_KEY);
  }
  const cursorKey = () => `hubbub.cursor.${state.session.user.id}`;

  // ---------- state ----------
  const state = {
    session: loadSession(),
    client: null, // the SDK's HubbubClient of this session
    authed: false,
    listLoaded: Promise.resolve(), // conversation.list of this authentication
    msgChain: Promise.resolve(), // messages from the SDK, applied in order after the list
    convs: new Map(), // lowercase peer username, or 'g:' + group id -> conversation
    following: new Set(), // lowercase usernames I follow
    blocked: new Set(), // lowercase usernames I block (user.blocks)
    openPeer: null, // lowercase username of the open chat
    view: 'empty',
    profile: null, // the profile on screen
    failed: [], // messages the server refused for good: {nonce, key, text, error}
    home: { items: new Map(), nextBefore: null, loaded: false, loading: false }, // item id -> timeline item
  };

  function conv(peer, user) {
    const key = lc(peer);
    let c = state.convs.get(key);
    if (!c) {
      c = { key, username: peer, display_name: peer, color: null, named: false, msgs: new Map(), last: null,
        unread: 0, historyLoaded: false, nextBefore: null, loadingOlder: false,
        // chat state: conversation id, my read pointer, the peer's (receipts), typing
        id: null, readUpTo: null, unreadCapped: false, peerRead: null, typers: {}, reading: false };
      state.convs.set(key, c);
    }
    if (user) {
      if (user.id && !c.id && state.session) c.id = directId(me().id, user.id);
      c.username = user.username;
      c.display_name = user.display_name;
      if (user.color !== undefined) c.color = user.color;
      c.named = true;
    }
    return c;
  }

  // A group conversation, keyed 'g:' + its id; `info` is the group as the
  // server last described it (title, topic, owner_id, member_count).
  function groupConv(g) {
    const key = 'g:' + g.conversation_id;
    let c = state.convs.get(key);
    if (!c) {
      c = { key, group: true, id: g.conversation_id, username: '', display_name: g.title || 'Group', color: null,
        named: true, msgs: new Map(), last: null, unread: 0, historyLoaded: false, nextBefore: null,
        loadingOlder: false, info: null, role: null, members: null };
      state.convs.set(key, c);
    }
    if (g.title !== undefined) { c.info = g; c.display_name = g.title; }
    return c;
  }

  // A group first seen through a message (sync before the list): fetch it once.
  function groupById(id) {
    const c = groupConv({ conversation_id: id });
    if (!c.info && !c.resolving && state.authed) {
      c.resolving = true;
      request('group.get', { conversation: id }).then((d) => {
        groupConv(d.group).role = d.role;
        renderConversations();
      }).catch(() => {}).finally(() => { c.resolving = false; });
    }
    return c;
  }

  const convOf = (m) => (m.kind === 'group' ? groupById(m.conversation_id) : conv(peerOf(m)));
  // Where a conversation sorts: its newest message, or a group's creation.
  const activity = (c) => (c.last ? c.last.id : c.group ? c.id : null);

  // A conversation first seen through a message knows only the username:
  // fetch the profile once for the display name and color.
  async function resolvePeer(c) {
    if (c.named || c.resolving || !state.authed) return;
    c.resolving = true;
    try {
      const d = await request('profile.get', { username: c.username });
      conv(c.username, d.profile);
      renderConversations();
      if (state.view === 'chat' && state.openPeer === c.key) renderChatHeader(c);
    } catch { /* keep the username */ } finally {
      c.resolving = false;
    }
  }
  const me = () => state.session.user;
  // A direct conversation's id: "<lower user id>-<higher user id>".
  const directId = (a, b) => (cmpId(a, b) <= 0 ? `${a}-${b}` : `${b}-${a}`);
  const changesKey = () => `hubbub.changes.${state.session.user.id}`;
  const peerOf = (m) => (lc(m.from) === lc(me().username) ? m.to : m.from);

  // ---------- the connection: the SDK's ----------
  function wsUrl() {
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  }

  function request(type, fields = {}) {
    if (!state.client) return Promise.reject(Object.assign(new Error('not connected'), { code: 'disconnected' }));
    return state.client.request(type, fields);
  }

  function setStatus(s) {
    const n = $('conn-status');
    n.dataset.state = s;
    n.textContent = s === 'online' ? 'online' : s === 'connecting' ? 'connecting…' : 'offline';
    $('offline-banner').hidden = s === 'online';
  }

  // One client per session; its events drive the page.
  function newClient(session) {
    const client = new HubbubClient({
      url: wsUrl(),
      session,
      sessionStore: { load: loadSession, save: (s) => { if (s) saveSession(s); } },
      syncCursor: session ? localStorage.getItem(`hubbub.cursor.${session.user.id}`) : null,
      initialCursor: firstSyncCursor,
    });
    client.on('state', (s) => {
      if (state.client !== client) return;
      setStatus(s === 'online' ? 'online' : s === 'connecting' || s === 'authenticating' ? 'connecting' : 'offline');
    });
    client.on('session', (s) => { if (state.client === client && s) state.session = s; });
    client.on('authenticated', () => { if (state.client === client) onAuthenticated(); });
    client.on('online', () => { if (state.client === client) afterSync(); });
    client.on('disconnected', () => { if (state.client === client) state.authed = false; });
    client.on('cursor', (c) => { if (state.client === client) localStorage.setItem(cursorKey(), c); });
    client.on('message', (m, info) => { if (state.client === client) onMessage(m, info.source); });
    client.on('event', (name, data) => { if (state.client === client && name !== 'message.new') onEvent(name, data); });
    client.on('outbox', () => { if (state.client === client) renderOutbox(); });
    client.on('send_failed', (o, e) => { if (state.client === client) onSendFailed(o, e); });
    client.on('server_error', (e) => { if (state.client === client) showError(e); });
    client.on('session_ended', ({ code, reason }) => {
      if (state.client !== client) return;
      endSession(code === 4500 && reason === 'account deleted' ? 'This account was deleted.'
        : 'Your session ended (logged out elsewhere, expired or revoked). Please log in again.');
    });
    return client;
  }

  // First run in this browser: everything up to the newest conversation's last
  // message is reachable through history, so sync only what follows.
  async function firstSyncCursor() {
    await state.listLoaded;
    let since = '0';
    for (const c of state.convs.values()) if (c.last && cmpId(c.last.id, since) > 0) since = c.last.id;
    return since;
  }

  // Messages from the SDK (each once): applied after this authentication's list.
  function onMessage(m, source) {
    state.msgChain = state.msgChain.then(() => state.listLoaded).then(() => {
      addMessage(m, source !== 'sent');
      renderConversations();
    }).catch(() => {});
  }

  // ---------- push (Web Push, where the browser offers it) ----------
  function pushSupported() {
    return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  }

  function b64urlToBytes(s) {
    const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4));
    return Uint8Array.from(b, (c) => c.charCodeAt(0));
  }

  // Subscribes this browser (asking permission when `ask`) and registers
  // the subscription as this session's device (device.register).
  async function registerPush(ask) {
    if (!pushSupported()) return;
    if (Notification.permission !== 'granted') {
      if (!ask || (await Notification.requestPermission()) !== 'granted') return;
    }
    const reg = await navigator.serviceWorker.register('/sw.js');
    const cfg = await request('push.config');
    let sub = await reg.pushManager.getSubscription();
    if (!sub) {
      sub = await reg.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: b64urlToBytes(cfg.vapid_public_key),
      });
    }
    await request('device.register', Object.assign({ platform: 'webpush' }, sub.toJSON()));
    $('btn-push').hidden = true;
  }

  function offerPush() {
    if (!pushSupported() || Notification.permission === 'denied') return;
    if (Notification.permission === 'granted') {
      registerPush(false).catch(() => { /* push is optional */ });
    } else {
      $('btn-push').hidden = false;
    }
  }

  // The socket is authenticated: the SDK syncs messages meanwhile (after the list).
  function onAuthenticated() {
    state.authed = true;
    offerPush();
    state.listLoaded = loadConversations().catch(() => {});
    Promise.all([loadFollowing(), loadBlocks()]).catch(() => {});
  }

  // Caught up (resumed, or synced): the rest of the state, and the open view.
  async function afterSync() {
    await state.listLoaded;
    await state.msgChain;
    await syncChanges().catch(() => {});
    if (state.view === 'chat' && state.openPeer) {
      const c = state.convs.get(state.openPeer) || conv(state.openPeer);
      if (!c.historyLoaded) await loadHistory(c);
    } else if (state.view === 'profile' && state.profile) {
      openProfile(state.profile.username, true);
    } else if (state.view === 'home') {
      loadHome(false);
    }
  }

  // ---------- messages ----------
  // Adds a message from any source (send reply, event, sync, history). Returns true if new.
  function addMessage(m, live) {
    const c = convOf(m);
    if (!c.id) c.id = m.conversation_id;
    if (c.msgs.has(m.id)) { mergeMessage(c, m); return false; }
    c.msgs.set(m.id, m);
    const newest = !c.last || cmpId(m.id, c.last.id) > 0;
    if (newest) c.last = m;
    if (live && newest && lc(m.from) !== lc(me().username) && !(state.view === 'chat' && state.openPeer === c.key && document.hasFocus())) {
      c.unread++;
    }
    if (lc(m.from) !== lc(me().username) && c.typers) delete c.typers[lc(m.from)]; // their message ends their typing
    if (state.view === 'chat' && state.openPeer === c.key) {
      renderMessages(newest);
      if (live) markRead(c);
    }
    return true;
  }

  const historyOf = (c) => (c.group ? { conversation: c.id } : { with: c.username });

  async function loadHistory(c) {
    const d = await request('message.history', { ...historyOf(c), limit: HISTORY_PAGE });
    for (const m of d.messages) addMessage(m, false);
    c.historyLoaded = true;
    c.nextBefore = d.next_before;
    if (state.openPeer === c.key) {
      renderMessages(true);
      updateHistoryStatus(c);
      fillScreen(c);
    }
  }

  // No scroll bar yet but older messages exist: load them without waiting for a scroll.
  function fillScreen(c) {
    const sc = $('messages-scroll');
    const before = c.nextBefore;
    if (state.openPeer === c.key && before && sc.scrollHeight <= sc.clientHeight) {
      loadOlder(c).then(() => { if (c.nextBefore !== before) fillScreen(c); });
    }
  }

  async function loadOlder(c) {
    if (!c.historyLoaded || !c.nextBefore || c.loadingOlder) return;
    c.loadingOlder = true;
    updateHistoryStatus(c);
    const scroller = $('messages-scroll');
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    try {
      const d = await request('message.history', { ...historyOf(c), before: c.nextBefore, limit: HISTORY_PAGE });
      c.nextBefore = d.next_before;
      for (const m of d.messages) addMessage(m, false);
      if (state.openPeer === c.key) {
        renderMessages(false);
        scroller.scrollTop = scroller.scrollHeight - fromBottom; // keep the reader's place
      }
    } catch (e) {
      showError(e);
    } finally {
      c.loadingOlder = false;
      if (state.openPeer === c.key) updateHistoryStatus(c);
    }
  }

  function updateHistoryStatus(c) {
    $('history-status').textContent = !c.historyLoaded ? 'Loading…'
      : c.loadingOlder ? 'Loading older messages…'
      : c.nextBefore ? 'Scroll up for older messages' : (c.msgs.size ? 'Start of the conversation' : 'No messages yet. Say hi!');
  }

  // `c` is the open conversation: a user (`to`) or a group (`conversation`).
  // The SDK's outbox sends it with a nonce, now or after the next reconnect.
  function sendMessage(c, text) {
    const fields = { text };
    if (state.replyTo && state.replyTo.key === c.key) fields.reply_to = state.replyTo.id;
    setReplyTo(null);
    if (c.group) fields.conversation = c.id; else fields.to = c.username;
    state.client.sendMessage(fields).catch(() => { /* shown by send_failed */ });
  }

  const outboxKey = (o) => (o.conversation ? 'g:' + o.conversation : lc(o.to));
  function renderOutbox() {
    if (state.view === 'chat' && state.openPeer) renderMessages(true);
  }
  function onSendFailed(o, e) {
    if (e.code === 'closed') return;
    state.failed.push({ nonce: o.nonce, key: outboxKey(o), text: o.text, error: e });
    showError(e);
    renderOutbox();
  }

  // ---------- conversations ----------
  async function loadConversations() {
    const d = await request('conversation.list', { limit: 50 });
    for (const x of d.conversations) {
      const c = x.kind === 'group' ? groupConv(x.group) : conv(x.with.username, x.with);
      if (!x.last_message) continue;
      addMessage(x.last_message, false);
      if (!c.last || cmpId(x.last_message.id, c.last.id) > 0) c.last = x.last_message;
      // The server's count is the truth (my other devices may have read).
      c.id = x.conversation_id;
      c.unread = x.unread || 0;
      c.unreadCapped = !!x.unread_capped;
      c.readUpTo = x.read_up_to || null;
      c.muted = !!x.muted;
    }
    renderConversations();
  }

  // ---------- chat state: read pointers, receipts, typing ----------
  // change.sync from the stored cursor: my pointers moved elsewhere and the
  // receipts I got while away (skip kinds this client does not know).
  async function syncChanges() {
    let after = localStorage.getItem(changesKey());
    for (let guard = 0; guard < 50; guard++) {
      const d = await request('change.sync', after ? { after, limit: 200 } : { limit: 200 });
      for (const ch of d.changes) {
        const c = convById(ch.conversation_id);
        if (!c) continue;
        if (ch.kind === 'receipt') c.peerRead = maxId(c.peerRead, ch.message_id);
        else if (ch.kind === 'read') c.readUpTo = maxId(c.readUpTo, ch.message_id);
        else if (ch.kind === 'reaction') setReactions(c, ch.message_id, ch.reactions);
        else if ((ch.kind === 'edit' || ch.kind === 'delete') && ch.message) mergeMessage(c, ch.message);
      }
      after = d.next;
      localStorage.setItem(changesKey(), after);
      if (!d.more) break;
    }
    renderConversations();
    if (state.view === 'chat' && state.openPeer) renderMessages(false);
  }

  function convById(id) {
    for (const c of state.convs.values()) if (c.id === id) return c;
    return null;
  }
  const maxId = (a, b) => (!a || (b && cmpId(b, a) > 0) ? b : a);

  // The open chat is read up to its newest message from the peer.
  async function markRead(c) {
    if (!state.authed || !c.id || c.reading || document.visibilityState !== 'visible') return;
    let latest = null;
    for (const m of c.msgs.values()) if (lc(m.from) !== lc(me().username)) latest = maxId(latest, m.id);
    if (!latest || (c.readUpTo && cmpId(latest, c.readUpTo) <= 0)) {
      if (c.unread) { c.unread = 0; renderConversations(); }
      return;
    }
    c.reading = true;
    try {
      const d = await request('conversation.read', { conversation: c.id, message_id: latest });
      c.readUpTo = maxId(c.readUpTo, d.read_up_to);
      c.unread = 0;
      c.unreadCapped = false;
      renderConversations();
    } catch { /* retried on the next message or focus */ } finally {
      c.reading = false;
    }
  }

  // Another device of mine read: the server's list has the new counts.
  let listTimer = null;
  function refreshListSoon() {
    clearTimeout(listTimer);
    listTimer = setTimeout(() => { if (state.authed) loadConversations().catch(() => {}); }, 200);
  }

  // Typing: at most one typing.start per 3 s while the input changes; a
  // stop when the message is sent. The server rate limits too.
  let typingSentAt = 0;
  let typingIn = null;
  function onComposerInput() {
    const c = state.convs.get(state.openPeer);
    if (!c || !c.id || !state.authed || !$('composer-input').value.trim()) return;
    if (Date.now() - typingSentAt < 3000 && typingIn === c.id) return;
    typingSentAt = Date.now();
    typingIn = c.id;
    request('typing.start', { conversation: c.id }).catch(() => {});
  }
  function stopTyping() {
    if (!typingIn || !state.authed) return;
    request('typing.stop', { conversation: typingIn }).catch(() => {});
    typingIn = null;
    typingSentAt = 0;
  }

  function renderTyping() {
    const c = state.convs.get(state.openPeer);
    const names = c ? typingNames(c) : [];
    const on = state.view === 'chat' && names.length > 0;
    $('typing').hidden = !on;
    // A group names the members typing (`from`); a direct chat its peer.
    const who = c && c.group ? names.join(', ') : (c ? c.display_name : '');
    $('typing').textContent = on ? `${who} ${c.group && names.length > 1 ? 'are' : 'is'} typing…` : '';
    for (const li of document.querySelectorAll('#conversations li')) {
      const x = state.convs.get(lc(li.dataset.username));
      li.classList.toggle('typing', !!x && typingNames(x).length > 0);
    }
  }

  // Who is typing in `c` now (usernames, from the `from` of typing events).
  function typingNames(c) {
    const now = Date.now();
    return Object.values(c.typers || {}).filter((t) => t.until > now).map((t) => t.name);
  }
  function unreadText(c) { return c.unreadCapped ? `${c.unread}+` : String(c.unread); }

  function renderConversations() {
    const list = $('conversations');
    const items = [...state.convs.values()].filter((c) => activity(c) || c.key === state.openPeer)
      .sort((a, b) => (activity(a) && activity(b) ? cmpId(activity(b), activity(a)) : activity(a) ? -1 : 1));
    list.replaceChildren();
    for (const c of items) {
      const li = el('li');
      if (c.group) li.dataset.group = c.id; else li.dataset.username = c.username;
      if (state.view === 'chat' && c.key === state.openPeer) li.className = 'active';
      const b = el('button');
      b.type = 'button';
      const av = el('div', 'avatar');
      paintAvatar(av, c.group ? c.key : c.username, c.display_name, c.color);
      if (!c.group) resolvePeer(c);
      const info = el('div', 'info');
      info.appendChild(el('div', 'name', c.display_name));
      const mine = c.last && lc(c.last.from) === lc(me().username);
      const prefix = mine ? 'You: ' : c.last && c.group ? `${senderName(c.last)}: ` : '';
      info.appendChild(el('div', 'preview', c.last ? prefix + (c.last.deleted ? 'message deleted' : c.last.text) : 'No messages yet'));
      b.append(av, info);
      if (c.muted) { const m = el('span', 'muted-mark', '\u{1F515}'); m.title = 'muted'; b.appendChild(m); }
      if (c.unread) b.appendChild(el('span', 'badge', unreadText(c)));
      b.onclick = () => (c.group ? openGroup(c.id) : openChat(c.username));
      li.appendChild(b);
      list.appendChild(li);
    }
    $('conversations-empty').hidden = items.length > 0;
    let total = 0;
    let capped = false;
    for (const c of state.convs.values()) { total += c.unread; capped = capped || c.unreadCapped; }
    const t = $('unread-total');
    t.hidden = total === 0;
    t.textContent = total > 999 || capped ? `${Math.min(total, 999)}+ unread` : `${total} unread`;
    renderTyping();
  }

  // ---------- views ----------
  function show(view) {
    state.view = view;
    $('view-empty').hidden = view !== 'empty';
    $('view-profile').hidden = view !== 'profile';
    $('view-chat').hidden = view !== 'chat';
    $('view-home').hidden = view !== 'home';
    $('btn-home').classList.toggle('active', view === 'home');
    renderConversations();
  }

  function renderChatHeader(c) {
    $('chat-title').textContent = c.display_name;
    renderMuteButton(c);
    $('btn-chat-profile').hidden = !!c.group;
    $('btn-group-members').hidden = !c.group;
    if (!c.group) $('group-panel').hidden = true;
    if (c.group) {
      const n = c.info ? c.info.member_count : '?';
      $('chat-sub').textContent = `${n} member${n === 1 ? '' : 's'}` + (c.info && c.info.topic ? ` · ${c.info.topic}` : '');
      paintAvatar($('chat-avatar'), c.key, c.display_name, null);
    } else {
      $('chat-sub').textContent = '@' + c.username;
      paintAvatar($('chat-avatar'), c.username, c.display_name, c.color);
    }
  }

  const senderName = (m) => (m.from_deleted ? 'deleted account' : m.from);

  async function openGroup(id) {
    const c = groupById(id);
    state.openPeer = c.key;
    c.unread = 0;
    $('group-panel').hidden = true;
    show('chat');
    renderChatHeader(c);
    renderMessages(true);
    updateHistoryStatus(c);
    $('composer-input').focus();
    if (!c.historyLoaded && state.authed) {
      try { await loadHistory(c); } catch (e) { showError(e); }
    }
    if (!c.role && state.authed) loadRole(c);
  }

  // ---------- group members panel ----------
  async function loadMembers(c) {
    try {
      const [g, page] = await Promise.all([
        request('group.get', { conversation: c.id }),
        request('group.members', { conversation: c.id, limit: 200 }),
      ]);
      groupConv(g.group).role = g.role;
      c.members = page.members;
      if (state.openPeer === c.key) { renderChatHeader(c); renderMembers(c); }
    } catch (e) { showError(e); }
  }

  function renderMembers(c) {
    const list = $('group-members');
    list.replaceChildren();
    const manages = c.role === 'owner' || c.role === 'admin';
    for (const m of c.members || []) {
      const li = el('li');
      li.dataset.username = m.user.username;
      const av = el('div', 'avatar small');
      paintAvatar(av, m.user.username, m.user.display_name, null);
      li.append(av, el('span', 'name', m.user.display_name), el('span', 'role', `@${m.user.username} · ${m.role}`));
      const removable = m.user.id !== me().id && manages && m.role !== 'owner' && (m.role === 'member' || c.role === 'owner');
      if (removable) {
        const rm = el('button', '', 'Remove');
        rm.type = 'button';
        rm.onclick = () => request('group.remove', { conversation: c.id, username: m.user.username })
          .then(() => loadMembers(c)).catch(showError);
        li.appendChild(rm);
      }
      list.appendChild(li);
    }
    $('group-add-form').hidden = !manages;
  }

  function toggleMembers() {
    const c = state.convs.get(state.openPeer);
    if (!c || !c.group) return;
    const panel = $('group-panel');
    panel.hidden = !panel.hidden;
    if (!panel.hidden) loadMembers(c);
  }

  async function addMember(ev) {
    ev.preventDefault();
    const c = state.convs.get(state.openPeer);
    const name = $('group-add-input').value.trim();
    if (!c || !c.group || !name) return;
    try {
      const d = await request('group.add', { conversation: c.id, members: [name] });
      if (!d.members.length) toast(`@${name} was not added (unknown, or already a member)`);
      $('group-add-input').value = '';
      groupConv(d.group);
      loadMembers(c);
    } catch (e) { showError(e); }
  }

  async function leaveGroup() {
    const c = state.convs.get(state.openPeer);
    if (!c || !c.group) return;
    try {
      await request('group.leave', { conversation: c.id });
      dropGroup(c.id, 'You left the group');
    } catch (e) { showError(e); }
  }

  // Forgets a group (left, removed, ended) and closes it if it is open.
  function dropGroup(id, message) {
    const key = 'g:' + id;
    if (!state.convs.has(key)) return;
    state.convs.delete(key);
    state.failed = state.failed.filter((o) => o.key !== key);
    if (state.openPeer === key) { state.openPeer = null; $('group-panel').hidden = true; show('empty'); }
    renderConversations();
    if (message) toast(message);
  }

  async function createGroup(ev) {
    ev.preventDefault();
    const title = $('new-group-title').value.trim();
    const members = $('new-group-members').value.split(/[\s,]+/).map((x) => x.replace(/^@/, '')).filter(Boolean);
    if (!title) return;
    $('new-group-submit').disabled = true;
    try {
      const d = await request('group.create', { title, members });
      const c = groupConv(d.group);
      c.role = d.role;
      $('new-group-title').value = '';
      $('new-group-members').value = '';
      $('new-group-form').hidden = true;
      openGroup(c.id);
    } catch (e) { showError(e); } finally { $('new-group-submit').disabled = false; }
  }

  function onGroupEvent(name, data) {
    const mine = (u) => u && u.id === me().id;
    if (name === 'group.member_removed') {
      if (mine(data.user) || data.ended) {
        const by = mine(data.by) ? 'You left' : `@${data.by.username} removed you from`;
        const c = state.convs.get('g:' + data.conversation_id);
        dropGroup(data.conversation_id, c ? `${by} ${c.display_name}` : '');
        return;
      }
      if (data.group) groupConv(data.group);
    } else {
      const c = groupConv(data.group);
      if (name === 'group.member_added' && data.members.some(mine) && !mine(data.by)) {
        toast(`@${data.by.username} added you to ${c.display_name}`);
      }
      if (data.member && mine(data.member.user)) c.role = data.member.role;
    }
    const c = state.convs.get('g:' + (data.conversation_id || (data.group && data.group.conversation_id)));
    if (c && state.openPeer === c.key) {
      renderChatHeader(c);
      if (!$('group-panel').hidden) loadMembers(c);
    }
    renderConversations();
  }

  async function openChat(username, user) {
    const c = conv(username, user);
    state.openPeer = c.key;
    c.unread = 0;
    show('chat');
    renderChatHeader(c);
    resolvePeer(c);
    renderMessages(true);
    updateHistoryStatus(c);
    $('composer-input').focus();
    if (!c.historyLoaded && state.authed) {
      try { await loadHistory(c); } catch (e) { showError(e); }
    }
    markRead(c);
  }

  function renderMessages(stickToBottom) {
    const c = state.convs.get(state.openPeer);
    if (!c) return;
    const scroller = $('messages-scroll');
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
    const list = $('messages');
    list.replaceChildren();
    const msgs = [...c.msgs.values()].sort((a, b) => cmpId(a.id, b.id));
    let lastDay = null;
    const mine = lc(me().username);
    // "Seen" goes under my newest message the peer has read (receipts).
    let seen = null;
    if (c.peerRead) for (const m of msgs) if (lc(m.from) === mine && cmpId(m.id, c.peerRead) <= 0) seen = m.id;
    for (const m of msgs) {
      const day = fmtDay(m.sent_at);
      if (day !== lastDay) { list.appendChild(el('li', 'day', day)); lastDay = day; }
      const li = el('li', 'msg' + (lc(m.from) === mine ? ' mine' : ''));
      li.dataset.id = m.id;
      if (c.group && lc(m.from) !== mine) li.appendChild(el('div', 'sender', senderName(m)));
      li.appendChild(messageBody(c, m));
      li.appendChild(renderReactions(c, m));
      li.appendChild(el('div', 'time', fmtTime(m.sent_at) + (m.edited_at && !m.deleted ? ' · edited' : '')));
      li.appendChild(messageActions(c, m));
      if (m.id === seen) li.appendChild(el('div', 'seen', 'Seen'));
      list.appendChild(li);
    }
    const unsent = (state.client ? state.client.outbox : []).map((o) => ({ ...o, key: outboxKey(o), state: 'pending' }));
    for (const o of unsent.concat(state.failed)) {
      if (o.key !== c.key) continue;
      const li = el('li', 'msg mine ' + (o.error && !o.state ? 'failed' : o.state));
      li.dataset.nonce = o.nonce;
      li.appendChild(el('div', 'bubble text', o.text));
      li.appendChild(el('div', 'time', !o.state ? `not sent: ${errorText(o.error)}` : 'sending…'));
      list.appendChild(li);
    }
    if (stickToBottom || atBottom) scroller.scrollTop = scroller.scrollHeight;
    updateHistoryStatus(c);
  }

  // ---------- reactions ----------
  // A message's `reactions` ([{emoji, count, me}]) come with views, replies
  // and change.sync; the message.reactions event carries counts only, so
  // `me` is kept here and set from the event when `by` is me (protocol.md).
  const PICKER = ['\u{1F44D}', '\u2764\uFE0F', '\u{1F602}', '\u{1F62E}', '\u{1F622}', '\u{1F389}'];

  function setReactions(c, messageId, reactions) {
    const m = c.msgs.get(messageId);
    if (!m) return;
    m.reactions = reactions || [];
    if (state.view === 'chat' && state.openPeer === c.key) renderMessages(false);
  }

  function onReactionsEvent(d) {
    const c = convById(d.conversation_id);
    const m = c && c.msgs.get(d.message_id);
    if (!m) return;
    const mine = new Map((m.reactions || []).map((r) => [r.emoji, r.me]));
    const byMe = lc(d.by) === lc(me().username);
    setReactions(c, d.message_id, d.reactions.map((r) => ({
      emoji: r.emoji,
      count: r.count,
      me: byMe && r.emoji === d.emoji ? d.reacted : !!mine.get(r.emoji),
    })));
  }

  async function toggleReaction(c, m, emoji) {
    const had = (m.reactions || []).some((r) => r.emoji === emoji && r.me);
    try {
      const d = await request(had ? 'message.unreact' : 'message.react',
        { conversation: m.conversation_id, message_id: m.id, emoji });
      setReactions(c, m.id, d.reactions);
    } catch (err) { showError(err); }
  }

  function renderReactions(c, m) {
    const row = el('div', 'reactions');
    for (const r of m.reactions || []) {
      const chip = el('button', 'chip' + (r.me ? ' mine' : ''), `${r.emoji} ${r.count}`);
      chip.type = 'button';
      chip.dataset.emoji = r.emoji;
      chip.title = r.me ? 'Take your reaction back' : 'React with this too';
      chip.addEventListener('click', () => toggleReaction(c, m, r.emoji));
      row.appendChild(chip);
    }
    const add = el('button', 'chip add', '+');
    add.type = 'button';
    add.title = 'React';
    const picker = el('span', 'picker');
    picker.hidden = true;
    for (const e of PICKER) {
      const b = el('button', 'pick', e);
      b.type = 'button';
      b.dataset.emoji = e;
      b.addEventListener('click', () => { picker.hidden = true; toggleReaction(c, m, e); });
      picker.appendChild(b);
    }
    add.addEventListener('click', () => { picker.hidden = !picker.hidden; });
    row.append(add, picker);
    return row;
  }

  async function openProfile(username, quiet) {
    try {
      const d = await request('profile.get', { username });
      state.profile = d.profile;
      state.openPeer = null;
      renderProfile();
      show('profile');
    } catch (e) {
      if (!quiet) showError(e);
    }
  }

  function renderProfile() {
    const p = state.profile;
    const own = p.id === me().id;
    paintAvatar($('profile-avatar'), p.username, p.display_name, p.color);
    $('profile-display').textContent = p.display_name;
    $('profile-username').textContent = '@' + p.username;
    $('profile-bio').textContent = p.bio;
    const link = $('profile-link');
    link.replaceChildren();
    if (p.avatar_url && /^https?:\/\//i.test(p.avatar_url)) {
      const a = el('a', null, p.avatar_url); // shown as a link, never loaded
      a.href = p.avatar_url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      link.append('Avatar: ', a);
    }
    $('profile-followers').textContent = String(p.followers);
    $('profile-followers-label').textContent = p.followers === 1 ? 'follower' : 'followers';
    $('profile-following').textContent = String(p.following);
    $('profile-joined').textContent = 'joined ' + new Date(p.created_at).toLocaleDateString();
    const follows = state.following.has(lc(p.username));
    const fb = $('btn-follow');
    fb.hidden = own;
    fb.textContent = follows ? 'Unfollow' : 'Follow';
    fb.dataset.following = String(follows);
    fb.className = follows ? '' : 'primary';
    $('btn-message').hidden = false;
    renderSafetyButtons(p, own);
    $('profile-edit').hidden = !own;
    if (own) {
      $('edit-display').value = p.display_name;
      $('edit-bio').value = p.bio;
      $('edit-color').value = p.color || '';
      $('edit-color-pick').value = p.color || '#5b5bf0';
      $('edit-avatar').value = p.avatar_url || '';
      $('edit-error').textContent = '';
    }
  }

  async function loadFollowing() {
    const set = new Set();
    let after = null;
    for (let guard = 0; guard < 20; guard++) {
      const d = await request('follow.following', { username: me().username, limit: 100, ...(after ? { after } : {}) });
      for (const u of d.users) set.add(lc(u.username));
      after = d.next_after;
      if (!after) break;
    }
    state.following = set;
  }

  async function toggleFollow() {
    const p = state.profile;
    const follows = state.following.has(lc(p.username));
    const btn = $('btn-follow');
    btn.disabled = true;
    try {
      await request(follows ? 'follow.remove' : 'follow.add', { username: p.username });
      if (follows) state.following.delete(lc(p.username)); else state.following.add(lc(p.username));
      const d = await request('profile.get', { username: p.username });
      if (state.profile && state.profile.id === p.id) { state.profile = d.profile; renderProfile(); }
      toast(follows ? `You unfollowed @${p.username}` : `You now follow @${p.username}`);
    } catch (e) {
      showError(e);
    } finally {
      btn.disabled = false;
    }
  }

  async function saveProfile(ev) {
    ev.preventDefault();
    $('edit-error').textContent = '';
    const fields = {
      display_name: $('edit-display').value,
      bio: $('edit-bio').value,
      color: $('edit-color').value.trim(),
      avatar_url: $('edit-avatar').value.trim(),
    };
    try {
      const d = await request('profile.update', fields);
      state.profile = d.profile;
      applyMyProfile(d.profile);
      renderProfile();
      toast('Profile saved');
    } catch (e) {
      $('edit-error').textContent = errorText(e);
    }
  }

  function applyMyProfile(p) {
    state.session.user = { id: p.id, username: p.username, display_name: p.display_name };
    saveSession(state.session);
    renderMe(p.color);
  }

  function renderMe(color) {
    const u = me();
    $('me-name').textContent = u.display_name;
    $('me-username').textContent = '@' + u.username;
    paintAvatar($('me-avatar'), u.username, u.display_name, color);
  }

  // ---------- home timeline: posts, likes, reposts ----------
  function openHome() {
    state.openPeer = null;
    show('home');
    loadHome(false);
  }

  // First page (merged into what is shown), or the next older page.
  async function loadHome(older) {
    const h = state.home;
    if (h.loading || (older && !h.nextBefore)) return;
    h.loading = true;
    try {
      const d = await request('timeline.home', { limit: 20, ...(older ? { before: h.nextBefore } : {}) });
      for (const it of d.items) h.items.set(it.id, it);
      if (older || !h.loaded) h.nextBefore = d.next_before;
      h.loaded = true;
      renderTimeline();
    } catch (e) {
      showError(e);
    } finally {
      h.loading = false;
    }
  }

  function renderTimeline() {
    const list = $('timeline');
    list.replaceChildren();
    const items = [...state.home.items.values()].sort((a, b) => cmpId(b.id, a.id));
    for (const it of items) list.appendChild(renderItem(it));
    $('timeline-empty').hidden = items.length > 0 || !state.home.loaded;
    $('timeline-more').hidden = !state.home.nextBefore;
  }

  function renderItem(it) {
    const p = it.post;
    const li = el('li', 'post');
    li.dataset.itemId = it.id;
    li.dataset.postId = p.id;
    const av = el('div', 'avatar');
    paintAvatar(av, p.author.username, p.author.display_name);
    const body = el('div', 'body');
    if (it.kind === 'repost' && it.reposted_by) {
      body.appendChild(el('div', 'repost-line', `⟳ ${it.reposted_by.display_name} reposted`));
    }
    const head = el('div', 'head');
    const author = el('button', 'author', p.author.display_name);
    author.type = 'button';
    author.onclick = () => openProfile(p.author.username);
    head.append(author, el('span', 'muted', `@${p.author.username} · ${fmtDay(p.created_at)} ${fmtTime(p.created_at)}`));
    body.append(head, el('div', 'text', p.text));
    const actions = el('div', 'actions');
    const like = el('button', 'like', `♥ ${p.likes}`);
    like.type = 'button';
    like.setAttribute('aria-pressed', String(p.liked_by_me));
    like.title = p.liked_by_me ? 'Unlike' : 'Like';
    like.onclick = () => togglePost(p, p.liked_by_me ? 'post.unlike' : 'post.like');
    const rp = el('button', 'repost', `⟳ ${p.reposts}`);
    rp.type = 'button';
    rp.setAttribute('aria-pressed', String(p.reposted_by_me));
    rp.title = p.reposted_by_me ? 'Undo repost' : 'Repost';
    rp.onclick = () => togglePost(p, p.reposted_by_me ? 'post.unrepost' : 'post.repost');
    actions.append(like, rp);
    body.appendChild(actions);
    li.append(av, body);
    return li;
  }

  // Applies a fresh copy of a post (counts and my marks) to every item showing it.
  function updatePost(post) {
    for (const it of state.home.items.values()) if (it.post.id === post.id) it.post = post;
    if (state.view === 'home') renderTimeline();
  }

  async function togglePost(p, kind) {
    try {
      const d = await request(kind, { post_id: p.id });
      updatePost(d.post);
    } catch (e) {
      showError(e);
    }
  }

  async function submitPost(ev) {
    ev.preventDefault();
    const input = $('post-input');
    const text = input.value;
    if (!text.trim()) return;
    $('post-submit').disabled = true;
    try {
      const d = await request('post.create', { text });
      const it = { id: d.post.id, kind: 'post', post: d.post, at: d.post.created_at };
      state.home.items.set(it.id, it);
      input.value = '';
      updatePostCount();
      renderTimeline();
    } catch (e) {
      showError(e);
    } finally {
      $('post-submit').disabled = false;
    }
  }

  function updatePostCount() {
    $('post-count').textContent = `${[...$('post-input').value].length} / 280`;
  }

  // ---------- search ----------
  let searchSeq = 0;
  let searchTimer = null;
  function onSearchInput() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 200);
  }
  async function runSearch() {
    const q = $('search-input').value.trim();
    const box = $('search-results');
    const seq = ++searchSeq;
    if (!q) { box.replaceChildren(); return; }
    try {
      const d = await request('user.search', { query: q, limit: 10 });
      if (seq !== searchSeq) return;
      box.replaceChildren();
      if (!d.users.length) box.appendChild(el('li', 'search-results-empty', 'Nobody found'));
      for (const u of d.users) {
        const li = el('li');
        li.dataset.username = u.username;
        const b = el('button');
        b.type = 'button';
        const av = el('div', 'avatar');
        paintAvatar(av, u.username, u.display_name);
        const info = el('div', 'info');
        info.appendChild(el('div', 'name', u.display_name));
        info.appendChild(el('div', 'preview', '@' + u.username));
        b.append(av, info);
        b.onclick = () => { box.replaceChildren(); $('search-input').value = ''; openProfile(u.username); };
        li.appendChild(b);
        box.appendChild(li);
      }
    } catch (e) {
      if (seq === searchSeq) showError(e);
    }
  }

  // ---------- message lifecycle: edits, deletes, replies ----------
  // Merges a later view of a message (event, sync, history, change.sync):
  // a tombstone is final; otherwise the view with the later edited_at wins.
  // Reply quotes of it follow.
  function mergeMessage(c, m) {
    const old = c.msgs.get(m.id);
    if (old) {
      if (old.deleted) return;
      if (!m.deleted && (m.edited_at || '') < (old.edited_at || '')) return;
    }
    c.msgs.set(m.id, m);
    if (c.last && c.last.id === m.id) c.last = m;
    for (const x of c.msgs.values()) {
      if (!x.reply_to || x.reply_to.message_id !== m.id) continue;
      x.reply_to = { ...x.reply_to, preview: m.deleted ? '' : [...m.text].slice(0, 80).join(''), deleted: !!m.deleted };
    }
    if (state.view === 'chat' && state.openPeer === c.key) renderMessages(false);
    renderConversations();
  }

  // The bubble: a quoted reply target, then the text or a tombstone.
  function messageBody(c, m) {
    const box = el('div', 'bubble' + (m.deleted ? ' tombstone' : ''));
    if (m.reply_to) {
      const q = el('div', 'quote');
      const r = m.reply_to;
      q.append(el('span', 'quote-from', r.from ? '@' + r.from : 'deleted account'),
        el('span', 'quote-text', r.deleted ? 'message deleted' : r.preview));
      box.appendChild(q);
    }
    // `.text` is the message's own text only (what tests and readers select).
    box.appendChild(el('div', 'text body', m.deleted ? 'message deleted' : m.text));
    return box;
  }

  // Reply on every live message; edit and delete on mine; delete on others' in
  // a group I manage.
  function messageActions(c, m) {
    const bar = el('div', 'msg-actions');
    if (m.deleted) return bar;
    const mine = lc(m.from) === lc(me().username);
    const act = (label, fn) => { const b = el('button', 'link', label); b.type = 'button'; b.onclick = fn; bar.appendChild(b); };
    act('Reply', () => setReplyTo({ key: c.key, id: m.id, from: m.from, preview: [...m.text].slice(0, 80).join('') }));
    if (mine) act('Edit', () => startEdit(c, m));
    if (mine || (c.group && (c.role === 'owner' || c.role === 'admin'))) act('Delete', () => deleteMessage(c, m));
    return bar;
  }

  // My role in a group (owners and admins may delete others' messages).
  async function loadRole(c) {
    try {
      const g = await request('group.get', { conversation: c.id });
      c.role = g.role;
      if (state.openPeer === c.key) renderMessages(false);
    } catch (e) { /* the members panel reports errors */ }
  }

  function setReplyTo(r) {
    state.replyTo = r;
    const bar = $('reply-bar');
    if (!bar) return;
    bar.hidden = !r;
    $('reply-bar-text').textContent = r ? `Replying to @${r.from}: ${r.preview}` : '';
    if (r) $('composer-input').focus();
  }

  function startEdit(c, m) {
    state.editing = { key: c.key, conversation: m.conversation_id, id: m.id };
    setReplyTo(null);
    const input = $('composer-input');
    input.value = m.text;
    $('composer-send').textContent = 'Save';
    input.focus();
  }

  async function saveEdit(text) {
    const e = state.editing;
    state.editing = null;
    $('composer-send').textContent = 'Send';
    try {
      const d = await request('message.edit', { conversation: e.conversation, message_id: e.id, text });
      const c = convById(e.conversation);
      if (c) mergeMessage(c, d.message);
    } catch (err) { showError(err); }
  }

  async function deleteMessage(c, m) {
    if (!window.confirm('Delete this message for everyone?')) return;
    try {
      const d = await request('message.delete', { conversation: m.conversation_id, message_id: m.id });
      mergeMessage(c, d.message);
    } catch (err) { showError(err); }
  }

  // ---------- events ----------
  function onEvent(name, data) {
    if (name === 'message.new') {
      addMessage(data.message, true);
      renderConversations();
    } else if (name === 'message.updated' || name === 'message.deleted') {
      const c = convById(data.message.conversation_id);
      if (c) mergeMessage(c, data.message);
    } else if (name === 'conversation.read') {
      const c = convById(data.conversation_id);
      if (c) c.readUpTo = maxId(c.readUpTo, data.read_up_to);
      refreshListSoon();
    } else if (name === 'message.read') {
      const c = convById(data.conversation_id);
      if (c) {
        c.peerRead = maxId(c.peerRead, data.message_id);
        if (state.view === 'chat' && state.openPeer === c.key) renderMessages(false);
      }
    } else if (name === 'message.reactions') {
      onReactionsEvent(data);
    } else if (name === 'typing.start' || name === 'typing.stop') {
      const c = convById(data.conversation_id);
      if (c) {
        const ms = name === 'typing.start' ? (data.expires_in_ms || 6000) : 0;
        c.typers = c.typers || {};
        if (ms) c.typers[lc(data.from)] = { name: data.from, until: Date.now() + ms };
        else delete c.typers[lc(data.from)];
        renderTyping();
        if (ms) setTimeout(renderTyping, ms + 50);
      }
    } else if (name === 'profile.updated') {
      if (data.profile.id === me().id) {
        applyMyProfile(data.profile);
        if (state.profile && state.profile.id === data.profile.id) { state.profile = data.profile; renderProfile(); }
      }
    } else if (name === 'post.new') {
      state.home.items.set(data.item.id, data.item);
      if (state.view === 'home') renderTimeline();
    } else if (name === 'post.liked' || name === 'post.reposted') {
      const verb = name === 'post.liked' ? 'liked' : 'reposted';
      toast(`@${data.by.username} ${verb} your post`);
      for (const it of state.home.items.values()) {
        if (it.post.id !== data.post_id) continue;
        if (name === 'post.liked') it.post.likes = data.likes; else it.post.reposts = data.reposts;
      }
      if (state.view === 'home') renderTimeline();
    } else if (name.startsWith('group.')) {
      onGroupEvent(name, data);
    } else if (name === 'follow.new') {
      toast(`@${data.follower.username} started following you`);
      if (state.view === 'profile' && state.profile && state.profile.id === me().id) openProfile(me().username, true);
    }
  }

  // ---------- auth screen ----------
  let authMode = 'login';
  function setAuthMode(mode) {
    authMode = mode;
    $('tab-login').classList.toggle('active', mode === 'login');
    $('tab-register').classList.toggle('active', mode === 'register');
    $('auth-display-label').hidden = mode !== 'register';
    $('auth-submit').textContent = mode === 'login' ? 'Log in' : 'Create account';
    $('auth-password').autocomplete = mode === 'login' ? 'current-password' : 'new-password';
    $('auth-error').textContent = '';
  }

  async function submitAuth(ev) {
    ev.preventDefault();
    const username = $('auth-username').value.trim();
    const password = $('auth-password').value;
    const fields = { username, password };
    if (authMode === 'register' && $('auth-display').value.trim()) fields.display_name = $('auth-display').value.trim();
    $('auth-submit').disabled = true;
    $('auth-error').textContent = '';
    try {
      // The SDK's client logs in on its socket; its events fill the state meanwhile.
      resetState();
      const client = newClient(null);
      state.client = client;
      try {
        if (authMode === 'login') await client.login(fields); else await client.register(fields);
      } catch (e) {
        if (state.client === client) state.client = null;
        client.close();
        throw e;
      }
      showApp();
      $('auth-password').value = '';
    } catch (e) {
      let text = errorText(e);
      if (e.code === 'unauthorized' && authMode === 'login') text = 'Wrong username or password.';
      if (e.code === 'rate_limited' && authMode === 'login') text = 'Too many failed logins. Wait a bit and try again.';
      $('auth-error').textContent = text;
    } finally {
      $('auth-submit').disabled = false;
    }
  }

  // A new session starts from empty state, on the home view.
  function resetState() {
    if (state.client) state.client.close();
    state.client = null;
    state.convs = new Map();
    state.failed = [];
    state.authed = false;
    state.listLoaded = Promise.resolve();
    state.msgChain = Promise.resolve();
    state.openPeer = null;
    state.profile = null;
    state.home = { items: new Map(), nextBefore: null, loaded: false, loading: false };
    state.view = 'home';
  }

  function showApp() {
    $('auth').hidden = true;
    $('app').hidden = false;
    renderMe();
    show('home'); // loaded once the socket is authenticated (afterSync)
  }

  // A stored session: the SDK authenticates with its tokens.
  function startSession(s) {
    resetState();
    state.session = s;
    state.client = newClient(s);
    showApp();
    state.client.connect();
  }

  function endSession(message) {
    state.session = null;
    saveSession(null);
    const client = state.client;
    state.client = null;
    state.authed = false;
    if (client) client.close();
    $('toasts').replaceChildren();
    $('app').hidden = true;
    $('auth').hidden = false;
    setAuthMode('login');
    if (message) $('auth-error').textContent = message;
  }

  async function logout() {
    try { await request('auth.logout'); } catch { /* the session ends locally anyway */ }
    endSession('');
  }

  // ---------- wiring ----------
  // ---------- safety: blocks, mutes, reports ----------
  async function loadBlocks() {
    const set = new Set();
    let after = null;
    for (let guard = 0; guard < 20; guard++) {
      const d = await request('user.blocks', { limit: 100, ...(after ? { after } : {}) });
      for (const u of d.users) set.add(lc(u.username));
      after = d.next_after;
      if (!after) break;
    }
    state.blocked = set;
  }

  function renderSafetyButtons(p, own) {
    const blocked = state.blocked.has(lc(p.username));
    const bb = $('btn-block');
    bb.hidden = own;
    bb.textContent = blocked ? 'Unblock' : 'Block';
    bb.dataset.blocked = String(blocked);
    $('btn-report').hidden = own;
    if (own) $('report-form').hidden = true;
  }

  async function toggleBlock() {
    const p = state.profile;
    const blocked = state.blocked.has(lc(p.username));
    const btn = $('btn-block');
    btn.disabled = true;
    try {
      await request(blocked ? 'user.unblock' : 'user.block', { username: p.username });
      if (blocked) state.blocked.delete(lc(p.username));
      else { state.blocked.add(lc(p.username)); state.following.delete(lc(p.username)); }
      const d = await request('profile.get', { username: p.username });
      if (state.profile && state.profile.id === p.id) { state.profile = d.profile; renderProfile(); }
      toast(blocked ? `You unblocked @${p.username}` : `You blocked @${p.username}. They can no longer message you.`);
    } catch (e) {
      showError(e);
    } finally {
      btn.disabled = false;
    }
  }

  async function submitReport(ev) {
    ev.preventDefault();
    const p = state.profile;
    const reason = $('report-reason').value.trim();
    if (!reason) { toast('Say why you are reporting them', 'error'); return; }
    const details = $('report-details').value.trim();
    try {
      await request('report.create', { username: p.username, reason, ...(details ? { details } : {}) });
      $('report-form').hidden = true;
      $('report-reason').value = '';
      $('report-details').value = '';
      toast(`Thanks. Your report about @${p.username} was sent to the operators.`);
    } catch (e) {
      showError(e);
    }
  }

  function renderMuteButton(c) {
    const b = $('btn-mute');
    b.hidden = !c.id;
    b.textContent = c.muted ? 'Unmute' : 'Mute';
    b.dataset.muted = String(!!c.muted);
  }

  async function toggleMute() {
    const c = state.convs.get(state.openPeer);
    if (!c || !c.id) return;
    try {
      const d = await request(c.muted ? 'conversation.unmute' : 'conversation.mute', { conversation: c.id });
      c.muted = d.muted;
      renderMuteButton(c);
      renderConversations();
      toast(d.muted ? 'Muted: no notifications for this conversation' : 'Unmuted');
    } catch (e) {
      showError(e);
    }
  }

  function init() {
    $('tab-login').onclick = () => setAuthMode('login');
    $('tab-register').onclick = () => setAuthMode('register');
    $('auth-form').onsubmit = submitAuth;
    $('btn-logout').onclick = logout;
    $('btn-push').onclick = () => registerPush(true).catch(showError);
    $('btn-my-profile').onclick = () => openProfile(me().username);
    $('btn-home').onclick = openHome;
    $('post-form').onsubmit = submitPost;
    $('post-input').oninput = updatePostCount;
    $('timeline-more').onclick = () => loadHome(true);
    $('btn-follow').onclick = toggleFollow;
    $('btn-block').onclick = toggleBlock;
    $('btn-report').onclick = () => { $('report-form').hidden = !$('report-form').hidden; $('report-reason').focus(); };
    $('report-form').onsubmit = submitReport;
    $('btn-mute').onclick = toggleMute;
    $('btn-message').onclick = () => openChat(state.profile.username, state.profile);
    $('btn-chat-profile').onclick = () => { const c = state.convs.get(state.openPeer); if (c) openProfile(c.username); };
    $('profile-edit').onsubmit = saveProfile;
    $('edit-color-pick').oninput = () => { $('edit-color').value = $('edit-color-pick').value; };
    $('search-input').oninput = onSearchInput;
    $('btn-new-group').onclick = () => { $('new-group-form').hidden = !$('new-group-form').hidden; $('new-group-title').focus(); };
    $('new-group-form').onsubmit = createGroup;
    $('btn-group-members').onclick = toggleMembers;
    $('group-add-form').onsubmit = addMember;
    $('btn-group-leave').onclick = leaveGroup;
    $('messages-scroll').onscroll = () => {
      const c = state.convs.get(state.openPeer);
      if (c && $('messages-scroll').scrollTop < 40) loadOlder(c);
    };
    const input = $('composer-input');
    $('composer').onsubmit = (ev) => {
      ev.preventDefault();
      const text = input.value;
      if (!text.trim() || !state.openPeer) return;
      stopTyping();
      if (state.editing) saveEdit(text);
      else sendMessage(state.convs.get(state.openPeer), text);
      input.value = '';
    };
    input.oninput = onComposerInput;
    $('reply-cancel').onclick = () => setReplyTo(null);
    input.onkeydown = (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); $('composer').requestSubmit(); }
    };
    window.addEventListener('focus', () => {
      const c = state.convs.get(state.openPeer);
      if (c && state.view === 'chat') markRead(c);
    });
    window.addEventListener('online', () => { if (state.client && state.client.state === 'offline') state.client.connect(); });
    // Another tab rotated the tokens: use them rather than the now-replaced ones.
    window.addEventListener('storage', (ev) => {
      if (ev.key !== SESSION_KEY) return;
      const s = loadSession();
      if (!s) { if (state.session) endSession('You logged out in another tab.'); return; }
      if (state.session && s.user.id === state.session.user.id) state.session = s;
    });

    if (state.session) startSession(state.session);
    else { $('auth').hidden = false; setAuthMode('login'); }
  }

  // Exposed for debugging and tests only: connection state, never tokens.
  window.hubbub = { status: () => ({ connected: !!state.client && ['authenticating', 'online'].includes(state.client.state),
    authed: state.authed, outbox: state.client ? state.client.outbox.length : 0 }) };
  init();
})();

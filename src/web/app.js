// The browser client of chat-server: plain JavaScript, no framework, no
// build step. It speaks docs/protocol.md over the WebSocket at /ws, one
// JSON object per text frame both ways.
//
// Sections, in order:
//   1. state        what the page knows: who is logged in, friends, groups,
//                   conversations and the messages held for each
//   2. connection   the socket, login and reconnect with catch-up
//   3. protocol     one handler per server msgId
//   4. messages     keeping messages by (conversation, seq); sending with a cid
//   5. rendering    the sidebar, the open conversation, members
//   6. user input   forms and buttons
//
// Conversations are keyed on the page by "u:<peer uid>" or "g:<gid>"; the
// server's `conv` name is opaque and learnt from what it sends (messages,
// SEND_ACK, CONVS) and used only to send it back (SYNC, READ).
'use strict';

// ---------------------------------------------------------------- 1. state

const MSG = {
  LOGIN: 1, LOGIN_ACK: 2, LOGOUT: 3, LOGOUT_ACK: 4, REG: 5, REG_ACK: 6,
  REFRESH: 7, REFRESH_ACK: 8, ONE_CHAT: 9, ADD_FRIEND: 10, CREATE_GROUP: 11,
  ADD_GROUP: 12, GROUP_CHAT: 13, DEL_FRIEND: 14, DEL_FRIEND_ACK: 15,
  ADD_FRIEND_ACK: 16, CREATE_GROUP_ACK: 17, ADD_GROUP_ACK: 18, QUIT_GROUP: 19,
  QUIT_GROUP_ACK: 20, DISMISS_GROUP: 21, DISMISS_GROUP_ACK: 22,
  GROUP_MEMBERS: 23, GROUP_MEMBERS_ACK: 24, PING: 25, PONG: 26, ERROR: 27,
  SEND_ACK: 28, SYNC: 29, SYNC_ACK: 30, CONVS: 31, CONVS_ACK: 32, READ: 33,
  READ_ACK: 34,
};

// What each errno means to a person (docs/protocol.md, "Errors"); the
// server's errmsg is shown after it.
const ERRNO_TEXT = {
  1: 'Wrong user name or password, or that name is taken.',
  2: 'This account is signed in somewhere else.',
  3: 'You are not signed in.',
  4: 'The request was not valid.',
  5: 'The server does not know this request.',
  6: 'You are not allowed to do that.',
  7: 'Not found.',
  8: 'Already done.',
  9: 'The server could not do that just now; try again.',
  10: 'That message is too large.',
  11: 'The server could not read a request.',
  12: 'Too many requests; wait a moment.',
  13: 'A limit has been reached.',
};

const PAGE = 30;            // messages per history page
const PING_EVERY = 60e3;    // well inside the server's idle timeout
const REFRESH_EVERY = 10e3; // friends' presence is not pushed: ask again
const MAX_BACKOFF = 30e3;

const S = {
  ws: null,
  creds: null,          // {username|uid, password} while signed in, for reconnects
  me: null,             // {uid, username}
  loggedIn: false,
  friends: new Map(),   // uid -> {uid, username, state}
  groups: new Map(),    // gid -> {gid, groupname, groupdesc, members: [...]}
  names: new Map(),     // uid -> username seen anywhere
  convs: new Map(),     // key -> conversation (see conversation())
  active: null,         // key of the open conversation
  pending: new Map(),   // cid -> {key, body} sent and not acked yet
  cidSeq: 0,
  cidBase: Date.now().toString(36) + Math.random().toString(36).slice(2, 8),
  backoff: 1000,
  timers: [],
  replaced: false,      // the server closed us for a newer login: no reconnect
  loginTries: 0,        // logins refused with errno 2 in a row (see LOGIN_ACK)
};

/** The conversation for `key`, created empty on first use. */
function conversation(key) {
  let c = S.convs.get(key);
  if (!c) {
    const [kind, id] = key.split(':');
    c = {
      key, kind, id: Number(id),
      conv: null,        // the server's name, once known
      msgs: new Map(),   // seq -> message object as delivered
      local: [],         // own messages not acked yet: {cid, body, state, error}
      lastSeq: 0, readSeq: 0, unread: 0,
      more: true,        // older history may exist before the oldest held
      loading: false,
    };
    S.convs.set(key, c);
  }
  return c;
}

const keyOfUser = (uid) => 'u:' + uid;
const keyOfGroup = (gid) => 'g:' + gid;
const heldSeqs = (c) => [...c.msgs.keys()];
const maxHeld = (c) => Math.max(0, ...heldSeqs(c));
const minHeld = (c) => (c.msgs.size ? Math.min(...heldSeqs(c)) : c.lastSeq + 1);

function displayName(c) {
  if (c.kind === 'g') {
    const g = S.groups.get(c.id);
    return g ? g.groupname : 'Group ' + c.id;
  }
  const f = S.friends.get(c.id);
  return (f && f.username) || S.names.get(c.id) || 'User ' + c.id;
}

// ----------------------------------------------------------- 2. connection

const wsUrl = () => (location.protocol === 'https:' ? 'wss' : 'ws') + '://' + location.host + '/ws';

/** Opens the socket if it is not open; `then` runs once it is. */
function withSocket(then) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) return then();
  if (S.ws && S.ws.readyState === WebSocket.CONNECTING) {
    S.ws.addEventListener('open', then, { once: true });
    return;
  }
  setConn('connecting');
  const ws = new WebSocket(wsUrl());
  S.ws = ws;
  ws.addEventListener('open', () => { setConn('connected'); then(); }, { once: true });
  ws.addEventListener('message', (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    if (m && typeof m === 'object') dispatch(m);
  });
  ws.addEventListener('close', () => onClose(ws));
}

function send(obj) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) {
    S.ws.send(JSON.stringify(obj));
    return true;
  }
  return false;
}

/** Logs in with the held credentials (first time, or after a reconnect). */
function login() {
  if (!S.creds) return;
  withSocket(() => send(Object.assign({ msgId: MSG.LOGIN }, S.creds)));
}

function onClose(ws) {
  if (ws !== S.ws) return;
  S.ws = null;
  const wasIn = S.loggedIn;
  S.loggedIn = false;
  stopTimers();
  setConn('offline');
  if (!S.creds || S.replaced) return;
  if (!wasIn && !S.me) {
    authError('The connection to the server closed. Try again.');
    S.creds = null;
    return;
  }
  // Signed in before: come back, with a growing pause, and catch up.
  banner('Connection lost. Reconnecting…');
  const wait = S.backoff;
  S.backoff = Math.min(S.backoff * 2, MAX_BACKOFF);
  setTimeout(login, wait);
}

function startTimers() {
  stopTimers();
  S.timers.push(setInterval(() => send({ msgId: MSG.PING }), PING_EVERY));
  S.timers.push(setInterval(() => send({ msgId: MSG.REFRESH }), REFRESH_EVERY));
}

function stopTimers() {
  S.timers.forEach(clearInterval);
  S.timers = [];
}

function signOut(message) {
  S.creds = null;
  S.me = null;
  S.loggedIn = false;
  stopTimers();
  if (S.ws) {
    const ws = S.ws;
    S.ws = null;
    ws.close();
  }
  S.friends.clear(); S.groups.clear(); S.convs.clear(); S.pending.clear();
  S.active = null;
  $('#app').hidden = true;
  $('#auth').hidden = false;
  banner(null);
  authError(message || '');
  $('#auth-password').value = '';
  $('#auth-username').focus();
}

// ------------------------------------------------------------ 3. protocol

const handlers = {
  [MSG.REG_ACK](m) {
    if (m.errno) { S.creds = null; return authError(errText(m)); }
    // Registered: sign in with the same name and password.
    login();
  },

  [MSG.LOGIN_ACK](m) {
    if (m.errno) {
      const retry = S.me && [2, 9, 12].includes(m.errno);
      if (retry) {
        banner('Reconnecting: ' + errText(m));
        setTimeout(login, Math.max(S.backoff, 1000 * (m.retry_after || 0)));
        return;
      }
      // Signed in elsewhere, just now: most often this very page before a
      // reload, whose connection the server is still closing. Ask again a
      // few times before saying so.
      if (m.errno === 2 && S.loginTries < 5) {
        S.loginTries += 1;
        authError('Signed in elsewhere; waiting for that session to end…');
        setTimeout(login, 1000);
        return;
      }
      return signOut(errText(m));
    }
    S.loginTries = 0;
    const reconnect = S.me && S.me.uid === m.uid;
    S.me = { uid: m.uid, username: m.username };
    S.loggedIn = true;
    S.backoff = 1000;
    S.replaced = false;
    banner(null);
    applyAccount(m);
    for (const s of m.offlinemsgs || []) {
      const o = parseMaybe(s);
      if (o) receive(o, true); // unread counts come with CONVS
    }
    send({ msgId: MSG.CONVS });
    resendPending();
    startTimers();
    showApp(reconnect);
  },

  [MSG.LOGOUT_ACK]() {},
  [MSG.REFRESH_ACK](m) { if (!m.errno) { applyAccount(m); render(); } },
  [MSG.ONE_CHAT](m) { receive(m); },
  [MSG.GROUP_CHAT](m) { receive(m); },

  [MSG.ADD_FRIEND_ACK](m) {
    if (m.errno) return toast(errText(m), 'error');
    toast('Friend added.');
    $('#tools').open = false;
    conversation(keyOfUser(m.fid));
    send({ msgId: MSG.REFRESH });
    openConv(keyOfUser(m.fid));
  },
  [MSG.DEL_FRIEND_ACK](m) {
    if (m.errno) return toast(errText(m), 'error');
    S.friends.delete(m.fid);
    toast('Friend removed.');
    send({ msgId: MSG.REFRESH });
    render();
  },
  [MSG.CREATE_GROUP_ACK](m) {
    if (m.errno) return toast(errText(m), 'error');
    toast('Group “' + m.groupname + '” created; its id is ' + m.gid + '.');
    $('#tools').open = false;
    S.groups.set(m.gid, { gid: m.gid, groupname: m.groupname, groupdesc: '', members: [] });
    send({ msgId: MSG.REFRESH });
    openConv(keyOfGroup(m.gid));
  },
  [MSG.ADD_GROUP_ACK](m) {
    if (m.errno) return toast(errText(m), 'error');
    toast('Joined the group.');
    $('#tools').open = false;
    S.groups.set(m.gid, S.groups.get(m.gid) || { gid: m.gid, groupname: 'Group ' + m.gid, groupdesc: '', members: [] });
    send({ msgId: MSG.REFRESH });
    send({ msgId: MSG.CONVS });
    openConv(keyOfGroup(m.gid));
  },
  [MSG.QUIT_GROUP_ACK](m) { leftGroup(m, 'You left the group.'); },
  [MSG.DISMISS_GROUP_ACK](m) { leftGroup(m, 'The group is dismissed.'); },

  [MSG.GROUP_MEMBERS_ACK](m) {
    if (m.errno) return toast(errText(m), 'error');
    const g = S.groups.get(m.gid);
    if (g) g.members = m.members || [];
    renderMembers();
  },

  [MSG.PONG]() {},

  [MSG.ERROR](m) {
    if (m.errno === 2) {          // replaced by a newer login elsewhere
      S.replaced = true;
      return signOut(errText(m));
    }
    if (!S.loggedIn && !S.me) {
      // Idle on the sign-in card: the server closes anonymous sockets after
      // a while, and the next submit opens a new one.
      if (m.errno !== 3) authError(errText(m));
      return;
    }
    toast(errText(m), 'error');
  },

  [MSG.SEND_ACK](m) { onSendAck(m); },
  [MSG.SYNC_ACK](m) { onSyncAck(m); },

  [MSG.CONVS_ACK](m) {
    if (m.errno) return toast(errText(m), 'error');
    for (const e of m.convs || []) {
      const key = e.kind === 'group' ? keyOfGroup(e.gid) : keyOfUser(e.peer);
      const c = conversation(key);
      c.conv = e.conv;
      c.lastSeq = Math.max(c.lastSeq, e.last_seq || 0);
      c.readSeq = Math.max(c.readSeq, e.read_seq || 0);
      c.unread = Math.max(0, c.lastSeq - c.readSeq);
      // Catch up: what was held before a reconnect continues after its
      // newest seq; a conversation never opened loads when opened.
      if (c.msgs.size && maxHeld(c) < c.lastSeq) sync(c, { after: maxHeld(c) });
      else if (key === S.active && !c.msgs.size && c.lastSeq) loadOlder(c);
    }
    render();
    markRead();
  },

  [MSG.READ_ACK](m) {
    if (m.errno) return;
    const c = [...S.convs.values()].find((x) => x.conv === m.conv);
    if (c) { c.readSeq = Math.max(c.readSeq, m.seq); c.unread = Math.max(0, c.lastSeq - c.readSeq); renderList(); }
  },
};

function dispatch(m) {
  const h = handlers[m.msgId];
  if (h) h(m);
}

/** Friends and groups from a login or refresh ack (arrays of JSON strings). */
function applyAccount(m) {
  S.friends.clear();
  for (const s of m.friends || []) {
    const f = parseMaybe(s);
    if (!f) continue;
    S.friends.set(f.uid, f);
    S.names.set(f.uid, f.username);
    conversation(keyOfUser(f.uid));
  }
  const seen = new Set();
  for (const s of m.groups || []) {
    const g = parseMaybe(s);
    if (!g) continue;
    g.members = (g.groupusers || []).map(parseMaybe).filter(Boolean);
    g.members.forEach((u) => S.names.set(u.uid, u.username));
    S.groups.set(g.gid, g);
    seen.add(g.gid);
    conversation(keyOfGroup(g.gid));
  }
  // Groups left or dismissed (by us elsewhere, or by their creator).
  for (const gid of [...S.groups.keys()]) {
    if (!seen.has(gid)) { S.groups.delete(gid); S.convs.delete(keyOfGroup(gid)); }
  }
  if (S.active && !S.convs.has(S.active)) S.active = null;
}

function leftGroup(m, text) {
  if (m.errno) return toast(errText(m), 'error');
  S.groups.delete(m.gid);
  S.convs.delete(keyOfGroup(m.gid));
  if (S.active === keyOfGroup(m.gid)) S.active = null;
  toast(text);
  render();
}

function parseMaybe(s) {
  if (s && typeof s === 'object') return s;
  try { return JSON.parse(s); } catch { return null; }
}

function errText(m) {
  const base = ERRNO_TEXT[m.errno] || 'Error ' + m.errno + '.';
  const detail = m.errmsg ? ' (' + m.errmsg + ')' : '';
  const wait = m.retry_after ? ' Try again in ' + Math.ceil(m.retry_after) + ' s.' : '';
  return base + detail + wait;
}

// ------------------------------------------------------------ 4. messages

/** A 9 or 13 from the server: live, offline or from a sync. */
function receive(m, quiet) {
  let key;
  if (m.msgId === MSG.GROUP_CHAT) key = keyOfGroup(m.gid);
  else key = keyOfUser(m.from === S.me.uid ? m.to : m.from);
  const c = conversation(key);
  if (m.conv) c.conv = m.conv;
  if (m.username && m.from) S.names.set(m.from, m.username);
  if (m.username && m.uid) S.names.set(m.uid, m.username);
  if (typeof m.seq !== 'number' || c.msgs.has(m.seq)) return c; // held already
  c.msgs.set(m.seq, m);
  // One of ours that a sync brought before its SEND_ACK (after a
  // reconnect): it is stored, so its waiting bubble goes.
  const p = m.cid && senderOf(m) === S.me.uid && S.pending.get(m.cid);
  if (p) {
    S.pending.delete(m.cid);
    c.local = c.local.filter((x) => x !== p.item);
  }
  c.lastSeq = Math.max(c.lastSeq, m.seq);
  if (!quiet && m.seq > c.readSeq && senderOf(m) !== S.me.uid) {
    c.unread = Math.max(0, c.lastSeq - c.readSeq);
  }
  // Someone we do not know yet (a new member, a stranger's first message):
  // the next refresh brings their name and presence.
  const g = c.kind === 'g' && S.groups.get(c.id);
  if (!quiet && (g ? !g.members.some((u) => u.uid === senderOf(m)) : !S.friends.has(c.id))) refreshSoon();
  if (!quiet) { render(); markRead(); }
  return c;
}

let refreshTimer = 0;
/** One refresh (7) a second at most, however many strangers write. */
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = 0; send({ msgId: MSG.REFRESH }); }, 1000);
}

const senderOf = (m) => (m.msgId === MSG.GROUP_CHAT ? m.uid : m.from);

function nextCid() {
  S.cidSeq += 1;
  return 'w' + S.cidBase + '-' + S.cidSeq;
}

function sendText(key, text) {
  const c = conversation(key);
  const body = c.kind === 'g'
    ? { msgId: MSG.GROUP_CHAT, gid: c.id, msg: text }
    : { msgId: MSG.ONE_CHAT, to: c.id, msg: text };
  body.cid = nextCid();
  body.username = S.me.username;
  body.time = new Date().toISOString().slice(0, 19).replace('T', ' ');
  const item = { cid: body.cid, body, state: 'sending', ts: Date.now() };
  c.local.push(item);
  S.pending.set(body.cid, { key, item });
  send(body);
  renderMessages(true);
  renderList();
}

/** After a reconnect: everything not acked goes again with its own cid. */
function resendPending() {
  for (const { item } of S.pending.values()) {
    if (item.state === 'sending') send(item.body);
  }
}

function onSendAck(m) {
  const p = S.pending.get(m.cid);
  if (!p) return;
  const c = conversation(p.key);
  if (m.errno === 12 && m.retry_after) {
    // Faster than the chat rate: the same message, same cid, a little later.
    setTimeout(() => send(p.item.body), Math.ceil(m.retry_after * 1000));
    return;
  }
  S.pending.delete(m.cid);
  if (m.errno) {
    p.item.state = 'failed';
    p.item.error = errText(m);
  } else {
    c.local = c.local.filter((x) => x !== p.item);
    c.conv = m.conv || c.conv;
    const own = Object.assign({}, p.item.body, { conv: m.conv, seq: m.seq, ts: m.ts });
    if (c.kind === 'g') own.uid = S.me.uid; else own.from = S.me.uid;
    delete own.cid;
    if (!c.msgs.has(m.seq)) c.msgs.set(m.seq, own);
    c.lastSeq = Math.max(c.lastSeq, m.seq);
    if (S.active === p.key) markRead();
  }
  if (S.active === p.key) renderMessages(false);
  renderList();
}

function sync(c, where) {
  if (!c.conv || c.loading) return;
  c.loading = true;
  send(Object.assign({ msgId: MSG.SYNC, conv: c.conv, limit: PAGE }, where));
  c.lastSync = where;
  if (c.key === S.active) renderHistoryState(c);
}

/** The page before the oldest message held (scrolling up, or first open). */
function loadOlder(c) {
  if (!c.more || !c.conv) return;
  const before = minHeld(c);
  if (before <= 1) { c.more = false; return; }
  sync(c, { before });
}

function onSyncAck(m) {
  const c = [...S.convs.values()].find((x) => x.conv === m.conv);
  if (!c) return;
  c.loading = false;
  if (m.errno) { toast(errText(m), 'error'); return; }
  const older = c.lastSync && 'before' in c.lastSync;
  const list = m.msgs || [];
  list.forEach((o) => receive(o, true));
  if (older) c.more = !!m.more && list.length > 0;
  else if (m.more && list.length) sync(c, { after: maxHeld(c) });   // keep catching up
  if (c.key === S.active) {
    renderMessages(false, older);
    // A first page that does not fill the pane: fetch more, as a scroll would.
    const box = $('#messages');
    if (older && c.more && box.scrollHeight <= box.clientHeight) loadOlder(c);
  }
  renderList();
  markRead();
}

/** The open conversation is read up to its newest seq while the page shows. */
function markRead() {
  const c = S.active && S.convs.get(S.active);
  if (!c || !c.conv || document.hidden) return;
  const top = maxHeld(c);
  if (top > c.readSeq) {
    c.readSeq = top;
    c.unread = Math.max(0, c.lastSeq - c.readSeq);
    send({ msgId: MSG.READ, conv: c.conv, seq: top });
    renderList();
  }
}

// ----------------------------------------------------------- 5. rendering

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

const COLORS = ['#e57373', '#f06292', '#ba68c8', '#7986cb', '#4fc3f7', '#4db6ac', '#81c784', '#ffb74d', '#a1887f', '#90a4ae'];
function paintAvatar(node, name, id, presence) {
  node.textContent = (name || '?').trim().slice(0, 1).toUpperCase();
  node.style.background = COLORS[Math.abs(id || 0) % COLORS.length];
  if (presence) node.dataset.presence = presence; else delete node.dataset.presence;
}

const pad = (n) => String(n).padStart(2, '0');
const clock = (ts) => { const d = new Date(ts); return pad(d.getHours()) + ':' + pad(d.getMinutes()); };
const dayOf = (ts) => new Date(ts).toLocaleDateString(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });

function lastOf(c) {
  if (c.local.length) return { text: c.local[c.local.length - 1].body.msg, ts: c.local[c.local.length - 1].ts };
  if (!c.msgs.size) return null;
  const m = c.msgs.get(maxHeld(c));
  return { text: m.msg, ts: m.ts };
}

function presenceOf(c) {
  if (c.kind !== 'u') return null;
  const f = S.friends.get(c.id);
  return f ? f.state : 'offline';
}

function render() {
  renderList();
  renderHeader();
  renderMessages(false);
}

function renderList() {
  if (!S.me) return;
  const list = $('#conv-list');
  const filter = $('#conv-filter').value.trim().toLowerCase();
  const convs = [...S.convs.values()]
    .filter((c) => c.kind === 'g' ? S.groups.has(c.id) : (S.friends.has(c.id) || c.msgs.size || c.local.length || c.lastSeq))
    .filter((c) => !filter || displayName(c).toLowerCase().includes(filter))
    .sort((a, b) => ((lastOf(b) || {}).ts || 0) - ((lastOf(a) || {}).ts || 0) || displayName(a).localeCompare(displayName(b)));
  list.replaceChildren(...convs.map(convItem));
  $('#conv-empty').hidden = convs.length > 0;
  const total = convs.reduce((n, c) => n + c.unread, 0);
  document.title = (total ? '(' + total + ') ' : '') + 'chat';
}

function convItem(c) {
  const last = lastOf(c);
  const name = displayName(c);
  const avatar = el('span', { class: 'avatar', 'aria-hidden': 'true' });
  paintAvatar(avatar, name, c.id + (c.kind === 'g' ? 5 : 0), presenceOf(c));
  const unread = c.key === S.active ? 0 : c.unread;
  const label = name + (c.kind === 'u' ? ', ' + presenceOf(c) : ', group') + (unread ? ', ' + unread + ' unread' : '');
  return el('li', {
    class: 'conv', role: 'option', tabindex: '0', 'aria-selected': String(c.key === S.active),
    'aria-label': label, 'data-conv-key': c.key, 'data-kind': c.kind, 'data-id': c.id,
    'data-presence': presenceOf(c), 'data-unread': unread,
    onclick: () => openConv(c.key),
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openConv(c.key); } },
  }, avatar, el('div', { class: 'conv-main' },
    el('div', { class: 'conv-top' },
      el('span', { class: 'conv-name', text: name }),
      last && last.ts ? el('span', { class: 'conv-time', text: clock(last.ts) }) : null),
    el('div', { class: 'conv-bottom' },
      el('span', { class: 'conv-preview', text: last ? last.text : (c.kind === 'g' ? 'Group ' + c.id : 'Say hello') }),
      unread ? el('span', { class: 'badge', text: unread > 99 ? '99+' : String(unread) }) : null)));
}

function renderHeader() {
  const c = S.active && S.convs.get(S.active);
  $('#chat').dataset.convKey = c ? c.key : '';
  $('#composer').hidden = !c;
  const g = c && c.kind === 'g' ? S.groups.get(c.id) : null;
  const creator = g && (g.members || []).some((u) => u.uid === S.me.uid && u.grouprole === 'creator');
  $('#members-btn').hidden = !g;
  $('#quit-group-btn').hidden = !g || creator;
  $('#dismiss-group-btn').hidden = !g || !creator;
  $('#del-friend-btn').hidden = !(c && c.kind === 'u' && S.friends.has(c.id));
  if (!g) $('#members').hidden = true;
  const av = $('#chat-avatar');
  if (!c) {
    $('#chat-title').textContent = 'Pick a conversation';
    $('#chat-sub').textContent = '';
    av.hidden = true;
    return;
  }
  av.hidden = false;
  paintAvatar(av, displayName(c), c.id + (c.kind === 'g' ? 5 : 0), presenceOf(c));
  $('#chat-title').textContent = displayName(c);
  $('#chat-sub').textContent = c.kind === 'g'
    ? 'group ' + c.id + (g && g.members.length ? ' · ' + g.members.length + (g.members.length === 1 ? ' member' : ' members') : '')
    : 'user ' + c.id + ' · ' + presenceOf(c);
  if (!$('#members').hidden) renderMembers();
}

function renderHistoryState(c) {
  $('#history-state').textContent = c.loading ? 'Loading…'
    : (c.msgs.size && !c.more ? 'Beginning of the conversation' : (c.msgs.size ? '' : 'No messages yet'));
}

/** Redraws the open conversation; keeps the reader's place when older
 * messages came in above (`older`), follows the bottom otherwise. */
function renderMessages(toBottom, older) {
  const box = $('#messages');
  const c = S.active && S.convs.get(S.active);
  const list = $('#message-list');
  if (!c) { list.replaceChildren(); $('#history-state').textContent = ''; return; }
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const fromBottom = box.scrollHeight - box.scrollTop;
  const items = [];
  let lastDay = '';
  const msgs = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
  const all = msgs.map((m) => ({ m, state: 'sent' }))
    .concat(c.local.map((x) => ({ m: x.body, local: x, state: x.state })));
  for (const { m, local, state } of all) {
    const ts = m.ts || (local && local.ts) || Date.now();
    const day = dayOf(ts);
    if (day !== lastDay) { items.push(el('li', { class: 'day', text: day })); lastDay = day; }
    items.push(bubble(c, m, ts, state, local));
  }
  list.replaceChildren(...items);
  renderHistoryState(c);
  if (older) box.scrollTop = box.scrollHeight - fromBottom;
  else if (toBottom || nearBottom) box.scrollTop = box.scrollHeight;
}

function bubble(c, m, ts, state, local) {
  const from = senderOf(m) || S.me.uid;
  const mine = !!local || from === S.me.uid;
  const meta = el('div', { class: 'meta' },
    el('time', { datetime: new Date(ts).toISOString(), title: new Date(ts).toLocaleString(), text: clock(ts) }));
  if (state === 'sending') meta.append(' · sending…');
  if (state === 'failed') {
    meta.append(' · not sent: ' + local.error);
    meta.append(el('button', { class: 'retry', type: 'button', text: 'Retry', onclick: () => retry(c, local) }));
  }
  return el('li', {
    class: 'msg ' + (mine ? 'mine' : 'theirs'), 'data-seq': m.seq, 'data-from': from, 'data-state': state,
  },
  c.kind === 'g' && !mine ? el('div', { class: 'who', text: m.username || S.names.get(from) || 'user ' + from }) : null,
  el('div', { class: 'bubble text', text: m.msg }),
  meta);
}

function retry(c, local) {
  local.state = 'sending';
  local.body.cid = nextCid();
  local.cid = local.body.cid;
  S.pending.set(local.cid, { key: c.key, item: local });
  send(local.body);
  renderMessages(false);
}

function renderMembers() {
  const c = S.active && S.convs.get(S.active);
  const g = c && c.kind === 'g' && S.groups.get(c.id);
  if (!g) return;
  $('#member-list').replaceChildren(...(g.members || []).map((u) => {
    const av = el('span', { class: 'avatar', 'aria-hidden': 'true' });
    paintAvatar(av, u.username, u.uid, u.state);
    return el('li', { 'data-uid': u.uid, 'data-presence': u.state }, av,
      el('span', { text: u.username + (u.grouprole === 'creator' ? ' (creator)' : '') + (u.uid === S.me.uid ? ' (you)' : '') }),
      el('span', { class: 'visually-hidden', text: u.state }));
  }));
}

function openConv(key) {
  S.active = key;
  const c = conversation(key);
  $('#app').dataset.view = 'chat';
  render();
  renderMessages(true);
  if (!c.msgs.size && c.lastSeq) loadOlder(c);
  markRead();
  $('#composer-input').focus();
}

function showApp(reconnect) {
  $('#auth').hidden = true;
  $('#app').hidden = false;
  $('#app').dataset.uid = S.me.uid;
  $('#me-name').textContent = S.me.username;
  $('#me-uid').textContent = S.me.uid;
  paintAvatar($('#me-avatar'), S.me.username, S.me.uid, null);
  if (!reconnect) $('#app').dataset.view = 'list';
  setConn('online');
  render();
}

function setConn(state) {
  const n = $('#conn-state');
  n.dataset.state = state;
  n.textContent = state;
}

function authError(text) { $('#auth-error').textContent = text; }

function banner(text) {
  const b = $('#banner');
  b.hidden = !text;
  b.textContent = text || '';
}

let toastTimer = 0;
function toast(text, kind) {
  const t = $('#toast');
  t.textContent = text;
  t.dataset.kind = kind || 'info';
  t.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('show'), kind === 'error' ? 6000 : 3000);
}

// ---------------------------------------------------------- 6. user input

let authMode = 'login';

function setAuthMode(mode) {
  authMode = mode;
  for (const b of document.querySelectorAll('.tabs button')) b.setAttribute('aria-selected', String(b.dataset.mode === mode));
  $('#auth-submit').textContent = mode === 'login' ? 'Sign in' : 'Create account';
  $('#auth-username-hint').hidden = mode !== 'login';
  $('#auth-password').autocomplete = mode === 'login' ? 'current-password' : 'new-password';
  authError('');
}

function onAuthSubmit(e) {
  e.preventDefault();
  const name = $('#auth-username').value.trim();
  const password = $('#auth-password').value;
  if (!name || !password) return authError('Enter a user name and a password.');
  authError('');
  S.replaced = false;
  S.me = null;
  S.loginTries = 0;
  S.creds = authMode === 'login' && /^[0-9]+$/.test(name)
    ? { uid: Number(name), password }
    : { username: name, password };
  if (authMode === 'login') return login();
  withSocket(() => send({ msgId: MSG.REG, username: name, password }));
}

function onFormId(selector, input, make) {
  $(selector).addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $(input).value.trim();
    if (!v) return;
    const obj = make(v);
    if (!obj) return toast('Enter a number.', 'error');
    send(obj);
    $(input).value = '';
  });
}

function bindInput() {
  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => setAuthMode(b.dataset.mode));
  $('#auth-form').addEventListener('submit', onAuthSubmit);
  const id = (v) => (/^[0-9]+$/.test(v) ? Number(v) : null);
  onFormId('#add-friend-form', '#add-friend-input', (v) => id(v) && { msgId: MSG.ADD_FRIEND, fid: id(v) });
  onFormId('#join-group-form', '#join-group-input', (v) => id(v) && { msgId: MSG.ADD_GROUP, gid: id(v) });
  onFormId('#new-group-form', '#new-group-name', (v) => ({ msgId: MSG.CREATE_GROUP, groupname: v, groupdesc: '' }));
  $('#logout-btn').addEventListener('click', () => { send({ msgId: MSG.LOGOUT }); signOut(''); });
  $('#back-btn').addEventListener('click', () => { $('#app').dataset.view = 'list'; });
  $('#conv-filter').addEventListener('input', renderList);

  const input = $('#composer-input');
  $('#composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim() || !S.active) return;
    sendText(S.active, text);
    input.value = '';
    input.style.height = '';
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('#composer').requestSubmit(); }
  });
  input.addEventListener('input', () => { input.style.height = ''; input.style.height = Math.min(input.scrollHeight, 160) + 'px'; });

  const box = $('#messages');
  box.addEventListener('scroll', () => {
    const c = S.active && S.convs.get(S.active);
    if (c && box.scrollTop < 60 && !c.loading) loadOlder(c);
  });

  const activeGroup = () => { const c = S.convs.get(S.active); return c && c.kind === 'g' ? c.id : null; };
  $('#members-btn').addEventListener('click', () => {
    const gid = activeGroup();
    if (!gid) return;
    $('#members').hidden = !$('#members').hidden;
    if (!$('#members').hidden) send({ msgId: MSG.GROUP_MEMBERS, gid });
  });
  $('#quit-group-btn').addEventListener('click', () => {
    const gid = activeGroup();
    if (gid && confirm('Leave this group?')) send({ msgId: MSG.QUIT_GROUP, gid });
  });
  $('#dismiss-group-btn').addEventListener('click', () => {
    const gid = activeGroup();
    if (gid && confirm('Dismiss this group for every member?')) send({ msgId: MSG.DISMISS_GROUP, gid });
  });
  $('#del-friend-btn').addEventListener('click', () => {
    const c = S.convs.get(S.active);
    if (c && c.kind === 'u' && confirm('Remove ' + displayName(c) + ' from your friends?')) send({ msgId: MSG.DEL_FRIEND, fid: c.id });
  });
  document.addEventListener('visibilitychange', markRead);
  window.addEventListener('online', () => { if (S.creds && !S.ws) login(); });
  // Leaving or reloading the page ends its session at once, so that the
  // next page's login does not find the account still signed in.
  window.addEventListener('pagehide', () => {
    const ws = S.ws;
    S.ws = null;
    if (ws) ws.close(1000, 'page closed');
  });
}

bindInput();
setAuthMode('login');

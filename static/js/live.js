/*
 * BeatMatchMe live queue client. No framework; CSP-safe.
 *
 * The page marks its live panel with data-live="/live/events/<id>" (the
 * socket) and data-live-poll="/e/<id>/live" (the same message over HTTP).
 *
 * A message is text: "<seq> <epoch>" on the first line, then HTML
 * fragments with ids marked hx-swap-oob ("true": replace the element with
 * that id; "beforeend": append to it). Every message holds the whole state
 * of the parts it names, and the first message after every (re)connect is a
 * snapshot, so after any gap the view is current again. Within one epoch a
 * lower seq is an older state arriving late and is dropped; a new epoch
 * means the server's counter started again (Redis restarted), so that
 * message is taken as it comes, a fresh start.
 * The DJ's dashboard gets changes only after its snapshot (dj-live.js
 * applies them); when they do not add up to the server's state it asks for a
 * snapshot ("resync").
 *
 * - Reconnects on ANY close (clean ones and server restarts included) after
 *   1, 2, 4, 8, 16, then every 30 s; after 5 failed attempts it also polls
 *   every 5 s until the socket is back.
 * - A socket refused because the server or this address is at its cap
 *   (close code 1013 "try again later") waits 30-60 s (random, so a crowd
 *   does not come back at once) and polls every 15-20 s meanwhile; so does
 *   one closed with 1008 (a suspended or banned fan, a signed-out DJ).
 * - Heartbeat: "ping" every 25 s; no answer within 10 s means the line is
 *   dead, so it reconnects.
 * - When the tab comes back into view or the window regains focus it asks
 *   for a fresh snapshot ("resync"), or reconnects at once if it was down
 *   (polls once instead while a refusal's wait runs). The server answers a
 *   few resyncs per socket at once and coalesces the rest.
 * - The .conn-status pill says Live / Reconnecting… / Offline.
 */
(function () {
  'use strict';

  var panel = document.querySelector('[data-live]');
  if (!panel || !('WebSocket' in window)) return;

  var DELAYS = [1, 2, 4, 8, 16, 30];
  var POLL_AFTER_FAILURES = 5;
  var POLL_EVERY_MS = 5000;
  var HEARTBEAT_MS = 25000;
  var HEARTBEAT_GRACE_MS = 10000;
  var CLOSE_TRY_LATER = 1013;
  var CLOSE_POLICY = 1008;  // refused for a reason (a suspended fan, a signed-out DJ): wait as for 1013
  var BUSY_DELAY_S = [30, 60];      // a refused socket's next try, at random in this range
  var BUSY_POLL_MS = [15000, 20000]; // and its polling meanwhile

  // url_for() writes socket routes as ws://host/...; keep only the path (and query), so the
  // page's own scheme (https -> wss) and host apply behind any proxy.
  var socketRoute = new URL(panel.getAttribute('data-live'), location.href);
  var socketUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
    socketRoute.pathname + socketRoute.search;
  var pollUrl = panel.getAttribute('data-live-poll');

  var ws = null;
  var failures = 0;          // connection attempts since the last successful open
  var reconnectTimer = null;
  var pollTimer = null;
  var heartbeatTimer = null;
  var deadlineTimer = null;
  var lastSeq = -1;
  var lastEpoch = null;
  var refused = false;       // the last socket was refused with 1013

  // -- the indicator ---------------------------------------------------
  var LABELS = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline' };

  function setState(state) {
    document.documentElement.setAttribute('data-live-state', state);
    document.querySelectorAll('.conn-status').forEach(function (el) {
      el.setAttribute('data-state', state);
      el.textContent = LABELS[state];
    });
  }

  // -- applying a message ----------------------------------------------
  function apply(text, snapshot) {
    var newline = text.indexOf('\n');
    var head = text.slice(0, newline).split(' ');
    var seq = parseInt(head[0], 10);
    var epoch = head[1] || '';
    // An older state than we show (same epoch, lower seq): drop it.
    if (!snapshot && epoch === lastEpoch && !isNaN(seq) && seq < lastSeq) return;
    var had = { seq: lastSeq, epoch: lastEpoch };
    if (!isNaN(seq)) { lastSeq = seq; lastEpoch = epoch; }
    var body = text.slice(newline + 1);
    window.BMM.swapOob(body);
    // A message of changes only (the DJ's dashboard: dj-live.js) that does not
    // follow on from what this page shows: ask for the whole state.
    if (window.BMM.applyChanges && window.BMM.applyChanges(body, had) === false) resync();
    markViewer();
    syncRequests();
    syncBar();
    // The position this page shows (read by people debugging, and by tests waiting for a change to land).
    if (!isNaN(seq)) document.documentElement.setAttribute('data-live-seq', String(seq));
    document.dispatchEvent(new CustomEvent('bmm:live-update', { detail: { seq: seq } }));
  }

  // Which queue items are this fan's, and which they voted for (#viewer-state).
  function markViewer() {
    var state = document.getElementById('viewer-state');
    if (!state) return;
    var mine = (state.getAttribute('data-mine') || '').split(' ');
    var voted = (state.getAttribute('data-voted') || '').split(' ');
    document.querySelectorAll('.queue-item[data-request]').forEach(function (item) {
      var id = item.getAttribute('data-request');
      var isMine = mine.indexOf(id) >= 0;
      var hasVoted = voted.indexOf(id) >= 0;
      item.classList.toggle('queue-item--mine', isMine);
      var button = item.querySelector('.vote-button');
      var input = item.querySelector('input[name="vote"]');
      if (button) {
        button.setAttribute('aria-pressed', hasVoted ? 'true' : 'false');
        button.disabled = isMine;
      }
      if (input) input.value = hasVoted ? '0' : '1';
    });
  }

  // Paused or ended (#set-status data-accepting="0"): Request buttons disabled, not gone.
  // The set no longer live (data-tips="0"): the tip card goes (a tip would be refused).
  function syncRequests() {
    var status = document.getElementById('set-status');
    if (!status) return;
    var tip = document.getElementById('tip');
    if (tip) tip.hidden = status.getAttribute('data-tips') === '0';
    var open = status.getAttribute('data-accepting') === '1';
    document.querySelectorAll('a.request-link').forEach(function (link) {
      if (open) {
        link.setAttribute('href', link.getAttribute('data-href'));
        link.removeAttribute('aria-disabled');
        link.removeAttribute('role');
      } else {
        link.removeAttribute('href');
        link.setAttribute('aria-disabled', 'true');
        link.setAttribute('role', 'link');
      }
    });
  }

  // #now-bar (a phone's first screen): now playing, this fan's next request.
  function syncBar() {
    var bar = document.getElementById('now-bar');
    if (!bar) return;
    var title = document.querySelector('#now-playing .np-title');
    if (title) bar.querySelector('.now-bar-title').textContent = title.textContent.trim();
    var mine = document.querySelector('.queue-item--mine');
    var link = bar.querySelector('.now-bar-mine');
    link.hidden = !mine;
    if (mine) {
      var wait = mine.querySelector('.queue-wait .muted');
      link.textContent = 'Yours #' + mine.getAttribute('data-position') + (wait ? ' · ' + wait.textContent.trim() : '');
    }
  }

  // Responses to the fan's own taps (a vote) arrive through htmx.
  document.addEventListener('htmx:load', function () { markViewer(); syncRequests(); syncBar(); });

  // -- the socket ------------------------------------------------------
  function clearTimers() {
    clearInterval(heartbeatTimer);
    clearTimeout(deadlineTimer);
    heartbeatTimer = deadlineTimer = null;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (ws) return;
    if (!navigator.onLine) { setState('offline'); return; }
    var socket;
    try {
      socket = new WebSocket(socketUrl);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = socket;
    var first = true;
    socket.onopen = function () {
      heartbeatTimer = setInterval(ping, HEARTBEAT_MS);
    };
    socket.onmessage = function (event) {
      clearTimeout(deadlineTimer);
      deadlineTimer = null;
      if (event.data === 'pong') return;
      if (first) {  // admitted (a refused socket closes before any message)
        failures = 0;
        refused = false;
        stopPolling();
        setState('live');
        flushVotes(); // the line is back: send what waited
      }
      apply(String(event.data), first);
      first = false;
    };
    socket.onclose = function (event) {
      if (event.code === CLOSE_TRY_LATER || event.code === CLOSE_POLICY) refused = true;
      dropped(socket);
    };
    socket.onerror = function () { /* onclose follows */ };
  }

  function ping() {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send('ping');
    if (!deadlineTimer) {
      var socket = ws;
      deadlineTimer = setTimeout(function () { abandon(socket); }, HEARTBEAT_GRACE_MS);
    }
  }

  // A socket that stopped answering: forget it now, whatever close() does later.
  function abandon(socket) {
    try { socket.close(); } catch (e) { /* already closing */ }
    dropped(socket);
  }

  function dropped(socket) {
    if (ws !== socket) return; // an abandoned socket's late close event
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    ws = null;
    clearTimers();
    failures += 1;
    scheduleReconnect();
  }

  function between(range) {
    return range[0] + Math.random() * (range[1] - range[0]);
  }

  function scheduleReconnect() {
    if (!navigator.onLine) { setState('offline'); return; }
    setState('reconnecting');
    if (refused || failures >= POLL_AFTER_FAILURES) startPolling();
    if (reconnectTimer) return;
    var delay = refused ? between(BUSY_DELAY_S)
      : DELAYS[Math.min(Math.max(failures - 1, 0), DELAYS.length - 1)];
    reconnectTimer = setTimeout(connect, delay * 1000);
  }

  // -- polling fallback ------------------------------------------------
  function poll() {
    fetch(pollUrl, { credentials: 'same-origin', cache: 'no-store', headers: { 'Accept': 'text/plain' } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) { if (text && !ws) apply(text, true); })
      .catch(function () { /* still down; the next poll or reconnect will tell */ });
  }

  function startPolling() {
    if (pollTimer) return;
    poll();
    schedulePoll();
  }

  function schedulePoll() {
    pollTimer = setTimeout(function () {
      poll();
      schedulePoll();
    }, refused ? between(BUSY_POLL_MS) : POLL_EVERY_MS);
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  // -- votes tapped offline: the outbox (docs/live.md, "The client") ------
  var csrf = (JSON.parse(document.body.getAttribute('hx-headers') || '{}'))['X-CSRFToken'];
  var outboxPromise = null;
  function outbox(mode, work) {
    if (!outboxPromise) {
      outboxPromise = new Promise(function (resolve) {
        var req;
        try { req = indexedDB.open('bmm-fan', 1); } catch (e) { resolve(null); return; }
        req.onupgradeneeded = function () { req.result.createObjectStore('votes', { keyPath: 'request' }); };
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { resolve(null); };
      });
    }
    return outboxPromise.then(function (db) {
      if (!db) return null;
      return new Promise(function (resolve) {
        var tx = db.transaction('votes', mode);
        var result = work(tx.objectStore('votes'));
        tx.oncomplete = function () { resolve(result && result.result); };
        tx.onerror = tx.onabort = function () { resolve(null); };
      });
    });
  }

  function tapKey() {
    return window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(36).slice(2);
  }

  function queueVote(form) {
    var item = form.closest('.queue-item');
    var wanted = form.elements.vote.value;
    var entry = { request: item.getAttribute('data-request'), url: form.getAttribute('hx-post'),
                  vote: wanted, key: tapKey(), csrf: csrf };
    outbox('readwrite', function (store) { return store.put(entry); }).then(function () {
      if (navigator.serviceWorker && 'SyncManager' in window) {
        navigator.serviceWorker.ready.then(function (reg) { return reg.sync.register('bmm-votes'); })
          .catch(function () { /* replay on load and on online does it */ });
      }
    });
    var button = form.querySelector('.vote-button');
    var count = form.querySelector('.vote-count');
    button.setAttribute('aria-pressed', wanted === '1' ? 'true' : 'false');
    count.textContent = String(Math.max(0, parseInt(count.textContent, 10) + (wanted === '1' ? 1 : -1)));
    form.elements.vote.value = wanted === '1' ? '0' : '1';
    item.setAttribute('data-queued', '');
    window.BMM.toast('No connection: your vote is saved on this phone and sent when the connection returns.');
  }

  function flushVotes() {
    if (!navigator.onLine) return;
    outbox('readwrite', function (store) {
      var all = store.getAll();
      store.clear();
      return all;
    }).then(function (entries) {
      (entries || []).forEach(function (entry) {
        fetch(entry.url, {
          method: 'POST', credentials: 'same-origin', body: 'vote=' + entry.vote,
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRFToken': entry.csrf,
                     'HX-Request': 'true', 'Idempotency-Key': entry.key }
        }).then(function (response) {
          if (response.status >= 500 || response.status === 429 || response.status === 408) throw new Error('later');
          var said = response.headers.get('X-Refusal');
          if (!response.ok && response.status !== 409) {
            window.BMM.toast(said ? decodeURIComponent(said) : 'A vote saved offline could not be counted.');
          }
          return response.text();
        }).then(function (html) {
          document.querySelectorAll('.queue-item[data-queued]').forEach(function (el) {
            if (el.getAttribute('data-request') === entry.request) el.removeAttribute('data-queued');
          });
          if (html) { window.BMM.swapOob(html); markViewer(); }
        }).catch(function () {
          // Not sent: back, unless a newer tap for it is there.
          outbox('readwrite', function (store) { return store.add(entry); });
        });
      });
    });
  }

  document.addEventListener('htmx:beforeRequest', function (event) {
    var form = event.detail && event.detail.elt;
    if (navigator.onLine || !form || !form.matches || !form.matches('.vote-form')) return;
    event.preventDefault();
    queueVote(form);
  });
  document.addEventListener('htmx:sendError', function (event) {
    var form = event.detail && event.detail.elt;
    if (form && form.matches && form.matches('.vote-form')) queueVote(form);
  });

  // -- the network and the tab -----------------------------------------
  window.addEventListener('offline', function () {
    setState('offline');
    if (ws) abandon(ws);
  });
  window.addEventListener('online', function () {
    failures = 0;
    flushVotes();
    connect();
  });
  flushVotes();

  function resync() {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send('resync');
    } else if (!ws && refused) {
      poll();  // the server asked us to wait: no socket yet, but a fresh view
    } else if (!ws) {
      connect();
    }
  }
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') resync();
  });
  window.addEventListener('focus', resync);

  markViewer();
  setState('connecting');
  connect();
})();

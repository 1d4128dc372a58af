/*
 * BeatMatchMe DJ dashboard: actions that survive bad wifi. No framework; CSP-safe.
 * Loaded only on the DJ's live dashboard ([data-dj-live], templates/dj/dashboard.html).
 *
 * THE OUTBOX. Every tap on an action (accept, undo, veto, play, played, the
 * batch buttons, pause/resume) becomes one entry in an outbox kept in
 * IndexedDB ("bmm-dj", store "outbox"), so it survives a reload or a closed
 * tab: { key, url, fields, kind, label, requestIds, setId }. The idempotency
 * key is made here, once, at the tap. The outbox is sent in order, one entry
 * at a time, whenever the tablet is online: at once, on the `online` event,
 * on page load, and after a backoff when a send failed. Each send is a POST
 * with `Idempotency-Key`; the server applies a key once and answers a replay
 * with the stored outcome, so an entry sent twice (a lost answer, two tabs)
 * is still one action.
 *
 *   2xx                 applied: swap in the live parts it returns; drop the entry.
 *   other 4xx           refused: swap in the live parts it returns (that undoes
 *                       the optimistic view), say why; drop the entry.
 *   401 / CSRF_FAILED   signed out or a stale page: keep everything, say so, wait for a reload.
 *   5xx, 408, 429, no network: keep it and try again later.
 *
 * While an entry waits, its row says so ("Accept · pending (offline)"); an
 * offline accept can still be undone by taking it out of the outbox. A refused
 * replay of an offline action stays on screen (#dj-notices) until dismissed.
 *
 * Also here: the cue for new requests, the 5-second undo countdown, batch
 * selection, the veto dialog, skipping the 10-second htmx poll while the live
 * socket is up (or the tablet is offline), and a copy of the last live parts
 * so a reload while offline (the service worker serves the page) shows the
 * last view.
 */
(function () {
  'use strict';

  var root = document.querySelector('[data-dj-live]');
  if (!root) return;

  var setId = root.getAttribute('data-set');
  var requestActions = JSON.parse(root.getAttribute('data-request-actions') || '{}');
  var setActions = JSON.parse(root.getAttribute('data-set-actions') || '{}');
  var csrf = (JSON.parse(document.body.getAttribute('hx-headers') || '{}'))['X-CSRFToken'];
  var PARTS = ['dj-now-playing', 'dj-set-status', 'dj-earnings', 'dj-requests'];
  var RETRY_MS = [2000, 4000, 8000, 15000];
  var NEW_FOR_MS = 20000;
  var LABELS = {
    accept: 'Accept', undo: 'Undo accept', veto: 'Veto', playing: 'Play', played: 'Mark played',
    'batch-accept': 'Accept', 'batch-veto': 'Veto', pause: 'Pause requests', resume: 'Resume requests'
  };
  var DOING = {
    accept: 'Accepted', undo: 'Waiting again', veto: 'Vetoed', playing: 'Playing', played: 'Played',
    'batch-accept': 'Accepted', 'batch-veto': 'Vetoed', pause: 'Pausing', resume: 'Resuming'
  };

  // -- storage: IndexedDB, or memory where it is unavailable ---------------------------
  var dbPromise = null;
  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve) {
        if (!window.indexedDB) { resolve(null); return; }
        var request;
        try { request = indexedDB.open('bmm-dj', 1); } catch (e) { resolve(null); return; }
        request.onupgradeneeded = function () {
          request.result.createObjectStore('outbox', { keyPath: 'id', autoIncrement: true });
          request.result.createObjectStore('views');
        };
        request.onsuccess = function () { resolve(request.result); };
        request.onerror = function () { resolve(null); };
      });
    }
    return dbPromise;
  }

  function withStore(name, mode, work) {
    return openDb().then(function (db) {
      if (!db) return null;
      return new Promise(function (resolve) {
        var tx = db.transaction(name, mode);
        var result = work(tx.objectStore(name));
        tx.oncomplete = function () { resolve(result && 'result' in result ? result.result : null); };
        tx.onerror = tx.onabort = function () { resolve(null); };
      });
    });
  }

  var outbox = [];      // the entries, in order (a mirror of the store)
  var memoryId = 0;

  function loadOutbox() {
    return withStore('outbox', 'readonly', function (store) { return store.getAll(); })
      .then(function (entries) { outbox = entries || []; });
  }

  function addEntry(entry) {
    return withStore('outbox', 'readwrite', function (store) { return store.add(entry); })
      .then(function (id) {
        entry.id = id == null ? 'm' + (++memoryId) : id;
        outbox.push(entry);
      });
  }

  function dropEntry(entry) {
    outbox = outbox.filter(function (e) { return e !== entry; });
    if (typeof entry.id === 'number') {
      return withStore('outbox', 'readwrite', function (store) { store.delete(entry.id); });
    }
    return Promise.resolve();
  }

  function newKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes); // works on plain http too (randomUUID needs a secure context)
    return 'dj-' + Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  // -- applying live parts -----------------------------------------------------------------
  // While the live socket is up it alone changes the live parts (dj-live.js
  // applies its small pushes on top of what it sent), so an action's answer is
  // then a toast; otherwise (polling, offline replays) it carries the parts.
  function socketLive() {
    return document.documentElement.getAttribute('data-live-state') === 'live';
  }

  // An answer for another set's page keeps this page's parts (only its toasts are shown).
  function applyParts(html, parts) {
    window.BMM.swapOob(html, { replace: parts !== false });
    document.dispatchEvent(new CustomEvent('bmm:live-update', { detail: { source: 'dj-actions' } }));
  }

  // -- sending -------------------------------------------------------------------------------
  var sending = false;
  var stalled = false;
  var retryTimer = null;
  var failures = 0;

  function encode(fields) {
    var body = new URLSearchParams();
    Object.keys(fields || {}).forEach(function (name) {
      [].concat(fields[name]).forEach(function (value) { body.append(name, value); });
    });
    return body;
  }

  // Why the server said no: its toast, or its error fragment (a 404 has no toast).
  function refusal(html) {
    var template = document.createElement('template');
    template.innerHTML = html;
    var toast = template.content.querySelector('.toast p');
    var error = template.content.querySelector('[data-error-code] p:not(.error-code)');
    return { toast: !!toast, text: (toast || error) ? (toast || error).textContent.trim() : 'The server refused it.' };
  }

  function send(entry) {
    return fetch(entry.url, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'HX-Request': 'true', 'X-CSRFToken': csrf, 'Idempotency-Key': entry.key,
                 'X-Live-Socket': socketLive() ? 'open' : 'closed' },
      body: encode(entry.fields)
    }).then(function (response) {
      return response.text().then(function (body) {
        // An action queued on another set's page, or the socket is live: don't swap parts in.
        var ours = entry.setId === setId && !socketLive();
        if (response.ok) {
          applyParts(body, ours);
          return 'done';
        }
        if (response.status === 401 || body.indexOf('CSRF_FAILED') >= 0) return 'stall';
        if (response.status >= 500 || response.status === 408 || response.status === 429) return 'retry';
        applyParts(body, ours);
        var why = refusal(body);
        // Said at once in a toast; an action that waited offline (or got no toast) stays on screen.
        if (entry.offline || !why.toast) notice('Not applied: ' + entry.label + '. ' + why.text);
        return 'refused';
      });
    }, function () { return 'retry'; });
  }

  function flush() {
    if (sending || stalled || !outbox.length || !navigator.onLine) { render(); return; }
    sending = true;
    var entry = outbox[0];
    entry.sending = true;
    render();
    send(entry).then(function (result) {
      sending = false;
      entry.sending = false;
      if (result === 'retry') {
        entry.offline = true; // it waited: if it is refused later, say so where it stays
        failures += 1;
        clearTimeout(retryTimer);
        retryTimer = setTimeout(flush, RETRY_MS[Math.min(failures - 1, RETRY_MS.length - 1)]);
        render();
        return;
      }
      if (result === 'stall') {
        stalled = true;
        if (!document.querySelector('.dj-notice--stalled')) notice('You are signed out or this page is stale. Sign in again (or reload): your ' +
          outbox.length + ' waiting ' + (outbox.length === 1 ? 'action is' : 'actions are') +
          ' kept and will be sent then.', location.pathname, 'dj-notice--stalled');
        render();
        return;
      }
      failures = 0;
      dropEntry(entry).then(flush);
    });
  }

  function enqueue(kind, url, fields, requestIds, label) {
    var entry = {
      key: newKey(), url: url, fields: fields || {}, kind: kind, label: label,
      requestIds: requestIds || [], setId: setId, offline: !navigator.onLine, queuedAt: Date.now()
    };
    if (kind === 'accept') delete undoDeadlines[requestIds[0]];
    return addEntry(entry).then(flush);
  }

  // -- what the page shows about waiting entries -----------------------------------------------
  function rowFor(id) {
    return root.querySelector('[data-request="' + id + '"]');
  }

  function render() {
    root.querySelectorAll('.dj-pending').forEach(function (el) { el.remove(); });
    root.querySelectorAll('[data-pending]').forEach(function (el) { el.removeAttribute('data-pending'); });
    outbox.forEach(function (entry) {
      var where = entry.sending ? 'sending…' : (navigator.onLine ? 'waiting to send' : 'pending (offline)');
      var targets = entry.requestIds.length ? entry.requestIds.map(rowFor)
        : [document.getElementById('dj-set-status')];
      targets.forEach(function (target) {
        if (!target) return;
        target.setAttribute('data-pending', entry.kind);
        var marker = document.createElement('span');
        marker.className = 'dj-pending'; // redrawn on every change: #dj-outbox is the status region
        marker.textContent = DOING[entry.kind] + ' · ' + where;
        if (entry.kind === 'accept' && !entry.sending) {
          var cancel = document.createElement('button');
          cancel.type = 'button';
          cancel.className = 'button button--ghost button--small';
          cancel.setAttribute('data-cancel', String(entry.id));
          cancel.textContent = 'Undo';
          cancel.setAttribute('aria-label', 'Take back: ' + entry.label);
          marker.appendChild(document.createTextNode(' '));
          marker.appendChild(cancel);
        }
        var slot = target.querySelector('.dj-meta') || target.querySelector('.np-label') || target.querySelector('.card-title');
        (slot || target).appendChild(marker);
      });
    });
    var box = document.getElementById('dj-outbox');
    if (box) {
      box.hidden = !outbox.length;
      var n = outbox.length + ' ' + (outbox.length === 1 ? 'action' : 'actions');
      box.textContent = stalled ? n + ' kept until you sign in again'
        : navigator.onLine ? 'Sending ' + n + '…' : n + ' waiting for the network';
    }
  }

  // A persistent message (refused replays, signing out); closed with its button.
  function notice(text, reloadHref, extraClass) {
    var area = document.getElementById('dj-notices');
    if (!area) return;
    var box = document.createElement('div');
    box.className = 'flash flash--error dj-notice' + (extraClass ? ' ' + extraClass : '');
    var span = document.createElement('span');
    span.textContent = text;
    box.appendChild(span);
    if (reloadHref) {
      var link = document.createElement('a');
      link.href = reloadHref;
      link.className = 'button button--small';
      link.textContent = 'Reload';
      box.appendChild(link);
    }
    var close = document.createElement('button');
    close.type = 'button';
    close.className = 'flash-close';
    close.setAttribute('aria-label', 'Dismiss message');
    close.textContent = '×';
    box.appendChild(close);
    area.appendChild(box);
  }

  // -- after every change of the live parts --------------------------------------------------
  var seen = null;                // request ids shown so far
  var newUntil = {};              // request id -> until when it is marked new
  var undoDeadlines = {};         // request id -> when its undo button goes
  var selected = new Set();       // request ids ticked for a batch action
  var focusMemo = null;           // the action button that had focus, to restore after a swap
  var undoTicker = null;
  var saveTimer = null;

  function rowIds() {
    return Array.prototype.map.call(root.querySelectorAll('.dj-row[data-request]'), function (row) {
      return row.getAttribute('data-request');
    });
  }

  function markNew() {
    var now = Date.now();
    var ids = rowIds();
    if (seen === null) { seen = new Set(ids); return; }
    var arrived = ids.filter(function (id) { return !seen.has(id); });
    arrived.forEach(function (id) { seen.add(id); newUntil[id] = now + NEW_FOR_MS; });
    ids.forEach(function (id) {
      var row = rowFor(id);
      if (!(newUntil[id] > now)) { // rows stay across small pushes: take an old mark off
        row.classList.remove('dj-row--new');
        row.querySelectorAll('.dj-new-badge').forEach(function (badge) { badge.remove(); });
        return;
      }
      row.classList.add('dj-row--new');
      var meta = row.querySelector('.dj-meta');
      if (meta && !meta.querySelector('.dj-new-badge')) {
        var badge = document.createElement('span');
        badge.className = 'badge badge--upcoming dj-new-badge';
        badge.textContent = 'New';
        meta.insertBefore(badge, meta.firstChild);
      }
    });
    var announce = document.getElementById('dj-announce');
    if (announce && arrived.length) {
      announce.textContent = arrived.length === 1 ? 'A new request arrived.' : arrived.length + ' new requests arrived.';
    }
  }

  function tickUndo() {
    var now = Date.now();
    var buttons = root.querySelectorAll('[data-undo-ms]');
    var live = {};
    buttons.forEach(function (button) {
      var id = button.closest('[data-request]').getAttribute('data-request');
      live[id] = true;
      if (!undoDeadlines[id]) undoDeadlines[id] = now + parseInt(button.getAttribute('data-undo-ms'), 10);
      var left = Math.ceil((undoDeadlines[id] - now) / 1000);
      if (left <= 0) { button.remove(); return; }
      button.textContent = 'Undo (' + left + ')';
    });
    Object.keys(undoDeadlines).forEach(function (id) {
      if (!live[id] && undoDeadlines[id] < now) delete undoDeadlines[id];
    });
    clearInterval(undoTicker);
    undoTicker = buttons.length ? setInterval(tickUndo, 250) : null;
  }

  function syncSelection() {
    var present = new Set(rowIds());
    selected.forEach(function (id) { if (!present.has(id)) selected.delete(id); });
    root.querySelectorAll('.dj-select input').forEach(function (box) { box.checked = selected.has(box.value); });
    var all = root.querySelector('[data-select-all]');
    if (all) all.checked = present.size > 0 && selected.size === present.size;
    root.querySelectorAll('[data-batch]').forEach(function (button) {
      button.disabled = selected.size === 0;
      var count = button.querySelector('.dj-batch-count');
      if (count) count.textContent = selected.size ? ' (' + selected.size + ')' : '';
    });
  }

  function refreshAges() {
    root.querySelectorAll('.dj-row time[datetime]').forEach(function (time) {
      // The server writes UTC with its offset ("...+00:00"), so Date.parse is exact.
      var minutes = Math.floor((Date.now() - Date.parse(time.getAttribute('datetime'))) / 60000);
      if (isNaN(minutes)) return;
      time.textContent = minutes < 1 ? 'just now' : minutes < 60 ? minutes + ' min'
        : Math.floor(minutes / 60) + ' h' + (minutes % 60 ? ' ' + (minutes % 60) + ' min' : '');
    });
  }

  function restoreFocus() {
    if (!focusMemo || (document.activeElement && document.activeElement !== document.body)) return;
    var row = rowFor(focusMemo.id);
    // The same button if it is still there (Play, Veto), else the row's first (after Accept: Undo).
    var button = row && (row.querySelector('[data-action="' + focusMemo.action + '"]') || row.querySelector('[data-action]'));
    if (button) button.focus();
  }

  function saveView() {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(function () {
      var html = PARTS.map(function (id) {
        var el = document.getElementById(id);
        if (!el) return '';
        var copy = el.cloneNode(true);
        copy.querySelectorAll('.dj-pending, .dj-new-badge').forEach(function (x) { x.remove(); });
        return copy.outerHTML;
      }).join('');
      withStore('views', 'readwrite', function (store) { store.put({ html: html, at: Date.now() }, setId); });
    }, 400);
  }

  // A busy night: keep the newest few notifications, and let "done" ones go sooner.
  function trimToasts() {
    var toasts = document.querySelectorAll('#toasts .toast');
    for (var i = 0; i < toasts.length - 3; i++) toasts[i].remove();
    document.querySelectorAll('#toasts .toast--done:not([data-dj-timed])').forEach(function (toast) {
      toast.setAttribute('data-dj-timed', '1');
      setTimeout(function () { toast.remove(); }, 4000);
    });
  }

  function afterUpdate() {
    trimToasts();
    markNew();
    tickUndo();
    syncSelection();
    render();
    restoreFocus();
    saveView();
  }

  // -- taps ----------------------------------------------------------------------------------------
  var dialog = document.getElementById('veto-dialog');
  var vetoTarget = null;

  function titleOf(row) {
    var title = row && row.querySelector('.queue-title, .np-title');
    return title ? title.textContent.trim() : 'this request';
  }

  function openVeto(ids, what, batch) {
    vetoTarget = { ids: ids, batch: batch, what: what };
    dialog.querySelector('[data-veto-what]').textContent = what;
    dialog.returnValue = ''; // Escape closes without a value: not a veto
    dialog.showModal();
  }

  if (dialog) {
    dialog.addEventListener('close', function () {
      var target = vetoTarget;
      vetoTarget = null;
      if (dialog.returnValue !== 'veto' || !target) return;
      var ids = target.ids;
      var checked = dialog.querySelector('input[name="reason"]:checked');
      var reason = checked ? checked.value : '';
      if (!target.batch) {
        enqueue('veto', requestActions.veto.replace('__ID__', ids[0]), { reason: reason }, ids, 'Veto ' + target.what);
      } else {
        enqueue('batch-veto', setActions.veto, { request_id: ids, reason: reason }, ids, 'Veto ' + target.what);
        selected.clear();
        syncSelection();
      }
    });
  }

  root.addEventListener('click', function (event) {
    var button = event.target.closest('[data-action], [data-set-action], [data-batch], [data-cancel]');
    if (!button || !root.contains(button)) return;
    if (button.hasAttribute('data-cancel')) {
      var entry = outbox.filter(function (e) { return String(e.id) === button.getAttribute('data-cancel'); })[0];
      if (entry && !entry.sending) dropEntry(entry).then(render);
      return;
    }
    if (button.hasAttribute('data-set-action')) {
      var kind = button.getAttribute('data-set-action');
      enqueue(kind, setActions[kind], {}, [], LABELS[kind]);
      return;
    }
    if (button.hasAttribute('data-batch')) {
      var ids = Array.from(selected);
      if (!ids.length) return;
      if (button.getAttribute('data-batch') === 'veto') {
        openVeto(ids, ids.length + (ids.length === 1 ? ' request' : ' requests'), true);
      } else {
        enqueue('batch-accept', setActions.accept, { request_id: ids }, ids, 'Accept ' + ids.length + ' requests');
        selected.clear();
        syncSelection();
      }
      return;
    }
    var row = button.closest('[data-request]');
    if (!row) return;
    var id = row.getAttribute('data-request');
    var action = button.getAttribute('data-action');
    if (action === 'veto') { openVeto([id], '“' + titleOf(row) + '”', false); return; }
    enqueue(action, requestActions[action].replace('__ID__', id), {}, [id], LABELS[action] + ' “' + titleOf(row) + '”');
  });

  root.addEventListener('change', function (event) {
    var box = event.target;
    if (box.matches('[data-select-all]')) {
      rowIds().forEach(function (id) { if (box.checked) selected.add(id); else selected.delete(id); });
    } else if (box.closest('.dj-select')) {
      if (box.checked) selected.add(box.value); else selected.delete(box.value);
    } else {
      return;
    }
    syncSelection();
  });

  root.addEventListener('focusin', function (event) {
    var button = event.target.closest && event.target.closest('[data-action]');
    var row = button && button.closest('[data-request]');
    focusMemo = row ? { id: row.getAttribute('data-request'), action: button.getAttribute('data-action') } : null;
  });

  document.addEventListener('click', function (event) {
    var close = event.target.closest && event.target.closest('.dj-notice .flash-close');
    if (close) close.closest('.dj-notice').remove();
  });

  // -- the live parts change: socket (live.js), poll (htmx), our own answers ---------------------
  var pending = false;
  function soon() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; afterUpdate(); });
  }
  document.addEventListener('bmm:live-update', soon);
  document.addEventListener('htmx:oobAfterSwap', soon);

  // The 10-second poll is the fallback: skip it while the socket is live, and offline;
  // and drop an answer that comes after the socket is back (its snapshot is newer).
  function isPoll(event) {
    return event.detail && event.detail.elt && event.detail.elt.id === 'dj-poll';
  }
  document.addEventListener('htmx:beforeRequest', function (event) {
    if (isPoll(event) && (!navigator.onLine || socketLive())) event.preventDefault();
  });
  document.addEventListener('htmx:beforeSwap', function (event) {
    if (isPoll(event) && socketLive()) event.preventDefault();
  });

  window.addEventListener('online', function () { failures = 0; stalled = false; flush(); });
  window.addEventListener('offline', render);
  setInterval(refreshAges, 30000);

  // -- start: the outbox from last time, and (offline) the last view --------------------------------
  var start = navigator.onLine ? Promise.resolve() : withStore('views', 'readonly', function (store) {
    return store.get(setId);
  }).then(function (view) { if (view && view.html) applyParts(view.html); });

  afterUpdate();
  start.then(loadOutbox).then(function () { afterUpdate(); flush(); });
})();

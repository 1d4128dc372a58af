/*
 * BeatMatchMe DJ dashboard: the live socket's small pushes. No framework; CSP-safe.
 * Loaded only on the DJ's live dashboard, before dj-actions.js (docs/live.md,
 * "The DJ's small pushes").
 *
 * After its snapshot the dashboard's socket sends only what changed since
 * its previous message: the parts whose version changed (#dj-now-playing,
 * #dj-set-status, #dj-earnings, #dj-count, swapped by id as usual) and
 *
 *   <template id="dj-delta" data-base="41 9f3c2a1b" data-order="id id …" data-check="1a2b3c4d">
 *     <li id="dj-row-…" …>…</li>   the rows that are new or changed
 *   </template>
 *
 * live.js calls BMM.applyChanges(body, had) after its swaps: the rows are
 * put in place by id (new ones added), and, given data-order, rows not in it
 * are removed and the rest moved into that order (unchanged rows are moved,
 * never re-rendered), then numbered 1, 2, 3 … It answers false, and live.js
 * asks for a snapshot, when the message does not follow on from what the page
 * shows (its data-base is not the position the page last applied: a missed
 * message) or the page does not add up to the server's view afterwards (the
 * FNV-1a digest of every part's and row's data-v, in order, differs from
 * data-check: app/live/render.check computes the same). Nothing stays stale.
 */
(function () {
  'use strict';

  var PARTS = ['dj-now-playing', 'dj-set-status', 'dj-earnings', 'dj-count'];

  function fnv1a(text) {
    var h = 0x811c9dc5;
    for (var i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i) & 0xff; // ids and versions are ASCII
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return ('0000000' + h.toString(16)).slice(-8);
  }

  // What the page shows, as the server's check sees it.
  function shown() {
    var parts = PARTS.map(function (id) {
      var el = document.getElementById(id);
      return id + ':' + (el ? el.getAttribute('data-v') : '');
    });
    var rows = Array.prototype.map.call(document.querySelectorAll('#dj-requests .dj-row'), function (row) {
      return row.getAttribute('data-request') + ':' + row.getAttribute('data-v');
    });
    return fnv1a(parts.concat(rows).join(' '));
  }

  // Rows not in `ids` go; the others are moved (only those out of place) into its order.
  function reorder(list, ids) {
    var byId = {};
    var wanted = {};
    ids.forEach(function (id) { wanted[id] = true; });
    Array.prototype.slice.call(list.children).forEach(function (row) {
      var id = row.getAttribute('data-request');
      if (wanted[id]) byId[id] = row; else row.remove();
    });
    var cursor = list.firstElementChild;
    var complete = true;
    ids.forEach(function (id) {
      var row = byId[id];
      if (!row) { complete = false; return; } // a row this page never got
      if (row === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(row, cursor);
    });
    return complete;
  }

  function renumber(list) {
    Array.prototype.forEach.call(list.children, function (row, i) {
      var pos = row.querySelector('.queue-pos');
      if (pos && pos.textContent !== String(i + 1)) pos.textContent = String(i + 1);
    });
  }

  // null: no changes in this message (a snapshot); true: applied and exact; false: ask for a snapshot.
  function applyChanges(html, had) {
    if (html.indexOf('id="dj-delta"') < 0) return null;
    var template = document.createElement('template');
    template.innerHTML = html;
    var delta = template.content.getElementById('dj-delta');
    if (!delta) return null;
    var base = (delta.getAttribute('data-base') || '').split(' ');
    var follows = base[1] === had.epoch && parseInt(base[0], 10) <= had.seq;
    var rows = Array.prototype.slice.call(delta.content.children);
    var order = delta.getAttribute('data-order');
    var complete = true;
    if (rows.length || order !== null) {
      var list = document.querySelector('#dj-requests .dj-queue');
      if (!list) return false;
      rows.forEach(function (row) {
        var old = document.getElementById(row.id);
        if (old) old.replaceWith(row); else list.appendChild(row);
      });
      if (order !== null) complete = reorder(list, order ? order.split(' ') : []);
      renumber(list);
    }
    return follows && complete && shown() === delta.getAttribute('data-check');
  }

  window.BMM.applyChanges = applyChanges;
  window.BMM.shownCheck = shown; // what the page shows, as data-check says it (the tests compare)
})();

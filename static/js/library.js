/*
 * The DJ's library page: "select every track on this page" and the count of
 * ticked tracks on the bulk bar. Without it the page still works: each row's
 * box can be ticked, and "All N tracks" covers whole filters.
 * CSP-safe (no inline code); loaded with <script src defer> by the library page.
 */
(function () {
  'use strict';

  function boxes() {
    return Array.prototype.slice.call(
      document.querySelectorAll('#library-results input[type="checkbox"][name="track_id"]'));
  }

  function refresh() {
    var all = boxes();
    var ticked = all.filter(function (box) { return box.checked; }).length;
    document.querySelectorAll('[data-selected-count]').forEach(function (el) {
      el.textContent = ticked ? '(' + ticked + ' ticked)' : '';
    });
    document.querySelectorAll('[data-select-page]').forEach(function (label) {
      label.hidden = all.length === 0;
      var box = label.querySelector('input');
      box.checked = all.length > 0 && ticked === all.length;
      box.indeterminate = ticked > 0 && ticked < all.length;
    });
  }

  document.addEventListener('change', function (event) {
    var target = event.target;
    if (!target || target.type !== 'checkbox') return;
    if (target.closest('[data-select-page]')) {
      boxes().forEach(function (box) { box.checked = target.checked; });
    }
    refresh();
  });

  document.addEventListener('htmx:load', refresh);
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', refresh);
  } else {
    refresh();
  }
})();

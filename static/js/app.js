/*
 * BeatMatchMe: small progressive enhancements. No framework.
 * CSP-safe: no inline code, no eval. Loaded with <script src defer>.
 *
 * 1. Registers the service worker (/sw.js).
 * 2. Keeps every .conn-status pill in sync with navigator.onLine.
 *    (A later feature will drive it from the WebSocket instead.)
 * 3. Closes .flash messages when their button.flash-close is clicked.
 */
(function () {
  'use strict';

  // 1. Service worker: offline shell + last seen event page.
  function registerServiceWorker() {
    navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(function () {
      // Unsupported context, private mode, ...: the site works without it.
    });
  }

  if ('serviceWorker' in navigator) {
    if (document.readyState === 'complete') {
      registerServiceWorker();
    } else {
      window.addEventListener('load', registerServiceWorker, { once: true });
    }
  }

  // 2. Connection status pills: <span class="conn-status" data-state="...">.
  function syncConnStatus() {
    var online = navigator.onLine;
    document.querySelectorAll('.conn-status').forEach(function (el) {
      el.setAttribute('data-state', online ? 'live' : 'offline');
      el.textContent = online ? 'Online' : 'Offline';
    });
  }

  syncConnStatus();
  window.addEventListener('online', syncConnStatus);
  window.addEventListener('offline', syncConnStatus);
  // htmx fires htmx:load for content it swaps in, which may hold new pills.
  document.addEventListener('htmx:load', syncConnStatus);

  // 3. Dismissible flash messages (delegated, so swapped-in flashes work too).
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button.flash-close');
    if (!button) return;
    var flash = button.closest('.flash');
    if (flash && button.parentElement === flash) {
      flash.remove();
    }
  });
})();

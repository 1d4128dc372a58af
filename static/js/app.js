/*
 * BeatMatchMe: small progressive enhancements. No framework.
 * CSP-safe: no inline code, no eval. Loaded with <script src defer>.
 *
 * 1. Registers the service worker (/sw.js) and tells it which versioned
 *    static files this page uses and its own URL, so it keeps exactly those
 *    for offline. A saved copy it serves offline says when it is from.
 * 2. Keeps every .conn-status pill in sync with navigator.onLine, except on
 *    pages with a live socket ([data-live]), where static/js/live.js does.
 * 3. Closes .flash messages when their button.flash-close is clicked, and
 *    .toast notifications (#toasts) on their button or after 8 seconds.
 * 4. "Sort by distance": asks for the position only when the fan taps it,
 *    then submits it (rounded to ~100 m) for the server to sort events.
 * 5. A tap whose htmx call fails (a 403, a 5xx, no network) says so in a
 *    toast instead of doing nothing; polls stay quiet (they try again).
 *    A 401 needs nothing here: its HX-Redirect goes to sign-in and back.
 * 6. window.BMM: the one out-of-band swap of server fragments (live
 *    messages in live.js, DJ action answers in dj-actions.js) and the one
 *    toast builder.
 */
(function () {
  'use strict';

  // 1. Service worker: offline shell + last seen event page.
  function pageAssets() {
    var urls = [];
    document.querySelectorAll('script[src], link[rel="stylesheet"][href], link[rel="icon"][href]')
      .forEach(function (el) { urls.push(el.src || el.href); });
    return urls;
  }

  // The page is ready to open offline once the worker has stored its files.
  navigator.serviceWorker && navigator.serviceWorker.addEventListener('message', function (event) {
    if (event.data && event.data.type === 'precached') {
      document.documentElement.setAttribute('data-offline-ready', '');
    }
  });

  function registerServiceWorker() {
    navigator.serviceWorker.register('/sw.js', { scope: '/' }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      if (registration.active) {
        registration.active.postMessage({ type: 'precache', urls: pageAssets(), page: location.href });
      }
    }).catch(function () {
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

  // 1b. A saved copy served offline by the worker (<html data-saved-at="ms">):
  // say when it is from, and that live updates resume when online; the first
  // live message after that (live.js) makes the page current and removes it.
  var savedAt = parseInt(document.documentElement.getAttribute('data-saved-at'), 10);
  if (savedAt) {
    var when = new Date(savedAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
    var note = document.createElement('p');
    note.className = 'saved-copy';
    note.setAttribute('role', 'status');
    note.textContent = 'Saved copy from ' + when + '. You are offline: live updates resume when you are back online.';
    var main = document.getElementById('main');
    if (main) main.insertBefore(note, main.firstChild);
    var badge = document.getElementById('event-badge');
    if (badge) badge.textContent = 'As of ' + when;
    document.addEventListener('bmm:live-update', function () {
      note.remove();
      document.documentElement.removeAttribute('data-saved-at');
    }, { once: true });
  }

  // 2. Connection status pills: <span class="conn-status" data-state="...">.
  function syncConnStatus() {
    if (document.querySelector('[data-live]')) return;
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

  // Toasts arrive in htmx responses (refusals) and live updates (live.js).
  function armToasts() {
    document.querySelectorAll('#toasts .toast:not([data-armed])').forEach(function (toast) {
      toast.setAttribute('data-armed', '1');
      setTimeout(function () { toast.remove(); }, 8000);
    });
  }
  document.addEventListener('htmx:load', armToasts);
  document.addEventListener('bmm:live-update', armToasts);
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('.toast-close');
    if (button) button.closest('.toast').remove();
  });

  // 5. Failed taps.
  var FAILURES = {
    403: 'You are not allowed to do that.',
    404: 'That is no longer there. Reload the page.',
    413: 'That is too large.'
  };
  function toast(text) {
    var box = document.getElementById('toasts');
    if (!box) return;
    var item = document.createElement('div');
    item.className = 'toast toast--refused';
    item.setAttribute('role', 'status');
    var p = document.createElement('p');
    p.textContent = text;
    var close = document.createElement('button');
    close.className = 'toast-close';
    close.type = 'button';
    close.setAttribute('aria-label', 'Dismiss notification');
    close.textContent = '×';
    item.appendChild(p);
    item.appendChild(close);
    box.appendChild(item);
    armToasts();
  }
  function userTriggered(detail) {
    return !!(detail && detail.requestConfig && detail.requestConfig.triggeringEvent);
  }
  document.addEventListener('htmx:responseError', function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (!xhr || xhr.status === 401 || !userTriggered(event.detail)) return;
    // A refusal that says why (a suspended fan's vote) carries its sentence.
    var said = xhr.getResponseHeader('X-Refusal');
    toast(said ? decodeURIComponent(said) : (FAILURES[xhr.status] || 'Something went wrong on our side. Please try again.'));
  });
  document.addEventListener('htmx:sendError', function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.matches && elt.matches('.vote-form')) return; // live.js keeps it for later
    if (userTriggered(event.detail)) toast('No connection. Try again when you are back online.');
  });

  // 6. Out-of-band swaps: elements with ids replace the ones on the page;
  // hx-swap-oob="beforeend" appends its children (toasts). With
  // {replace: false} only the appends happen (an answer for another view).
  function swapOob(html, options) {
    var replace = !options || options.replace !== false;
    var template = document.createElement('template');
    template.innerHTML = html;
    Array.prototype.slice.call(template.content.children).forEach(function (fragment) {
      var target = fragment.id && document.getElementById(fragment.id);
      if (!target) return;
      if (fragment.getAttribute('hx-swap-oob') === 'beforeend') {
        Array.prototype.slice.call(fragment.children).forEach(function (child) {
          target.appendChild(child);
          if (window.htmx) htmx.process(child);
        });
      } else if (replace) {
        fragment.removeAttribute('hx-swap-oob');
        target.replaceWith(fragment);
        if (window.htmx) htmx.process(fragment);
      }
    });
    armToasts();
  }

  window.BMM = { swapOob: swapOob, toast: toast };

  // 4. Geolocation for event discovery: <form data-geolocate data-pending>
  // (invisible, its place kept) is shown where the browser can locate.
  document.querySelectorAll('form[data-geolocate]').forEach(function (form) {
    if (!('geolocation' in navigator)) return;
    form.removeAttribute('data-pending');
    var status = document.querySelector('.geo-status');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (status) status.textContent = 'Finding your location…';
      navigator.geolocation.getCurrentPosition(function (pos) {
        form.elements.lat.value = pos.coords.latitude.toFixed(3);
        form.elements.lng.value = pos.coords.longitude.toFixed(3);
        form.submit();
      }, function () {
        if (status) status.textContent = 'Location is off, so events stay sorted by start time.';
      }, { timeout: 10000, maximumAge: 300000 });
    });
  });
})();

/*
 * BeatMatchMe service worker. Served at /sw.js with scope "/".
 *
 * - install:  precache the offline page (SHELL below).
 * - message:  {type: 'precache', urls, page}: each page (static/js/app.js)
 *             sends the versioned /static/ URLs it uses and its own URL;
 *             they are stored from the browser's HTTP cache (sent
 *             immutable), so nothing is downloaded twice and a fan's phone
 *             never stores the DJ's scripts; an event page is kept too, so
 *             the QR code's first visit reloads offline. It answers
 *             {type: 'precached'} when they are stored.
 * - sync:     'bmm-votes' (Background Sync): sends the votes tapped offline.
 * - fetch:    GET only. /static/ is cache-first; page navigations are
 *             network-first, and successful event pages (/e/...) and the
 *             DJ's dashboard (/dj/, /dj/sets/<id>/live) are kept so the last
 *             seen copy still opens offline (dj-actions.js then lays its last
 *             live view and its waiting actions over it). If the network
 *             fails we serve that copy marked <html data-saved-at="ms">
 *             (app.js says it is a saved copy), or else /offline. DJ actions are
 *             POSTs: never touched here; static/js/dj-actions.js queues them.
 * - activate: delete caches from older versions, take control of open tabs.
 *
 * Static URLs carry a content hash (?v=), so a cached copy is never stale;
 * bump VERSION only when the precache list itself changes.
 */
'use strict';

const VERSION = 'v5';
const PREFIX = 'bmm-';
const SHELL_CACHE = `${PREFIX}shell-${VERSION}`;
const PAGES_CACHE = `${PREFIX}pages-${VERSION}`;
const CURRENT_CACHES = [SHELL_CACHE, PAGES_CACHE];
const OFFLINE_URL = '/offline';
const MAX_PAGES = 10; // event pages kept for offline use

const SHELL = [OFFLINE_URL];

// Never intercepted: these always go straight to the network.
const BYPASS_PREFIXES = ['/webhooks', '/live', '/api'];
const BYPASS_EXACT = ['/healthz', '/readyz'];

function isBypassed(path) {
  return BYPASS_EXACT.includes(path) ||
    BYPASS_PREFIXES.some((p) => path === p || path.startsWith(p + '/'));
}

function isEventPage(path) {
  return path.startsWith('/e/');
}

// The DJ's dashboard: a reload in a wifi dead spot still shows the night.
function isDashboardPage(path) {
  return path === '/dj/' || /^\/dj\/sets\/[^/]+\/live$/.test(path);
}

function isKeptPage(path) {
  return isEventPage(path) || isDashboardPage(path);
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting())
  );
});

// Only this site's content-hashed static files: a hash names one content for good.
function isVersionedStatic(url) {
  return url.origin === self.location.origin && url.pathname.startsWith('/static/') &&
    url.searchParams.has('v');
}

self.addEventListener('message', (event) => {
  const data = event.data || {};
  if (data.type !== 'precache' || !Array.isArray(data.urls)) return;
  const urls = data.urls.slice(0, 20)
    .map((href) => { try { return new URL(href, self.location.origin); } catch (err) { return null; } })
    .filter((url) => url && isVersionedStatic(url));
  event.waitUntil(
    caches.open(SHELL_CACHE).then((cache) => Promise.all(urls.map(async (url) => {
      if (await cache.match(url.href)) return;
      // Default cache mode: the copy the page just loaded comes from the HTTP cache.
      const response = await fetch(url.href);
      if (response.ok && response.type === 'basic') await cache.put(url.href, response);
    })))
      .then(() => keepRegisteringPage(data.page))
      .then(() => event.source && event.source.postMessage({ type: 'precached' }))
      .catch(() => {})
  );
});

// The page that registered the worker (no fetch below saw it), from the HTTP
// cache: its first load carried no cookie, hence credentials 'omit'.
async function keepRegisteringPage(href) {
  let url;
  try { url = new URL(href, self.location.origin); } catch (err) { return; }
  if (url.origin !== self.location.origin || !isKeptPage(url.pathname)) return;
  const key = url.origin + url.pathname;
  const cache = await caches.open(PAGES_CACHE);
  if (await cache.match(key, { ignoreVary: true })) return;
  let response;
  try {
    response = await fetch(url.href, { cache: 'only-if-cached', mode: 'same-origin', credentials: 'omit' });
  } catch (err) {
    response = await fetch(url.href, { cache: 'force-cache' });
  }
  if (isStorable(response)) await cache.put(key, await stamped(response));
}

async function stamped(response) {
  const headers = new Headers(response.headers);
  headers.set('X-BMM-Saved-At', String(Date.now()));
  return new Response(await response.blob(), { status: response.status, statusText: response.statusText, headers });
}

// Served offline: <html data-saved-at="ms"> (app.js says so).
async function asSavedCopy(response) {
  const saved = response.headers.get('X-BMM-Saved-At') || '';
  const html = (await response.text()).replace('<html ', `<html data-saved-at="${saved.replace(/\D/g, '')}" `);
  return new Response(html, { status: 200, headers: { 'Content-Type': 'text/html; charset=utf-8' } });
}

// Background Sync: the votes live.js keeps in IndexedDB, taken out at once.
self.addEventListener('sync', (event) => {
  if (event.tag === 'bmm-votes') event.waitUntil(sendQueuedVotes());
});

function sendQueuedVotes() {
  return new Promise((resolve) => {
    const open = indexedDB.open('bmm-fan', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('votes', { keyPath: 'request' });
    open.onerror = () => resolve([]);
    open.onsuccess = () => {
      const tx = open.result.transaction('votes', 'readwrite');
      const all = tx.objectStore('votes').getAll();
      tx.objectStore('votes').clear();
      tx.oncomplete = () => resolve([open.result, all.result || []]);
      tx.onerror = tx.onabort = () => resolve([]);
    };
  }).then(([db, entries]) => Promise.all((entries || []).map(async (entry) => {
    try {
      const response = await fetch(entry.url, {
        method: 'POST', credentials: 'same-origin', body: `vote=${entry.vote}`,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRFToken': entry.csrf,
                   'HX-Request': 'true', 'Idempotency-Key': entry.key },
      });
      if (response.status >= 500 || response.status === 429) throw new Error('later');
    } catch (err) {
      db.transaction('votes', 'readwrite').objectStore('votes').add(entry);
      throw err;
    }
  })));
}

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys
          .filter((key) => key.startsWith(PREFIX) && !CURRENT_CACHES.includes(key))
          .map((key) => caches.delete(key))
      ))
      .then(() => self.clients.claim())
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  if (request.headers.has('HX-Request')) return; // htmx partials: always live

  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (isBypassed(url.pathname)) return;

  if (request.mode === 'navigate') {
    event.respondWith(networkFirstPage(event, url));
  } else if (url.pathname.startsWith('/static/')) {
    event.respondWith(cacheFirst(request));
  } else if (SHELL.includes(url.pathname)) {
    event.respondWith(networkWithShellFallback(request));
  }
  // Anything else: not handled, the browser fetches it normally.
});

// /static/ assets: serve from cache, otherwise fetch and keep a copy.
// Pages link static files as /static/x?v=<content hash>, so a cached copy
// of that exact URL is never stale. Offline, any cached version will do.
async function cacheFirst(request) {
  const cached = await caches.match(request, { cacheName: SHELL_CACHE });
  if (cached) return cached;
  try {
    const response = await fetch(request);
    if (response.ok && response.type === 'basic') {
      const cache = await caches.open(SHELL_CACHE);
      await cache.put(request, response.clone());
    }
    return response;
  } catch (err) {
    const fallback = await caches.match(request, { cacheName: SHELL_CACHE, ignoreSearch: true });
    if (fallback) return fallback;
    throw err;
  }
}

// HTML pages: try the network; remember event pages; fall back offline.
async function networkFirstPage(event, url) {
  // Event pages are stored by path, so /e/x?ref=qr finds the copy of /e/x.
  const key = url.origin + url.pathname;
  try {
    const response = await fetch(event.request);
    if (isKeptPage(url.pathname) && isStorable(response)) {
      const copy = response.clone();
      event.waitUntil(
        caches.open(PAGES_CACHE)
          .then(async (cache) => cache.put(key, await stamped(copy)).then(() => trim(cache)))
          .catch(() => {})
      );
    }
    return response;
  } catch (err) {
    const cached = isKeptPage(url.pathname)
      ? await caches.match(key, { cacheName: PAGES_CACHE, ignoreVary: true })
      : undefined;
    return (cached && isEventPage(url.pathname) ? await asSavedCopy(cached) : cached) ||
      (await caches.match(OFFLINE_URL, { cacheName: SHELL_CACHE })) ||
      Response.error();
  }
}

// Other shell URLs (e.g. the manifest): network, cached copy when offline.
async function networkWithShellFallback(request) {
  try {
    return await fetch(request);
  } catch (err) {
    return (await caches.match(request, { cacheName: SHELL_CACHE })) || Response.error();
  }
}

// Only keep plain 200 same-origin pages the server did not mark no-store.
function isStorable(response) {
  const cc = response.headers.get('Cache-Control') || '';
  return response.status === 200 && response.type === 'basic' &&
    !response.redirected && !/no-store/i.test(cc);
}

// Keep the newest MAX_PAGES entries (cache.put moves a key to the end).
async function trim(cache) {
  const keys = await cache.keys();
  await Promise.all(keys.slice(0, Math.max(0, keys.length - MAX_PAGES)).map((k) => cache.delete(k)));
}

/* ---- Web Push (static/js/push.js subscribes; services/live/push.py sends) ----
 * push:              the payload is JSON {title, body, tag, url}; one
 *                    notification per request (its tag), a newer one replaces it.
 * notificationclick: focus an open tab of this site on that page, or open it.
 */
self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (err) { data = { body: event.data.text() }; }
  const title = data.title || 'BeatMatchMe';
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || '',
    tag: data.tag || 'bmm',
    renotify: Boolean(data.tag),
    icon: '/static/icons/icon-192.png',
    badge: '/static/icons/icon-192.png',
    data: { url: data.url || '/me' },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || '/me', self.location.origin);
  if (target.origin !== self.location.origin) return;
  event.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((tabs) => {
    const same = tabs.find((tab) => new URL(tab.url).pathname === target.pathname);
    if (same) return same.navigate(target.href).then((tab) => (tab || same).focus()).catch(() => same.focus());
    return self.clients.openWindow(target.href);
  }));
});

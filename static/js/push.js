/*
 * Web Push: the "Allow notifications" control (templates/fan/_push_control.html).
 *
 * Shown only where the browser can push (service worker + PushManager +
 * Notification). The permission prompt appears only after a tap on the
 * button, never on load. On "Allow": ask permission, subscribe with the
 * server's VAPID public key, POST the subscription (endpoint, p256dh, auth)
 * with the CSRF token. On "Turn off": unsubscribe in the browser and DELETE
 * it on the server. The service worker (static/sw.js, its push block) shows
 * what arrives.
 */
(function () {
  'use strict';

  var box = document.querySelector('[data-push]');
  if (!box || !('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return;

  var button = box.querySelector('[data-push-toggle]');
  var status = box.querySelector('[data-push-status]');
  var url = box.getAttribute('data-push-url');
  var csrf = (JSON.parse(document.body.getAttribute('hx-headers') || '{}'))['X-CSRFToken'];
  var subscribed = false;

  function keyBytes(base64url) {
    var padded = (base64url + '===='.slice(base64url.length % 4 || 4)).replace(/-/g, '+').replace(/_/g, '/');
    var raw = atob(padded);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function show(on, message) {
    subscribed = on;
    button.textContent = on ? 'Turn off notifications' : 'Allow notifications';
    button.classList.toggle('button--primary', !on);
    button.classList.toggle('button--ghost', on);
    box.setAttribute('data-push-state', on ? 'on' : 'off');
    status.textContent = message || (on ? 'Notifications are on for this phone.' : '');
  }

  function send(method, body) {
    return fetch(url, {
      method: method,
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) throw new Error('server ' + response.status);
      return response;
    });
  }

  function blocked() {
    button.disabled = true;
    show(false, 'Notifications are blocked for this site. Allow them in your browser settings to turn them on.');
  }

  function allow() {
    return Notification.requestPermission().then(function (permission) {
      if (permission !== 'granted') {
        if (permission === 'denied') blocked();
        else show(false, 'Not turned on. Tap again when you want them.');
        return null;
      }
      return navigator.serviceWorker.ready.then(function (registration) {
        return registration.pushManager.getSubscription().then(function (existing) {
          return existing || registration.pushManager.subscribe({
            userVisibleOnly: true,
            applicationServerKey: keyBytes(box.getAttribute('data-push-key'))
          });
        });
      }).then(function (subscription) {
        return send('POST', subscription.toJSON()).then(function () { show(true); });
      });
    });
  }

  function turnOff() {
    return navigator.serviceWorker.ready.then(function (registration) {
      return registration.pushManager.getSubscription();
    }).then(function (subscription) {
      if (!subscription) return null;
      var endpoint = subscription.endpoint;
      return subscription.unsubscribe().then(function () { return send('DELETE', { endpoint: endpoint }); });
    }).then(function () { show(false, 'Notifications are off for this phone.'); });
  }

  button.addEventListener('click', function () {
    button.disabled = true;
    status.textContent = subscribed ? 'Turning off…' : 'Asking your phone…';
    (subscribed ? turnOff() : allow()).catch(function () {
      show(subscribed, 'That did not work. Check your connection and try again.');
    }).then(function () {
      if (Notification.permission !== 'denied') button.disabled = false;
    });
  });

  // The current state, without asking anything.
  box.hidden = false;
  if (Notification.permission === 'denied') {
    blocked();
    return;
  }
  navigator.serviceWorker.ready.then(function (registration) {
    return registration.pushManager.getSubscription();
  }).then(function (subscription) {
    show(Boolean(subscription) && Notification.permission === 'granted');
    // Keep the server's copy current (a renewed subscription, a cleared database).
    if (subscription && Notification.permission === 'granted') send('POST', subscription.toJSON()).catch(function () {});
  }).catch(function () { show(false); });
}());

/*
 * "My requests": share a played song, print a receipt. CSP-safe, no inline code.
 *
 * Share (a[data-share], whose href is the public "my song got played" page):
 * the Web Share API where the phone has it (navigator.share); else the link
 * is copied to the clipboard; where that is refused too, the link is shown
 * selected in its field (.share-fallback) to copy by hand. Without
 * JavaScript the link simply opens the public page.
 *
 * Print (button[data-print], hidden until this script shows it): window.print();
 * the print stylesheet (css/me.css) leaves out the navigation and the buttons.
 */
(function () {
  'use strict';

  function statusOf(link) {
    var item = link.closest('.history-item');
    return item ? item.querySelector('.share-status') : null;
  }

  function say(link, text) {
    var status = statusOf(link);
    if (status) status.textContent = text;
  }

  function showField(link) {
    var item = link.closest('.history-item');
    var box = item && item.querySelector('.share-fallback');
    if (!box) return;
    box.hidden = false;
    var input = box.querySelector('input');
    input.focus();
    input.select();
    say(link, 'Copy the link above to share it.');
  }

  function copy(link) {
    var url = link.href;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(function () {
        link.setAttribute('data-shared', 'copied');
        say(link, 'Link copied. Paste it anywhere to share your song.');
      }, function () { showField(link); });
    } else {
      showField(link);
    }
  }

  document.addEventListener('click', function (event) {
    var link = event.target.closest && event.target.closest('a[data-share]');
    if (!link) return;
    event.preventDefault();
    if (typeof navigator.share === 'function') {
      navigator.share({
        title: link.getAttribute('data-share-title') || document.title,
        text: link.getAttribute('data-share-text') || '',
        url: link.href
      }).then(function () {
        link.setAttribute('data-shared', 'shared');
      }, function (error) {
        if (error && error.name === 'AbortError') return; // the fan closed the share sheet
        copy(link);
      });
    } else {
      copy(link);
    }
  });

  document.querySelectorAll('button[data-print]').forEach(function (button) {
    if (typeof window.print !== 'function') return;
    button.hidden = false;
    button.addEventListener('click', function () { window.print(); });
  });
})();

/* The tip form: typing an amount picks "Other", tapping a preset clears it,
 * and the button says what will be paid ("Send R20 tip"). Without this
 * script the form still works: a typed amount wins on the server. */
(function () {
  "use strict";

  function amountOf(form) {
    var custom = form.querySelector("[data-tip-custom]");
    var typed = custom && custom.value.replace(/[R,\s]/g, "");
    if (typed) {
      var rands = Number(typed);
      return isFinite(rands) && rands > 0 ? rands : null;
    }
    var picked = form.querySelector('input[name="amount"]:checked');
    return picked && picked.value !== "other" ? Number(picked.value) : null;
  }

  function label(form) {
    var button = form.querySelector("[data-tip-submit]");
    if (!button) return;
    var rands = amountOf(form);
    button.textContent = rands ? "Send R" + (Number.isInteger(rands) ? rands : rands.toFixed(2)) + " tip" : "Send tip";
  }

  document.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("[data-tip-form]");
    if (!form) return;
    if (event.target.matches("[data-tip-custom]") && event.target.value.trim()) {
      var other = form.querySelector("[data-tip-other]");
      if (other) other.checked = true;
    }
    label(form);
  });

  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("[data-tip-form]");
    if (!form || !event.target.matches('input[name="amount"]')) return;
    var custom = form.querySelector("[data-tip-custom]");
    if (event.target.value !== "other" && custom) custom.value = "";
    if (event.target.value === "other" && custom) {
      var more = form.querySelector("[data-tip-more]");
      if (more) more.open = true;
      custom.focus();
    }
    label(form);
  });

  // Offline: the tip (with its idempotency key) waits here; its checkout opens once online.
  var KEY = "bmm-tip-intent";
  document.addEventListener("submit", function (event) {
    var form = event.target.closest && event.target.closest("[data-tip-form]");
    if (!form || navigator.onLine) return;
    event.preventDefault();
    var fields = [];
    new FormData(form).forEach(function (value, name) { fields.push([name, value]); });
    localStorage.setItem(KEY, JSON.stringify({ action: form.action, fields: fields, at: Date.now() }));
    if (window.BMM) BMM.toast("No connection: your tip waits on this phone. Checkout opens when you are back online; nothing is charged before you pay there.");
  });

  function sendWaitingTip() {
    var intent = JSON.parse(localStorage.getItem(KEY) || "null");
    if (!intent || !navigator.onLine) return;
    localStorage.removeItem(KEY);
    if (Date.now() - intent.at > 30 * 60 * 1000) return; // stale: the fan can tip again
    var form = document.createElement("form");
    form.method = "post";
    form.action = intent.action;
    form.hidden = true;
    intent.fields.forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }
  window.addEventListener("online", sendWaitingTip);

  function init() {
    document.querySelectorAll("[data-tip-form]").forEach(label);
    sendWaitingTip();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

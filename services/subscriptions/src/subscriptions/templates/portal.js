/* BOS customer portal page: the portal token comes in `#token=` (or `?token=`), is kept in
 * sessionStorage for this tab and dropped from the address bar; everything else goes through
 * /v1/portal/* with that token. Inline under a hash-based CSP: no inline handlers. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("portal-config").textContent);
  var $ = function (x) { return document.getElementById(x); };
  var params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  var token = params.get("token");
  try {
    if (token) sessionStorage.setItem("bos_portal_token", token); else token = sessionStorage.getItem("bos_portal_token");
  } catch (e) { /* storage disabled */ }
  if (params.get("token")) history.replaceState(null, "", location.pathname);
  var subs = [], stripe = null, card = null, busy = false;

  var MESSAGES = {
    session_expired: "This billing link has expired. Ask for a new link to manage your subscription.",
    session_invalid: "This billing link is no longer valid. Ask for a new link.",
    card_declined: "Your card was declined. Try another card.",
    insufficient_funds: "Insufficient funds. Try another card.",
    authentication_failed: "Card authentication failed. Try again or use another card.",
    rate_limited: "Too many requests. Wait a minute, then try again.",
    network: "We couldn't reach the server. Check your connection, then try again.",
    unknown: "Something went wrong. Try again.",
  };
  function message(e) {
    if (e && MESSAGES[e.code]) return MESSAGES[e.code];
    if (e && e.message && e.status && e.status < 500) return e.message;
    return MESSAGES.unknown;
  }
  function problem(code, extra) { var e = new Error(code); e.code = code; return Object.assign(e, extra || {}); }
  function say(t) { $("status").textContent = t; }
  function fail(e) {
    var box = $("error");
    box.textContent = message(e);
    box.hidden = false;
    box.focus();
  }
  function digits(c) { try { return new Intl.NumberFormat("en", { style: "currency", currency: c }).resolvedOptions().maximumFractionDigits; } catch (e) { return 2; } }
  // Amounts and dates in the page's language (its lang attribute), not the browser's
  // default locale: the same text in every engine (WebKitGTK under LANG=C.UTF-8 formats "$ 29.00").
  var LANG = document.documentElement.lang || "en";
  function money(a, c) {
    var cur = (c || "usd").toUpperCase();
    try { return new Intl.NumberFormat(LANG, { style: "currency", currency: cur }).format(a / Math.pow(10, digits(cur))); } catch (e) { return a + " " + cur; }
  }
  function day(s) { return s ? new Date(s).toLocaleDateString(LANG, { year: "numeric", month: "long", day: "numeric" }) : "—"; }
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = text; if (cls) e.className = cls; return e; }

  async function api(method, path, body, raw) {
    var headers = { Authorization: "Bearer " + token };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    var res;
    try {
      res = await fetch(path, { method: method, headers: headers, cache: "no-store", credentials: "omit",
        body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) { throw problem("network"); }
    if (raw && res.ok) return res;
    var data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      var err = (data && data.error) || {};
      throw problem(err.code || "unknown", { status: res.status, message: err.message });
    }
    return data;
  }

  // ---------------------------------------------------------------- subscriptions
  var STATUS = { active: "Active", trialing: "Free trial", past_due: "Payment due", canceled: "Canceled", incomplete: "Incomplete" };

  function renderSubs() {
    var box = $("subscriptions");
    box.textContent = "";
    if (!subs.length) { box.appendChild(el("p", "You have no subscriptions.", "muted")); return; }
    subs.forEach(function (s) {
      var art = el("article", null, "sub");
      art.setAttribute("aria-labelledby", "sub-" + s.id);
      var h = el("h3", s.plan.product_name);
      h.id = "sub-" + s.id;
      var ending = s.cancel_at_period_end && s.status !== "canceled";
      var badge = el("span", ending ? "Cancels " + day(s.current_period_end) : STATUS[s.status] || s.status,
        "badge" + (ending || s.status === "past_due" ? " warn" : s.status === "canceled" ? " off" : ""));
      h.appendChild(badge);
      art.appendChild(h);
      var dl = el("dl");
      function row(k, v) { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); }
      row("Price", s.plan.interval ? money(s.plan.amount, s.plan.currency) + " / " + s.plan.interval : s.is_free ? "Free" : money(s.plan.amount, s.plan.currency));
      if (s.status === "trialing" && s.trial_end) row("Trial ends", day(s.trial_end));
      if (s.status === "canceled") row("Ended", day(s.ended_at || s.canceled_at));
      else if (ending) row("Access until", day(s.current_period_end));
      else if (s.next_billing) row("Next billing date", day(s.next_billing.date) + " · " + money(s.next_billing.amount, s.next_billing.currency));
      art.appendChild(dl);
      if (s.status !== "canceled") {
        var actions = el("div", null, "actions");
        var b = el("button", ending ? "Reactivate" : "Cancel subscription", ending ? "primary" : "secondary");
        b.type = "button";
        b.setAttribute("aria-describedby", h.id);
        b.addEventListener("click", function () { ending ? reactivate(s, b) : askCancel(s, b); });
        actions.appendChild(b);
        art.appendChild(actions);
      }
      box.appendChild(art);
    });
  }

  function askCancel(s, opener) {
    var dialog = $("confirm");
    $("confirm-title").textContent = "Cancel " + s.plan.product_name + "?";
    $("confirm-text").textContent = s.status === "trialing"
      ? "Your free trial ends now and you won't be charged."
      : "You keep access until " + day(s.current_period_end) + " and won't be charged again. You can reactivate before then.";
    $("confirm-cancel").textContent = s.status === "trialing" ? "Cancel now" : "Cancel at period end";
    dialog.onclose = null;
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue === "cancel-sub") doCancel(s); else opener.focus();
    });
    dialog.returnValue = "";
    dialog.showModal();
  }

  async function doCancel(s) {
    say("Canceling…");
    try {
      var updated = await api("POST", "/v1/portal/subscriptions/" + s.id + "/cancel", { at_period_end: true });
      replace(updated);
      say(updated.status === "canceled" ? "Your subscription was canceled." : "Your subscription will end on " + day(updated.current_period_end) + ".");
      focusSub(updated.id);
      loadPayments();
    } catch (e) { fail(e); }
  }

  async function reactivate(s, button) {
    button.disabled = true;
    try {
      var updated = await api("POST", "/v1/portal/subscriptions/" + s.id + "/reactivate");
      replace(updated);
      say("Your subscription was reactivated.");
      focusSub(updated.id);
    } catch (e) { button.disabled = false; fail(e); }
  }

  function replace(updated) {
    subs = subs.map(function (x) { return x.id === updated.id ? updated : x; });
    renderSubs();
  }
  function focusSub(id) {
    var b = document.querySelector('[aria-labelledby="sub-' + id + '"] button');
    (b || $("sub-" + id)).focus();
  }

  // ---------------------------------------------------------------- invoices and payments
  function table(box, caption, head, rows, numeric) {
    box.textContent = "";
    if (!rows.length) { box.appendChild(el("p", "Nothing yet.", "muted")); return; }
    var wrap = el("div", null, "table");
    var t = el("table");
    t.appendChild(el("caption", caption, "sr-only"));
    var thead = el("thead"), tr = el("tr");
    head.forEach(function (h, i) { var th = el("th", h, numeric.indexOf(i) >= 0 ? "num" : null); th.scope = "col"; tr.appendChild(th); });
    thead.appendChild(tr);
    t.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c, i) {
        var td = el("td", null, numeric.indexOf(i) >= 0 ? "num" : null);
        if (c instanceof Node) td.appendChild(c); else td.textContent = c;
        row.appendChild(td);
      });
      tbody.appendChild(row);
    });
    t.appendChild(tbody);
    wrap.appendChild(t);
    box.appendChild(wrap);
  }

  var INVOICE_STATUS = { paid: "Paid", open: "Open", void: "Void", uncollectible: "Unpaid", draft: "Draft" };

  async function download(inv, button) {
    button.disabled = true;
    try {
      var res = await api("GET", inv.pdf_url, undefined, true);
      var blob = await res.blob();
      var url = URL.createObjectURL(blob);
      var a = document.createElement("a");
      a.href = url;
      a.download = "invoice-" + inv.number + ".pdf";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
      say("Invoice " + inv.number + " downloaded.");
    } catch (e) { fail(e); }
    button.disabled = false;
  }

  async function loadInvoices() {
    var list = await api("GET", "/v1/portal/invoices?limit=100");
    table($("invoices"), "Invoices", ["Invoice", "Date", "Total", "Status", "PDF"], list.data.map(function (i) {
      var b = el("button", "Download", "secondary");
      b.type = "button";
      b.setAttribute("aria-label", "Download invoice " + i.number + " (PDF)");
      b.addEventListener("click", function () { download(i, b); });
      return [i.number, day(i.created_at), money(i.total, i.currency), INVOICE_STATUS[i.status] || i.status, b];
    }), [2]);
  }

  async function loadPayments() {
    var list = await api("GET", "/v1/portal/payments?limit=100");
    table($("payments"), "Payment history", ["Date", "Invoice", "Amount", "Result"], list.data.map(function (p) {
      var result = p.status === "succeeded" ? "Paid" : p.status === "failed" ? "Failed" + (p.failure_message ? ": " + p.failure_message : "") : p.status;
      return [day(p.created_at), p.invoice_number, money(p.amount, p.currency), result];
    }), [2]);
  }

  // ---------------------------------------------------------------- card update
  function stripeReady() {
    return new Promise(function (ok, no) {
      if (window.Stripe) return ok(window.Stripe);
      var tag = $("stripe-js");
      tag.addEventListener("load", function () { window.Stripe ? ok(window.Stripe) : no(problem("unknown")); });
      tag.addEventListener("error", function () { no(problem("network")); });
    });
  }

  function setupCard() {
    var toggle = $("card-toggle"), form = $("card-form");
    function show(open) {
      form.hidden = !open;
      toggle.hidden = open;
      toggle.setAttribute("aria-expanded", String(open));
    }
    toggle.addEventListener("click", async function () {
      $("card-status").textContent = "";
      $("card-error").textContent = "";
      try {
        if (!stripe) stripe = (await stripeReady())(cfg.publishableKey);
        if (!card) { card = stripe.elements().create("card", { hidePostalCode: true }); card.mount("#card"); }
      } catch (e) { fail(e); return; }
      show(true);
      card.focus();
    });
    $("card-cancel").addEventListener("click", function () { show(false); toggle.focus(); });
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      if (busy) return;
      busy = true;
      $("card-save").disabled = true;
      $("card-error").textContent = "";
      try {
        var pm = await stripe.createPaymentMethod({ type: "card", card: card });
        if (pm.error) throw problem(pm.error.code || "unknown", { message: pm.error.message, status: 400 });
        var r = await api("POST", "/v1/portal/payment-methods", { payment_method: pm.paymentMethod.id });
        if (r.status === "requires_action" && r.client_secret) {
          var done = await stripe.handleNextAction({ clientSecret: r.client_secret });
          if (done.error) throw problem("authentication_failed");
        } else if (r.status !== "succeeded") {
          throw problem((r.error && r.error.code) || "card_declined", { message: r.error && r.error.message, status: 402 });
        }
        card.clear();
        show(false);
        $("card-status").textContent = "Your card was updated. It will be used for your next payments.";
        toggle.focus();
      } catch (e) {
        $("card-error").textContent = message(e);
        card.focus();
      } finally {
        busy = false;
        $("card-save").disabled = false;
      }
    });
  }

  // ---------------------------------------------------------------- start
  $("confirm-keep").addEventListener("click", function () { $("confirm").close("keep"); });
  $("confirm-cancel").addEventListener("click", function () { $("confirm").close("cancel-sub"); });

  async function start() {
    if (!token) throw problem("session_invalid");
    var list = await api("GET", "/v1/portal/subscriptions?limit=100");
    subs = list.data;
    renderSubs();
    await Promise.all([loadInvoices(), loadPayments()]);
    setupCard();
    $("main").setAttribute("aria-busy", "false");
    say("Billing details loaded.");
  }
  start().catch(function (e) {
    $("main").setAttribute("aria-busy", "false");
    ["subscriptions", "invoices", "payments"].forEach(function (x) { $(x).textContent = ""; });
    $("card-toggle").disabled = true;
    fail(e);
  });
})();

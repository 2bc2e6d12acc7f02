/* BOS hosted checkout page (served inline with a CSP nonce; no build step).
 *
 * Credentials: the checkout's client secret from the URL fragment (`#cs_..._secret_...`,
 * kept in sessionStorage and dropped from the address bar), or, when embedded by the SDK
 * (`#embed=<nonce>`), a session token or client secret handed over a MessageChannel after
 * a handshake with the parent window (origin checked against the organization's allowed
 * origins, nonce echoed, versioned messages). Events and the content height go back over
 * that channel; the parent is asked for a fresh session token before the current one expires.
 */
(function () {
  "use strict";
  var V = 1;
  var cfg = JSON.parse(document.getElementById("bos-config").textContent);
  var id = cfg.checkoutId;
  var $ = function (x) { return document.getElementById(x); };
  var S = {
    secret: null, token: null, tokenExp: 0, port: null, refreshing: null, tokenWaits: {},
    checkout: null, busy: false, stripe: null, card: null, done: false, seq: 0,
  };

  var MESSAGES = {
    card_declined: "Your card was declined. Try another card.",
    insufficient_funds: "Insufficient funds. Try another card.",
    authentication_failed: "Card authentication failed. Try again or use another card.",
    expired_card: "Your card has expired. Try another card.",
    incorrect_cvc: "Your card's security code is incorrect. Check it and try again.",
    processing_error: "An error occurred while processing your card. Try again.",
    invalid_payment_method: "This payment method cannot be used. Try another card.",
    checkout_expired: "This checkout expired. Start again.",
    checkout_canceled: "This checkout was canceled. Start again.",
    checkout_not_found: "This checkout link isn't valid. Ask the seller for a new link.",
    checkout_in_progress: "A payment for this checkout is already in progress. Wait a moment, then reload the page.",
    already_subscribed: "You're already subscribed to this product.",
    session_expired: "Your session expired. Reload the page to continue.",
    session_invalid: "Your session is no longer valid. Reload the page to continue.",
    origin_not_allowed: "This checkout can't be used from this website.",
    rate_limited: "Too many attempts. Wait a minute, then try again.",
    network: "We couldn't reach the server. Check your connection, then try again.",
    unavailable: "Payments are temporarily unavailable. Try again in a moment.",
    stripe_unavailable: "The payment form couldn't load. Reload the page to try again.",
    not_connected: "This checkout couldn't connect to the seller's website. Reload the page.",
    slow: "This is taking longer than usual. We'll keep checking; you don't need to pay again.",
    unknown: "Something went wrong. Try again.",
  };

  function message(err) {
    if (!err) return MESSAGES.unknown;
    var code = err.code;
    if (MESSAGES[code]) return MESSAGES[code];
    if (err.type === "validation_error" && err.message) return err.message;
    if (/^coupon_|invalid_coupon/.test(code || "") && err.message) return err.message;
    if (err.status >= 500 || err.type === "service_unavailable") return MESSAGES.unavailable;
    return err.message && err.status && err.status < 500 ? err.message : MESSAGES.unknown;
  }

  // ------------------------------------------------------------------ helpers
  function sleep(ms) { return new Promise(function (ok) { setTimeout(ok, ms); }); }
  function newKey() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return "bos_" + Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
  }
  function digits(cur) {
    try { return new Intl.NumberFormat("en", { style: "currency", currency: cur }).resolvedOptions().maximumFractionDigits; } catch (e) { return 2; }
  }
  // Amounts and dates in the page's language (its lang attribute), not the browser's
  // default locale: the same text in every engine (WebKitGTK under LANG=C.UTF-8 formats "$ 29.00").
  var LANG = document.documentElement.lang || "en";
  function money(amount, cur) {
    var c = (cur || "usd").toUpperCase();
    try { return new Intl.NumberFormat(LANG, { style: "currency", currency: c }).format(amount / Math.pow(10, digits(c))); } catch (e) { return (amount / 100).toFixed(2) + " " + c; }
  }
  function day(iso) {
    return new Date(iso).toLocaleDateString(LANG, { year: "numeric", month: "long", day: "numeric" });
  }
  function say(text) { $("status").textContent = text; }
  function tokenExp(t) {
    try {
      var p = t.slice("bos_session_".length).split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(p)).exp * 1000;
    } catch (e) { return 0; }
  }
  function problem(code, extra) { var e = new Error(code); e.code = code; if (extra) Object.assign(e, extra); return e; }

  // ------------------------------------------------------------------ parent channel
  function post(msg) {
    if (!S.port) return;
    msg.bos = 1; msg.v = V;
    try { S.port.postMessage(msg); } catch (e) { /* parent gone */ }
  }
  function emit(type, data) { post({ type: "event", event: type, data: Object.assign({ checkout_id: id }, data || {}) }); }

  function handshake(nonce) {
    var peer = window.parent !== window ? window.parent : window.opener;
    if (!peer) return Promise.reject(problem("not_connected"));
    var origins = (cfg.allowedOrigins || []).slice();
    if (origins.indexOf(location.origin) < 0) origins.push(location.origin);
    return new Promise(function (resolve, reject) {
      function onMessage(ev) {
        var d = ev.data;
        if (ev.source !== peer || origins.indexOf(ev.origin) < 0) return;
        if (!d || d.bos !== 1 || d.type !== "init" || d.nonce !== nonce || !ev.ports || !ev.ports[0]) return;
        var anc = location.ancestorOrigins;
        if (peer === window.parent && anc && anc.length && anc[0] !== ev.origin) return;
        if (d.v !== V) { ev.ports[0].postMessage({ bos: 1, v: V, type: "error", code: "unsupported_version" }); return; }
        window.removeEventListener("message", onMessage);
        clearTimeout(timer);
        resolve({ port: ev.ports[0], data: d });
      }
      var timer = setTimeout(function () { window.removeEventListener("message", onMessage); reject(problem("not_connected")); }, 15000);
      window.addEventListener("message", onMessage);
      origins.forEach(function (o) {
        try { peer.postMessage({ bos: 1, v: V, type: "ready", nonce: nonce, checkoutId: id }, o); } catch (e) { /* bad origin */ }
      });
    });
  }

  function onPortMessage(ev) {
    var d = ev.data;
    if (!d || d.bos !== 1 || d.v !== V) return;
    if (d.type === "token" && S.tokenWaits[d.id]) {
      var wait = S.tokenWaits[d.id];
      delete S.tokenWaits[d.id];
      if (d.token) wait.ok(d.token); else wait.no(problem("session_expired"));
    }
  }

  function refreshToken() {
    if (!S.port) return Promise.reject(problem("session_expired"));
    if (S.refreshing) return S.refreshing;
    var rid = "t" + (++S.seq);
    S.refreshing = new Promise(function (ok, no) {
      S.tokenWaits[rid] = { ok: ok, no: no };
      setTimeout(function () { if (S.tokenWaits[rid]) { delete S.tokenWaits[rid]; no(problem("session_expired")); } }, 20000);
      post({ type: "token_request", id: rid, expires_at: S.tokenExp ? Math.floor(S.tokenExp / 1000) : null });
    }).then(function (t) {
      S.token = t; S.tokenExp = tokenExp(t); S.refreshing = null; return t;
    }, function (e) { S.refreshing = null; throw e; });
    return S.refreshing;
  }

  function watchHeight() {
    var last = 0;
    function send() {
      var h = Math.ceil(document.documentElement.getBoundingClientRect().height);
      if (h !== last) { last = h; post({ type: "resize", height: h }); }
    }
    if (window.ResizeObserver) new ResizeObserver(send).observe(document.documentElement);
    window.addEventListener("resize", send);
    send();
  }

  // ------------------------------------------------------------------ API
  async function api(method, path, body, key) {
    for (var attempt = 0; ; attempt++) {
      if (S.token && S.port && S.tokenExp && S.tokenExp - Date.now() < 15000) {
        try { await refreshToken(); } catch (e) { if (S.tokenExp <= Date.now()) throw e; }
      }
      var headers = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (S.token) headers.Authorization = "Bearer " + S.token; else headers["X-Checkout-Secret"] = S.secret || "";
      if (key) headers["Idempotency-Key"] = key;
      var res;
      try {
        res = await fetch(path, { method: method, headers: headers, cache: "no-store", credentials: "omit",
          body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (e) {
        if (attempt < 2 && (method === "GET" || key)) { await sleep(700 * (attempt + 1)); continue; }
        throw problem("network");
      }
      var data = null;
      try { data = await res.json(); } catch (e) { data = null; }
      var err = data && data.error;
      if (res.status === 401 && err && err.code === "session_expired" && S.port && attempt < 2) {
        await refreshToken();
        continue;
      }
      if (res.status === 429 && attempt < 3) {
        var wait = Math.min(parseInt(res.headers.get("Retry-After") || "2", 10) || 2, 20);
        say("Too many requests; retrying in " + wait + " seconds.");
        await sleep(wait * 1000);
        continue;
      }
      if (res.status >= 500 && method === "GET" && attempt < 2) { await sleep(1000); continue; }
      if (!res.ok) throw problem(err && err.code || "unknown", { status: res.status, type: err && err.type, message: err && err.message });
      return data;
    }
  }

  // ------------------------------------------------------------------ rendering
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function line(term, value, cls, sub) {
    var row = el("div", "line" + (cls ? " " + cls : ""));
    var dt = el("dt", null, term);
    if (sub) dt.appendChild(el("span", "sub", sub));
    row.appendChild(dt);
    row.appendChild(el("dd", null, value));
    return row;
  }
  function per(interval) { return interval === "year" ? "year" : interval === "month" ? "month" : interval; }
  function dueNow(c) { return (c.trial ? 0 : c.amount_total) + c.setup_fee; }
  function couponText(cp, cur) {
    var off = cp.percent_off != null ? cp.percent_off + "% off" : money(cp.amount_off || 0, cp.currency || cur) + " off";
    var how = cp.duration === "forever" ? "every payment" : cp.duration === "repeating" && cp.duration_in_months
      ? "for " + cp.duration_in_months + " month" + (cp.duration_in_months === 1 ? "" : "s") : "first payment";
    return off + ", " + how;
  }

  function render(c) {
    S.checkout = c;
    $("title").textContent = c.product.name;
    var recurring = !!c.interval;
    if (c.is_free) {
      $("price").textContent = "Free";
      $("price-note").textContent = recurring ? "No card needed." : "";
    } else {
      $("price").textContent = money(c.amount_total, c.currency) + (recurring ? " per " + per(c.interval) : "");
      var notes = [];
      if (c.interval === "year") notes.push("That's " + money(Math.round(c.amount_total / 12), c.currency) + " per month, billed yearly.");
      if (S.savings && S.savings.amount > 0) notes.push("You save " + money(S.savings.amount, c.currency) + " (" + Math.round(S.savings.percent) + "%) compared with paying monthly.");
      if (c.trial) notes.push(c.trial.days + "-day free trial.");
      $("price-note").textContent = notes.join(" ");
    }
    var lines = $("lines");
    lines.textContent = "";
    lines.appendChild(line(c.product.name + (recurring ? (c.interval === "year" ? " (yearly)" : " (monthly)") : ""), c.is_free ? "Free" : money(c.amount_subtotal, c.currency)));
    if (c.coupon && c.amount_discount) {
      lines.appendChild(line("Discount (" + c.coupon.code + ")", "−" + money(c.amount_discount, c.currency), "discount", couponText(c.coupon, c.currency)));
    }
    if (c.setup_fee) lines.appendChild(line("One-time setup fee", money(c.setup_fee, c.currency)));
    if (c.trial) {
      lines.appendChild(line("Free trial", c.trial.days + " days", null, "Ends " + day(c.trial.ends_at)));
    }
    lines.appendChild(line("Due today", money(dueNow(c), c.currency), "total"));
    if (c.trial && recurring) {
      lines.appendChild(line("Then", money(c.amount_total, c.currency) + " / " + per(c.interval), null, "Starting " + day(c.trial.ends_at)));
    } else if (recurring && !c.is_free && c.coupon && c.coupon.duration !== "forever" && c.amount_discount) {
      lines.appendChild(line("After the discount", money(c.amount_subtotal, c.currency) + " / " + per(c.interval)));
    }
    $("email").value = c.customer.email;
    if (!$("name").value && c.customer.name) $("name").value = c.customer.name;
    var label = c.is_free ? "Get started" : dueNow(c) === 0 ? "Start free trial" : "Pay " + money(dueNow(c), c.currency);
    $("submit-label").textContent = label;
    $("card-section").hidden = c.is_free;
    $("coupon").hidden = c.is_free || !!c.coupon;
    $("coupon-toggle").disabled = false;
    document.title = (c.is_free ? "" : money(dueNow(c), c.currency) + " · ") + c.product.name + " · Checkout";
  }

  function showError(text, focusCard) {
    var box = $("form-error");
    box.textContent = text;
    if (focusCard && S.card && S.card.focus) S.card.focus(); else box.focus();
  }
  function clearError() { $("form-error").textContent = ""; }

  function setBusy(on, text) {
    S.busy = on;
    $("submit").disabled = on;
    $("spinner").hidden = !on;
    $("pay-form").setAttribute("aria-busy", on ? "true" : "false");
    $("coupon-apply").disabled = on;
    if (on) { $("submit-label").textContent = text || "Processing…"; say(text || "Processing your payment…"); }
    else if (S.checkout) render(S.checkout);
  }

  function fatal(text) {
    $("main").setAttribute("aria-busy", "false");
    ["summary", "coupon", "pay-form"].forEach(function (x) { $(x).hidden = true; });
    if (!S.checkout) { $("title").textContent = "Checkout"; $("price").textContent = ""; }
    var box = el("p", "banner", text);
    box.setAttribute("role", "alert");
    $("main").appendChild(box);
    say(text);
  }

  function succeed(c) {
    if (S.done) return;
    S.done = true; S.busy = false;
    $("main").setAttribute("aria-busy", "false");
    ["summary", "coupon", "pay-form"].forEach(function (x) { $(x).hidden = true; });
    $("done-title").textContent = c.is_free ? "You're all set" : "Payment complete";
    $("done-text").textContent = (c.trial ? "Your free trial of " : "Your subscription to ") + c.product.name +
      (c.trial ? " has started." : c.interval ? " is active." : " is confirmed.") + " A confirmation was sent to " + c.customer.email + ".";
    if (!c.interval && !c.trial) $("done-text").textContent = "Thank you! Your purchase of " + c.product.name + " is confirmed. A receipt was sent to " + c.customer.email + ".";
    if (c.success_url && !S.port) {
      var a = $("done-link");
      a.href = c.success_url;
      a.hidden = false;
    }
    var done = $("done");
    done.hidden = false;
    done.focus();
    say($("done-title").textContent);
    emit("completed", { subscription_id: c.subscription_id, status: c.status });
  }

  // ------------------------------------------------------------------ payment flow
  async function waitForOutcome() {
    var delays = [300, 500, 700, 1000, 1000, 1500, 1500, 2000];
    var started = Date.now(), warned = false;
    for (var i = 0; ; i++) {
      await sleep(delays[Math.min(i, delays.length - 1)]);
      var c = await api("GET", "/v1/checkout-sessions/" + id);
      if (c.status === "complete") { S.checkout = c; return succeed(c); }
      if (c.status === "expired") throw problem("checkout_expired");
      if (c.status === "canceled") throw problem("checkout_canceled");
      if (c.status === "open") {
        S.checkout = c;
        var e = c.payment && c.payment.error;
        throw e ? problem(e.code, { message: e.message, status: 402 }) : problem("unknown");
      }
      if (!warned && Date.now() - started > 45000) { warned = true; say(MESSAGES.slow); $("form-error").textContent = MESSAGES.slow; }
      if (Date.now() - started > 180000) { delays = [5000]; }
    }
  }

  async function confirmWith(pmId, key, walletEvent) {
    var r = await api("POST", "/v1/checkout-sessions/" + id + "/confirm", { payment_method: pmId }, key);
    if (r.status === "failed") {
      if (walletEvent) walletEvent.complete("fail");
      throw problem(r.error && r.error.code || "card_declined", { message: r.error && r.error.message, status: 402 });
    }
    if (walletEvent) walletEvent.complete("success");
    emit("confirmed", { status: r.status });
    if (r.status === "complete") return succeed(await api("GET", "/v1/checkout-sessions/" + id));
    if (r.status === "requires_action") {
      emit("requires_action", { action: r.next_action && r.next_action.type });
      $("submit-label").textContent = "Waiting for your bank…";
      say("Your bank needs to confirm this payment.");
      await S.stripe.handleNextAction({ clientSecret: r.next_action.client_secret });
      $("submit-label").textContent = "Processing…";
      // Whatever the challenge said, the checkout's own state decides (a failure reopens it).
    }
    return waitForOutcome();
  }

  async function pay(ev) {
    if (ev) ev.preventDefault();
    if (S.busy || S.done || !S.checkout) return;
    var key = newKey(); // one Idempotency-Key per attempt
    setBusy(true);
    clearError();
    try {
      if (S.checkout.is_free) {
        await api("POST", "/v1/checkout-sessions/" + id + "/confirm-free", undefined, key);
        emit("confirmed", { status: "processing" });
        await waitForOutcome();
        return;
      }
      if (!S.stripe) throw problem("stripe_unavailable");
      var name = $("name").value.trim();
      var pm = await S.stripe.createPaymentMethod({ type: "card", card: S.card,
        billing_details: { name: name || undefined, email: S.checkout.customer.email } });
      if (pm.error) { setBusy(false); showError(pm.error.message || MESSAGES.unknown, true); return; }
      await confirmWith(pm.paymentMethod.id, key);
    } catch (e) {
      if (e && e.code === "checkout_in_progress") {
        // Another tab or an earlier attempt is paying: follow it instead of paying twice.
        try { await waitForOutcome(); return; } catch (e2) { e = e2; }
      }
      failed(e);
    }
  }

  function failed(e) {
    if (S.done) return;
    if (e && e.code === "checkout_complete") { api("GET", "/v1/checkout-sessions/" + id).then(succeed, function () {}); return; }
    var text = message(e);
    setBusy(false);
    emit("failed", { code: e && e.code || "unknown", message: text });
    if (e && (e.code === "checkout_expired" || e.code === "checkout_canceled" || e.code === "already_subscribed")) { fatal(text); return; }
    var cardish = e && /declined|insufficient|authentication|expired_card|cvc|invalid_payment|processing_error/.test(e.code || "");
    showError(text, cardish);
    say(text);
  }

  // ------------------------------------------------------------------ coupons
  function setupCoupon() {
    var toggle = $("coupon-toggle"), panel = $("coupon-panel"), input = $("coupon-code"), msg = $("coupon-msg");
    toggle.addEventListener("click", function () {
      var open = panel.hidden;
      panel.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      if (open) input.focus();
    });
    async function apply() {
      var code = input.value.trim();
      msg.classList.remove("bad");
      input.removeAttribute("aria-invalid");
      if (!code) { msg.textContent = "Enter a promotion code."; msg.classList.add("bad"); input.setAttribute("aria-invalid", "true"); input.focus(); return; }
      if (S.busy) return;
      $("coupon-apply").disabled = true;
      msg.textContent = "Checking code…";
      try {
        var c = await api("POST", "/v1/checkout-sessions/" + id + "/coupon", { code: code });
        render(c);
        say("Promotion code " + code + " applied. You save " + money(c.amount_discount, c.currency) + ".");
        msg.textContent = "";
        $("name").focus();
      } catch (e) {
        msg.textContent = message(e);
        msg.classList.add("bad");
        input.setAttribute("aria-invalid", "true");
        input.focus();
      } finally {
        $("coupon-apply").disabled = S.busy;
      }
    }
    $("coupon-apply").addEventListener("click", apply);
    input.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { ev.preventDefault(); apply(); } });
  }

  // ------------------------------------------------------------------ Stripe
  function stripeReady() {
    return new Promise(function (ok, no) {
      if (window.Stripe) return ok(window.Stripe);
      var tag = $("stripe-js");
      tag.addEventListener("load", function () { window.Stripe ? ok(window.Stripe) : no(problem("stripe_unavailable")); });
      tag.addEventListener("error", function () { no(problem("stripe_unavailable")); });
    });
  }

  async function setupPayments(c) {
    var Stripe = await stripeReady();
    S.stripe = Stripe(cfg.publishableKey);
    if (c.is_free) return;
    var elements = S.stripe.elements();
    S.card = elements.create("card", { hidePostalCode: true });
    S.card.mount("#card");
    S.card.on("change", function (e) { if (!e.error) clearError(); });
    // The wallet's country is the account that takes the payment (the page's config).
    if (S.stripe.paymentRequest && cfg.country) {
      var pr = S.stripe.paymentRequest({ country: cfg.country, currency: c.currency,
        total: { label: c.product.name, amount: dueNow(c) }, requestPayerName: true });
      var can = null;
      try { can = await pr.canMakePayment(); } catch (e) { can = null; }
      if (can) {
        var button = elements.create("paymentRequestButton", { paymentRequest: pr });
        button.on("click", function (ev) {
          if (S.busy || S.done) { ev.preventDefault(); return; }
          pr.update({ total: { label: S.checkout.product.name, amount: dueNow(S.checkout) } });
        });
        pr.on("paymentmethod", async function (ev) {
          if (S.busy || S.done) { ev.complete("fail"); return; }
          setBusy(true);
          clearError();
          var answered = false;
          var sheet = { complete: function (r) { if (!answered) { answered = true; ev.complete(r); } } };
          try { await confirmWith(ev.paymentMethod.id, newKey(), sheet); } catch (e) { sheet.complete("fail"); failed(e); }
        });
        button.mount("#wallet-button");
        $("wallet").hidden = false;
      }
    }
  }

  // ------------------------------------------------------------------ start
  async function start() {
    var frag = location.hash.slice(1);
    var key = "bos_cs_" + id;
    var nonce = /^embed=([A-Za-z0-9_-]{16,64})$/.exec(frag);
    if (nonce) {
      document.body.classList.add("embedded");
      var hs = await handshake(nonce[1]);
      S.port = hs.port;
      S.port.onmessage = onPortMessage;
      if (hs.data.sessionToken) { S.token = String(hs.data.sessionToken); S.tokenExp = tokenExp(S.token); }
      else S.secret = String(hs.data.clientSecret || "");
      post({ type: "ack", nonce: nonce[1] });
      watchHeight();
    } else {
      var secret = decodeURIComponent(frag);
      if (/^cs_[A-Za-z0-9]+_secret_[A-Za-z0-9_-]+$/.test(secret)) {
        try { sessionStorage.setItem(key, secret); } catch (e) { /* private mode */ }
        history.replaceState(null, "", location.pathname + location.search);
      } else {
        try { secret = sessionStorage.getItem(key); } catch (e) { secret = null; }
      }
      if (!secret) throw problem("checkout_not_found");
      S.secret = secret;
    }
    var stripeLoad = stripeReady().catch(function () { return null; });
    var c = await api("GET", "/v1/checkout-sessions/" + id);
    render(c);
    setupCoupon();
    $("pay-form").addEventListener("submit", pay);
    $("main").setAttribute("aria-busy", "false");
    if (c.status === "complete") return succeed(c);
    if (c.status === "expired") throw problem("checkout_expired");
    if (c.status === "canceled") throw problem("checkout_canceled");
    if (c.interval === "year" && !c.is_free) {
      api("GET", "/checkout/" + id + "/savings").then(function (r) {
        if (r && r.savings) { S.savings = r.savings; if (!S.busy && !S.done) render(S.checkout); }
      }, function () { /* the price stands without it */ });
    }
    await stripeLoad;
    try { await setupPayments(c); } catch (e) { if (!c.is_free) throw e; }
    emit("loaded", { status: c.status, amount_total: c.amount_total, currency: c.currency, is_free: c.is_free });
    say(c.product.name + ": checkout ready.");
    if (c.status === "processing") {
      setBusy(true);
      try { await waitForOutcome(); } catch (e) { failed(e); }
      return;
    }
    $("submit").disabled = false;
    // When the customer can pay (time to interactive, read by any engine's Performance API).
    try { performance.mark("bos:interactive"); } catch (e) { /* no User Timing */ }
  }

  start().catch(function (e) {
    var text = message(e);
    emit("failed", { code: e && e.code || "unknown", message: text });
    fatal(text);
  });
})();

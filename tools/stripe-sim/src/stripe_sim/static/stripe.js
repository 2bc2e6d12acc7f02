/*
 * stripe-sim: a fake Stripe.js v3 for offline tests. It talks to the simulator that served it.
 *
 * Supported: Stripe(pk, {stripeAccount}), elements(), create('card' | 'payment' |
 * 'paymentRequestButton'), mount/unmount/destroy/clear/focus/update, on('change' | 'ready' |
 * 'focus' | 'blur'), createPaymentMethod, confirmCardPayment, confirmCardSetup,
 * handleCardAction, handleNextAction, confirmPayment, confirmSetup, retrievePaymentIntent,
 * retrieveSetupIntent, paymentRequest() (canMakePayment, show, on('paymentmethod' | 'cancel')).
 *
 * Card fields live in an iframe from the simulator's origin ("Secure card payment input
 * frame"), as Stripe's Elements do: the page talks to it with postMessage and never sees the
 * card, which the frame turns into a PaymentMethod itself. Tests fill them through a frame
 * locator. The 3D Secure challenge is a frame of that origin too ("3D Secure authentication").
 * Wallets: add ?wallet=apple_pay (or google_pay, or apple_pay,google_pay) to the script URL,
 * or ?sim_wallet=... to the page URL; without it canMakePayment() resolves null.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var scriptUrl = new URL(script && script.src ? script.src : window.location.href);
  var API_BASE = scriptUrl.origin;
  var pageParams = new URLSearchParams(window.location.search);
  var WALLET_FLAG = (scriptUrl.searchParams.get("wallet") || pageParams.get("sim_wallet") || "")
    .split(",")
    .map(function (s) { return s.trim(); })
    .filter(function (s) { return s === "apple_pay" || s === "google_pay"; });

  // ---------------------------------------------------------------- helpers
  function encode(params, prefix, out) {
    out = out || [];
    Object.keys(params || {}).forEach(function (key) {
      var value = params[key];
      var name = prefix ? prefix + "[" + key + "]" : key;
      if (value === undefined || value === null) return;
      if (Array.isArray(value)) {
        value.forEach(function (item, i) {
          if (typeof item === "object") encode(item, name + "[" + i + "]", out);
          else out.push(encodeURIComponent(name + "[" + i + "]") + "=" + encodeURIComponent(item));
        });
      } else if (typeof value === "object") {
        encode(value, name, out);
      } else {
        out.push(encodeURIComponent(name) + "=" + encodeURIComponent(String(value)));
      }
    });
    return out.join("&");
  }

  function intentIdFromSecret(secret) {
    var match = /^((?:pi|seti)_[A-Za-z0-9]+)_secret_/.exec(secret || "");
    return match ? match[1] : null;
  }

  function validationError(code, message, param) {
    return { type: "validation_error", code: code, message: message, param: param };
  }

  function Emitter() { this._handlers = {}; }
  Emitter.prototype.on = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    return this;
  };
  Emitter.prototype.once = function (event, handler) {
    var self = this;
    function wrapper(arg) { self.off(event, wrapper); handler(arg); }
    return this.on(event, wrapper);
  };
  Emitter.prototype.off = function (event, handler) {
    var list = this._handlers[event] || [];
    this._handlers[event] = handler ? list.filter(function (h) { return h !== handler; }) : [];
    return this;
  };
  Emitter.prototype._emit = function (event, arg) {
    (this._handlers[event] || []).slice().forEach(function (h) { h(arg); });
  };

  // ---------------------------------------------------------------- card fields (iframe)
  var uid = 0;
  var CARD_FRAME_TITLE = "Secure card payment input frame";
  var PAGE_ORIGIN = window.location.origin;

  /* Frames of this page on the simulator's origin: messages from them, by element id. */
  var frameListeners = {};
  window.addEventListener("message", function (event) {
    if (event.origin !== API_BASE) return;
    var msg = event.data || {};
    var listener = frameListeners[msg.id];
    if (msg.source === "stripe-sim-element" && listener && event.source === listener.window()) listener.handle(msg);
  });

  /* The card element: a proxy of the fields in an iframe from the simulator's origin. The
   * page never holds the card: the frame validates it and creates the PaymentMethod. */
  function CardFields(elementType, options) {
    Emitter.call(this);
    this.elementType = elementType;
    this.options = options || {};
    this._id = "el" + (++uid) + "_" + Math.random().toString(36).slice(2, 10);
    this._frame = null;
    this._wrapper = null;
    this._requests = {};
    this._nextRequest = 0;
    this._queue = [];
    this._ready = false;
  }
  CardFields.prototype = Object.create(Emitter.prototype);

  CardFields.prototype.mount = function (target) {
    var host = typeof target === "string" ? document.querySelector(target) : target;
    if (!host) throw new Error("stripe-sim: mount target not found: " + target);
    if (this._frame) this.unmount();
    var self = this;
    var wrapper = document.createElement("div");
    wrapper.className = "StripeElement StripeSimElement";
    wrapper.setAttribute("data-stripe-sim-element", this.elementType);
    var frame = document.createElement("iframe");
    var hash = new URLSearchParams({
      id: this._id, type: this.elementType, origin: PAGE_ORIGIN,
      hidePostalCode: this.options.hidePostalCode === false ? "false" : "true",
    });
    frame.name = "__privateStripeFrame" + uid;
    frame.title = CARD_FRAME_TITLE;
    frame.setAttribute("frameborder", "0");
    frame.setAttribute("allowtransparency", "true");
    frame.setAttribute("scrolling", "no");
    frame.setAttribute("allow", "payment *");
    frame.style.border = "0";
    frame.style.width = "100%";
    frame.style.height = "192px";  // the fields' height, so that nothing moves once loaded
    frame.style.display = "block";
    frame.style.overflow = "hidden";
    frame.src = API_BASE + "/js.stripe.com/v3/elements-inner-card.html#" + hash.toString();
    frameListeners[this._id] = {
      window: function () { return frame.contentWindow; },
      handle: function (msg) { self._onMessage(msg); },
    };
    wrapper.appendChild(frame);
    host.appendChild(wrapper);
    this._wrapper = wrapper;
    this._frame = frame;
    this._ready = false;
    return this;
  };

  CardFields.prototype._onMessage = function (msg) {
    var payload = msg.payload || {};
    if (msg.type === "ready") {
      this._ready = true;
      var queued = this._queue;
      this._queue = [];
      queued.forEach(function (send) { send(); });
      this._emit("ready", payload);
    } else if (msg.type === "resize") {
      if (this._frame && payload.height) this._frame.style.height = payload.height + "px";
    } else if (msg.type === "reply") {
      var resolve = this._requests[payload.requestId];
      delete this._requests[payload.requestId];
      if (resolve) resolve(payload.result || {});
    } else if (msg.type === "submit") {
      var form = this._wrapper && this._wrapper.closest("form");
      if (form && form.requestSubmit) form.requestSubmit();
    } else {
      this._emit(msg.type, payload);  // change, focus, blur
    }
  };

  /* Ask the frame to do something; resolves with its reply. */
  CardFields.prototype._ask = function (type, payload) {
    var self = this;
    if (!this._frame) {
      return Promise.resolve({ error: validationError("incomplete", "The card element is not mounted.") });
    }
    return new Promise(function (resolve) {
      var requestId = ++self._nextRequest;
      self._requests[requestId] = resolve;
      var send = function () {
        self._frame.contentWindow.postMessage({
          source: "stripe-sim-js", id: self._id, type: type, requestId: requestId, payload: payload,
        }, API_BASE);
      };
      if (self._ready) send(); else self._queue.push(send);
    });
  };

  /* -> Promise<{paymentMethod} | {error}>, created inside the frame. */
  CardFields.prototype._createPaymentMethod = function (stripe, billingDetails, metadata) {
    return this._ask("createPaymentMethod", {
      key: stripe._key,
      stripeAccount: stripe._options.stripeAccount,
      apiVersion: stripe._options.apiVersion,
      billing_details: billingDetails || {},
      metadata: metadata,
    });
  };
  CardFields.prototype._validate = function () { return this._ask("validate", {}); };

  CardFields.prototype.unmount = function () {
    if (this._wrapper && this._wrapper.parentNode) this._wrapper.parentNode.removeChild(this._wrapper);
    delete frameListeners[this._id];
    this._wrapper = null;
    this._frame = null;
    this._ready = false;
    return this;
  };
  CardFields.prototype.destroy = function () { this.unmount(); this._handlers = {}; };
  CardFields.prototype.clear = function () { this._ask("clear", {}); };
  CardFields.prototype.focus = function () { if (this._frame) { this._frame.focus(); this._ask("focus", {}); } };
  CardFields.prototype.blur = function () { this._ask("blur", {}); };
  CardFields.prototype.update = function (options) {
    Object.assign(this.options, options || {});
    this._ask("update", options || {});
    return this;
  };

  // ---------------------------------------------------------------- modal (wallet sheet)
  function modal(titleText, bodyText, buttons) {
    return new Promise(function (resolve) {
      var overlay = document.createElement("div");
      overlay.setAttribute("data-stripe-sim-modal", "");
      overlay.style.cssText = "position:fixed;inset:0;background:rgba(0,0,0,.4);display:flex;align-items:center;justify-content:center;z-index:2147483647";
      var dialog = document.createElement("div");
      var titleId = "stripe-sim-modal-title-" + (++uid);
      dialog.setAttribute("role", "dialog");
      dialog.setAttribute("aria-modal", "true");
      dialog.setAttribute("aria-labelledby", titleId);
      dialog.style.cssText = "background:#fff;padding:1.5rem;border-radius:8px;min-width:18rem;font-family:system-ui,sans-serif";
      var title = document.createElement("h2");
      title.id = titleId;
      title.textContent = titleText;
      var text = document.createElement("p");
      text.textContent = bodyText;
      dialog.appendChild(title);
      dialog.appendChild(text);
      buttons.forEach(function (spec) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = spec.label;
        button.style.marginRight = ".5rem";
        button.addEventListener("click", function () {
          document.body.removeChild(overlay);
          resolve(spec.value);
        });
        dialog.appendChild(button);
      });
      overlay.appendChild(dialog);
      document.body.appendChild(overlay);
      var first = dialog.querySelector("button");
      if (first) first.focus();
    });
  }

  // ---------------------------------------------------------------- payment request (wallets)
  function PaymentRequest(stripe, options) {
    Emitter.call(this);
    this._stripe = stripe;
    this._options = options || {};
    this._showing = false;
  }
  PaymentRequest.prototype = Object.create(Emitter.prototype);
  PaymentRequest.prototype.canMakePayment = function () {
    if (!WALLET_FLAG.length) return Promise.resolve(null);
    return Promise.resolve({
      applePay: WALLET_FLAG.indexOf("apple_pay") >= 0,
      googlePay: WALLET_FLAG.indexOf("google_pay") >= 0,
      link: false,
    });
  };
  PaymentRequest.prototype.update = function (options) { Object.assign(this._options, options || {}); };
  PaymentRequest.prototype.isShowing = function () { return this._showing; };
  PaymentRequest.prototype.abort = function () { this._showing = false; };
  PaymentRequest.prototype.show = function () {
    var self = this;
    if (!WALLET_FLAG.length) throw new Error("stripe-sim: no wallet available (see ?wallet=)");
    var wallet = WALLET_FLAG[0];
    var walletLabel = wallet === "apple_pay" ? "Apple Pay" : "Google Pay";
    var total = this._options.total || {};
    var amountText = total.amount != null ? " " + (total.amount / 100).toFixed(2) + " " + String(this._options.currency || "").toUpperCase() : "";
    this._showing = true;
    return modal(walletLabel + " (simulated)", (total.label || "Total") + amountText, [
      { label: "Pay with " + walletLabel, value: "pay" },
      { label: "Cancel", value: "cancel" },
    ]).then(function (choice) {
      if (choice !== "pay") { self._showing = false; self._emit("cancel", {}); return; }
      var billing = { name: self._options.requestPayerName ? "Sim Wallet Payer" : undefined,
        email: self._options.requestPayerEmail ? "wallet@example.com" : undefined };
      return self._stripe._sim("POST", "/_sim/payment_methods/wallet", { wallet: wallet, billing_details: billing }).then(function (res) {
        if (!res.ok) { self._showing = false; self._emit("cancel", { error: res.body.error }); return; }
        self._emit("paymentmethod", {
          paymentMethod: res.body,
          walletName: wallet === "apple_pay" ? "applePay" : "googlePay",
          methodName: wallet === "apple_pay" ? "apple-pay" : "https://google.com/pay",
          payerName: billing.name,
          payerEmail: billing.email,
          complete: function () { self._showing = false; },
        });
      });
    });
  };

  function PaymentRequestButton(options) {
    Emitter.call(this);
    this.elementType = "paymentRequestButton";
    this._options = options || {};
    this._root = null;
  }
  PaymentRequestButton.prototype = Object.create(Emitter.prototype);
  PaymentRequestButton.prototype.mount = function (target) {
    var host = typeof target === "string" ? document.querySelector(target) : target;
    var pr = this._options.paymentRequest;
    var self = this;
    var button = document.createElement("button");
    button.type = "button";
    button.setAttribute("data-stripe-sim-element", "paymentRequestButton");
    var wallet = WALLET_FLAG[0];
    button.textContent = wallet === "google_pay" ? "Pay with Google Pay" : "Pay with Apple Pay";
    button.addEventListener("click", function (ev) {
      self._emit("click", ev);
      if (!ev.defaultPrevented) pr.show();
    });
    host.appendChild(button);
    this._root = button;
    setTimeout(function () { self._emit("ready", { elementType: self.elementType }); }, 0);
    return this;
  };
  PaymentRequestButton.prototype.unmount = function () {
    if (this._root && this._root.parentNode) this._root.parentNode.removeChild(this._root);
    this._root = null;
  };
  PaymentRequestButton.prototype.destroy = PaymentRequestButton.prototype.unmount;
  PaymentRequestButton.prototype.update = function (options) { Object.assign(this._options, options || {}); };

  // ---------------------------------------------------------------- elements group
  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = options || {};
    this._byType = {};
  }
  Elements.prototype.create = function (type, options) {
    var element;
    if (type === "card" || type === "payment") element = new CardFields(type, options);
    else if (type === "paymentRequestButton") element = new PaymentRequestButton(options);
    else throw new Error("stripe-sim: unsupported element type " + type);
    element._group = this;
    this._byType[type] = element;
    return element;
  };
  Elements.prototype.getElement = function (type) { return this._byType[type] || null; };
  Elements.prototype.update = function (options) { Object.assign(this._options, options || {}); };
  Elements.prototype.fetchUpdates = function () { return Promise.resolve({}); };
  Elements.prototype.submit = function () {
    var element = this._byType.payment || this._byType.card;
    if (!element) return Promise.resolve({ error: validationError("incomplete", "No payment element mounted.") });
    return element._validate().then(function (r) { return r.error ? { error: r.error } : {}; });
  };

  // ---------------------------------------------------------------- Stripe instance
  function StripeSim(key, options) {
    if (!(this instanceof StripeSim)) return new StripeSim(key, options);
    if (typeof key !== "string" || key.indexOf("pk_") !== 0) {
      throw new Error("IntegrationError: Invalid API Key provided: " + key);
    }
    this._key = key;
    this._options = options || {};
  }

  StripeSim.prototype._headers = function (json) {
    var headers = { Authorization: "Bearer " + this._key };
    headers["Content-Type"] = json ? "application/json" : "application/x-www-form-urlencoded";
    if (this._options.stripeAccount) headers["Stripe-Account"] = this._options.stripeAccount;
    if (this._options.apiVersion) headers["Stripe-Version"] = this._options.apiVersion;
    return headers;
  };

  StripeSim.prototype._request = function (method, path, params) {
    var url = API_BASE + path;
    var init = { method: method, headers: this._headers(false) };
    var body = encode(params || {});
    if (method === "GET") { if (body) url += "?" + body; } else { init.body = body; }
    return fetch(url, init).then(function (res) {
      return res.json().then(function (json) { return { ok: res.ok, status: res.status, body: json }; });
    }, function (err) {
      return { ok: false, status: 0, body: { error: { type: "api_connection_error", message: String(err) } } };
    });
  };

  StripeSim.prototype._sim = function (method, path, payload) {
    return fetch(API_BASE + path, {
      method: method, headers: this._headers(true), body: JSON.stringify(payload || {}),
    }).then(function (res) {
      return res.json().then(function (json) { return { ok: res.ok, status: res.status, body: json }; });
    });
  };

  StripeSim.prototype.elements = function (options) { return new Elements(this, options); };
  StripeSim.prototype.paymentRequest = function (options) { return new PaymentRequest(this, options); };

  /* -> Promise<{paymentMethod} | {error}> from an element (card or payment). */
  StripeSim.prototype._createFromElement = function (element, billingDetails, metadata) {
    if (!element || !element._createPaymentMethod) {
      return Promise.resolve({ error: validationError("incomplete", "No card element is mounted.") });
    }
    return element._createPaymentMethod(this, billingDetails, metadata);
  };

  StripeSim.prototype.createPaymentMethod = function (a, b, c) {
    if (typeof a === "string") {  // legacy: createPaymentMethod('card', element, data)
      return this._createFromElement(b, (c || {}).billing_details, (c || {}).metadata);
    }
    var data = a || {};
    if (data.elements) {
      var element = data.elements.getElement("payment") || data.elements.getElement("card");
      var params = data.params || {};
      return this._createFromElement(element, params.billing_details, params.metadata);
    }
    if (data.card && data.card._createPaymentMethod) {
      return this._createFromElement(data.card, data.billing_details, data.metadata);
    }
    return this._request("POST", "/v1/payment_methods", data).then(function (res) {
      return res.ok ? { paymentMethod: res.body } : { error: res.body.error };
    });
  };

  /* Resolve `payment_method` (id or {card: element, billing_details}) to a PM id. */
  StripeSim.prototype._paymentMethodId = function (pm) {
    if (!pm) return Promise.resolve({ id: null });
    if (typeof pm === "string") return Promise.resolve({ id: pm });
    if (pm.card && pm.card._createPaymentMethod) {
      return this._createFromElement(pm.card, pm.billing_details, pm.metadata).then(function (r) {
        return r.error ? { error: r.error } : { id: r.paymentMethod.id };
      });
    }
    return Promise.resolve({ error: validationError("invalid_payment_method", "Unsupported payment_method value.") });
  };

  function kindOf(secret) {
    return (intentIdFromSecret(secret) || "").indexOf("seti_") === 0 ? "setup_intents" : "payment_intents";
  }

  function resultKey(kind) { return kind === "setup_intents" ? "setupIntent" : "paymentIntent"; }

  StripeSim.prototype._retrieve = function (secret) {
    var kind = kindOf(secret);
    var id = intentIdFromSecret(secret);
    return this._request("GET", "/v1/" + kind + "/" + id, { client_secret: secret });
  };

  /* After a 3DS attempt: the intent, or an error carrying it (like Stripe.js). */
  function outcome(kind, intent) {
    var key = resultKey(kind);
    var last = kind === "setup_intents" ? intent.last_setup_error : intent.last_payment_error;
    if (intent.status === "requires_payment_method" && last) {
      var error = Object.assign({}, last);
      error[kind === "setup_intents" ? "setup_intent" : "payment_intent"] = intent;
      return { error: error };
    }
    var result = {};
    result[key] = intent;
    return result;
  }

  /* The bank's challenge in a frame of the simulator's origin over the page, as Stripe.js
   * shows it; resolves once the customer completed or failed it. */
  function challenge(intent) {
    return new Promise(function (resolve) {
      var overlay = document.createElement("div");
      overlay.setAttribute("data-stripe-sim-challenge", "");
      overlay.style.position = "fixed";
      overlay.style.inset = "0";
      overlay.style.background = "rgba(0,0,0,.4)";
      overlay.style.display = "flex";
      overlay.style.alignItems = "center";
      overlay.style.justifyContent = "center";
      overlay.style.zIndex = "2147483647";
      var frame = document.createElement("iframe");
      frame.name = "__privateStripeFrame" + (++uid);
      frame.title = "3D Secure authentication";
      frame.setAttribute("frameborder", "0");
      frame.style.border = "0";
      frame.style.borderRadius = "8px";
      frame.style.background = "#fff";
      frame.style.width = "min(24rem, 92vw)";
      frame.style.height = "16rem";
      frame.src = API_BASE + "/js.stripe.com/v3/three-d-secure.html#" +
        new URLSearchParams({ intent: intent.id, origin: PAGE_ORIGIN }).toString();
      function onMessage(event) {
        var msg = event.data || {};
        if (event.origin !== API_BASE || event.source !== frame.contentWindow) return;
        if (msg.source !== "stripe-sim-challenge" || msg.intent !== intent.id) return;
        window.removeEventListener("message", onMessage);
        if (overlay.parentNode) overlay.parentNode.removeChild(overlay);
        resolve(msg.outcome);
      }
      window.addEventListener("message", onMessage);
      // the challenge takes the focus (its first button), so it works by keyboard too
      frame.addEventListener("load", function () { frame.focus(); });
      overlay.appendChild(frame);
      document.body.appendChild(overlay);
    });
  }

  StripeSim.prototype._challenge = function (kind, intent) {
    var self = this;
    return challenge(intent).then(function () {
      return self._retrieve(intent.client_secret);
    }).then(function (res) {
      return res.ok ? outcome(kind, res.body) : { error: res.body.error };
    });
  };

  StripeSim.prototype._handleActions = function (kind, intent, handleActions) {
    if (intent.status === "requires_action" && handleActions !== false) return this._challenge(kind, intent);
    return Promise.resolve(outcome(kind, intent));
  };

  StripeSim.prototype._confirm = function (secret, data, options) {
    var self = this;
    var kind = kindOf(secret);
    var id = intentIdFromSecret(secret);
    if (!id) return Promise.resolve({ error: validationError("invalid_client_secret", "Invalid client secret.") });
    data = data || {};
    return this._paymentMethodId(data.payment_method).then(function (pm) {
      if (pm.error) return { error: pm.error };
      var params = { client_secret: secret, use_stripe_sdk: "true" };
      if (pm.id) params.payment_method = pm.id;
      if (data.return_url) params.return_url = data.return_url;
      if (data.setup_future_usage && kind === "payment_intents") params.setup_future_usage = data.setup_future_usage;
      if (data.payment_method_data) params.payment_method_data = data.payment_method_data;
      return self._request("POST", "/v1/" + kind + "/" + id + "/confirm", params).then(function (res) {
        if (!res.ok) return { error: res.body.error };
        return self._handleActions(kind, res.body, (options || {}).handleActions);
      });
    });
  };

  StripeSim.prototype.confirmCardPayment = function (secret, data, options) { return this._confirm(secret, data, options); };
  StripeSim.prototype.confirmCardSetup = function (secret, data, options) { return this._confirm(secret, data, options); };

  StripeSim.prototype._redirectOrReturn = function (kind, result, returnUrl, redirect) {
    var intent = result.paymentIntent || result.setupIntent;
    if (result.error || !intent || redirect === "if_required" || !returnUrl) return result;
    var prefix = kind === "setup_intents" ? "setup_intent" : "payment_intent";
    var url = new URL(returnUrl, window.location.href);
    url.searchParams.set(prefix, intent.id);
    url.searchParams.set(prefix + "_client_secret", intent.client_secret);
    url.searchParams.set("redirect_status", intent.status === "succeeded" || intent.status === "processing" ? "succeeded" : "failed");
    window.location.assign(url.toString());
    return new Promise(function () {});  // like Stripe.js: never resolves when redirecting
  };

  function confirmElements(self, kind, args) {
    args = args || {};
    var confirmParams = args.confirmParams || {};
    var elements = args.elements;
    var element = elements && (elements.getElement("payment") || elements.getElement("card"));
    var pmPromise = confirmParams.payment_method
      ? Promise.resolve({ id: confirmParams.payment_method })
      : element
        ? self._createFromElement(element, (confirmParams.payment_method_data || {}).billing_details).then(function (r) {
          return r.error ? { error: r.error } : { id: r.paymentMethod.id };
        })
        : Promise.resolve({ error: validationError("incomplete", "elements or payment_method is required") });
    var secret = args.clientSecret || (elements && elements._options.clientSecret);
    return pmPromise.then(function (pm) {
      if (pm.error) return { error: pm.error };
      return self._confirm(secret, { payment_method: pm.id, return_url: confirmParams.return_url,
        setup_future_usage: confirmParams.setup_future_usage }).then(function (result) {
        return self._redirectOrReturn(kind, result, confirmParams.return_url, args.redirect);
      });
    });
  }

  StripeSim.prototype.confirmPayment = function (args) { return confirmElements(this, "payment_intents", args); };
  StripeSim.prototype.confirmSetup = function (args) { return confirmElements(this, "setup_intents", args); };

  StripeSim.prototype.handleNextAction = function (args) {
    var self = this;
    var secret = (args || {}).clientSecret;
    var kind = kindOf(secret);
    return this._retrieve(secret).then(function (res) {
      if (!res.ok) return { error: res.body.error };
      return self._handleActions(kind, res.body, true);
    });
  };
  StripeSim.prototype.handleCardAction = function (secret) { return this.handleNextAction({ clientSecret: secret }); };
  StripeSim.prototype.handleCardSetup = StripeSim.prototype.confirmCardSetup;

  StripeSim.prototype.retrievePaymentIntent = function (secret) {
    return this._retrieve(secret).then(function (res) {
      return res.ok ? { paymentIntent: res.body } : { error: res.body.error };
    });
  };
  StripeSim.prototype.retrieveSetupIntent = function (secret) {
    return this._retrieve(secret).then(function (res) {
      return res.ok ? { setupIntent: res.body } : { error: res.body.error };
    });
  };

  StripeSim.version = 3;
  StripeSim.simulator = { apiBase: API_BASE, wallets: WALLET_FLAG.slice() };
  window.Stripe = StripeSim;
})();

/*
 * stripe-sim: a fake Stripe.js v3 for offline tests. It talks to the simulator that served it.
 *
 * Supported: Stripe(pk, {stripeAccount}), elements(), create('card' | 'payment' |
 * 'paymentRequestButton'), mount/unmount/destroy/clear/focus/update, on('change' | 'ready' |
 * 'focus' | 'blur'), createPaymentMethod, confirmCardPayment, confirmCardSetup,
 * handleCardAction, handleNextAction, confirmPayment, confirmSetup, retrievePaymentIntent,
 * retrieveSetupIntent, paymentRequest() (canMakePayment, show, on('paymentmethod' | 'cancel')).
 *
 * Inputs are rendered inline (not in iframes) with labels, so tests can fill them by label.
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

  function luhn(number) {
    var sum = 0;
    for (var i = 0; i < number.length; i++) {
      var digit = number.charCodeAt(number.length - 1 - i) - 48;
      if (i % 2 === 1) { digit *= 2; if (digit > 9) digit -= 9; }
      sum += digit;
    }
    return sum % 10 === 0;
  }

  function brandOf(number) {
    if (/^3[47]/.test(number)) return "amex";
    if (/^(30[0-5]|36|38|39)/.test(number)) return "diners";
    if (/^35/.test(number)) return "jcb";
    if (/^(6011|64[4-9]|65)/.test(number)) return "discover";
    if (/^62/.test(number)) return "unionpay";
    if (/^(5[1-5]|2[2-7])/.test(number)) return "mastercard";
    if (/^4/.test(number)) return "visa";
    return "unknown";
  }

  function expectedLength(brand) {
    if (brand === "amex") return 15;
    if (brand === "diners") return 14;
    return 16;
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

  // ---------------------------------------------------------------- card fields
  var uid = 0;

  function field(container, id, labelText, attrs) {
    var wrapper = document.createElement("div");
    wrapper.className = "StripeSimField";
    var label = document.createElement("label");
    label.setAttribute("for", id);
    label.textContent = labelText;
    var input = document.createElement("input");
    input.id = id;
    Object.keys(attrs).forEach(function (k) { input.setAttribute(k, attrs[k]); });
    wrapper.appendChild(label);
    wrapper.appendChild(input);
    container.appendChild(wrapper);
    return input;
  }

  function CardFields(elementType, options) {
    Emitter.call(this);
    this.elementType = elementType;
    this.options = options || {};
    this._root = null;
    this._inputs = null;
    this._touched = {};
  }
  CardFields.prototype = Object.create(Emitter.prototype);

  CardFields.prototype.mount = function (target) {
    var host = typeof target === "string" ? document.querySelector(target) : target;
    if (!host) throw new Error("stripe-sim: mount target not found: " + target);
    if (this._root) this.unmount();
    var n = ++uid;
    var root = document.createElement("div");
    root.className = "StripeElement StripeSimElement";
    root.setAttribute("data-stripe-sim-element", this.elementType);
    if (this.elementType === "payment") {
      var tab = document.createElement("p");
      tab.className = "StripeSimTab";
      tab.textContent = "Card";
      root.appendChild(tab);
    }
    this._inputs = {
      number: field(root, "stripe-sim-number-" + n, "Card number", {
        name: "cardnumber", autocomplete: "cc-number", inputmode: "numeric",
        placeholder: "1234 1234 1234 1234", "aria-invalid": "false",
      }),
      expiry: field(root, "stripe-sim-expiry-" + n, "Expiration date", {
        name: "exp-date", autocomplete: "cc-exp", inputmode: "numeric",
        placeholder: "MM / YY", "aria-invalid": "false",
      }),
      cvc: field(root, "stripe-sim-cvc-" + n, "Security code", {
        name: "cvc", autocomplete: "cc-csc", inputmode: "numeric",
        placeholder: "CVC", "aria-invalid": "false",
      }),
    };
    if (this.options.hidePostalCode === false) {
      this._inputs.postal = field(root, "stripe-sim-postal-" + n, "ZIP", {
        name: "postal", autocomplete: "postal-code",
      });
    }
    var errorBox = document.createElement("div");
    errorBox.className = "StripeSimError";
    errorBox.setAttribute("role", "alert");
    errorBox.setAttribute("aria-live", "polite");
    root.appendChild(errorBox);
    this._errorBox = errorBox;
    var self = this;
    Object.keys(this._inputs).forEach(function (key) {
      var input = self._inputs[key];
      input.addEventListener("input", function () { self._onInput(key); });
      input.addEventListener("focus", function () { self._emit("focus", { elementType: self.elementType }); });
      input.addEventListener("blur", function () {
        self._touched[key] = true;
        self._report(self._state(true));
        self._emit("blur", { elementType: self.elementType });
      });
    });
    host.appendChild(root);
    this._root = root;
    setTimeout(function () { self._emit("ready", { elementType: self.elementType }); }, 0);
    return this;
  };

  CardFields.prototype._onInput = function (key) {
    var input = this._inputs[key];
    if (key === "expiry") {
      var digits = input.value.replace(/\D/g, "").slice(0, 4);
      input.value = digits.length > 2 ? digits.slice(0, 2) + " / " + digits.slice(2) : digits;
    }
    var state = this._state(false);
    this._report(state);
    this._emit("change", state);
  };

  CardFields.prototype._values = function () {
    var inputs = this._inputs || {};
    var number = inputs.number ? inputs.number.value.replace(/[\s-]/g, "") : "";
    var expiry = inputs.expiry ? inputs.expiry.value.replace(/\D/g, "") : "";
    return {
      number: number,
      month: expiry.slice(0, 2),
      year: expiry.slice(2, 4),
      cvc: inputs.cvc ? inputs.cvc.value.trim() : "",
      postal: inputs.postal ? inputs.postal.value.trim() : "",
    };
  };

  /* Stripe's validation: hard errors while typing, "incomplete" errors on blur or submit. */
  CardFields.prototype._state = function (strict) {
    var v = this._values();
    var brand = brandOf(v.number);
    var error = null;
    var numberComplete = /^\d+$/.test(v.number) && v.number.length >= expectedLength(brand) && luhn(v.number);
    if (v.number && !/^\d+$/.test(v.number)) {
      error = validationError("invalid_number", "Your card number is invalid.", "number");
    } else if (v.number.length >= expectedLength(brand) && !luhn(v.number)) {
      error = validationError("invalid_number", "Your card number is invalid.", "number");
    }
    var now = new Date();
    var yy = now.getFullYear() % 100;
    var mm = now.getMonth() + 1;
    var month = parseInt(v.month, 10);
    var year = parseInt(v.year, 10);
    var expiryComplete = v.month.length === 2 && v.year.length === 2;
    if (!error && v.month.length === 2 && (month < 1 || month > 12)) {
      error = validationError("invalid_expiry_month", "Your card's expiration date is invalid.", "exp_month");
    }
    if (!error && expiryComplete && (year < yy || (year === yy && month < mm))) {
      error = validationError(year < yy ? "invalid_expiry_year_past" : "invalid_expiry_month_past",
        year < yy ? "Your card's expiration year is in the past." : "Your card's expiration date is in the past.",
        "exp_year");
    }
    var cvcLength = brand === "amex" ? 4 : 3;
    var cvcComplete = /^\d+$/.test(v.cvc) && v.cvc.length >= cvcLength && v.cvc.length <= 4;
    if (!error && v.cvc && !/^\d+$/.test(v.cvc)) {
      error = validationError("invalid_cvc", "Your card's security code is invalid.", "cvc");
    }
    var touched = this._touched;
    if (!error && (strict || touched.number) && v.number && !numberComplete) {
      error = validationError("incomplete_number", "Your card number is incomplete.", "number");
    }
    if (!error && (strict || touched.expiry) && v.month + v.year && !expiryComplete) {
      error = validationError("incomplete_expiry", "Your card's expiration date is incomplete.", "exp_date");
    }
    if (!error && (strict || touched.cvc) && v.cvc && !cvcComplete) {
      error = validationError("incomplete_cvc", "Your card's security code is incomplete.", "cvc");
    }
    var empty = !v.number && !v.month && !v.year && !v.cvc;
    return {
      elementType: this.elementType,
      empty: empty,
      complete: !error && numberComplete && expiryComplete && cvcComplete,
      brand: brand,
      error: error || undefined,
      value: { postalCode: v.postal },
    };
  };

  CardFields.prototype._report = function (state) {
    if (!this._errorBox) return;
    var error = state.error;
    this._errorBox.textContent = error ? error.message : "";
    var invalidKey = error ? ({ number: "number", exp_month: "expiry", exp_year: "expiry", exp_date: "expiry", cvc: "cvc" })[error.param] : null;
    var inputs = this._inputs;
    Object.keys(inputs).forEach(function (key) {
      inputs[key].setAttribute("aria-invalid", key === invalidKey ? "true" : "false");
      if (key === invalidKey) inputs[key].setAttribute("aria-describedby", "");
    });
  };

  /* Card params for /v1/payment_methods, or a validation error. */
  CardFields.prototype._collect = function () {
    if (!this._inputs) return { error: validationError("incomplete", "The card element is not mounted.") };
    var state = this._state(true);
    if (!state.error && !state.complete) {
      var v = this._values();
      if (!v.number) state.error = validationError("incomplete_number", "Your card number is incomplete.", "number");
      else if (!(v.month && v.year)) state.error = validationError("incomplete_expiry", "Your card's expiration date is incomplete.", "exp_date");
      else state.error = validationError("incomplete_cvc", "Your card's security code is incomplete.", "cvc");
    }
    if (state.error) { this._report(state); return { error: state.error }; }
    var values = this._values();
    var card = { number: values.number, exp_month: values.month, exp_year: "20" + values.year, cvc: values.cvc };
    return { card: card, postal: values.postal };
  };

  CardFields.prototype.unmount = function () {
    if (this._root && this._root.parentNode) this._root.parentNode.removeChild(this._root);
    this._root = null;
    return this;
  };
  CardFields.prototype.destroy = function () { this.unmount(); this._inputs = null; this._handlers = {}; };
  CardFields.prototype.clear = function () {
    var inputs = this._inputs || {};
    Object.keys(inputs).forEach(function (k) { inputs[k].value = ""; });
    this._touched = {};
    this._report(this._state(false));
  };
  CardFields.prototype.focus = function () { if (this._inputs) this._inputs.number.focus(); };
  CardFields.prototype.blur = function () { if (document.activeElement) document.activeElement.blur(); };
  CardFields.prototype.update = function (options) {
    Object.assign(this.options, options || {});
    return this;
  };

  // ---------------------------------------------------------------- modal (3DS and wallet)
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
    var collected = element._collect();
    return Promise.resolve(collected.error ? { error: collected.error } : {});
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

  function billingFrom(details, postal) {
    var billing = Object.assign({}, details || {});
    if (postal) billing.address = Object.assign({}, billing.address || {}, { postal_code: postal });
    return billing;
  }

  /* -> Promise<{paymentMethod} | {error}> from an element (card or payment). */
  StripeSim.prototype._createFromElement = function (element, billingDetails, metadata) {
    var collected = element._collect();
    if (collected.error) return Promise.resolve({ error: collected.error });
    return this._request("POST", "/v1/payment_methods", {
      type: "card",
      card: collected.card,
      billing_details: billingFrom(billingDetails, collected.postal),
      metadata: metadata,
    }).then(function (res) {
      return res.ok ? { paymentMethod: res.body } : { error: res.body.error };
    });
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
    if (data.card && data.card._collect) {
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
    if (pm.card && pm.card._collect) {
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

  StripeSim.prototype._challenge = function (kind, intent) {
    var self = this;
    return modal("3D Secure authentication", "Simulated bank challenge for " + intent.id + ".", [
      { label: "Complete", value: "success" },
      { label: "Fail", value: "failure" },
    ]).then(function (choice) {
      return self._sim("POST", "/_sim/" + kind + "/" + intent.id + "/authenticate", { outcome: choice });
    }).then(function () {
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

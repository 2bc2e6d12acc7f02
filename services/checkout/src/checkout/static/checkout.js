/* BOS checkout SDK v1 (ES module, no build step). Types: /sdk/v1/checkout.d.ts
 *
 *   import { checkout } from "https://bos.example.com/sdk/v1/checkout.js";
 *   const c = checkout({ checkoutId, sessionToken, mode: "inline", container: "#pay",
 *                        onEvent: (e) => ..., refreshSessionToken: () => fetchNewToken() });
 *
 * Without modules: <script src="https://bos.example.com/sdk/v1/checkout.global.js"> defines
 * `window.BOS` (this file, wrapped at startup by checkout/sdk_bundle.py; see docs/sdk.md).
 *
 * The checkout page runs on the BOS origin in an iframe (or overlay, or popup). Handshake:
 * the page posts `ready` (with the nonce from its URL) to the allowed origins; the SDK
 * accepts it only from that frame and the BOS origin, then sends `init` (credential, nonce)
 * to the BOS origin alone with a MessageChannel port. Everything after that (events,
 * height, token requests) travels on the private port. Messages from any other origin or
 * window are ignored. Every message carries `bos: 1` and the schema version `v`.
 */
const V = 1;
const ORIGIN = new URL(import.meta.url).origin;
const PAGE_EVENTS = ["loaded", "confirmed", "requires_action", "completed", "failed"];

function nonce() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
}

function css(node, rules) {
  Object.assign(node.style, rules); // CSSOM: allowed under a strict style-src
  return node;
}

export function checkout(options) {
  const o = options || {};
  const id = o.checkoutId;
  if (typeof id !== "string" || !/^cs_[A-Za-z0-9]+$/.test(id)) throw new TypeError("BOS.checkout: checkoutId must be a cs_ id");
  if (!o.sessionToken && !o.clientSecret) throw new TypeError("BOS.checkout: sessionToken or clientSecret is required");
  const origin = new URL(o.baseUrl || ORIGIN).origin;
  const n = nonce();
  const url = origin + "/checkout/" + id + "#embed=" + n;
  let mode = o.mode || "inline";
  let token = o.sessionToken || null;
  let frame = null, overlay = null, popup = null, port = null, timer = null, watch = null;
  let closed = false, connected = false, lastFocus = null;

  const emit = (type, data) => {
    if (typeof o.onEvent !== "function") return;
    try { o.onEvent(Object.assign({}, data || {}, { type, checkoutId: id })); } catch (e) { setTimeout(() => { throw e; }); }
  };
  const send = (msg) => { if (port) port.postMessage(Object.assign({ bos: 1, v: V }, msg)); };
  const target = () => (frame ? frame.contentWindow : popup);

  function container() {
    const c = typeof o.container === "string" ? document.querySelector(o.container) : o.container;
    if (!c) throw new TypeError("BOS.checkout: container not found");
    return c;
  }

  function makeFrame(height) {
    const f = document.createElement("iframe");
    f.src = url;
    f.title = o.title || "Checkout";
    f.allow = "payment";
    f.setAttribute("scrolling", "no");
    css(f, { display: "block", width: "100%", height: height + "px", border: "0", colorScheme: "normal" });
    return f;
  }

  function mountInline() {
    mode = "inline";
    frame = makeFrame(640);
    container().appendChild(frame);
  }

  function mountOverlay() {
    mode = "overlay";
    lastFocus = document.activeElement;
    overlay = css(document.createElement("div"), {
      position: "fixed", inset: "0", zIndex: "2147483000", background: "rgba(17,24,39,.6)",
      overflowY: "auto", padding: "16px 8px",
    });
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-modal", "true");
    overlay.setAttribute("aria-label", o.title || "Checkout");
    const box = css(document.createElement("div"), { position: "relative", maxWidth: "480px", margin: "0 auto" });
    const close = css(document.createElement("button"), {
      display: "block", marginLeft: "auto", minWidth: "44px", minHeight: "44px", font: "600 24px/1 system-ui,sans-serif",
      color: "#fff", background: "transparent", border: "0", cursor: "pointer",
    });
    close.type = "button";
    close.textContent = "×";
    close.setAttribute("aria-label", "Close checkout");
    close.addEventListener("click", () => handle.close());
    overlay.addEventListener("keydown", (ev) => { if (ev.key === "Escape") handle.close(); });
    frame = makeFrame(640);
    css(frame, { borderRadius: "12px", background: "#fff" });
    box.appendChild(close);
    box.appendChild(frame);
    overlay.appendChild(box);
    document.body.appendChild(overlay);
    frame.focus();
  }

  function onWindowMessage(ev) {
    // 13.2: only the checkout's own window on the BOS origin may start the handshake.
    if (closed || ev.origin !== origin || !ev.source || ev.source !== target()) return;
    const d = ev.data;
    if (!d || d.bos !== 1 || d.type !== "ready" || d.nonce !== n) return;
    if (d.v !== V) { emit("error", { code: "unsupported_version" }); return; }
    const channel = new MessageChannel();
    if (port) port.close();
    port = channel.port1;
    port.onmessage = onPortMessage;
    const init = { bos: 1, v: V, type: "init", nonce: n, checkoutId: id };
    if (token) init.sessionToken = token; else init.clientSecret = o.clientSecret;
    ev.source.postMessage(init, origin, [channel.port2]);
  }

  function onPortMessage(ev) {
    const d = ev.data;
    if (closed || !d || d.bos !== 1) return;
    if (d.v !== V) { emit("error", { code: "unsupported_version" }); return; }
    if (d.type === "ack" && d.nonce === n) { connected = true; clearTimeout(timer); return; }
    if (!connected) return;
    if (d.type === "event" && PAGE_EVENTS.indexOf(d.event) >= 0) {
      emit(d.event, d.data || {});
    } else if (d.type === "resize" && frame && typeof d.height === "number" && d.height > 0) {
      frame.style.height = Math.min(Math.ceil(d.height), 20000) + "px";
    } else if (d.type === "token_request") {
      refresh(d.id);
    }
  }

  function refresh(rid) {
    const answer = (t) => send({ type: "token", id: rid, token: t || null });
    if (!o.sessionToken || typeof o.refreshSessionToken !== "function") { answer(null); return; }
    Promise.resolve()
      .then(() => o.refreshSessionToken())
      .then((t) => {
        if (typeof t !== "string" || !t) throw new Error("refreshSessionToken gave no token");
        token = t;
        answer(t);
        emit("token_refreshed", {});
      })
      .catch((e) => { answer(null); emit("error", { code: "token_refresh_failed", message: String(e && e.message || e) }); });
  }

  window.addEventListener("message", onWindowMessage);
  timer = setTimeout(() => { if (!connected && !closed) emit("error", { code: "handshake_timeout" }); }, 20000);

  if (mode === "popup") {
    popup = window.open(url, "bos_checkout_" + id, "popup,width=480,height=760");
    if (!popup) {
      // 13.6: blocked: show it in the page instead, and say so.
      const fallback = o.container ? "inline" : "overlay";
      emit("popup_blocked", { fallback });
      if (fallback === "inline") mountInline(); else mountOverlay();
    } else {
      watch = setInterval(() => { if (popup.closed) handle.close(); }, 500);
    }
  } else if (mode === "overlay") {
    mountOverlay();
  } else {
    mountInline();
  }

  const handle = {
    get mode() { return mode; },
    get frame() { return frame; },
    get connected() { return connected; },
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      clearInterval(watch);
      window.removeEventListener("message", onWindowMessage);
      if (port) port.close();
      if (popup && !popup.closed) popup.close();
      if (overlay) overlay.remove(); else if (frame) frame.remove();
      if (lastFocus && lastFocus.focus) lastFocus.focus();
      emit("closed", {});
    },
  };
  return handle;
}

const BOS = { checkout, version: V };
if (typeof window !== "undefined" && !window.BOS) window.BOS = BOS;
export default BOS;

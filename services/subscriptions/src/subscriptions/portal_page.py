# ruff: noqa: E501
"""The customer portal page (`GET /portal`): a static page that reads the portal token from
`#token=` or `?token=` (then drops it from the address bar) and drives `/v1/portal/*`."""

PORTAL_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Billing portal</title>
<style>
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f1f5f9;color:#0f172a}
main{max-width:760px;margin:0 auto;padding:24px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin-bottom:16px}
h1{font-size:22px}h2{font-size:17px;margin:0 0 12px}
table{width:100%;border-collapse:collapse;font-size:14px}td,th{padding:6px 4px;text-align:left;border-bottom:1px solid #e2e8f0}
button{background:#2563eb;color:#fff;border:0;border-radius:6px;padding:6px 12px;cursor:pointer}
button.secondary{background:#e2e8f0;color:#0f172a}.muted{color:#64748b;font-size:13px}
#error{color:#b91c1c}
</style></head>
<body><main>
<h1>Billing portal</h1>
<p id="error" role="alert"></p>
<section><h2>Subscriptions</h2><div id="subscriptions" class="muted">Loading...</div></section>
<section><h2>Payment method</h2><button id="card">Update card</button> <span id="card-status" class="muted"></span></section>
<section><h2>Invoices</h2><div id="invoices" class="muted">Loading...</div></section>
<section><h2>Payment history</h2><div id="payments" class="muted">Loading...</div></section>
</main>
<script>
(function(){
  var params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  var token = params.get("token") || sessionStorage.getItem("bos_portal_token");
  if (params.get("token")) { sessionStorage.setItem("bos_portal_token", token); history.replaceState(null, "", location.pathname); }
  function el(tag, text){ var e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }
  function money(a, c){ try { return new Intl.NumberFormat(undefined,{style:"currency",currency:c.toUpperCase()}).format(a/100); } catch(e){ return a + " " + c; } }
  function day(s){ return s ? new Date(s).toLocaleDateString() : "-"; }
  function api(method, path, body){
    return fetch(path, {method: method, headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"}, body: body ? JSON.stringify(body) : undefined})
      .then(function(r){ if (r.ok) return r.json(); return r.json().then(function(b){ throw new Error((b.error && b.error.message) || r.statusText); }); });
  }
  function fail(e){ document.getElementById("error").textContent = e.message; }
  function table(target, head, rows){
    var box = document.getElementById(target); box.textContent = "";
    if (!rows.length) { box.textContent = "Nothing yet."; return; }
    var t = el("table"), tr = el("tr"); head.forEach(function(h){ tr.appendChild(el("th", h)); }); t.appendChild(tr);
    rows.forEach(function(r){ var tr = el("tr"); r.forEach(function(c){ var td = el("td"); if (c instanceof Node) td.appendChild(c); else td.textContent = c; tr.appendChild(td); }); t.appendChild(tr); });
    box.appendChild(t);
  }
  function load(){
    api("GET", "/v1/portal/subscriptions").then(function(list){
      table("subscriptions", ["Plan", "Status", "Next billing", ""], list.data.map(function(s){
        var action = el("span");
        if (s.status !== "canceled") {
          var b = el("button", s.cancel_at_period_end ? "Reactivate" : "Cancel");
          if (!s.cancel_at_period_end) b.className = "secondary";
          b.onclick = function(){ api("POST", "/v1/portal/subscriptions/" + s.id + (s.cancel_at_period_end ? "/reactivate" : "/cancel"), s.cancel_at_period_end ? null : {at_period_end: true}).then(load, fail); };
          action.appendChild(b);
        }
        var next = s.next_billing ? day(s.next_billing.date) + " - " + money(s.next_billing.amount, s.next_billing.currency) : (s.cancel_at_period_end ? "Ends " + day(s.current_period_end) : "-");
        return [s.plan.product_name + " (" + (s.plan.interval ? money(s.plan.amount, s.plan.currency) + "/" + s.plan.interval : "free") + ")", s.status, next, action];
      }));
    }, fail);
    api("GET", "/v1/portal/invoices").then(function(list){
      table("invoices", ["Number", "Date", "Total", "Status", ""], list.data.map(function(i){
        var a = el("button", "PDF"); a.className = "secondary";
        a.onclick = function(){ fetch(i.pdf_url, {headers: {"Authorization": "Bearer " + token}}).then(function(r){ return r.blob(); }).then(function(b){ window.open(URL.createObjectURL(b)); }, fail); };
        return [i.number, day(i.created_at), money(i.total, i.currency), i.status, a];
      }));
    }, fail);
    api("GET", "/v1/portal/payments").then(function(list){
      table("payments", ["Date", "Invoice", "Amount", "Result"], list.data.map(function(p){
        return [day(p.created_at), p.invoice_number, money(p.amount, p.currency), p.status + (p.failure_message ? " (" + p.failure_message + ")" : "")];
      }));
    }, fail);
  }
  document.getElementById("card").onclick = function(){
    api("POST", "/v1/portal/payment-methods", {}).then(function(r){
      document.getElementById("card-status").textContent = r.url ? "" : "Card update started.";
      if (r.url) location.href = r.url;
    }, fail);
  };
  if (!token) { fail(new Error("This portal link is incomplete or expired.")); } else { load(); }
})();
</script></body></html>
"""

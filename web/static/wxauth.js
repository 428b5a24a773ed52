/*
 * wxauth.js: WeChat login for an H5 page, through wxauth's OpenID Connect
 * code flow with PKCE. Include it with one tag:
 *
 *   <script src="https://auth.example.com/wxauth.js" data-client-id="h5-demo"></script>
 *
 * Optional attributes: data-redirect-uri (default: this page's origin and
 * path, which must be one of the client's registered redirect_uris),
 * data-scope (default "openid"; "snsapi_base" and "snsapi_userinfo" are
 * understood), data-offline="false" (no offline_access, so no refresh
 * token), data-silent="off" (no prompt=none attempt when the page loads),
 * data-post-logout-redirect-uri, data-issuer (default: where this script
 * was loaded from).
 *
 * API (window.wxauth):
 *   ready()              Promise of the user (the /userinfo claims) or null
 *   login({scope})       leaves for wxauth's authorization endpoint
 *   fetch(url, init)     fetch with "Authorization: Bearer", refreshing once on 401
 *   refresh()            Promise: rotates the tokens now (offline_access)
 *   logout({redirect})   ends the login at wxauth (/logout); redirect: true navigates
 *   user(), accessToken(), on(event, fn)   events: login, refresh, logout, error
 *
 * Tokens live in this closure only: never in localStorage, sessionStorage
 * or a URL. sessionStorage holds the PKCE verifier, state and nonce only
 * while the browser is away at wxauth, and two flags that are not secrets.
 * Plain ES2017, no dependencies, no build step.
 */
(function () {
  "use strict";

  var tag = document.currentScript;
  var opts = (tag && tag.dataset) || {};
  var base = (opts.issuer || new URL(".", tag.src).href).replace(/\/$/, "");
  var clientId = opts.clientId;
  var redirectUri = opts.redirectUri || location.origin + location.pathname;
  var PENDING = "wxauth:pending"; // the round trip to /login: state, nonce, verifier
  var QUIET = "wxauth:quiet"; // set after a logout or a failed silent attempt: no silent retry
  var SCOPE = "wxauth:scope"; // scope of the last login in this tab, for the silent retry
  // Answers to prompt=none that mean "not signed in", not "something broke".
  var SILENT_ERRORS = ["login_required", "consent_required", "interaction_required", "account_selection_required"];

  var tokens = null; // {access, refresh, id, claims, expiresAt}
  var current = null; // the user's claims from /userinfo
  var timer = 0;
  var refreshing = null;
  var listeners = {};

  // An OAuth error as an Error: .error is the code (access_denied,
  // login_required, ...), .description the error_description; .snapshot is
  // true for a WeChat snapshot-page user ("snapshot_user ..."), who must tap
  // 「使用完整服务」 before a login can work.
  function oauthError(code, description) {
    var e = new Error(code + (description ? ": " + description : ""));
    e.name = "WxauthError";
    e.error = code;
    e.description = description || "";
    e.snapshot = /^snapshot_user/.test(e.description);
    return e;
  }

  function emit(name, arg) {
    (listeners[name] || []).forEach(function (fn) {
      try { fn(arg); } catch (e) { setTimeout(function () { throw e; }); }
    });
  }

  function b64url(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function random(n) { return b64url(crypto.getRandomValues(new Uint8Array(n))); }

  // The claims of a JWT, unverified: the ID token comes straight from the
  // token endpoint over TLS (OIDC Core 3.1.3.7 allows that); APIs verify
  // the access token themselves.
  function claimsOf(jwt) {
    var p = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    var bin = atob(p + "===".slice((p.length + 3) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, function (c) { return c.charCodeAt(0); })));
  }

  // OIDC scopes for what the page asked: WeChat's names map to openid and
  // openid profile; offline_access (refresh tokens) unless data-offline="false".
  function scopeOf(asked) {
    var out = ["openid"];
    (asked || opts.scope || "openid").split(/\s+/).forEach(function (s) {
      s = { snsapi_base: "openid", snsapi_userinfo: "profile" }[s] || s;
      if (s && out.indexOf(s) < 0) out.push(s);
    });
    if (opts.offline !== "false" && out.indexOf("offline_access") < 0) out.push("offline_access");
    return out.join(" ");
  }

  // login sends the browser to wxauth's authorization endpoint. The verifier
  // stays in sessionStorage; only its S256 challenge goes out.
  async function login(o) {
    o = o || {};
    if (!clientId) throw oauthError("invalid_request", "the <script> tag of wxauth.js has no data-client-id");
    var p = { state: random(16), nonce: random(16), verifier: random(32), scope: scopeOf(o.scope),
      silent: o.prompt === "none", back: location.href.split("#")[0] };
    var digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(p.verifier));
    var q = new URLSearchParams({ response_type: "code", client_id: clientId, redirect_uri: redirectUri,
      scope: p.scope, state: p.state, nonce: p.nonce, code_challenge: b64url(new Uint8Array(digest)),
      code_challenge_method: "S256" });
    if (o.prompt) q.set("prompt", o.prompt);
    if (!p.silent) sessionStorage.removeItem(QUIET);
    sessionStorage.setItem(PENDING, JSON.stringify(p));
    location.assign(base + "/login?" + q);
    return new Promise(function () {}); // the page is leaving
  }

  // token posts a grant to the token endpoint (form-encoded, no credentials:
  // a CORS "simple" request) and keeps what comes back in memory.
  async function token(params, nonce) {
    params.client_id = clientId;
    var r = await fetch(base + "/oauth/token", { method: "POST", body: new URLSearchParams(params),
      headers: { Accept: "application/json" }, credentials: "omit", cache: "no-store" });
    var j = await r.json().catch(function () { return {}; });
    if (!r.ok || !j.access_token) {
      throw oauthError(j.error || "server_error", j.error_description || "token endpoint: HTTP " + r.status);
    }
    var claims = j.id_token ? claimsOf(j.id_token) : tokens && tokens.claims;
    if (nonce !== undefined && (!claims || claims.nonce !== nonce)) throw oauthError("invalid_nonce", "the ID token's nonce is not this login's");
    var aud = claims && [].concat(claims.aud);
    if (claims && aud.indexOf(clientId) < 0) throw oauthError("invalid_token", "the ID token is not for " + clientId);
    var life = Number(j.expires_in) || 300;
    tokens = { access: j.access_token, refresh: j.refresh_token || (tokens && tokens.refresh) || "",
      id: j.id_token || (tokens && tokens.id) || "", claims: claims, expiresAt: Date.now() + life * 1000 };
    // Refresh ahead of expiry: a minute early, or at half-life for short tokens.
    clearTimeout(timer);
    if (tokens.refresh) timer = setTimeout(function () { refresh().catch(function () {}); }, Math.max(life / 2, life - 60) * 1000);
  }

  // refresh rotates the refresh token (the old one is dead from now on);
  // concurrent callers share one request.
  function refresh() {
    if (!refreshing) {
      var done = function () { refreshing = null; };
      refreshing = (async function () {
        if (!tokens || !tokens.refresh) throw oauthError("login_required", "no refresh token (scope offline_access)");
        try {
          await token({ grant_type: "refresh_token", refresh_token: tokens.refresh });
        } catch (e) {
          if (e.error === "invalid_grant") forget("expired");
          throw e;
        }
        emit("refresh", current);
      })();
      refreshing.then(done, done);
    }
    return refreshing;
  }

  function forget(why) {
    clearTimeout(timer);
    var was = tokens;
    tokens = null;
    current = null;
    if (was) emit("logout", why);
  }

  function withBearer(init) {
    init = Object.assign({}, init);
    var h = new Headers(init.headers);
    if (tokens) h.set("Authorization", "Bearer " + tokens.access);
    init.headers = h;
    return init;
  }

  // send is fetch with the access token; after a 401 it refreshes once
  // and retries (so a body must be something fetch can send twice).
  async function send(input, init) {
    var r = await fetch(input, withBearer(init));
    if (r.status !== 401 || !tokens || !tokens.refresh) return r;
    try { await refresh(); } catch (e) { return r; }
    return fetch(input, withBearer(init));
  }

  // authFetch is send once the login the page is coming back from is done.
  async function authFetch(input, init) {
    await ready().catch(function () {});
    return send(input, init);
  }

  async function loadUser() {
    var r = await send(base + "/userinfo", { credentials: "omit", cache: "no-store" });
    if (r.ok) return r.json();
    if (tokens && tokens.claims) return tokens.claims; // the ID token still names the user
    throw oauthError("login_required", "userinfo: HTTP " + r.status);
  }

  // logout forgets the tokens here, revokes the refresh token and ends the
  // login at wxauth's end-session endpoint: by a background POST, or, with
  // {redirect: true}, by a form POST navigation that comes back to
  // data-post-logout-redirect-uri. The ID token goes in a POST body, never
  // in a URL.
  async function logout(o) {
    o = o || {};
    var t = tokens;
    forget("logout");
    sessionStorage.setItem(QUIET, "1");
    sessionStorage.removeItem(SCOPE);
    if (!t) return;
    var form = { client_id: clientId };
    if (t.id) form.id_token_hint = t.id;
    if (t.refresh) {
      await fetch(base + "/oauth/revoke", { method: "POST", mode: "no-cors", credentials: "omit",
        body: new URLSearchParams({ token: t.refresh, token_type_hint: "refresh_token", client_id: clientId }) }).catch(function () {});
    }
    if (!o.redirect) {
      await fetch(base + "/logout", { method: "POST", mode: "no-cors", credentials: "include",
        body: new URLSearchParams(form) }).catch(function () {});
      return;
    }
    form.post_logout_redirect_uri = opts.postLogoutRedirectUri || redirectUri;
    form.state = random(16);
    var f = document.createElement("form");
    f.method = "POST";
    f.action = base + "/logout";
    Object.keys(form).forEach(function (k) {
      var i = document.createElement("input");
      i.type = "hidden"; i.name = k; i.value = form[k];
      f.appendChild(i);
    });
    document.body.appendChild(f);
    f.submit();
    return new Promise(function () {});
  }

  // start runs once when the script loads: it finishes a login the page is
  // coming back from, or tries a silent one (prompt=none: inside WeChat a
  // silent snsapi_base; elsewhere wxauth answers login_required at once).
  async function start() {
    var q = new URLSearchParams(location.search);
    var p = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    if (!q.has("state") || !(q.has("code") || q.has("error"))) {
      if (opts.silent === "off" || sessionStorage.getItem(QUIET)) return null;
      return login({ scope: sessionStorage.getItem(SCOPE) || undefined, prompt: "none" });
    }
    // Out of the address bar (and so out of history and Referer headers) at once.
    var a = {};
    ["code", "state", "error", "error_description", "error_uri", "iss", "session_state"].forEach(function (k) {
      a[k] = q.get(k);
      q.delete(k);
    });
    var ours = p && p.state === a.state;
    var clean = location.pathname + (String(q) ? "?" + q : "") + location.hash;
    history.replaceState(history.state, "", ours && p.back ? p.back : clean);
    if (!ours) throw oauthError("invalid_state", "this answer is not for a login started in this tab");
    if (a.error) {
      if (p.silent && SILENT_ERRORS.indexOf(a.error) >= 0) {
        sessionStorage.setItem(QUIET, "1");
        return null;
      }
      throw oauthError(a.error, a.error_description);
    }
    await token({ grant_type: "authorization_code", code: a.code, redirect_uri: redirectUri, code_verifier: p.verifier }, p.nonce);
    sessionStorage.setItem(SCOPE, p.scope);
    current = await loadUser();
    emit("login", current);
    return current;
  }

  var started = start();
  started.catch(function (e) { emit("error", e); });
  function ready() { return started; }

  // A tab coming back from the background may have slept through the timer.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && tokens && tokens.refresh && tokens.expiresAt - Date.now() < 60000) {
      refresh().catch(function () {});
    }
  });

  window.wxauth = {
    ready: ready,
    login: login,
    logout: logout,
    refresh: refresh,
    fetch: authFetch,
    user: function () { return current; },
    accessToken: function () { return tokens ? tokens.access : null; },
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); },
  };
})();

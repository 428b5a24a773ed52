// wxauth example: everything a page needs, in plain JavaScript.
(function () {
  "use strict";
  var cfg = window.WXAUTH || {};
  var base = cfg.wxauth;
  var token = null;
  var $ = function (id) { return document.getElementById(id); };

  function pageURL() { return location.href.split("#")[0]; }

  function loginURL(scope) {
    return base + "/login?redirect=" + encodeURIComponent(pageURL()) + (scope ? "&scope=" + scope : "");
  }

  function show(id) {
    ["signed-in", "signed-out"].forEach(function (s) { $(s).classList.toggle("hidden", s !== id); });
  }

  function status(text) { $("status").textContent = text; }

  function fail(text) {
    $("error").textContent = text;
    $("error").classList.remove("hidden");
  }

  // 1. The access token arrives in the fragment, which never reaches a
  // server or a log; take it and remove it from the address bar at once.
  function takeFragment() {
    if (!location.hash) return null;
    var p = new URLSearchParams(location.hash.slice(1));
    history.replaceState(null, "", pageURL());
    if (p.get("error")) return { error: p.get("error") };
    if (p.get("access_token")) return { token: p.get("access_token") };
    return null;
  }

  // 2. A new access token from the refresh cookie (HttpOnly, scoped to
  // wxauth's /session), or null when the session is over.
  function refresh() {
    return fetch(base + "/session/refresh", { method: "POST", credentials: "include" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) { token = j ? j.access_token : null; return token; })
      .catch(function () { return null; });
  }

  // 3. API calls carry the JWT; on 401 refresh once and retry.
  function api(path, retried) {
    return fetch(base + path, { headers: token ? { Authorization: "Bearer " + token } : {}, credentials: "include" })
      .then(function (r) {
        if (r.status === 401 && !retried) {
          return refresh().then(function (t) { return t ? api(path, true) : r; });
        }
        return r;
      });
  }

  function loadProfile() {
    return api("/me").then(function (r) {
      if (r.status === 401) { location.href = loginURL(); return; }
      if (!r.ok) { fail("GET /me failed: HTTP " + r.status); return; }
      return r.json().then(function (me) {
        $("nickname").textContent = me.nickname || "(no nickname: snsapi_base)";
        if (me.headimgurl) $("avatar").src = me.headimgurl;
        $("openid").textContent = me.openid;
        $("sub").textContent = me.sub;
        $("scope").textContent = me.scope;
        status("Signed in. 已登录。");
        show("signed-in");
      });
    });
  }

  $("login-userinfo").href = loginURL("snsapi_userinfo");
  $("login-base").href = loginURL("snsapi_base");

  $("refresh").onclick = function () {
    refresh().then(function (t) { status(t ? "Session refreshed." : "Session ended."); if (!t) show("signed-out"); });
  };

  $("logout").onclick = function () {
    fetch(base + "/session/logout", {
      method: "POST", credentials: "include",
      headers: token ? { Authorization: "Bearer " + token } : {}
    }).then(function () {
      token = null;
      status("Signed out. 已退出。");
      show("signed-out");
    });
  };

  $("jssdk").onclick = function () {
    api("/jssdk/config?url=" + encodeURIComponent(pageURL())).then(function (r) {
      return r.json().then(function (j) {
        var out = $("jssdk-result");
        out.classList.remove("hidden");
        if (!r.ok) { out.textContent = "error: " + JSON.stringify(j); return; }
        var check = cfg.emulator
          ? fetch(cfg.emulator + "/emu/jssdk/check?url=" + encodeURIComponent(pageURL()) + "&timestamp=" + j.timestamp +
              "&nonceStr=" + encodeURIComponent(j.nonceStr) + "&signature=" + j.signature).then(function (c) { return c.ok ? c.json() : null; }).catch(function () { return null; })
          : Promise.resolve(null);
        return check.then(function (c) {
          out.textContent = "wx.config(" + JSON.stringify({ debug: false, appId: j.appId, timestamp: j.timestamp,
            nonceStr: j.nonceStr, signature: j.signature, jsApiList: ["updateAppMessageShareData"] }, null, 2) + ")" +
            (c ? "\n\nemulator: signature " + (c.valid ? "valid" : "INVALID") : "");
          out.dataset.valid = c ? String(c.valid) : "";
        });
      });
    });
  };

  if (cfg.emulator) {
    $("emulator-links").innerHTML = 'Development: <a href="' + cfg.emulator + '/emu/chat">chat as a follower</a> · <a href="' +
      cfg.emulator + '/emu/users">test users</a>';
  }

  var got = takeFragment();
  if (got && got.error) {
    var msg = { access_denied: "You declined the authorization. 您拒绝了授权。",
      snapshot_user: "Please tap 「使用完整服务」 to use the full page. 请点击「使用完整服务」。" }[got.error] || got.error;
    fail(msg);
    status("");
    show("signed-out");
    return;
  }
  if (got && got.token) {
    token = got.token;
    loadProfile();
    return;
  }
  // No token in the fragment: a returning visitor may still have a session.
  refresh().then(function (t) {
    if (t) { loadProfile(); return; }
    location.href = loginURL();
  });
})();

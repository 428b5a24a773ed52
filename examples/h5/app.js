// wxauth example: what a page does with wxauth.js, in plain JavaScript.
// wxauth.js (included just before) runs the login; this file only shows it.
(function () {
  "use strict";
  var cfg = window.WXAUTH_DEMO || {};
  var $ = function (id) { return document.getElementById(id); };

  function show(id) {
    ["signed-in", "signed-out"].forEach(function (s) { $(s).classList.toggle("hidden", s !== id); });
  }

  function status(text) { $("status").textContent = text; }

  function fail(text) {
    $("error").textContent = text;
    $("error").classList.toggle("hidden", !text);
  }

  // OAuth errors wxauth sends back to the page, in words a user understands.
  function explain(e) {
    if (e.snapshot) return "Please tap 「使用完整服务」 at the bottom to use the full page. 请点击底部的「使用完整服务」。";
    if (e.error === "access_denied") return "You declined the authorization. 您拒绝了授权。";
    if (e.error === "login_required") return "Please sign in again. 请重新登录。";
    return (e.error || "error") + (e.description ? ": " + e.description : "") + (e.error ? "" : " " + e);
  }

  // The page's own API (/api/hello on this origin) checks the access token
  // against wxauth's JWKS; wxauth.fetch adds it and refreshes on a 401.
  function callAPI() {
    return wxauth.fetch("/api/hello").then(function (r) {
      return r.json().then(function (j) {
        var out = $("api-result");
        out.classList.remove("hidden");
        out.textContent = "GET /api/hello -> " + r.status + "\n" + JSON.stringify(j, null, 2);
        out.dataset.status = String(r.status);
        if (r.ok) {
          $("scope").textContent = j.scope;
          $("openid").textContent = j.hello; // the API read it from the access token
        }
        return j;
      });
    });
  }

  function render(user) {
    if (!user) {
      status("Not signed in. 未登录。");
      show("signed-out");
      return;
    }
    $("nickname").textContent = user.nickname || user.name || "(no profile: scope openid, snsapi_base)";
    if (user.picture || user.headimgurl) $("avatar").src = user.picture || user.headimgurl;
    $("openid").textContent = user.openid || "";
    $("sub").textContent = user.sub;
    status("Signed in. 已登录。");
    show("signed-in");
    callAPI();
  }

  $("login-userinfo").onclick = function () { wxauth.login({ scope: "snsapi_userinfo" }); };
  $("login-base").onclick = function () { wxauth.login({ scope: "snsapi_base" }); };
  $("call-api").onclick = callAPI;

  $("refresh").onclick = function () {
    var refreshes = Number($("refresh").dataset.count || 0);
    wxauth.refresh().then(function () {
      $("refresh").dataset.count = String(refreshes + 1);
      status("Session refreshed. 已刷新。");
      return callAPI();
    }, function (e) { fail(explain(e)); });
  };

  $("logout").onclick = function () {
    wxauth.logout().then(function () {
      fail("");
      status("Signed out. 已退出。");
      show("signed-out");
    });
  };

  // JS-SDK: wxauth signs wx.config for this page's URL (without the #fragment).
  $("jssdk").onclick = function () {
    var page = location.href.split("#")[0];
    fetch(cfg.wxauth + "/jssdk/config?url=" + encodeURIComponent(page)).then(function (r) {
      return r.json().then(function (j) {
        var out = $("jssdk-result");
        out.classList.remove("hidden");
        if (!r.ok) { out.textContent = "error: " + JSON.stringify(j); return; }
        var check = cfg.emulator
          ? fetch(cfg.emulator + "/emu/jssdk/check?url=" + encodeURIComponent(page) + "&timestamp=" + j.timestamp +
              "&nonceStr=" + encodeURIComponent(j.nonceStr) + "&signature=" + j.signature)
            .then(function (c) { return c.ok ? c.json() : null; }).catch(function () { return null; })
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
    // In authsvc dev a desktop browser logs in by QR code, as in
    // production; this switch lets it take the in-WeChat path instead
    // (user picker, consent page), against the emulator only.
    var inside = document.cookie.split("; ").indexOf(cfg.insideCookie + "=1") >= 0;
    var wechatUA = /MicroMessenger/.test(navigator.userAgent);
    $("emulator-links").innerHTML = 'Development: <a href="' + cfg.emulator + '/emu/chat">chat as a follower</a> · <a href="' +
      cfg.emulator + '/emu/users">test users</a>' + (wechatUA ? "" : ' · <a href="#" id="inside-wechat">' +
      (inside ? "back to the desktop way (QR login) · 恢复桌面扫码登录" : "as inside WeChat (emulated) · 模拟微信内打开") + "</a>");
    var sw = $("inside-wechat");
    if (sw) {
      sw.onclick = function (ev) {
        ev.preventDefault();
        document.cookie = cfg.insideCookie + (inside ? "=; path=/; max-age=0" : "=1; path=/; SameSite=Lax");
        location.reload();
      };
    }
  }

  wxauth.on("logout", function (why) {
    if (why === "expired") { status("Session ended. 会话已结束。"); show("signed-out"); }
  });
  wxauth.ready().then(render, function (e) {
    fail(explain(e));
    status("");
    show("signed-out");
  });
})();

// sipdesk browser softphone: JsSIP over SIP over WebSocket with a
// short-lived JWT (Authorization: Bearer, RFC 8898). Driven by the
// data-* attributes of templates/softphone.html; no build step.
(function () {
  "use strict";
  var root = document.querySelector("[data-softphone]");
  if (!root || typeof JsSIP === "undefined") return;
  var $ = function (n) { return root.querySelector("[data-sp-" + n + "]"); };
  var wsURL = root.dataset.ws, uri = root.dataset.aor;
  var domain = uri.split("@")[1];
  var token = root.dataset.token, expires = Number(root.dataset.expires) * 1000;
  var els = {
    reg: $("reg"), dot: $("dot"), err: $("error"), number: $("number"), call: $("call"), hangup: $("hangup"),
    mute: $("mute"), timer: $("timer"), state: $("call-state"), audio: $("audio"),
    incoming: $("incoming"), caller: $("caller"), answer: $("answer"), decline: $("decline"),
  };
  var session = null, registered = false, timer = null, started = 0, refreshTimer = null;

  // Words for JsSIP's causes and the edge's refusals.
  var words = {
    "Connection Error": "Cannot reach the SIP server over WebSocket.",
    "Request Timeout": "The SIP server did not answer in time.",
    "SIP Failure Code": "The call was refused.",
    "Internal Error": "The softphone hit an internal error.",
    "Busy": "The number is busy.",
    "Rejected": "The call was rejected.",
    "Redirected": "The call was redirected.",
    "Unavailable": "The number is not reachable right now.",
    "Not Found": "The number was not found.",
    "Address Incomplete": "The number is incomplete: dial it in international format, e.g. +44 20 7946 0000.",
    "Incompatible SDP": "The call's audio could not be negotiated.",
    "Missing SDP": "The call's audio could not be negotiated.",
    "Authentication Error": "The softphone token was refused (expired or invalid). Reload the page.",
    "Canceled": "The call was canceled.",
    "No Answer": "No answer.",
    "Expires": "No answer.",
    "No ACK": "The call was lost (no confirmation).",
    "Dialog Error": "The call was lost.",
    "User Denied Media Access": "Microphone access was denied: allow it in the browser to make calls.",
    "Bad Media Description": "The call's audio could not be negotiated.",
    "RTP Timeout": "The call's audio stopped.",
  };
  function describe(e) {
    var res = e && e.message;
    if (res && res.status_code) {
      var code = res.status_code, reason = res.reason_phrase || "";
      if (code === 401 || code === 407) return "The softphone token was refused (expired or invalid). Reload the page.";
      if (code === 403) return "Refused by the server: " + reason + ".";
      if (code === 484) return words["Address Incomplete"];
      if (code === 486 || code === 600) return words.Busy;
      if (code === 503) return "The service is unavailable right now (" + reason + ").";
      return "The call failed: " + code + " " + reason + ".";
    }
    return words[e && e.cause] || (e && e.cause ? "The call ended: " + e.cause + "." : "");
  }
  function showError(msg) {
    els.err.textContent = msg || "";
    els.err.hidden = !msg;
  }
  function setReg(text, on) {
    els.reg.textContent = text;
    els.dot.className = "sp-dot " + (on ? "on" : "off");
    root.dataset.registered = on ? "yes" : "no";
  }
  function fmt(ms) {
    var s = Math.floor(ms / 1000), m = Math.floor(s / 60);
    return (m < 10 ? "0" : "") + m + ":" + (s % 60 < 10 ? "0" : "") + (s % 60);
  }
  function setCallUI() {
    var inCall = !!session;
    els.call.disabled = inCall || !registered;
    els.hangup.disabled = !inCall;
    els.mute.disabled = !inCall || !session.isEstablished();
    root.dataset.call = inCall ? (session.isEstablished() ? "established" : "progress") : "idle";
  }
  function startTimer() {
    started = Date.now();
    clearInterval(timer);
    timer = setInterval(function () { els.timer.textContent = fmt(Date.now() - started); }, 250);
  }
  function stopTimer() { clearInterval(timer); timer = null; }

  var ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(wsURL)],
    uri: uri,
    authorization_jwt: "Bearer " + token,
    register: true,
    register_expires: 300,
    session_timers: false,
    user_agent: "sipdesk-softphone (JsSIP " + JsSIP.version + ")",
  });
  ua.on("connecting", function () { setReg("Connecting…", false); });
  ua.on("connected", function () { setReg("Connected, registering…", false); });
  ua.on("disconnected", function () { registered = false; setReg("Disconnected: reconnecting…", false); setCallUI(); });
  ua.on("registered", function () { registered = true; showError(""); setReg("Registered", true); setCallUI(); });
  ua.on("unregistered", function () { registered = false; setReg("Not registered", false); setCallUI(); });
  ua.on("registrationFailed", function (e) {
    registered = false;
    setReg("Not registered", false);
    showError(describe(e) || "Registration failed.");
    setCallUI();
  });
  ua.on("newRTCSession", function (e) {
    var s = e.session;
    if (session) { // one call at a time
      if (e.originator === "remote") s.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      return;
    }
    session = s;
    root.dataset.direction = e.originator === "remote" ? "inbound" : "outbound";
    var attach = function (pc) {
      pc.addEventListener("track", function (ev) {
        els.audio.srcObject = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      });
    };
    if (s.connection) attach(s.connection);
    s.on("peerconnection", function (ev) { attach(ev.peerconnection); });
    s.on("progress", function () { els.state.textContent = e.originator === "remote" ? "Ringing…" : "Ringing…"; setCallUI(); });
    s.on("accepted", function () { els.state.textContent = "In call"; startTimer(); setCallUI(); });
    s.on("confirmed", function () { els.state.textContent = "In call"; setCallUI(); });
    var done = function (ev, how) {
      els.incoming.hidden = true;
      stopTimer();
      session = null;
      els.mute.textContent = "Mute";
      els.mute.setAttribute("aria-pressed", "false");
      var text = ev.originator === "remote" && how === "ended" ? "The other side hung up." : "Call ended.";
      if (how === "failed" && ev.cause !== JsSIP.C.causes.CANCELED) showError(describe(ev));
      els.state.textContent = how === "failed" ? "Call failed." : text;
      root.dataset.lastEnd = how + ":" + ev.originator;
      setCallUI();
    };
    s.on("ended", function (ev) { done(ev, "ended"); });
    s.on("failed", function (ev) { done(ev, "failed"); });
    if (e.originator === "remote") {
      var from = s.remote_identity;
      els.caller.textContent = (from.display_name ? from.display_name + " " : "") + from.uri.user;
      els.incoming.hidden = false;
      els.state.textContent = "Incoming call…";
    }
    showError("");
    setCallUI();
  });

  var opts = { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } };
  function dial() {
    var n = els.number.value.replace(/[\s().-]/g, "");
    if (!/^\+?[0-9*#]{3,20}$/.test(n)) { showError("Type a number to call, e.g. +44 20 7946 0000."); return; }
    showError("");
    els.state.textContent = "Calling " + n + "…";
    try { ua.call("sip:" + n + "@" + domain, opts); } catch (err) { showError("The call could not start: " + err.message); }
  }
  els.call.addEventListener("click", dial);
  els.number.addEventListener("keydown", function (e) { if (e.key === "Enter") dial(); });
  els.hangup.addEventListener("click", function () { if (session) session.terminate(); });
  els.mute.addEventListener("click", function () {
    if (!session) return;
    var muted = session.isMuted().audio;
    if (muted) session.unmute({ audio: true }); else session.mute({ audio: true });
    els.mute.textContent = muted ? "Mute" : "Unmute";
    els.mute.setAttribute("aria-pressed", muted ? "false" : "true");
  });
  els.answer.addEventListener("click", function () {
    if (!session) return;
    els.incoming.hidden = true;
    session.answer(opts);
  });
  els.decline.addEventListener("click", function () {
    if (!session) return;
    session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
  });
  root.querySelectorAll("[data-sp-key]").forEach(function (b) {
    b.addEventListener("click", function () {
      var k = b.dataset.spKey;
      if (session && session.isEstablished()) { session.sendDTMF(k); return; }
      els.number.value += k;
      els.number.focus();
    });
  });

  // A fresh token a minute before this one expires (the portal's last 10 minutes).
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, Math.max(5000, expires - Date.now() - 60000));
  }
  function refresh() {
    fetch(location.pathname + location.search, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (x) {
        if (!x.ok || !x.j.token) throw new Error(x.j.error || "no token");
        token = x.j.token;
        expires = Date.parse(x.j.expires_at);
        ua.set("authorization_jwt", "Bearer " + token);
        scheduleRefresh();
      })
      .catch(function (err) {
        showError("Could not renew the softphone token (" + err.message + "): reload the page if calls stop working.");
        refreshTimer = setTimeout(refresh, 15000);
      });
  }
  scheduleRefresh();

  // For tests and diagnostics: the live call's RTP counters.
  window.sipdeskSoftphone = {
    ua: ua,
    session: function () { return session; },
    stats: function () {
      if (!session || !session.connection) return Promise.resolve(null);
      return session.connection.getStats().then(function (st) {
        var out = { packetsReceived: 0, packetsSent: 0 };
        st.forEach(function (r) {
          if (r.type === "inbound-rtp" && r.kind === "audio") out.packetsReceived += r.packetsReceived || 0;
          if (r.type === "outbound-rtp" && r.kind === "audio") out.packetsSent += r.packetsSent || 0;
        });
        return out;
      });
    },
  };
  window.addEventListener("pagehide", function () { try { ua.stop(); } catch (e) { /* closing */ } });
  setCallUI();
  ua.start();
})();

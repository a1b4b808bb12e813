// sipdesk portal: passkey ceremonies (WebAuthn). A same-origin file, so the
// CSP needs no inline script. Markup:
//   <form data-passkey="create|get" data-begin="/url"> with hidden inputs
//   passkey_ceremony and passkey_response: the submit button (or a button
//   with data-passkey-submit) asks the server for options, runs the
//   browser's ceremony, fills the two fields and submits the form.
// The server checks everything; errors come back as a normal page.
(function () {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) {
    document.querySelectorAll('[data-passkey-only]').forEach(function (el) { el.hidden = true; });
    document.querySelectorAll('[data-passkey-unsupported]').forEach(function (el) { el.hidden = false; });
    return;
  }

  function b64u(buf) {
    var s = '', b = new Uint8Array(buf);
    for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function unb64u(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s), b = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
    return b.buffer;
  }
  function decodeList(list) {
    (list || []).forEach(function (c) { c.id = unb64u(c.id); });
  }

  // The credential as JSON (what the server's parser reads).
  function toJSON(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: b64u(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: b64u(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = b64u(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = b64u(r.authenticatorData);
      out.response.signature = b64u(r.signature);
      if (r.userHandle) out.response.userHandle = b64u(r.userHandle);
    }
    return JSON.stringify(out);
  }

  function say(form, msg) {
    var el = form.querySelector('[data-passkey-status]');
    if (el) { el.textContent = msg; el.hidden = false; }
  }

  function run(form) {
    var kind = form.getAttribute('data-passkey');
    var body = new URLSearchParams();
    var tok = form.querySelector('input[name="token"]');
    if (tok) body.set('token', tok.value);
    say(form, 'Waiting for your passkey…');
    fetch(form.getAttribute('data-begin'), {
      method: 'POST', credentials: 'same-origin', body: body,
      headers: { 'Accept': 'application/json' }
    }).then(function (res) {
      return res.json().then(function (j) {
        if (!res.ok) throw new Error(j.error || 'The server refused: try again.');
        return j;
      });
    }).then(function (j) {
      var pk = j.options.publicKey;
      pk.challenge = unb64u(pk.challenge);
      if (kind === 'create') {
        pk.user.id = unb64u(pk.user.id);
        decodeList(pk.excludeCredentials);
        return navigator.credentials.create({ publicKey: pk }).then(function (c) { return [j, c]; });
      }
      decodeList(pk.allowCredentials);
      return navigator.credentials.get({ publicKey: pk, mediation: j.options.mediation || undefined }).then(function (c) { return [j, c]; });
    }).then(function (jc) {
      form.querySelector('input[name="passkey_ceremony"]').value = jc[0].ceremony;
      form.querySelector('input[name="passkey_response"]').value = toJSON(jc[1]);
      say(form, 'Checking…');
      HTMLFormElement.prototype.submit.call(form);
    }).catch(function (e) {
      var msg = e && e.name === 'NotAllowedError' ? 'The passkey request was cancelled or timed out. Try again.'
        : e && e.name === 'InvalidStateError' ? 'This passkey is already registered.'
        : (e && e.message) || 'The passkey did not work. Try again.';
      say(form, msg);
    });
  }

  document.querySelectorAll('form[data-passkey]').forEach(function (form) {
    form.addEventListener('submit', function (e) {
      var btn = e.submitter;
      // Only the passkey button runs the ceremony (a form may also carry
      // a code field and its own button).
      if (btn && !btn.hasAttribute('data-passkey-submit')) return;
      if (form.querySelector('input[name="passkey_response"]').value) return;
      // A new passkey without a name: the server says so next to the
      // field, before any passkey is made.
      var name = form.querySelector('input[name="name"]');
      if (name && !name.value.trim()) return;
      e.preventDefault();
      run(form);
    });
  });
})();

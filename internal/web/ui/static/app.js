// sipdesk portal: progressive enhancement driven by data-* attributes.
// Every page works without this file; it adds modal dialogs, the one-at-a-time
// username reveal, live rule search, Select All, copy and generate buttons.
(function () {
  'use strict';
  document.documentElement.classList.add('js');
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };

  function setIcon(btn, name) {
    var use = btn.querySelector('use');
    if (use) use.setAttribute('href', '#i-' + name);
  }

  // Dialogs rendered open by the server become real modals.
  function initDialogs() {
    $$('dialog[data-modal][open]').forEach(function (d) {
      if (typeof d.showModal !== 'function') return;
      d.close();
      d.showModal();
      // Focus the field in error, else the first field, else the main
      // button; never the close icon.
      var fields = $$('.dialog-body [aria-invalid="true"], .dialog-body [autofocus], .dialog-body input:not([type=hidden]):not([disabled]), .dialog-body select:not([disabled]), .dialog-body textarea', d)
        .filter(function (el) { return el.offsetParent !== null && el.type !== 'checkbox' && el.type !== 'radio'; });
      var target = fields[0] || $('.dialog-body .btn-primary, .dialog-body .btn-danger', d);
      if (target) target.focus();
      d.addEventListener('cancel', function (e) {
        e.preventDefault();
        window.location.href = d.getAttribute('data-close-href') || '/';
      });
    });
  }

  // Username reveal: one at a time, each reveal a POST the server audits.
  function hideUsername(form) {
    var cell = form.closest('.reveal');
    var code = cell && cell.querySelector('[data-username]');
    var btn = form.querySelector('button');
    if (!code || !btn) return;
    code.textContent = code.getAttribute('data-masked');
    btn.setAttribute('aria-pressed', 'false');
    btn.setAttribute('aria-label', btn.getAttribute('aria-label').replace(/^Hide/, 'Reveal'));
    btn.setAttribute('data-tip', 'Reveal username');
    setIcon(btn, 'eye');
  }
  function initReveal() {
    $$('form[data-reveal]').forEach(function (form) {
      var btn = form.querySelector('button');
      btn.setAttribute('aria-pressed', 'false');
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        if (btn.getAttribute('aria-pressed') === 'true') { hideUsername(form); return; }
        btn.disabled = true;
        fetch(form.action, { method: 'POST', credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
          .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
          .then(function (data) {
            $$('form[data-reveal]').forEach(function (f) { if (f !== form) hideUsername(f); });
            var code = form.closest('.reveal').querySelector('[data-username]');
            code.textContent = data.username;
            btn.setAttribute('aria-pressed', 'true');
            btn.setAttribute('aria-label', btn.getAttribute('aria-label').replace(/^Reveal/, 'Hide'));
            btn.setAttribute('data-tip', 'Hide username');
            setIcon(btn, 'eye-off');
          })
          .catch(function () { form.submit(); })
          .finally(function () { btn.disabled = false; });
      });
    });
  }

  // Eye toggle on typed passwords.
  function initPasswordToggles() {
    $$('[data-toggle-password]').forEach(function (btn) {
      btn.addEventListener('click', function () {
        var input = document.getElementById(btn.getAttribute('data-toggle-password'));
        var show = input.type === 'password';
        input.type = show ? 'text' : 'password';
        btn.setAttribute('aria-pressed', String(show));
        btn.setAttribute('aria-label', show ? 'Hide password' : 'Show password');
        btn.setAttribute('data-tip', show ? 'Hide password' : 'Show password');
        setIcon(btn, show ? 'eye-off' : 'eye');
      });
    });
  }

  // Copy buttons: the value of an input or the text of an element.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return Promise.resolve(legacyCopy(text));
  }
  function legacyCopy(text) {
    var ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.className = 'sr-only';
    document.body.appendChild(ta);
    ta.select();
    try { document.execCommand('copy'); } catch (e) { /* nothing more to try */ }
    document.body.removeChild(ta);
  }
  function initCopy() {
    $$('[data-copy]').forEach(function (btn) {
      btn.addEventListener('click', function () {
        var el = document.getElementById(btn.getAttribute('data-copy'));
        var text = 'value' in el ? el.value : el.textContent;
        if (!text) return;
        var tip = btn.getAttribute('data-tip');
        copyText(text.trim()).then(function () {
          btn.setAttribute('data-tip', 'Copied');
          btn.setAttribute('data-copied', '');
          setTimeout(function () { btn.setAttribute('data-tip', tip); btn.removeAttribute('data-copied'); }, 1500);
        });
      });
    });
  }

  // JWT secret generator: 32 letters or digits from crypto.getRandomValues.
  function initGenerate() {
    var alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    $$('[data-generate-secret]').forEach(function (btn) {
      btn.hidden = false;
      btn.addEventListener('click', function () {
        var out = '', buf = new Uint8Array(1);
        while (out.length < 32) {
          crypto.getRandomValues(buf);
          if (buf[0] < 248) out += alphabet[buf[0] % 62]; // 248 = 4 * 62: no bias
        }
        var input = document.getElementById(btn.getAttribute('data-generate-secret'));
        input.value = out;
        input.dispatchEvent(new Event('input'));
      });
    });
  }

  // Radio groups that show the fields of the chosen option; inputs of hidden
  // sections are disabled so they are not submitted.
  function initSwitches() {
    [['data-auth-switch', 'data-show-auth'], ['data-scope-switch', 'data-show-scope'], ['data-type-switch', 'data-show-type']].forEach(function (p) {
      $$('form').forEach(function (form) {
        var radios = $$('[' + p[0] + ']', form);
        if (!radios.length) return;
        var sync = function () {
          var on = radios.filter(function (r) { return r.checked; })[0];
          var val = on ? on.value : '';
          $$('[' + p[1] + ']', form).forEach(function (el) {
            var show = el.getAttribute(p[1]) === val;
            el.hidden = !show;
            $$('input, select, textarea', el).forEach(function (i) { i.disabled = !show; });
            if (el.matches('input, select, textarea')) el.disabled = !show;
          });
        };
        radios.forEach(function (r) { r.addEventListener('change', sync); });
        sync();
      });
    });
  }

  // IP list editor: add and remove rows.
  function initIPLists() {
    $$('[data-iplist]').forEach(function (list) {
      var add = $('[data-ip-add]', list);
      var wire = function (row) {
        var rm = $('[data-ip-remove]', row);
        rm.hidden = false;
        rm.addEventListener('click', function () {
          if ($$('[data-ip-row]', list).length > 1) row.remove(); else $('input', row).value = '';
        });
      };
      $$('[data-ip-row]', list).forEach(wire);
      add.hidden = false;
      add.addEventListener('click', function () {
        var rows = $$('[data-ip-row]', list);
        var row = rows[rows.length - 1].cloneNode(true);
        $('input', row).value = '';
        $('input', row).removeAttribute('aria-invalid');
        list.insertBefore(row, add);
        wire(row);
        $('input', row).focus();
      });
    });
  }

  // Caller ID panel: search, All Rules / Selected tabs, Select All, counter.
  function initRules() {
    $$('[data-callerid]').forEach(function (panel) {
      var search = $('[data-rule-search]', panel);
      var selectAll = $('[data-select-all]', panel);
      var rows = $$('[data-rule]', panel);
      var none = $('[data-rules-none]', panel);
      var tabs = $$('[data-rules-tab]', panel);
      var tab = (tabs.filter(function (t) { return t.getAttribute('aria-selected') === 'true'; })[0] || tabs[0]);
      var mode = tab ? tab.getAttribute('data-rules-tab') : 'all';
      var visible = function () { return rows.filter(function (r) { return !r.hidden; }); };
      var box = function (r) { return $('[data-rule-check]', r); };
      // refilter: false on a checkbox click, so that a rule cleared in the
      // Selected tab stays in view (a slip of the mouse is easy to undo).
      var update = function (refilter) {
        var q = search ? search.value.trim().toLowerCase() : '';
        if (refilter !== false) rows.forEach(function (r) {
          var match = !q || r.getAttribute('data-search').indexOf(q) >= 0;
          r.hidden = !match || (mode === 'selected' && !box(r).checked);
        });
        var checked = rows.filter(function (r) { return box(r).checked; }).length;
        $('[data-selected-count]', panel).textContent = checked;
        var vis = visible();
        var visChecked = vis.filter(function (r) { return box(r).checked; }).length;
        if (selectAll) {
          selectAll.checked = vis.length > 0 && visChecked === vis.length;
          selectAll.indeterminate = visChecked > 0 && visChecked < vis.length;
        }
        if (none) none.hidden = !(rows.length && !vis.length);
      };
      if (search) {
        search.addEventListener('input', update);
        search.addEventListener('keydown', function (e) { if (e.key === 'Enter') e.preventDefault(); });
      }
      if (selectAll) selectAll.addEventListener('change', function () {
        visible().forEach(function (r) { box(r).checked = selectAll.checked; });
        update(false);
      });
      rows.forEach(function (r) { box(r).addEventListener('change', function () { update(false); }); });
      tabs.forEach(function (t) {
        t.addEventListener('click', function (e) {
          e.preventDefault();
          mode = t.getAttribute('data-rules-tab');
          tabs.forEach(function (x) { x.setAttribute('aria-selected', String(x === t)); });
          update();
        });
      });
      update();
    });
  }

  // Tabs of the Edit dialog switch panels in place.
  function initTabs() {
    $$('[data-tabs]').forEach(function (bar) {
      var tabs = $$('[data-tab]', bar);
      var root = bar.parentNode;
      tabs.forEach(function (t) {
        t.addEventListener('click', function (e) {
          e.preventDefault();
          var name = t.getAttribute('data-tab');
          tabs.forEach(function (x) { x.setAttribute('aria-selected', String(x === t)); });
          $$('[data-panel]', root).forEach(function (p) { p.hidden = p.getAttribute('data-panel') !== name; });
          if (window.history && history.replaceState) history.replaceState(null, '', t.getAttribute('href'));
        });
      });
    });
  }

  // Forms that ask before they delete.
  function initConfirm() {
    $$('form[data-confirm]').forEach(function (form) {
      form.addEventListener('submit', function (e) {
        if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault();
      });
    });
  }


  // Live Calls and In Process statuses update by themselves: a small
  // same-origin JSON poll (the CSP allows connect-src 'self'), paused while
  // the tab is hidden.
  function poll(url, every, apply) {
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
        .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
        .then(apply)
        .catch(function () {})
        .then(function () { busy = false; });
    }, every);
  }
  function cell(tr, label, text, cls) {
    var td = document.createElement('td');
    td.setAttribute('data-label', label);
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
  }
  function initLive() {
    var table = $('table[data-live]');
    if (!table) return;
    var body = table.querySelector('tbody');
    var empty = body.querySelector('td.empty');
    var emptyText = empty ? empty.textContent : '';
    poll(table.getAttribute('data-live'), 2000, function (data) {
      var rows = (data && data.calls) || [];
      body.textContent = '';
      rows.forEach(function (c) {
        var tr = document.createElement('tr');
        cell(tr, 'Started', c.started_at);
        cell(tr, 'SIP account', c.account);
        cell(tr, 'Direction', c.direction);
        cell(tr, 'Destination', c.destination, 'uri');
        cell(tr, 'Duration', c.duration);
        cell(tr, 'Node', c.node);
        body.appendChild(tr);
      });
      if (!rows.length) {
        var tr = document.createElement('tr');
        var td = document.createElement('td');
        td.colSpan = 6; td.className = 'empty'; td.textContent = emptyText;
        tr.appendChild(td); body.appendChild(tr);
      }
    });
  }
  function initStatuses() {
    var table = $('table[data-accounts]');
    if (!table || !$('.status-in_process', table)) return;
    poll('/sip-accounts/status.json', 3000, function (data) {
      ((data && data.accounts) || []).forEach(function (a) {
        var span = $('tr[data-account="' + Number(a.id) + '"] .status', table);
        if (!span) return;
        span.className = 'status status-' + a.status;
        span.textContent = a.label;
      });
    });
  }
  function init() {
    initDialogs();
    initReveal();
    initPasswordToggles();
    initCopy();
    initGenerate();
    initSwitches();
    initIPLists();
    initRules();
    initTabs();
    initConfirm();
    initLive();
    initStatuses();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();

// End-to-end test of the sipdesk portal in headless Chromium, as a new
// customer would use it. Builds and starts `sipdesk serve` on 127.0.0.1 with
// a temporary data folder and free ports, then clicks through signup, the SIP
// Accounts page, the credential email flow, auth switches, Caller ID rules,
// tickets and deletion; checks that each form's errors appear next to the
// field; takes the screenshots in docs/screenshots/.
//
//   cd e2e && npm ci && node run.mjs
//
// Env: CHROMIUM (default /usr/bin/chromium), SIPDESK_BIN (skip the build),
// KEEP=1 (keep the data folder), CI=true (a missing browser fails instead of
// skipping).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Runner, assert, freePort, startServer, waitHealthy, admin, readMail, sipRegister,
  here, shotsDir, requireBrowser, launchChromium, workDir, removeWorkDir, sipdeskBinary } from './lib.mjs';

const chromium = await requireBrowser("browser tests not run (install Debian's chromium and run npm ci in e2e/)");

const work = workDir('sipdesk-e2e-');
const dataDir = join(work, 'data');
const bin = sipdeskBinary(work);
const httpPort = await freePort();
const sipPort = await freePort();
const base = `http://127.0.0.1:${httpPort}`;
const realm = 'sipdesk.local';
const log = [];
const server = startServer(bin, ['serve', '--data', dataDir, '--http', `127.0.0.1:${httpPort}`, '--sip', `127.0.0.1:${sipPort}`,
  '--allow-private-ips', '--node', 'e2e', '--log-level', 'warn'], log);
let browser;
const cleanup = async () => {
  if (browser) await browser.close().catch(() => {});
  server.kill('SIGTERM');
  removeWorkDir(work);
};

const run = new Runner();
try {
  await waitHealthy(base, server, log);
  browser = await launchChromium(chromium, ['--disable-quic', '--disable-component-update', '--disable-sync']);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: base });
  const page = await ctx.newPage();
  const jsErrors = [];
  page.on('pageerror', (e) => jsErrors.push(String(e)));
  // Console errors, except the expected 4xx answers of refused forms.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) jsErrors.push(m.text()); });
  run.reportFailures({ page: () => page, work, log });

  const stamp = Date.now().toString(36);
  const email = `e2e-${stamp}@acme.example`;
  const portalPw = 'Portal-Passw0rd-e2e';
  const phone = '+44 7700 900' + String(100 + Math.floor(Math.random() * 800));
  const phoneE164 = phone.replace(/\s/g, '');
  const st = { };

  // Helpers.
  const row = (name) => page.locator('tr[data-account]', { has: page.locator('.acc-name', { hasText: new RegExp(`^${name}$`) }) });
  const fieldError = async (input, text) => {
    const loc = page.locator(input).first();
    await loc.waitFor();
    const ok = await loc.evaluate((el, text) => {
      const box = el.closest('.field, fieldset');
      const errs = [...box.querySelectorAll('.field-error')].map((e) => e.textContent);
      return errs.some((t) => t.includes(text)) ? '' : `errors in the field: ${JSON.stringify(errs)}`;
    }, text);
    assert(ok === '', `"${text}" next to ${input}: ${ok}`);
  };
  const flash = async (text) => {
    const t = await page.locator('.flash').innerText();
    assert(t.includes(text), `flash "${t}" lacks "${text}"`);
  };
  const dialogOpen = async (title) => {
    const d = page.locator('dialog[open]');
    await d.waitFor();
    assert(await d.evaluate((el) => el.matches(':modal')), 'the dialog is modal');
    const h = await d.locator('#dlg-title').innerText();
    assert(h.includes(title), `dialog title "${h}" lacks "${title}"`);
    return d;
  };

  await run.step('signup form: errors next to the fields, then sign up', async () => {
    await page.goto('/signup');
    await page.fill('#email', 'not-an-email');
    await page.fill('#password', portalPw);
    await page.fill('#password_confirm', portalPw);
    await page.fill('#phone', phone);
    await page.click('button[type=submit]');
    await fieldError('#email', 'must be a valid email address');
    assert(await page.inputValue('#phone') === phone, 'the phone is kept');
    await page.fill('#email', email);
    await page.fill('#password', 'short');
    await page.fill('#password_confirm', 'short');
    await page.click('button[type=submit]');
    await fieldError('#password', 'at least 12 characters');
    await page.fill('#password', portalPw);
    await page.fill('#password_confirm', portalPw);
    await page.click('button[type=submit]');
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    const link = await readMail(base, email.toLowerCase(), /Finish your sipdesk signup/);
    const href = link.body.match(/href="([^"]*\/signup\/confirm\?token=[^"]+)"/)[1];
    await page.goto(href);
    await page.click('form[action="/signup/confirm"] button[type=submit]');
    await page.waitForURL('**/verify');
    assert((await page.content()).includes(phoneE164), 'the verify page names the phone');
  });

  await run.step('verify the phone with the code from the dev mailbox', async () => {
    await page.fill('#code', '000000');
    await page.click('button[type=submit]');
    await fieldError('#code', 'the code is not right');
    const mail = await readMail(base, 'sms:' + phoneE164, /verification code/);
    const code = mail.body.match(/code is (\d{6})/)[1];
    await page.fill('#code', code);
    await page.click('form[action="/verify"] button[type=submit]');
    await page.getByRole('heading', { name: 'Your trial is ready' }).waitFor();
    st.user1 = (await page.locator('#new-username').innerText()).trim();
    st.pass1 = (await page.locator('#new-password').innerText()).trim();
    assert(st.user1.length >= 8 && st.pass1.length >= 12, 'first credentials shown once');
    st.customer = admin(bin, dataDir, 'customer', 'list').find((c) => c.email === email).id;
  });

  await run.step('SIP Accounts lists the first account with a masked username; the eye reveals it', async () => {
    await page.click('text=Go to SIP Accounts');
    await page.waitForURL('**/sip-accounts');
    const cell = row('Main').locator('[data-username]');
    const masked = st.user1.slice(0, 2) + '••••••';
    assert(await cell.innerText() === masked, `masked username, got ${await cell.innerText()}`);
    assert(!(await page.content()).includes(st.user1), 'the username is not in the page');
    assert(!(await page.content()).includes(st.pass1), 'the password is not in the page');
    for (const t of ['VoIP Services', 'of 10 used', 'Increase channel limit', 'Trial', 'Auth Type', 'Username/IP', 'Controls']) {
      assert((await page.content()).includes(t), `page shows ${t}`);
    }
    await page.getByRole('button', { name: 'Reveal username of Main' }).click();
    await page.waitForFunction((u) => document.querySelector('tr[data-account] [data-username]').textContent === u, st.user1);
    // Every icon button has an accessible name and a tooltip that shows on hover.
    const bad = await page.$$eval('.icon-btn', (els) => els.filter((e) => !e.getAttribute('aria-label') || !e.getAttribute('data-tip')).length);
    assert(bad === 0, `${bad} icon buttons without a name or tooltip`);
    const key = page.getByRole('link', { name: 'Reset password of Main' });
    await key.hover();
    await page.waitForTimeout(250);
    const tip = await key.evaluate((el) => { const s = getComputedStyle(el, '::after'); return s.opacity + '|' + s.content; });
    assert(tip.startsWith('1|') && tip.includes('Reset password'), `tooltip on hover: ${tip}`);
  });

  await run.step('add a second account (errors in the dialog); revealing it masks the first again', async () => {
    await page.click('[data-testid=add-account]');
    await dialogOpen('Add SIP account');
    await page.fill('#add-name', '');
    await page.click('dialog button[type=submit]');
    await dialogOpen('Add SIP account');
    await fieldError('#add-name', 'must be 1 to 64 characters');
    await page.fill('#add-name', 'Office PBX');
    await page.click('dialog button[type=submit]');
    await dialogOpen('SIP account created');
    st.user2 = (await page.locator('#new-username').innerText()).trim();
    await page.click('dialog >> text=Done');
    await page.waitForURL('**/sip-accounts');
    await page.getByRole('button', { name: 'Reveal username of Main' }).click();
    await page.waitForFunction((u) => [...document.querySelectorAll('[data-username]')].some((e) => e.textContent === u), st.user1);
    await page.getByRole('button', { name: 'Reveal username of Office PBX' }).click();
    await page.waitForFunction((u) => [...document.querySelectorAll('[data-username]')].some((e) => e.textContent === u), st.user2);
    const first = await row('Main').locator('[data-username]').innerText();
    assert(first === st.user1.slice(0, 2) + '••••••', `the first is masked again, got ${first}`);
    await page.waitForFunction(() => ![...document.querySelectorAll('.status')].some((e) => e.textContent === 'In Process'), null, { timeout: 1 }).catch(() => {});
    await page.reload(); // in_process → active within a second on one node
    await page.waitForTimeout(1200);
    await page.reload();
    await page.screenshot({ path: join(shotsDir, 'sip-accounts.png') });
  });

  await run.step('reset flow: key → Send email → the email\'s Edit Credentials link → Save changes', async () => {
    await page.getByRole('link', { name: 'Reset password of Main' }).click();
    await dialogOpen('Reset password or change username');
    await page.click('dialog >> text=Send email');
    await dialogOpen('Check your email');
    const mail = await readMail(base, email, /Edit the credentials/);
    st.resetMail = mail.id;
    await page.goto('/dev/mail/' + mail.id);
    await page.click('text=Edit Credentials');
    await page.waitForURL('**/sip-accounts/edit-credentials?token=*');
    st.resetLink = page.url();
    await dialogOpen('Edit Credentials');
    st.user1b = 'e2e' + stamp.slice(-6) + 'x';
    st.pass1b = 'New-Sip-Passw0rd-' + stamp;
    await page.fill('#cred-username', st.user1b);
    await page.fill('#cred-password', st.pass1b);
    await page.getByRole('button', { name: 'Show password' }).first().click();
    assert(await page.getAttribute('#cred-password', 'type') === 'text', 'the eye shows the typed password');
    await page.fill('#cred-portal', 'Wrong-portal-1');
    await page.mouse.move(5, 850);
    await page.screenshot({ path: join(shotsDir, 'edit-credentials.png') });
    await page.click('dialog button[type=submit]');
    await dialogOpen('Edit Credentials');
    await fieldError('#cred-portal', 'the portal password is not right');
    assert(await page.inputValue('#cred-username') === st.user1b, 'the typed username is kept');
    await page.fill('#cred-password', st.pass1b);
    await page.fill('#cred-portal', portalPw);
    await page.click('dialog button[type=submit]');
    await page.waitForURL('**/sip-accounts');
    await flash('New credentials saved for “Main”');
    await page.getByRole('button', { name: 'Reveal username of Main' }).click();
    await page.waitForFunction((u) => [...document.querySelectorAll('[data-username]')].some((e) => e.textContent === u), st.user1b);
  });

  await run.step('used and invalid reset links show a clear page', async () => {
    const res = await page.goto(st.resetLink);
    assert(res.status() === 410, `reused link: ${res.status()}`);
    await page.getByRole('heading', { name: 'This link was already used' }).waitFor();
    assert((await page.content()).includes('ask for a new email'), 'says what to do');
    const bad = await page.goto('/sip-accounts/edit-credentials?token=not-a-token');
    assert(bad.status() === 404, `invalid link: ${bad.status()}`);
    await page.getByRole('heading', { name: 'This link is not valid' }).waitFor();
  });

  await run.step('the new credentials REGISTER over SIP; the old ones are refused', async () => {
    await page.waitForTimeout(1200); // the edge applies the change (in_process → active)
    const ok = await sipRegister({ host: '127.0.0.1', port: sipPort, realm, username: st.user1b, password: st.pass1b });
    assert(ok === 200, `REGISTER with the new credentials: ${ok}`);
    const old = await sipRegister({ host: '127.0.0.1', port: sipPort, realm, username: st.user1, password: st.pass1 });
    assert(old !== 200, `REGISTER with the old credentials: ${old}`);
    const wrong = await sipRegister({ host: '127.0.0.1', port: sipPort, realm, username: st.user1b, password: st.pass1 });
    assert(wrong !== 200, `REGISTER with the old password: ${wrong}`);
  });

  await run.step('switch to IP auth (error next to the IP list first) and back', async () => {
    await page.goto('/sip-accounts');
    await page.getByRole('link', { name: 'Edit Office PBX' }).click();
    await dialogOpen('Edit SIP account');
    await page.check('dialog input[name=auth_type][value=ip]');
    await page.locator('[data-show-auth=ip]').first().waitFor();
    await page.click('dialog section[data-panel=general] button[type=submit]');
    await dialogOpen('Edit SIP account');
    await fieldError('input[name=allowed_ips]', 'needs at least one address');
    assert(await page.isChecked('dialog input[name=auth_type][value=ip]'), 'the choice is kept');
    await page.fill('input[name=allowed_ips] >> nth=0', '127.0.0.10');
    await page.click('[data-ip-add]');
    await page.fill('input[name=allowed_ips] >> nth=1', '192.0.2.0/24');
    await page.click('dialog section[data-panel=general] button[type=submit]');
    await page.waitForURL('**/sip-accounts');
    await flash('Switched to IP authentication');
    const r = row('Office PBX');
    assert((await r.innerText()).includes('127.0.0.10, 192.0.2.0/24'), 'the IPs are listed');
    assert(await r.getByRole('link', { name: /Reset password/ }).count() === 0, 'no key icon on IP accounts');
    await r.getByRole('link', { name: 'Edit Office PBX' }).click();
    await dialogOpen('Edit SIP account');
    await page.check('dialog input[name=auth_type][value=password]');
    await page.click('[data-ip-remove] >> nth=1');
    await page.fill('input[name=allowed_ips] >> nth=0', '');
    await page.click('dialog section[data-panel=general] button[type=submit]');
    await page.waitForURL('**/sip-accounts');
    await flash('Switched to password authentication');
    assert((await row('Office PBX').innerText()).includes('Password'), 'password auth again');
    st.switchMail = await readMail(base, email, /Edit the credentials/, new Set([st.resetMail]));
  });

  await run.step('an expired reset link shows a clear page', async () => {
    // Time travel: the link of the switch-back email is made 31 minutes old
    // in the database itself (the server's clock cannot be moved).
    const link = st.switchMail.body.match(/href="([^"]*edit-credentials\?token=[^"]+)"/)[1];
    const token = new URL(link).searchParams.get('token');
    execFileSync('python3', ['-c', `import sqlite3,sys,time
db=sqlite3.connect(sys.argv[1]); db.execute("PRAGMA busy_timeout=5000")
n=db.execute("UPDATE credential_resets SET expires_at=? WHERE used_at=0", (int(time.time()*1000)-60000,)).rowcount
db.commit(); assert n>0, "no pending reset"`, join(dataDir, 'sipdesk.db')]);
    const res = await page.goto('/sip-accounts/edit-credentials?token=' + encodeURIComponent(token));
    assert(res.status() === 410, `expired link: ${res.status()}`);
    await page.getByRole('heading', { name: 'This link has expired' }).waitFor();
    assert((await page.content()).includes('ask for a new email'), 'says what to do');
    await page.goto('/sip-accounts');
  });

  await run.step('on trial the Caller ID fields are disabled, with the explanation', async () => {
    await page.getByRole('link', { name: 'Edit Main' }).click();
    await dialogOpen('Edit SIP account');
    await page.getByRole('tab', { name: 'Caller ID' }).click();
    await page.locator('#cid-default').waitFor();
    assert(await page.isDisabled('#cid-default') && await page.isDisabled('#cid-display'), 'disabled on trial');
    const txt = await page.locator('section[data-panel=callerid]').innerText();
    assert(txt.includes('Changing the Caller ID is not available for trial accounts') && txt.includes('top up your account'), 'explains and points to top-up');
  });

  await run.step('after `sipdesk admin topup` the fields are enabled; rules created (errors next to fields)', async () => {
    admin(bin, dataDir, 'topup', '--customer', String(st.customer), '--amount', '50');
    await page.reload();
    await page.locator('#cid-default').waitFor();
    assert(!(await page.isDisabled('#cid-default')) && !(await page.isDisabled('#cid-display')), 'enabled after top-up');
    await page.click('[data-testid=create-rule]');
    await page.waitForURL(/\/caller-id\/rules\/new/);
    await page.fill('#rule-name', 'London office');
    await page.check('input[name=apply_for][value=prefix]');
    await page.fill('#rule-prefix', 'abc');
    await page.check(`input[name=numbers][value="${phoneE164}"]`);
    await page.click('form[data-rule-form] button[type=submit]');
    await fieldError('#rule-prefix', 'must be digits');
    await page.fill('#rule-prefix', '44207');
    await page.click('form[data-rule-form] button[type=submit]');
    await dialogOpen('Edit SIP account'); // back to the Caller ID panel
    await flash('Rule “London office” saved');
    for (const r of [
      { name: 'UK callers', scope: 'country', country: 'GB', type: 'specific' },
      { name: 'Withheld abroad', scope: 'all', type: 'blocked' },
    ]) {
      await page.goto('/caller-id/rules/new');
      await page.fill('#rule-name', r.name);
      await page.check(`input[name=apply_for][value=${r.scope}]`);
      if (r.country) await page.selectOption('#rule-country', r.country);
      await page.check(`input[name=type][value=${r.type}]`);
      if (r.type === 'specific') await page.check(`input[name=numbers][value="${phoneE164}"]`);
      await page.click('form[data-rule-form] button[type=submit]');
      await page.waitForURL('**/caller-id/rules');
    }
    const list = await page.locator('table').innerText();
    assert(list.includes(`For numbers starting with +44207 use ${phoneE164}`) && list.includes('For United Kingdom use') && list.includes('For all calls use Anonymous'), 'rules summarised');
  });

  await run.step('Caller ID panel: Select All, Selected: X of Y, search, Selected tab, save, simulator', async () => {
    await page.goto('/sip-accounts');
    await page.getByRole('link', { name: 'Edit Main' }).click();
    await dialogOpen('Edit SIP account');
    await page.getByRole('tab', { name: 'Caller ID' }).click();
    const counter = page.locator('[data-rule-counter]');
    assert((await counter.innerText()).includes('Selected: 0 of 3'), await counter.innerText());
    await page.check('[data-select-all]');
    assert((await counter.innerText()).includes('Selected: 3 of 3'), await counter.innerText());
    await page.locator('li[data-rule]', { hasText: 'Withheld abroad' }).locator('input').uncheck();
    assert((await counter.innerText()).includes('Selected: 2 of 3'), await counter.innerText());
    const visible = () => page.$$eval('li[data-rule]', (ls) => ls.filter((l) => !l.hidden).map((l) => l.querySelector('.rule-name').textContent));
    await page.fill('[data-rule-search]', 'london');
    assert(JSON.stringify(await visible()) === '["London office"]', `search by name: ${await visible()}`);
    await page.fill('[data-rule-search]', '44207');
    assert(JSON.stringify(await visible()) === '["London office"]', `search by prefix: ${await visible()}`);
    await page.fill('[data-rule-search]', phoneE164.slice(1));
    assert((await visible()).length === 2, `search by number: ${await visible()}`);
    await page.fill('[data-rule-search]', '');
    await page.click('[data-rules-tab=selected]');
    assert(JSON.stringify((await visible()).sort()) === '["London office","UK callers"]', `Selected tab: ${await visible()}`);
    await page.click('[data-rules-tab=all]');
    assert((await visible()).length === 3, 'All Rules tab');
    await page.fill('#cid-display', 'Acme Sales');
    await page.getByRole('button', { name: 'Save Caller ID' }).click();
    await dialogOpen('Edit SIP account');
    await flash('Caller ID settings saved');
    assert((await page.locator('[data-rule-counter]').innerText()).includes('Selected: 2 of 3'), 'selection saved');
    await page.fill('[data-testid=simulator] input[name=to]', '+44 20 7123 4567');
    await page.click('[data-testid=simulator] button[type=submit]');
    await page.locator('.sim-result').waitFor();
    const sim = await page.locator('.sim-result').innerText();
    assert(sim.includes(phoneE164) && sim.includes('London office'), `simulator: ${sim}`);
    await page.setViewportSize({ width: 1280, height: 1020 });
    await page.locator('dialog').evaluate((d) => { d.scrollTop = 0; });
    await page.mouse.move(5, 1000);
    await page.waitForTimeout(200);
    await page.screenshot({ path: join(shotsDir, 'edit-caller-id.png') });
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await run.step('edit form errors next to the fields, nothing saved (name, JWT secret, Caller ID)', async () => {
    await page.getByRole('tab', { name: 'General' }).click();
    await page.fill('#edit-name', '   '); // maxlength stops 65 characters; blanks reach the server
    await page.click('dialog section[data-panel=general] button[type=submit]');
    await fieldError('#edit-name', 'must be 1 to 64 characters');
    await page.goto('/sip-accounts');
    assert(await row('Main').count() === 1, 'the name is unchanged');
    await page.getByRole('link', { name: 'Edit Main' }).click();
    await page.getByRole('tab', { name: /JWT/ }).click();
    await page.getByText('Enable JWT authentication').click(); // the switch's label
    assert(await page.isChecked('input[name=enabled]'), 'the switch is on');
    await page.fill('#jwt-secret', 'tooshort');
    await page.click('section[data-panel=jwt] button[type=submit]');
    await fieldError('#jwt-secret', 'exactly 32 letters or digits');
    await page.click('[data-generate-secret]');
    assert((await page.inputValue('#jwt-secret')).length === 32, 'a 32-character secret is generated');
    await page.click('section[data-panel=jwt] button[type=submit]');
    await flash('JWT authentication enabled');
    await page.goto('/sip-accounts');
    const r = row('Main');
    assert((await r.innerText()).includes('JWT'), 'JWT mark');
    await r.getByRole('link', { name: 'Launch softphone for Main' }).click();
    await page.waitForURL('**/softphone?account=*');
    await page.goto('/sip-accounts');
    await page.getByRole('link', { name: 'Edit Main' }).click();
    await page.getByRole('tab', { name: 'Caller ID' }).click();
    await page.fill('#cid-display', 'Bad "quote"');
    await page.getByRole('button', { name: 'Save Caller ID' }).click();
    await fieldError('#cid-display', 'must not contain quotes');
  });

  await run.step('"Increase channel limit" opens a ticket (error next to the field first)', async () => {
    await page.goto('/sip-accounts');
    await page.click('text=Increase channel limit');
    await page.waitForURL('**/tickets/new?kind=channel_limit');
    await page.fill('#wanted', '3');
    await page.click('form[action="/tickets"] button[type=submit]');
    await fieldError('#wanted', 'must be more than your current limit (10)');
    await page.fill('#wanted', '25');
    await page.fill('#reason', 'Spring campaign');
    await page.click('form[action="/tickets"] button[type=submit]');
    await page.waitForURL('**/tickets');
    await flash('opened');
    assert((await page.locator('table').innerText()).includes('Channel limit → 25'), 'ticket listed');
  });

  await run.step('delete with confirmation', async () => {
    await page.goto('/sip-accounts');
    await page.getByRole('link', { name: 'Delete Office PBX' }).click();
    await dialogOpen('Delete SIP account');
    await page.keyboard.press('Escape'); // cancel closes without deleting
    await page.waitForURL('**/sip-accounts');
    assert(await row('Office PBX').count() === 1, 'still there after cancel');
    await page.getByRole('link', { name: 'Delete Office PBX' }).click();
    await dialogOpen('Delete SIP account');
    await page.click('dialog button.btn-danger');
    await page.waitForURL('**/sip-accounts');
    await flash('deleted');
    assert(await row('Office PBX').count() === 0, 'gone');
  });

  await run.step('other pages render: rules, Caller IDs, calls, audit (reveals logged), API tokens', async () => {
    for (const [path, text] of [['/caller-id/rules', 'London office'], ['/caller-id/numbers', phoneE164], ['/calls', 'No calls yet'],
      ['/calls/live', 'No calls in progress'], ['/audit', 'Username revealed'], ['/tickets', 'Spring campaign']]) {
      await page.goto(path);
      assert((await page.content()).includes(text), `${path} shows ${text}`);
    }
    await page.goto('/api-tokens');
    await page.fill('#token-name', 'e2e');
    await page.click('form[action="/api-tokens"] button[type=submit]');
    const tok = (await page.locator('#new-token').innerText()).trim();
    const res = await fetch(base + '/api/v1/account', { headers: { Authorization: 'Bearer ' + tok } });
    const body = await res.text();
    assert(res.ok && JSON.parse(body).email === email, `the token works on the API: ${res.status} ${body}`);
  });

  await run.step('390 px wide: no horizontal scroll, menu folds, table as cards', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of ['/sip-accounts', '/sip-accounts/new', '/caller-id/rules', '/audit', '/tickets/new']) {
      await page.goto(path);
      const w = await page.evaluate(() => document.documentElement.scrollWidth);
      assert(w <= 390, `${path} is ${w}px wide at 390`);
    }
    await page.goto('/sip-accounts');
    assert(!(await page.locator('.sidenav').isVisible()), 'the menu is folded');
    await page.click('.nav-toggle-label');
    assert(await page.locator('.sidenav').isVisible(), 'the menu opens');
    await page.click('.nav-toggle-label');
    await page.screenshot({ path: join(shotsDir, 'sip-accounts-390.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await run.step('without JavaScript: dialogs render, tabs are links, reveal is a form post', async () => {
    const nojs = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: base, javaScriptEnabled: false });
    const p = await nojs.newPage();
    await p.goto('/login');
    await p.fill('#email', email);
    await p.fill('#password', portalPw);
    await p.click('form[action="/login"] button[type=submit]');
    await p.waitForURL('**/sip-accounts');
    await p.getByRole('button', { name: 'Reveal username of Main' }).click();
    await p.waitForURL('**/reveal');
    assert((await p.content()).includes(st.user1b), 'revealed by a plain POST');
    await p.getByRole('link', { name: 'Edit Main' }).click();
    assert(await p.locator('dialog[open] #edit-name').isVisible(), 'the dialog shows without JS');
    await p.getByRole('tab', { name: 'Caller ID' }).click();
    await p.waitForURL('**/edit?tab=callerid');
    assert(await p.locator('#cid-default').isVisible(), 'Caller ID panel via the tab link');
    await p.fill('input[name=q]', 'withheld');
    await p.click('button[data-nojs]');
    assert((await p.$$eval('li[data-rule]', (ls) => ls.filter((l) => !l.hidden).length)) === 1, 'server-side search');
    await nojs.close();
  });

  await run.step('redirect targets stay on this site (logged out and logged in)', async () => {
    const rc = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: base });
    const p = await rc.newPage();
    const bypasses = ['/%09/evil', '/.%5Cevil', 'https:evil', '/\\evil', '//evil'];
    const here = new URL(base).host;
    for (const next of bypasses) {
      // Logged out: the login form carries next, the POST redirects.
      await p.context().clearCookies();
      await p.goto('/login?next=' + encodeURIComponent(decodeURIComponent(next)));
      await p.fill('#email', email);
      await p.fill('#password', portalPw);
      await p.click('form[action="/login"] button[type=submit]');
      await p.waitForLoadState('load');
      assert(new URL(p.url()).host === here, `logged out, next=${next}: landed on ${p.url()}`);
      // Logged in: GET /login?next= redirects at once.
      await p.goto('/login?next=' + encodeURIComponent(decodeURIComponent(next))).catch(() => {});
      await p.waitForLoadState('load');
      assert(new URL(p.url()).host === here, `logged in, next=${next}: landed on ${p.url()}`);
    }
    await rc.close();
  });

  await run.step('log out; pages need a login again; no script errors', async () => {
    await page.goto('/sip-accounts');
    await page.click('text=Log out');
    await page.waitForURL('**/login');
    await page.goto('/sip-accounts');
    assert(page.url().includes('/login?next='), 'redirected to login');
    assert(jsErrors.length === 0, 'script or CSP errors: ' + jsErrors.join('; '));
  });
} catch (err) {
  console.log('not ok - setup\n  ' + String(err && err.stack || err));
  run.failed++;
} finally {
  await cleanup();
}
const ok = run.summary();
// The browser softphone (SIP over WebSocket, JWT, WebRTC ↔ RTP): its own run.
const { spawnSync } = await import('node:child_process');
console.log('--- softphone.mjs');
const sp = spawnSync(process.execPath, [join(here, 'softphone.mjs')], { stdio: 'inherit', env: process.env });
process.exit(ok && sp.status === 0 ? 0 : 1);

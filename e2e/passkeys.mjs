// Passkeys in headless Chromium with a Chrome DevTools Protocol virtual
// authenticator (WebAuthn.addVirtualAuthenticator: an internal platform
// authenticator with resident keys and user verification): add a passkey
// on Account › Security (named, listed), a login that asks for it after
// the password, "Sign in with a passkey" on its own, Edit Credentials that
// asks the second factor (refused without it, saved with the passkey),
// a passkey of another authenticator refused, and removal with the
// password. Screenshots of the passkey pages at 1280 and 390 px in
// docs/screenshots/.
//
//   cd e2e && npm ci && node passkeys.mjs
//
// The portal runs with --base-url http://localhost:PORT: a passkey's
// relying party is a host name (browsers refuse an IP address).
import { join } from 'node:path';
import { Runner, assert, freePort, startServer, waitHealthy, admin, readMail,
  shotsDir, requireBrowser, launchChromium, workDir, removeWorkDir, sipdeskBinary } from './lib.mjs';

const chromium = await requireBrowser('passkey browser test not run');

const work = workDir('sipdesk-pk-');
const dataDir = join(work, 'data');
const bin = sipdeskBinary(work);
const httpPort = await freePort();
const sipPort = await freePort();
const base = `http://localhost:${httpPort}`;
const log = [];
const server = startServer(bin, ['serve', '--data', dataDir, '--http', `127.0.0.1:${httpPort}`, '--sip', `127.0.0.1:${sipPort}`,
  '--base-url', base, '--allow-private-ips', '--node', 'e2e-pk', '--log-level', 'warn'], log);
let browser;
const cleanup = async () => {
  if (browser) await browser.close().catch(() => {});
  server.kill('SIGTERM');
  removeWorkDir(work);
};

const run = new Runner();
try {
  await waitHealthy(`http://127.0.0.1:${httpPort}`, server, log);
  browser = await launchChromium(chromium, ['--disable-sync']);
  // newPage opens a browser context with its own virtual authenticator
  // (a phone or laptop of the customer's).
  const newPage = async (width = 1280) => {
    const ctx = await browser.newContext({ viewport: { width, height: 900 }, baseURL: base });
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    page.authn = { cdp, id: authenticatorId };
    return page;
  };
  const page = await newPage();
  const jsErrors = [];
  page.on('pageerror', (e) => jsErrors.push(String(e)));
  run.reportFailures({ page: () => page, work, log });
  const stamp = Date.now().toString(36);
  const email = `pk-${stamp}@acme.example`;
  const password = 'Portal-Passw0rd-pk1';
  admin(bin, dataDir, 'customer', 'create', '--email', email, '--password', password, '--phone', '+447700900' + String(100 + Math.floor(Math.random() * 800)));

  const login = async (p) => {
    await p.goto('/login');
    await p.fill('#email', email);
    await p.fill('#password', password);
    await p.click('form[action="/login"] button[type=submit]:has-text("Log in")');
  };
  const loggedIn = async (p) => {
    await p.goto('/sip-accounts');
    return new URL(p.url()).pathname === '/sip-accounts';
  };
  const flash = async (p, text) => {
    const f = await p.locator('.flash').innerText();
    assert(f.includes(text), `flash "${f}" lacks "${text}"`);
  };
  const fieldError = async (p, input, text) => {
    const errs = await p.locator(input).first().evaluate((el) => [...el.closest('.field').querySelectorAll('.field-error')].map((e) => e.textContent));
    assert(errs.some((t) => t.includes(text)), `error "${text}" next to ${input}: ${JSON.stringify(errs)}`);
  };
  const credentials = async (p) => (await p.authn.cdp.send('WebAuthn.getCredentials', { authenticatorId: p.authn.id })).credentials;

  let recovery = [];
  await run.step('add a passkey: named, listed, kept by the authenticator, with recovery codes', async () => {
    await login(page);
    await page.waitForURL('**/sip-accounts');
    await page.goto('/account/security');
    await page.getByTestId('no-passkeys').waitFor();
    await page.click('button:has-text("Add a passkey")');
    await fieldError(page, '#passkey-name', 'give the passkey a name');
    assert((await credentials(page)).length === 0, 'nothing was created without a name');
    await page.fill('#passkey-name', 'Work laptop');
    await page.click('button:has-text("Add a passkey")');
    // The first second factor brings recovery codes, shown this once.
    await page.locator('#recovery-codes').waitFor();
    await flash(page, 'Passkey “Work laptop” added');
    recovery = await page.locator('#recovery-codes li').allInnerTexts();
    assert(recovery.length === 10 && recovery.every((c) => /^[a-z2-9]{5}-[a-z2-9]{5}$/.test(c)), `ten recovery codes: ${JSON.stringify(recovery)}`);
    assert((await page.locator('main').innerText()).includes('when your passkeys are out of reach'), 'the codes say what they are for');
    const items = page.getByTestId('passkey');
    assert(await items.count() === 1, `one passkey listed, got ${await items.count()}`);
    assert((await items.first().innerText()).includes('never used'), 'not used yet');
    const creds = await credentials(page);
    assert(creds.length === 1 && creds[0].isResidentCredential, `one resident credential in the authenticator: ${JSON.stringify(creds)}`);
    await page.screenshot({ path: join(shotsDir, 'passkeys.png'), fullPage: true });
  });

  await run.step('the login asks for the passkey after the password', async () => {
    await page.click('form[action="/logout"] button');
    await login(page);
    await page.waitForURL('**/login/2fa');
    assert(!(await loggedIn(page)), 'the password alone does not log in');
    await login(page);
    await page.waitForURL('**/login/2fa');
    await page.getByText('Confirm it is you with your passkey').waitFor();
    await page.screenshot({ path: join(shotsDir, 'passkey-login-2fa.png'), fullPage: true });
    await page.click('button:has-text("Use your passkey")');
    await page.waitForURL('**/sip-accounts');
    const creds = await credentials(page);
    assert(creds[0].signCount >= 2, `the authenticator signed (count ${creds[0].signCount})`);
  });

  await run.step('a passkey of another authenticator is refused; the customer\'s own logs in on its own', async () => {
    const stranger = await newPage();
    await stranger.goto('/login');
    await stranger.click('button:has-text("Sign in with a passkey")');
    await stranger.locator('[data-passkey-status]').filter({ hasText: /cancelled|timed out|did not work/ }).waitFor({ timeout: 20000 });
    assert(!(await loggedIn(stranger)), 'no passkey here: not logged in');
    await stranger.context().close();

    // The same credential moved into a fresh browser (its private key and
    // counter): a new device with the customer's passkey.
    const phone = await newPage(390);
    const [cred] = await credentials(page);
    await phone.authn.cdp.send('WebAuthn.addCredential', { authenticatorId: phone.authn.id, credential: cred });
    await phone.goto('/login');
    await phone.screenshot({ path: join(shotsDir, 'passkey-login-390.png'), fullPage: true });
    await phone.click('button:has-text("Sign in with a passkey")');
    await phone.waitForURL('**/sip-accounts');
    await phone.goto('/account/security');
    assert((await phone.getByTestId('passkey').first().innerText()).includes('last used'), 'the list says when it was last used');
    await phone.screenshot({ path: join(shotsDir, 'passkeys-390.png'), fullPage: true });
    // A copy whose counter goes back (a cloned key) is refused.
    const clone = await newPage();
    await clone.authn.cdp.send('WebAuthn.addCredential', { authenticatorId: clone.authn.id, credential: { ...cred, signCount: 0 } });
    await clone.goto('/login');
    await clone.click('button:has-text("Sign in with a passkey")');
    await clone.locator('.form-error, [role=alert]').filter({ hasText: 'passkey was not accepted' }).first().waitFor();
    assert(!(await loggedIn(clone)), 'the cloned passkey does not log in');
    await clone.context().close();
    // The laptop's copy catches up with the phone's counter (one synced
    // passkey; a copy left behind would count as a clone).
    const [now] = await credentials(phone);
    await page.authn.cdp.send('WebAuthn.removeCredential', { authenticatorId: page.authn.id, credentialId: cred.credentialId });
    await page.authn.cdp.send('WebAuthn.addCredential', { authenticatorId: page.authn.id, credential: now });
    await phone.context().close();
  });

  await run.step('Edit Credentials asks the second factor: refused without it, saved with the passkey', async () => {
    await page.goto('/sip-accounts');
    await page.locator('[data-testid=reset]').first().click();
    await page.click('dialog >> text=Send email');
    const mail = await readMail(base.replace('localhost', '127.0.0.1'), email, /Edit the credentials/);
    const href = mail.body.match(/href="([^"]*edit-credentials\?token=[^"]+)"/)[1];
    await page.goto(href);
    await page.fill('#cred-password', 'New-Sip-Passw0rd-7');
    await page.fill('#cred-portal', password);
    assert(await page.locator('button:has-text("Save with passkey")').count() === 1, 'a passkey button');
    await page.screenshot({ path: join(shotsDir, 'passkey-credentials.png'), fullPage: true });
    const before = await page.content();
    assert(await page.locator('label[for=cred-code]').innerText() === 'Recovery code', 'passkey only: a recovery code can stand in');
    await page.evaluate(() => {
      // The form without its passkey: as a script (or a browser without
      // WebAuthn) would send it.
      const f = document.querySelector('form[data-testid=credentials-form]');
      f.removeAttribute('data-passkey');
      HTMLFormElement.prototype.submit.call(f);
    });
    await page.waitForURL((u) => u.pathname === '/sip-accounts/edit-credentials' && !u.search);
    const err = await page.locator('form[data-testid=credentials-form] .field-error').allInnerTexts();
    assert(err.some((t) => t.includes('confirm with your passkey')), `the second factor is asked: ${JSON.stringify(err)}`);
    await page.fill('#cred-password', 'New-Sip-Passw0rd-7');
    await page.fill('#cred-portal', password);
    await page.click('button:has-text("Save with passkey")');
    await page.waitForURL('**/sip-accounts');
    await flash(page, 'New credentials saved');
  });

  await run.step('a recovery code logs in once when the passkey is out of reach', async () => {
    await page.click('form[action="/logout"] button');
    await login(page);
    await page.waitForURL('**/login/2fa');
    await page.getByText('or enter one of your recovery codes').waitFor();
    await page.fill('#code', recovery[0].toUpperCase());
    await page.click('form:not([data-passkey]) button:has-text("Log in")');
    await page.waitForURL('**/sip-accounts');
    await page.click('form[action="/logout"] button');
    await login(page);
    await page.waitForURL('**/login/2fa');
    await page.fill('#code', recovery[0]);
    await page.click('form:not([data-passkey]) button:has-text("Log in")');
    await fieldError(page, '#code', 'the code is not right');
    await page.click('button:has-text("Use your passkey")');
    await page.waitForURL('**/sip-accounts');
  });

  await run.step('remove the passkey with the password; the login no longer asks for it', async () => {
    await page.goto('/account/security');
    await page.locator('[data-testid=passkey] summary').click();
    await page.locator('[data-testid=passkey] input[name=password]').fill('Wrong-Passw0rd-9');
    await page.click('button:has-text("Remove passkey")');
    await fieldError(page, '[data-testid=passkey] input[name=password]', 'the portal password is not right');
    await page.locator('[data-testid=passkey] input[name=password]').fill(password);
    await page.click('button:has-text("Remove passkey")');
    await flash(page, 'Passkey removed');
    await page.getByTestId('no-passkeys').waitFor();
    await page.goto('/audit');
    const audit = await page.locator('main').innerText();
    for (const want of ['passkey “Work laptop” added', 'logged in with the password and the passkey “Work laptop”',
      'logged in with the passkey “Work laptop”', 'passkey “Work laptop” removed', 'signature counter went back']) {
      assert(audit.includes(want), `the audit log says: ${want}`);
    }
    await page.click('form[action="/logout"] button');
    await login(page);
    await page.waitForURL('**/sip-accounts');
    assert(jsErrors.length === 0, 'no JS errors: ' + jsErrors.join('; '));
  });
} finally {
  await cleanup();
}
process.exit(run.summary() ? 0 : 1);

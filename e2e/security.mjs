// Sign-in security in headless Chromium: change the portal password (the
// other browser is logged out), a forgotten password by email, log out
// another session from the list, two-factor authentication with an
// authenticator app (the codes computed here, RFC 6238) then a login that
// asks the code, and a login with a recovery code; the connection page of
// a SIP account. Screenshots of the Security page at 1280 and 390 px and of
// the connection page in docs/screenshots/.
//
//   cd e2e && npm ci && node security.mjs
//
// Env as run.mjs.
import { join } from 'node:path';
import { Runner, assert, freePort, startServer, waitHealthy, admin, readMail, totp,
  shotsDir, requireBrowser, launchChromium, workDir, removeWorkDir, sipdeskBinary } from './lib.mjs';

const chromium = await requireBrowser('security browser test not run');

const work = workDir('sipdesk-sec-');
const dataDir = join(work, 'data');
const bin = sipdeskBinary(work);
const httpPort = await freePort();
const sipPort = await freePort();
const base = `http://127.0.0.1:${httpPort}`;
const log = [];
const server = startServer(bin, ['serve', '--data', dataDir, '--http', `127.0.0.1:${httpPort}`, '--sip', `127.0.0.1:${sipPort}`,
  '--allow-private-ips', '--node', 'e2e-sec', '--log-level', 'warn'], log);
let browser;
const cleanup = async () => {
  if (browser) await browser.close().catch(() => {});
  server.kill('SIGTERM');
  removeWorkDir(work);
};

const run = new Runner();
try {
  await waitHealthy(base, server, log);
  browser = await launchChromium(chromium, ['--disable-sync']);
  const newPage = async (width = 1280) => {
    const ctx = await browser.newContext({ viewport: { width, height: 900 }, baseURL: base });
    return ctx.newPage();
  };
  const page = await newPage();
  const jsErrors = [];
  page.on('pageerror', (e) => jsErrors.push(String(e)));
  run.reportFailures({ page: () => page, work, log });
  const stamp = Date.now().toString(36);
  const email = `sec-${stamp}@acme.example`;
  let password = 'Portal-Passw0rd-sec';
  admin(bin, dataDir, 'customer', 'create', '--email', email, '--password', password, '--phone', '+447700900' + String(100 + Math.floor(Math.random() * 800)));

  const login = async (p, pw = password) => {
    await p.goto('/login');
    await p.fill('#email', email);
    await p.fill('#password', pw);
    await p.click('form[action="/login"] button[type=submit]');
  };
  const loggedIn = async (p) => {
    await p.goto('/sip-accounts');
    return new URL(p.url()).pathname === '/sip-accounts';
  };
  const fieldError = async (p, input, text) => {
    const errs = await p.locator(input).first().evaluate((el) => [...el.closest('.field').querySelectorAll('.field-error')].map((e) => e.textContent));
    assert(errs.some((t) => t.includes(text)), `error "${text}" next to ${input}: ${JSON.stringify(errs)}`);
  };
  const flash = async (p, text) => {
    const f = await p.locator('.flash').innerText();
    assert(f.includes(text), `flash "${f}" lacks "${text}"`);
  };

  await run.step('change password: the current one is asked, the other browser is logged out', async () => {
    await login(page);
    await page.waitForURL('**/sip-accounts');
    const other = await newPage();
    await login(other);
    await other.waitForURL('**/sip-accounts');
    await page.click('nav >> text=Security');
    await page.waitForURL('**/account/security');
    await page.fill('#current_password', 'Wrong-Passw0rd-1');
    await page.fill('#new_password', 'Changed-Passw0rd-2');
    await page.click('form[action="/account/password"] button[type=submit]');
    await fieldError(page, '#current_password', 'the portal password is not right');
    await page.fill('#current_password', password);
    await page.fill('#new_password', 'Changed-Passw0rd-2');
    await page.click('form[action="/account/password"] button[type=submit]');
    await flash(page, 'Password changed');
    password = 'Changed-Passw0rd-2';
    assert(!(await loggedIn(other)), 'the other browser is logged out');
    assert(await loggedIn(page), 'this browser stays logged in');
    await other.context().close();
  });

  await run.step('forgot password: the emailed link sets a new one, once', async () => {
    const p = await newPage();
    await p.goto('/login');
    await p.click('text=Forgot your password?');
    await p.fill('#email', email);
    await p.click('form[action="/password/forgot"] button[type=submit]');
    await p.getByText('has a sipdesk account, an email').waitFor();
    const mail = await readMail(base, email, /Reset your sipdesk portal password/);
    const href = mail.body.match(/href="([^"]*\/password\/reset\?token=[^"]+)"/)[1];
    await p.goto(href);
    await p.fill('#password', 'Forgot-Passw0rd-3');
    await p.click('form[action="/password/reset"] button[type=submit]');
    await p.waitForURL('**/login');
    await flash(p, 'Log in with the new password');
    password = 'Forgot-Passw0rd-3';
    await login(p);
    await p.waitForURL('**/sip-accounts');
    await p.click('form[action="/logout"] button');
    await p.goto(href);
    await p.getByRole('heading', { name: 'This link was already used' }).waitFor();
    assert(!(await loggedIn(page)), 'the reset logged out every session');
    await login(page);
    await page.waitForURL('**/sip-accounts');
    await p.context().close();
  });

  await run.step('sessions: log out another browser from the list', async () => {
    const other = await newPage();
    await login(other);
    await other.waitForURL('**/sip-accounts');
    await page.goto('/account/security');
    const rows = page.locator('table tbody tr');
    assert(await rows.count() === 2, `two sessions listed, got ${await rows.count()}`);
    assert(await page.locator('tr:has-text("This browser") button').count() === 0, 'no log out button on this browser');
    await page.locator('tr:not(:has-text("This browser")) button:has-text("Log out")').click();
    await flash(page, 'Session logged out');
    assert(await rows.count() === 1, 'one session left');
    assert(!(await loggedIn(other)), 'the other browser is logged out');
    await other.context().close();
  });

  let secret;
  let recovery;
  await run.step('two-factor: enrol with a code from the app, recovery codes shown once', async () => {
    await page.goto('/account/security');
    await page.click('text=Set up an authenticator app');
    const img = page.locator('img.qr');
    assert((await img.getAttribute('src')).startsWith('data:image/png;base64,'), 'the QR code is an inline PNG');
    assert(await img.evaluate((el) => el.complete && el.naturalWidth > 0), 'the QR code image loads');
    secret = (await page.locator('#totp-secret').innerText()).trim();
    await page.screenshot({ path: join(shotsDir, 'security-setup.png'), fullPage: true });
    await page.fill('#totp-code', '000000');
    await page.click('form[action="/account/2fa/confirm"] button[type=submit]');
    await fieldError(page, '#totp-code', 'the code is not right');
    await page.fill('#totp-code', totp(secret));
    await page.click('form[action="/account/2fa/confirm"] button[type=submit]');
    await page.getByText('Save these recovery codes now').waitFor();
    recovery = await page.locator('#recovery-codes code').allInnerTexts();
    assert(recovery.length === 10, `10 recovery codes, got ${recovery.length}`);
    await page.goto('/account/security');
    await page.getByText('Recovery codes left: 10').waitFor();
    assert(!(await page.content()).includes(recovery[0]), 'the codes are not shown again');
    await page.screenshot({ path: join(shotsDir, 'security.png'), fullPage: true });
    const phone = await newPage(390);
    await login(phone);
    await phone.waitForURL('**/login/2fa');
    await phone.fill('#code', recovery[9]);
    await phone.click('form[action="/login/2fa"] button[type=submit]');
    await phone.waitForURL('**/sip-accounts');
    await phone.goto('/account/security');
    await phone.getByText('Recovery codes left: 9').waitFor();
    // At 390 px the button is no wider than the password field above it.
    const fieldBox = await phone.locator('#disable-password').evaluate((el) => el.closest('.pw-wrap').getBoundingClientRect().right);
    const btnBox = await phone.locator('button:has-text("Turn off two-factor authentication")').evaluate((el) => el.getBoundingClientRect().right);
    assert(btnBox <= fieldBox + 0.5, `the Turn off button ends at ${btnBox} px, its field at ${fieldBox} px`);
    await phone.screenshot({ path: join(shotsDir, 'security-390.png'), fullPage: true });
    await phone.context().close();
  });

  await run.step('two-factor: the login asks the code after the password', async () => {
    await page.click('form[action="/logout"] button');
    await login(page);
    await page.waitForURL('**/login/2fa');
    assert(!(await loggedIn(page)), 'the password alone does not log in');
    await login(page);
    await page.fill('#code', '123456');
    await page.click('form[action="/login/2fa"] button[type=submit]');
    await fieldError(page, '#code', 'the code is not right');
    // The enrolment used the current step's code: the next step's (the
    // server accepts one step either side for clock drift).
    await page.fill('#code', totp(secret, Date.now() + 30000));
    await page.click('form[action="/login/2fa"] button[type=submit]');
    await page.waitForURL('**/sip-accounts');
  });

  await run.step('two-factor: a recovery code logs in once', async () => {
    await page.click('form[action="/logout"] button');
    await login(page);
    await page.waitForURL('**/login/2fa');
    await page.fill('#code', recovery[4]);
    await page.click('form[action="/login/2fa"] button[type=submit]');
    await page.waitForURL('**/sip-accounts');
    await page.click('form[action="/logout"] button');
    await login(page);
    await page.fill('#code', recovery[4]);
    await page.click('form[action="/login/2fa"] button[type=submit]');
    await fieldError(page, '#code', 'the code is not right');
    await page.fill('#code', recovery[5]);
    await page.click('form[action="/login/2fa"] button[type=submit]');
    await page.waitForURL('**/sip-accounts');
    await page.goto('/audit');
    const audit = await page.content();
    for (const a of ['customer.login', 'customer.login_failed', 'customer.totp_enabled', 'customer.recovery_code_used', 'customer.password_reset']) {
      assert(audit.includes(a), `the audit log shows ${a}`);
    }
  });

  await run.step('connection details: linked from the SIP account, the username revealed on the page', async () => {
    await page.goto('/sip-accounts');
    await page.click('[data-testid=connection]');
    await page.waitForURL('**/sip-accounts/*/connection');
    const text = await page.locator('main').innerText();
    for (const want of ['sipdesk.local', '127.0.0.1', `port ${sipPort}`, 'Registration interval', 'YOUR_SIP_PASSWORD', `server_uri=sip:127.0.0.1:${sipPort}`]) {
      assert(text.includes(want), `the page shows ${want}`);
    }
    const masked = await page.locator('[data-username]').innerText();
    await page.click('form[data-reveal] button');
    await page.waitForFunction((m) => document.querySelector('[data-username]').textContent !== m, masked);
    const user = await page.locator('[data-username]').innerText();
    assert(!user.includes('•') && user.startsWith(masked.slice(0, 2)), `revealed ${user}`);
    await page.screenshot({ path: join(shotsDir, 'connection.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    assert(w <= 390, `the connection page is ${w} px wide at 390`);
    await page.screenshot({ path: join(shotsDir, 'connection-390.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    assert(jsErrors.length === 0, 'no JS errors: ' + jsErrors.join('; '));
  });
} finally {
  await cleanup();
}
process.exit(run.summary() ? 0 : 1);

// Verification codes by SMS through a real Kannel, in headless Chromium:
// sign up, read the code from what Kannel's fakesmsc SMSC received, type it
// and get the first SIP account; the same for a Caller ID number; then with
// Kannel stopped the customer is told the code could not be sent, the
// metric counts it, and the retry goes through once Kannel is back.
//
//   cd e2e && npm ci && node sms.mjs
//
// Needs Debian's chromium, kannel and kannel-extras (fakesmsc). Env as run.mjs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runner, assert, freePort, startServer, waitHealthy, admin, readMail,
  requireBrowser, launchChromium, workDir, removeWorkDir, sipdeskBinary } from './lib.mjs';
import { Kannel, kannelInstalled } from './kannel.mjs';

const chromium = await requireBrowser('SMS browser test not run', {
  mustRun: 'the SMS browser test must run',
  needs: [[kannelInstalled(), 'Kannel is not installed (Debian: kannel kannel-extras)']],
});

const work = workDir('sipdesk-sms-');
const dataDir = join(work, 'data');
const bin = sipdeskBinary(work);
const kannel = await new Kannel(work).configure();
const httpPort = await freePort();
const base = `http://127.0.0.1:${httpPort}`;
const log = [];
let server;
let browser;
const cleanup = async () => {
  if (browser) await browser.close().catch(() => {});
  if (server) server.kill('SIGTERM');
  await kannel.stop();
  removeWorkDir(work);
};

const metric = async (result) => {
  const text = await (await fetch(base + '/metrics')).text();
  const m = text.match(new RegExp(`^sipdesk_verification_messages_total\\{channel="kannel",result="${result}"\\} (\\d+)`, 'm'));
  return m ? Number(m[1]) : NaN;
};

const run = new Runner();
try {
  await kannel.start();
  // The password comes from the environment: it is in no command line.
  process.env.SIPDESK_SMS_KANNEL_PASSWORD = kannel.password;
  server = startServer(bin, ['serve', '--data', dataDir, '--http', `127.0.0.1:${httpPort}`, '--sip', `127.0.0.1:${await freePort()}`,
    '--node', 'sms', '--sms-kannel', kannel.url, '--sms-kannel-user', kannel.user, '--sms-from', 'sipdesk'], log);
  delete process.env.SIPDESK_SMS_KANNEL_PASSWORD;
  await waitHealthy(base, server, log);
  browser = await launchChromium(chromium);
  let page;
  run.reportFailures({ page: () => page, work, log, extra: () => `\n  kannel:\n${kannel.log.slice(-30).join('\n')}` });
  const stamp = Date.now().toString(36);
  const pw = 'Portal-Passw0rd-sms';
  const signup = async (email, phone) => {
    const ctx = await browser.newContext({ baseURL: base });
    page = await ctx.newPage();
    await page.goto('/signup');
    await page.fill('#email', email);
    await page.fill('#password', pw);
    await page.fill('#password_confirm', pw);
    await page.fill('#phone', phone);
    await page.click('button[type=submit]');
    // Signup goes through the emailed link (the dev mailbox here).
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    const link = await readMail(base, email.toLowerCase(), /Finish your sipdesk signup/);
    await page.goto(link.body.match(/href="([^"]*\/signup\/confirm\?token=[^"]+)"/)[1]);
    await page.click('form[action="/signup/confirm"] button[type=submit]');
    await page.waitForURL('**/verify');
    return page;
  };
  const phone1 = '+447700900' + String(100 + Math.floor(Math.random() * 800));
  const email1 = `sms-${stamp}@acme.example`;

  await run.step('signup: the code arrives through Kannel at fakesmsc, typed in, the first SIP account is shown', async () => {
    const seen = kannel.lines.length;
    await signup(email1, phone1);
    const content = await page.content();
    assert(content.includes('We sent a 6-digit code') && !content.includes("We couldn't send"), 'the page says the code was sent');
    assert(!content.includes('dev mailbox'), 'no dev mailbox hint when an SMS gateway is configured');
    const { code, from } = await kannel.code(phone1, seen);
    assert(from === 'sipdesk', `sender id ${from}`);
    await page.fill('#code', code);
    await page.click('form[action="/verify"] button[type=submit]');
    await page.getByRole('heading', { name: 'Your trial is ready' }).waitFor();
    const user = (await page.locator('#new-username').innerText()).trim();
    assert(user.length >= 8, 'first SIP account shown');
    const mailbox = await (await fetch(base + '/dev/mail')).text();
    assert(!mailbox.includes(code), 'the code is not in the dev mailbox');
  });

  await run.step('Kannel reports the delivery: the metric counts it', async () => {
    for (let i = 0; i < 50 && !(await metric('delivered') >= 1); i++) await sleep(100);
    assert(await metric('delivered') >= 1 && await metric('sent') >= 1, `sent ${await metric('sent')}, delivered ${await metric('delivered')}`);
  });

  const phone2 = '+447700901' + String(100 + Math.floor(Math.random() * 800));
  await run.step('a Caller ID number: code through Kannel, typed in, verified', async () => {
    const id = admin(bin, dataDir, 'customer', 'list').find((c) => c.email === email1).id;
    admin(bin, dataDir, 'topup', '--customer', String(id), '--amount', '50');
    const seen = kannel.lines.length;
    await page.goto('/caller-id/numbers');
    await page.fill('#number', phone2);
    await page.click('form[action="/caller-id/numbers"] button[type=submit]');
    await page.waitForURL('**/caller-id/numbers');
    assert((await page.content()).includes('We sent a code to ' + phone2), 'the page says the code was sent');
    const { code } = await kannel.code(phone2, seen);
    await page.fill(`input[aria-label="Code sent to ${phone2}"]`, code);
    await page.click(`form:has(input[aria-label="Code sent to ${phone2}"]) button[type=submit]`);
    await page.waitForURL('**/caller-id/numbers');
    assert((await page.content()).includes(`${phone2} is verified`), 'number verified');
  });

  const phone3 = '+447700902' + String(100 + Math.floor(Math.random() * 800));
  await run.step('Kannel stopped: the customer is told the code could not be sent; the metric counts it', async () => {
    await kannel.stop();
    const before = await metric('error');
    await signup(`sms2-${stamp}@acme.example`, phone3);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert((await alert.innerText()).includes("We couldn't send the code: try again or get a call"), 'failure message shown');
    assert(!(await page.content()).includes('We sent a 6-digit code'), 'the page does not claim the code was sent');
    assert(await metric('error') >= before + 1, `error count ${before} → ${await metric('error')}`);
    assert(log.join('').includes('verification message not sent, will retry'), 'the log says it');
  });

  await run.step('Kannel back: the retry delivers the code, the page says so, signup completes', async () => {
    const seen = kannel.lines.length;
    await kannel.start();
    const { code } = await kannel.code(phone3, seen, 60000);
    await page.reload();
    assert((await page.content()).includes('We sent a 6-digit code'), 'the page now says the code was sent');
    await page.fill('#code', code);
    await page.click('form[action="/verify"] button[type=submit]');
    await page.getByRole('heading', { name: 'Your trial is ready' }).waitFor();
  });

  await run.step('the Kannel password is in no log and no command line', async () => {
    assert(!log.join('').includes(kannel.password), 'sipdesk log');
    const cmdline = readFileSync(`/proc/${server.pid}/cmdline`, 'utf8');
    assert(!cmdline.includes(kannel.password), 'sipdesk command line');
  });
} catch (err) {
  console.log('not ok - setup\n  ' + String(err && err.stack || err) + '\n' + log.join('').slice(-2000) + '\n' + kannel.log.slice(-20).join('\n'));
  run.failed++;
} finally {
  await cleanup();
}
process.exit(run.summary() ? 0 : 1);

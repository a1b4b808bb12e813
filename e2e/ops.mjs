// The operator console in headless Chromium, one role at a time. Operators
// are created with `sipdesk admin operator create` and sign in with their
// password and a TOTP code computed here (RFC 6238). readonly sees but
// cannot act (no action buttons; a forged POST with its own session gets
// 403); support answers a ticket the customer opened in the portal, and
// the customer sees the answer; admin records a top-up (the customer's
// billing turns Paid) and assigns a DID (the customer's audit log says
// so). A live call (sipp through the edge to a sipp carrier that holds it)
// is on Live calls; support hangs it up there and the carrier gets the
// BYE. Screenshots of the dashboard (with the charts of a few refused
// calls placed over SIP), a customer, the ticket queue, DIDs, bans (with
// a source banned for wrong passwords) and live calls (with that call) at 1280 and 390 px in docs/screenshots/.
//
//   cd e2e && npm ci && node ops.mjs
//
// Env as run.mjs; SHOTS=0 skips the screenshots.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runner, assert, freePort, startServer, waitHealthy, admin, totp, sipInvite,
  root, shotsDir as shots, requireBrowser, launchChromium, workDir, removeWorkDir, sipdeskBinary } from './lib.mjs';

const sippPath = ['/usr/bin/sipp', '/usr/local/bin/sipp'].find(existsSync);
const chromium = await requireBrowser('operator console browser test not run', {
  needs: [[sippPath, 'no sipp (apt-get install sip-tester)']],
});

const work = workDir('sipdesk-ops-');
const dataDir = join(work, 'data');
const bin = sipdeskBinary(work);
const httpPort = await freePort();
const sipPort = await freePort();
// The carrier on its own loopback address (the edge takes inbound calls
// from the carrier's address, so not the caller's).
const carrierIP = '127.0.0.9';
const carrierPort = await freePort();
const base = `http://127.0.0.1:${httpPort}`;
const realm = 'sipdesk.local';
const log = [];
const server = startServer(bin, ['serve', '--data', dataDir, '--http', `127.0.0.1:${httpPort}`, '--sip', `127.0.0.1:${sipPort}`,
  '--carrier', `sip:${carrierIP}:${carrierPort}`, '--allow-private-ips', '--node', 'e2e-ops', '--log-level', 'warn'], log);

// sipp runs a scenario; exited resolves with its exit code and output.
const sipps = [];
function sipp(args) {
  const out = [];
  const p = spawn(sippPath, [...args, '-nostdin'], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout.on('data', (d) => out.push(String(d)));
  p.stderr.on('data', (d) => out.push(String(d)));
  p.exited = new Promise((r) => p.on('exit', (code) => r({ code, out: out.join('') })));
  sipps.push(p);
  return p;
}
// The sipp scenarios the edge's e2e tests use; carrier_hold.xml answers
// one call whatever its Caller ID and holds it until a BYE comes, which it
// answers 200 (sipp exits 0 only then).
const scenarios = join(root, 'internal', 'edge', 'testdata', 'sipp');
let browser;
const cleanup = async () => {
  if (browser) await browser.close().catch(() => {});
  for (const p of sipps) if (p.exitCode === null) p.kill('SIGTERM');
  server.kill('SIGTERM');
  removeWorkDir(work);
};

const run = new Runner();
try {
  await waitHealthy(base, server, log);
  browser = await launchChromium(chromium, ['--disable-sync']);
  const newPage = async (width = 1280) => {
    const ctx = await browser.newContext({ viewport: { width, height: 900 }, baseURL: base });
    const p = await ctx.newPage();
    p.on('pageerror', (e) => jsErrors.push(String(e)));
    return p;
  };
  const jsErrors = [];
  let current;
  run.reportFailures({ page: () => current, work, log });
  const stamp = Date.now().toString(36);
  const email = `ops-${stamp}@acme.example`;
  const password = 'Portal-Passw0rd-ops';
  const cust = admin(bin, dataDir, 'customer', 'create', '--email', email, '--password', password,
    '--phone', '+447700900' + String(100 + Math.floor(Math.random() * 800)));
  const opPass = 'Operator-Passw0rd-e2e';
  const operators = {};
  for (const role of ['readonly', 'support', 'admin']) {
    const o = admin(bin, dataDir, 'operator', 'create', '--email', `${role}-${stamp}@ops.example`, '--password', opPass, '--role', role);
    assert(o.operator_id > 0 && /^[A-Z2-7]{16,}$/.test(o.totp_secret), `operator create printed ${JSON.stringify(o)}`);
    operators[role] = { email: `${role}-${stamp}@ops.example`, secret: o.totp_secret };
  }
  const custPath = `/ops/customers/${cust.customer_id}`;

  const signIn = async (role, width = 1280) => {
    const p = await newPage(width);
    current = p;
    await p.goto('/ops/login');
    await p.fill('#email', operators[role].email);
    await p.fill('#password', opPass);
    await p.fill('#code', totp(operators[role].secret));
    await p.click('form[action="/ops/login"] button[type=submit]');
    await p.waitForURL('**/ops/');
    assert(await p.locator(`[data-role="${role}"]`).count() === 1, `signed in as ${role}`);
    return p;
  };
  const flash = async (p, text) => {
    const f = await p.locator('.flash').innerText();
    assert(f.includes(text), `flash "${f}" lacks "${text}"`);
  };
  const customer = await newPage();
  const customerLogin = async () => {
    current = customer;
    await customer.goto('/login');
    await customer.fill('#email', email);
    await customer.fill('#password', password);
    await customer.click('form[action="/login"] button[type=submit]');
    await customer.waitForURL('**/sip-accounts');
  };

  await run.step('the customer (trial) opens a ticket for more SIP accounts in the portal', async () => {
    await customerLogin();
    await customer.goto('/tickets/new?kind=sip_accounts');
    await customer.fill('#wanted', '15');
    await customer.fill('#reason', 'Call centre opens on Monday');
    await customer.click('form[action="/tickets"] button[type=submit]');
    await customer.waitForURL('**/tickets');
    assert((await customer.locator('table').innerText()).includes('Call centre opens on Monday'), 'ticket listed');
  });

  await run.step('a few calls over SIP to numbers that are not E.164 are refused 484 (the charts have something to show)', async () => {
    const codes = [];
    for (let i = 0; i < 4; i++) {
      const r = await sipInvite({ host: '127.0.0.1', port: sipPort, realm, username: cust.sip_account.username,
        password: cust.sip_account.password, to: i % 2 ? '12' : '+1' }); // not E.164: 484
      codes.push(r.code);
    }
    assert(codes.every((c) => c === 484), `484 refusals expected: ${codes}`);
  });

  let ro;
  await run.step('readonly signs in with password and TOTP code, sees the dashboard with charts', async () => {
    ro = await signIn('readonly');
    await ro.goto('/ops/');
    assert(await ro.locator('svg.chart[role=img]').count() === 2, 'two charts');
    const refused = Number(await ro.locator('[data-stat=refused-hour]').innerText());
    assert(refused >= 1, `refused calls on the dashboard: ${refused}`);
    assert(await ro.locator('[data-chart=refusals] tbody tr[data-refusal]').count() >= 1, 'the refusals table has a row');
    const label = await ro.locator('svg.chart').first().getAttribute('aria-labelledby');
    assert(label === 'calls-title calls-desc', `chart label ${label}`);
  });

  await run.step('readonly has no action buttons anywhere', async () => {
    await ro.goto(custPath);
    assert((await ro.locator('main').innerText()).includes(email), 'customer page');
    assert(await ro.locator('form[action$="/topup"], form[action$="/channel-limit"]').count() === 0, 'no top-up or limit form');
    await ro.goto('/ops/tickets');
    assert(await ro.locator('form[action$="/approve"], form[action$="/decline"]').count() === 0, 'no approve/decline');
    assert((await ro.locator('main').innerText()).includes('Call centre opens on Monday'), 'the ticket is listed');
    await ro.goto('/ops/dids');
    assert(await ro.locator('form[method=post][action^="/ops/dids"]').count() === 0, 'no DID forms');
    await ro.goto(custPath);
    assert(await ro.locator('form[action$="/suspend"], form[action$="/unsuspend"]').count() === 0, 'no suspend form');
  });

  await run.step('readonly: a forged POST with its own session gets 403 and changes nothing', async () => {
    for (const [path, form] of [[custPath + '/topup', { amount: '50' }], ['/ops/dids', { number: '+15550009999', sip_account_id: String(cust.sip_account.id) }],
      ['/ops/tickets/1/approve', {}]]) {
      const r = await ro.request.post(path, { form, maxRedirects: 0 });
      assert(r.status() === 403, `readonly POST ${path}: ${r.status()}`);
      assert((await r.text()).includes('readonly role may not'), `403 says why for ${path}`);
    }
    await customer.goto('/sip-accounts');
    assert((await customer.locator('#billing').innerText()).includes('Trial'), 'still a trial account');
  });

  let sup; // one sign-in: a TOTP code works once
  await run.step('support answers the ticket; the customer sees the answer', async () => {
    sup = await signIn('support');
    await sup.goto('/ops/tickets');
    assert(await sup.locator('form[action$="/topup"]').count() === 0, 'support has no top-up');
    const row = sup.locator('tr[data-ticket]', { hasText: 'Call centre opens on Monday' });
    await row.locator('input[name=message]').first().fill('Raised for the call centre');
    await row.getByRole('button', { name: 'Approve' }).click();
    await sup.waitForURL('**/ops/tickets');
    await flash(sup, 'approved');
    current = customer;
    await customer.goto('/tickets');
    const t = await customer.locator('table').innerText();
    assert(t.includes('Approved') && t.includes('Raised for the call centre'), `customer's tickets: ${t}`);
    await customer.goto('/audit');
    assert((await customer.locator('main').innerText()).includes('Support approved your'), 'customer audit in words');
  });

  let adm;
  await run.step('admin records a top-up: the customer is Paid', async () => {
    adm = await signIn('admin');
    await adm.goto(custPath);
    await adm.fill('#amount', '50');
    await adm.getByRole('button', { name: 'Record top-up' }).click();
    await adm.waitForURL('**' + custPath);
    await flash(adm, 'Top-up recorded');
    assert((await adm.locator('[data-field=billing]').innerText()).includes('paid'), 'console shows paid');
    current = customer;
    await customer.goto('/sip-accounts');
    assert((await customer.locator('#billing').innerText()).includes('Paid'), 'the portal shows Paid');
  });

  await run.step('admin assigns a DID; it is listed, searchable and in the customer\'s audit log', async () => {
    current = adm;
    await adm.goto('/ops/dids');
    await adm.fill('#number', '+1 415 555 0142');
    await adm.fill('#sip_account_id', String(cust.sip_account.id));
    await adm.getByRole('button', { name: 'Assign', exact: true }).click();
    await adm.waitForURL('**/ops/dids?q=*');
    await flash(adm, '+14155550142 now rings SIP account');
    await adm.goto('/ops/dids?q=' + encodeURIComponent(email));
    const row = adm.locator('tr[data-did="+14155550142"]');
    assert(await row.count() === 1, 'the DID is listed by customer email');
    assert((await row.innerText()).includes(email), 'with its customer');
    await adm.fill('#number', 'abc');
    await adm.fill('#sip_account_id', String(cust.sip_account.id));
    await adm.getByRole('button', { name: 'Assign', exact: true }).click();
    assert((await adm.locator('main').innerText()).includes('number'), 'a bad number says why');
    current = customer;
    await customer.goto('/audit');
    assert((await customer.locator('main').innerText()).includes('Support assigned the number +14155550142'), 'customer audit: DID assigned');
    await ro.goto('/ops/dids?q=4155550142');
    assert(await ro.locator('tr[data-did="+14155550142"]').count() === 1, 'readonly sees the DID');
  });

  await run.step('support suspends the customer with a reason: signed out, told why at the login; unsuspended, back in', async () => {
    current = sup;
    await sup.goto(custPath);
    await sup.fill('#reason', 'Unpaid invoices');
    await sup.getByRole('button', { name: 'Suspend', exact: true }).click();
    await sup.waitForURL('**' + custPath);
    await flash(sup, 'Account suspended');
    assert((await sup.locator('[data-field=state]').innerText()).includes('Unpaid invoices'), 'the state shows the reason');
    await sup.goto('/ops/customers?q=' + encodeURIComponent(email));
    assert(await sup.locator('[data-suspended]').count() === 1, 'the search shows the suspension');
    current = customer;
    await customer.goto('/sip-accounts');
    assert(customer.url().includes('/login'), `the suspended customer's session ended: ${customer.url()}`);
    await customer.fill('#email', email);
    await customer.fill('#password', password);
    await customer.click('form[action="/login"] button[type=submit]');
    assert((await customer.locator('main').innerText()).includes('This account is suspended. Contact support.'), 'the login says why');
    current = sup;
    await sup.goto(custPath);
    await sup.getByRole('button', { name: 'Unsuspend' }).click();
    await sup.waitForURL('**' + custPath);
    await flash(sup, 'Suspension lifted');
    await customerLogin();
    await customer.goto('/audit');
    assert((await customer.locator('main').innerText()).includes('Support suspended the account: Unpaid invoices'), 'customer audit in words');
  });

  await run.step('five wrong SIP passwords from 127.0.0.5 ban it: on Bans, readonly sees no Lift', async () => {
    const codes = [];
    for (let i = 0; i < 5; i++) {
      const r = await sipInvite({ host: '127.0.0.1', port: sipPort, realm, username: cust.sip_account.username,
        password: 'wrong-password', to: '+15005550006', from: '127.0.0.5' });
      codes.push(r.code);
    }
    assert(codes.every((c) => c === 407 || c === 403), `wrong passwords answered ${codes}`);
    current = ro;
    for (let i = 0; ; i++) {
      await ro.goto('/ops/bans');
      if (await ro.locator('tr[data-ban="127.0.0.5"]').count() === 1) break;
      assert(i < 20, 'no ban of 127.0.0.5 on /ops/bans');
      await sleep(250);
    }
    assert(await ro.locator('form[action="/ops/bans/lift"]').count() === 0, 'readonly has no Lift button');
  });

  // A live call for Live calls: the customer (paid since the top-up) calls
  // through the edge with sipp, holding for a minute; the carrier holds too.
  let carrier;
  let caller;
  let liveCallID;
  await run.step('a live call through the edge is on Live calls', async () => {
    carrier = sipp(['-sf', join(scenarios, 'carrier_hold.xml'), '-i', carrierIP, '-p', String(carrierPort), '-bind_local', '-m', '1', '-timeout', '120s',
      '-mp', String(await freePort())]);
    await sleep(300);
    const { username: u, password: pw } = cust.sip_account;
    const inf = join(work, 'caller.csv');
    writeFileSync(inf, `SEQUENTIAL\n${u};${pw};;;[authentication username=${u} password=${pw}]\n`);
    caller = sipp(['-sf', join(scenarios, 'invite_auth.xml'), '-inf', inf, '-key', 'domain', realm, '-s', '+15005550006',
      '-i', '127.0.0.1', '-p', String(await freePort()), '-bind_local', '-mp', String(await freePort()), '-m', '1', '-d', '60000',
      '-timeout', '90s', `127.0.0.1:${sipPort}`]);
    current = sup;
    for (let i = 0; ; i++) {
      await sup.goto('/ops/calls');
      if (await sup.locator('tr[data-call]').count() === 1) break;
      assert(i < 40 && caller.exitCode === null, `no live call on /ops/calls: caller sipp ${caller.exitCode}\n${sipps.map((p) => p.spawnargs[2]).join(' ')}`);
      await sleep(250);
    }
    const row = sup.locator('tr[data-call]');
    liveCallID = await row.getAttribute('data-call');
    const text = await row.innerText();
    assert(text.includes('e2e-ops') && text.includes(email) && text.includes('+15005550006'), `live call row: ${text}`);
    assert(Number(await sup.locator('[data-live-total]').getAttribute('data-live-total')) === 1, 'one live call');
    await ro.goto('/ops/calls');
    assert(await ro.locator('tr[data-call]').count() === 1, 'readonly sees the call');
    assert(await ro.locator('form[action="/ops/calls/hangup"]').count() === 0, 'readonly has no Hang up button');
  });

  if (process.env.SHOTS !== '0') {
    await run.step('screenshots at 1280 and 390 px fit without clipping', async () => {
      mkdirSync(shots, { recursive: true });
      const pages = [['ops-dashboard', '/ops/'], ['ops-customer', custPath], ['ops-tickets', '/ops/tickets?status=all'], ['ops-dids', '/ops/dids'], ['ops-bans', '/ops/bans'],
        ['ops-calls', '/ops/calls']];
      for (const width of [1280, 390]) {
        const p = await newPage(width);
        current = p;
        await p.context().addCookies(await adm.context().cookies());
        for (const [name, path] of pages) {
          await p.goto(path);
          const over = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          assert(over <= 0, `${path} at ${width} px is ${over} px wider than the screen`);
          // A table card scrolls sideways rather than widening the page: its table must fit too.
          const clipped = await p.$$eval('.table-card', (cs) => cs.filter((c) => c.scrollWidth > c.clientWidth + 1)
            .map((c) => `${c.querySelector('h2')?.innerText || 'table'} by ${c.scrollWidth - c.clientWidth} px`));
          assert(clipped.length === 0, `${path} at ${width} px: a table is wider than its card: ${clipped.join(', ')}`);
          // Stacked rows at 390 px show each cell's column name from data-label (buttons need none).
          const unlabelled = await p.$$eval('.table td:not([data-label]):not([colspan])', (tds) => tds
            .filter((td) => !td.querySelector('button') && td.innerText.trim() !== '').map((td) => td.innerText.trim().slice(0, 30)));
          assert(unlabelled.length === 0, `${path}: table cells without data-label: ${unlabelled.join(' | ')}`);
          if (path === '/ops/bans') assert(await p.locator('tr[data-ban]').count() === 1, `the ban is on ${path} at ${width} px`);
          if (path === '/ops/calls') assert(await p.locator('tr[data-call]').count() === 1, `the live call is on ${path} at ${width} px`);
          await p.screenshot({ path: join(shots, `${name}-${width}.png`), fullPage: true });
        }
      }
    });
  }

  await run.step('support hangs the call up on Live calls: the carrier gets the BYE, the list is empty', async () => {
    current = sup;
    await sup.goto('/ops/calls');
    await sup.locator(`tr[data-call="${liveCallID}"]`).getByRole('button', { name: 'Hang up' }).click();
    await sup.waitForURL('**/ops/calls');
    await flash(sup, 'Call hung up on node e2e-ops: BYE sent to the caller and the carrier.');
    assert(await sup.locator('tr[data-call]').count() === 0, 'no live call listed after the hang-up');
    // The carrier's scenario ends only with the BYE answered: exit 0.
    const r = await Promise.race([carrier.exited, sleep(10000).then(() => ({ code: 'timeout', out: '' }))]);
    assert(r.code === 0, `carrier sipp after the hang-up: ${r.code}\n${r.out.slice(-1500)}`);
    const c = await Promise.race([caller.exited, sleep(10000).then(() => ({ code: 'timeout' }))]);
    assert(c.code !== 'timeout', 'the caller sipp is still in the call (it holds for 60 s unless the edge sends BYE)');
  });

  await run.step('no script errors', async () => {
    assert(jsErrors.length === 0, jsErrors.join('\n'));
  });
} finally {
  await cleanup();
}
process.exit(run.summary() ? 0 : 1);

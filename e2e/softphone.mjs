// End-to-end test of the browser softphone in headless Chromium: the
// customer opens the softphone from the SIP Accounts page's dial icon, it
// registers over SIP over WebSocket with the portal's JWT, calls a number
// and the "carrier" (a SIP UAS with RTP echo in this file, on 127.0.0.1)
// answers: the carrier must receive RTP from the browser for >= 3 s and the
// browser must report audio received (getStats inbound-rtp packetsReceived).
// Hang up from the browser, then from the carrier; the channel is released
// (GET /api/v1/calls/active is empty). Then the carrier calls the account's
// DID (`sipdesk admin did assign`): the page rings and answers.
//
//   cd e2e && node softphone.mjs        (also run at the end of run.mjs)
//
// Env: CHROMIUM, SIPDESK_BIN, KEEP=1, CI=true as in run.mjs.
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runner, assert, freePort, startServer, waitHealthy, admin,
  requireBrowser, launchChromium, workDir, removeWorkDir, sipdeskBinary } from './lib.mjs';

const chromium = await requireBrowser('softphone browser test not run');

const rnd = (n = 6) => randomBytes(n).toString('hex');

// A carrier: SIP UAS/UAC over UDP with an RTP echo per call.
class Carrier {
  constructor(port, edgePort) {
    this.port = port; this.edgePort = edgePort; this.calls = new Map(); this.waiters = [];
    this.sock = createSocket('udp4');
    this.sock.on('message', (b, ri) => this.onMessage(String(b), ri));
  }
  async start() { await new Promise((r) => this.sock.bind(this.port, '127.0.0.1', r)); }
  close() { this.sock.close(); for (const c of this.calls.values()) c.rtp?.close(); }
  send(msg) {
    const [head, body = ''] = msg.replace(/\r?\n/g, '\r\n').split('\r\n\r\n');
    const out = head.replace('Content-Length: auto', 'Content-Length: ' + Buffer.byteLength(body)) + '\r\n\r\n' + body;
    this.sock.send(out, this.edgePort, '127.0.0.1');
  }
  event(name, call) { this.waiters = this.waiters.filter((w) => !(w.name === name && (w.resolve(call), true))); }
  wait(name, ms = 10000) {
    return new Promise((resolve, reject) => {
      const w = { name, resolve }; this.waiters.push(w);
      setTimeout(() => reject(new Error(`carrier: no ${name} within ${ms} ms`)), ms);
    });
  }
  async rtpSocket(call) {
    call.rtp = createSocket('udp4'); call.rtpIn = 0; call.firstRtp = 0; call.lastRtp = 0;
    call.rtp.on('message', (b, ri) => {
      call.rtpIn++; call.lastRtp = Date.now(); if (!call.firstRtp) call.firstRtp = call.lastRtp;
      call.rtp.send(b, ri.port, ri.address); // echo
    });
    await new Promise((r) => call.rtp.bind(0, '127.0.0.1', r));
    call.rtpPort = call.rtp.address().port;
  }
  sdp(port) {
    return `v=0\no=carrier 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio ${port} RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\na=ptime:20\na=sendrecv\n`;
  }
  async onMessage(s, ri) {
    const [head, body] = s.split('\r\n\r\n');
    const lines = head.split('\r\n');
    const h = (n) => { const l = lines.find((x) => x.toLowerCase().startsWith(n.toLowerCase() + ':')); return l ? l.slice(l.indexOf(':') + 1).trim() : ''; };
    const all = (n) => lines.filter((x) => x.toLowerCase().startsWith(n.toLowerCase() + ':')).map((l) => l.slice(l.indexOf(':') + 1).trim());
    const callID = h('Call-ID');
    const reply = (code, reason, extra = '', sdp = '') => {
      this.send(`SIP/2.0 ${code} ${reason}\n${all('Via').map((v) => 'Via: ' + v).join('\n')}\nFrom: ${h('From')}\nTo: ${h('To')}${h('To').includes('tag=') || code === 100 ? '' : ';tag=' + (this.calls.get(callID)?.tag || rnd(4))}\nCall-ID: ${callID}\nCSeq: ${h('CSeq')}\n${extra}${sdp ? 'Content-Type: application/sdp\n' : ''}Content-Length: auto\n\n${sdp}`);
    };
    if (lines[0].startsWith('SIP/2.0')) { // responses to our INVITE (inbound calls) and BYE
      const code = Number(lines[0].split(' ')[1]);
      const call = this.calls.get(callID);
      if (!call) return;
      if (h('CSeq').endsWith('INVITE') && code >= 200) {
        const to = h('To');
        const target = (h('Contact').match(/<([^>]+)>/) || [])[1] || `sip:127.0.0.1:${this.edgePort}`;
        this.send(`ACK ${target} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${rnd()};rport\nFrom: ${h('From')}\nTo: ${to}\nCall-ID: ${callID}\nCSeq: 1 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n`);
        if (code === 200) { call.remoteTo = to; call.target = target; call.state = 'up'; this.event('answered', call); }
        else { call.state = 'failed'; call.code = code; this.event('failed', call); }
      }
      if (h('CSeq').endsWith('BYE')) this.event('bye-ok', call);
      return;
    }
    const method = lines[0].split(' ')[0];
    if (method === 'INVITE') {
      if (this.calls.has(callID)) return; // retransmission
      const call = { id: callID, dir: 'out', tag: rnd(4), inv: { from: h('From'), to: h('To'), contact: (h('Contact').match(/<([^>]+)>/) || [])[1] } };
      this.calls.set(callID, call);
      await this.rtpSocket(call);
      call.offer = body;
      reply(100, 'Trying');
      reply(180, 'Ringing', `Contact: <sip:carrier@127.0.0.1:${this.port}>\n`);
      await sleep(300);
      reply(200, 'OK', `Contact: <sip:carrier@127.0.0.1:${this.port}>\n`, this.sdp(call.rtpPort));
      call.state = 'up';
      this.event('invite', call);
    } else if (method === 'ACK') {
      const call = this.calls.get(callID); if (call) this.event('ack', call);
    } else if (method === 'BYE') {
      reply(200, 'OK');
      const call = this.calls.get(callID);
      if (call) { call.state = 'ended'; call.endedBy = 'edge'; call.rtp?.close(); call.rtp = null; this.event('bye', call); }
    } else if (method === 'OPTIONS' || method === 'UPDATE' || method === 'INFO') {
      reply(200, 'OK');
    } else if (method === 'CANCEL') {
      reply(200, 'OK');
    }
  }
  // hangup sends BYE for a call the carrier answered (outbound) or placed (inbound).
  hangup(call) {
    const via = `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${rnd()};rport`;
    if (call.dir === 'out') {
      this.send(`BYE ${call.inv.contact} SIP/2.0\n${via}\nFrom: ${call.inv.to};tag=${call.tag}\nTo: ${call.inv.from}\nCall-ID: ${call.id}\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n`);
    } else {
      this.send(`BYE ${call.target} SIP/2.0\n${via}\nFrom: ${call.from}\nTo: ${call.remoteTo}\nCall-ID: ${call.id}\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n`);
    }
    call.rtp?.close(); call.rtp = null;
  }
  // dial calls a DID through the edge (inbound call).
  async dial(did, caller) {
    const call = { id: rnd(10), dir: 'in', tag: rnd(4) };
    call.from = `<sip:${caller}@127.0.0.1:${this.port}>;tag=${call.tag}`;
    this.calls.set(call.id, call);
    await this.rtpSocket(call);
    this.send(`INVITE sip:${did}@127.0.0.1:${this.edgePort} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${rnd()};rport\nFrom: ${call.from}\nTo: <sip:${did}@127.0.0.1:${this.edgePort}>\nCall-ID: ${call.id}\nCSeq: 1 INVITE\nContact: <sip:carrier@127.0.0.1:${this.port}>\nMax-Forwards: 70\nContent-Type: application/sdp\nContent-Length: auto\n\n${this.sdp(call.rtpPort)}`);
    return call;
  }
}

const work = workDir('sipdesk-softphone-');
const dataDir = join(work, 'data');
const bin = sipdeskBinary(work);
const [httpPort, sipPort, wsPort, carrierPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const base = `http://127.0.0.1:${httpPort}`;
const log = [];
const server = startServer(bin, ['serve', '--data', dataDir, '--http', `127.0.0.1:${httpPort}`, '--sip', `127.0.0.1:${sipPort}`,
  '--sip-ws', `127.0.0.1:${wsPort}`, '--carrier', `sip:127.0.0.1:${carrierPort}`, '--rtp-ports', '32000-32199',
  '--allow-private-ips', '--node', 'e2e-softphone', '--log-level', 'info'], log);
const carrier = new Carrier(carrierPort, sipPort);
await carrier.start();
let browser;
const run = new Runner();
try {
  await waitHealthy(base, server, log);
  const email = `softphone-${rnd(3)}@acme.example`, portalPw = 'Portal-Passw0rd-e2e';
  const cust = admin(bin, dataDir, 'customer', 'create', '--email', email, '--password', portalPw, '--phone', '+447700900' + (100 + Math.floor(Math.random() * 800)));
  const sa = cust.sip_account;
  const tokOut = admin(bin, dataDir, 'token', 'create', '--customer', String(cust.customer_id));
  const apiToken = typeof tokOut === 'string' ? tokOut.trim() : tokOut.token;
  const api = async (method, path, body) => {
    const r = await fetch(base + '/api/v1' + path, { method, headers: { Authorization: 'Bearer ' + apiToken, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
    return { status: r.status, json: await r.json().catch(() => null) };
  };
  const active = async () => (await api('GET', '/calls/active')).json?.items?.length ?? -1;
  const waitActive = async (n, ms = 5000) => {
    const end = Date.now() + ms; let got;
    while (Date.now() < end) { got = await active(); if (got === n) return; await sleep(100); }
    throw new Error(`active calls: ${got}, want ${n}`);
  };

  browser = await launchChromium(chromium, ['--disable-quic', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: base, permissions: ['microphone'] });
  const page = await ctx.newPage();
  const jsErrors = [];
  page.on('pageerror', (e) => jsErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) jsErrors.push(m.text()); });
  run.reportFailures({ page: () => page, work, log, tail: 4000 });
  const spState = () => page.locator('[data-softphone]').evaluate((el) => ({ ...el.dataset, reg: el.querySelector('[data-sp-reg]').textContent, err: el.querySelector('[data-sp-error]').textContent }));
  const waitCall = (state, ms = 10000) => page.waitForFunction((s) => document.querySelector('[data-softphone]')?.dataset.call === s, state, { timeout: ms });
  const stats = () => page.evaluate(() => window.sipdeskSoftphone.stats());

  await run.step('enable JWT on the SIP account (API) and log in', async () => {
    // A new account is In Process until every edge has applied it.
    for (let i = 0; i < 100 && (await api('GET', `/sip-accounts/${sa.id}`)).json?.status !== 'active'; i++) await sleep(100);
    const r = await api('PUT', `/sip-accounts/${sa.id}/jwt`, { enabled: true });
    assert(r.status === 200 && r.json.enabled && r.json.secret?.length === 32, `PUT jwt: ${r.status} ${JSON.stringify(r.json)}`);
    await page.goto('/login');
    await page.fill('#email', email);
    await page.fill('#password', portalPw);
    await page.click('form[action="/login"] button[type=submit]');
    await page.waitForURL('**/sip-accounts');
  });

  await run.step('the dial icon opens the softphone, which registers over WebSocket with the JWT', async () => {
    await page.getByRole('link', { name: /^Launch softphone for / }).first().click();
    await page.waitForURL('**/softphone?account=' + sa.id);
    await page.waitForFunction(() => document.querySelector('[data-softphone]')?.dataset.registered === 'yes', null, { timeout: 10000 });
    const st = await spState();
    assert(st.reg === 'Registered', `registration state "${st.reg}" (${st.err})`);
  });

  const callOut = async () => {
    await page.fill('[data-sp-number]', '+1 555 123 0001');
    const got = carrier.wait('invite');
    await page.click('[data-sp-call]');
    const call = await got;
    assert(/m=audio \d+ RTP\/AVP/.test(call.offer) && !call.offer.includes('SAVPF'), 'the carrier is offered plain RTP/AVP');
    await waitCall('established');
    await waitActive(1);
    return call;
  };

  let figures = {};
  await run.step('call a number: the carrier answers and gets RTP for >= 3 s; the browser receives audio; hang up in the browser', async () => {
    const call = await callOut();
    await sleep(3500);
    const s = await stats();
    const secs = (call.lastRtp - call.firstRtp) / 1000;
    figures.out = { carrierPackets: call.rtpIn, carrierSeconds: secs, browser: s };
    assert(call.rtpIn > 100 && secs >= 3, `carrier got ${call.rtpIn} RTP packets over ${secs} s`);
    assert(s && s.packetsReceived > 0, `browser packetsReceived ${JSON.stringify(s)}`);
    const t = await page.locator('[data-sp-timer]').innerText();
    assert(/^00:0[3-9]$/.test(t), `call timer ${t}`);
    await page.click('[data-sp-mute]');
    assert((await page.locator('[data-sp-mute]').getAttribute('aria-pressed')) === 'true', 'mute toggles');
    const bye = carrier.wait('bye');
    await page.click('[data-sp-hangup]');
    await bye;
    await waitCall('idle');
    await waitActive(0);
    console.log(`  carrier received ${call.rtpIn} RTP packets over ${secs.toFixed(1)} s; browser inbound-rtp packetsReceived ${s.packetsReceived}, packetsSent ${s.packetsSent}`);
  });

  await run.step('call again; the carrier hangs up; the channel is released', async () => {
    const call = await callOut();
    await sleep(1500);
    const s = await stats();
    assert(s.packetsReceived > 0 && call.rtpIn > 0, `audio both ways: ${JSON.stringify(s)} / ${call.rtpIn}`);
    carrier.hangup(call);
    await waitCall('idle');
    const st = await spState();
    assert(st.lastEnd === 'ended:remote', `the page saw the remote hang-up (${st.lastEnd})`);
    await waitActive(0);
  });

  await run.step('an inbound call to the account DID rings the page and is answered', async () => {
    const did = '+1555777' + String(1000 + Math.floor(Math.random() * 8999));
    admin(bin, dataDir, 'did', 'assign', '--number', did, '--sip-account', String(sa.id));
    await sleep(2500); // the edge applies config changes within 2 s
    const call = await carrier.dial(did, '+447700900555');
    await page.locator('[data-sp-incoming]').waitFor({ state: 'visible', timeout: 10000 });
    const who = await page.locator('[data-sp-caller]').innerText();
    assert(who.includes('447700900555'), `caller shown "${who}"`);
    const answered = carrier.wait('answered');
    await page.click('[data-sp-answer]');
    await answered;
    await waitCall('established');
    await sleep(2000);
    const s = await stats();
    figures.in = { carrierPackets: call.rtpIn, browser: s };
    assert(call.rtpIn > 0 && s.packetsReceived > 0, `inbound audio: carrier ${call.rtpIn}, browser ${JSON.stringify(s)}`);
    const bye = carrier.wait('bye');
    await page.click('[data-sp-hangup]');
    await bye;
    await waitCall('idle');
    console.log(`  inbound: carrier received ${call.rtpIn} RTP packets; browser packetsReceived ${s.packetsReceived}`);
  });

  await run.step('no script or CSP errors', async () => {
    assert(jsErrors.length === 0, 'script or CSP errors: ' + jsErrors.join('; '));
  });
} catch (err) {
  console.log('not ok - setup\n  ' + String(err && err.stack || err) + '\n' + log.join('').slice(-3000));
  run.failed++;
} finally {
  if (browser) await browser.close().catch(() => {});
  carrier.close();
  server.kill('SIGTERM');
  removeWorkDir(work);
}
process.exit(run.summary() ? 0 : 1);

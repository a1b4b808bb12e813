// Helpers of the end-to-end run: the browser and the sipdesk binary, ports,
// the sipdesk process, the dev mailbox, a tiny step runner, and a SIP
// REGISTER client with digest auth.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

// The e2e folder, the repository and where the suites write the docs' screenshots.
export const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '..');
export const shotsDir = join(root, 'docs', 'screenshots');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// requireBrowser returns playwright-core's chromium, or ends the suite when
// something it needs is missing: SKIP (exit 0) locally, FAIL (exit 1) when
// CI=true, where the browser tests must run. notRun ends the SKIP line,
// mustRun the FAIL line; needs are the suite's other checks, [ok, why] pairs
// tried after the Chromium one.
export async function requireBrowser(notRun, { mustRun = 'the browser tests must run', needs = [] } = {}) {
  const unavailable = (why) => {
    if (process.env.CI === 'true') { console.error(`FAIL: ${why} (CI=true: ${mustRun})`); process.exit(1); }
    console.log(`SKIP: ${why}; ${notRun}`);
    process.exit(0);
  };
  if (!existsSync(chromiumPath)) unavailable(`no Chromium at ${chromiumPath}`);
  for (const [ok, why] of needs) if (!ok) unavailable(why);
  try { return (await import('playwright-core')).chromium; } catch { unavailable('playwright-core is not installed (cd e2e && npm ci)'); }
}

// launchChromium starts headless Chromium with the flags every suite uses
// and the suite's own extraArgs.
export function launchChromium(chromium, extraArgs = []) {
  return chromium.launch({
    executablePath: chromiumPath, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', ...extraArgs],
  });
}

// workDir makes the suite's temporary folder; removeWorkDir deletes it
// unless KEEP is set (to look at the data and failure.png afterwards).
export function workDir(prefix) { return mkdtempSync(join(tmpdir(), prefix)); }
export function removeWorkDir(work) { if (!process.env.KEEP) rmSync(work, { recursive: true, force: true }); }

// sipdeskBinary is SIPDESK_BIN, or sipdesk built into work.
export function sipdeskBinary(work) {
  if (process.env.SIPDESK_BIN) return process.env.SIPDESK_BIN;
  const bin = join(work, 'sipdesk');
  console.log('building sipdesk …');
  execFileSync('go', ['build', '-o', bin, './cmd/sipdesk'], { cwd: root, stdio: 'inherit' });
  return bin;
}

// Ports already handed out: the kernel may offer a just-closed port again.
const given = new Set();

export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const s = createServer();
      s.on('error', reject);
      s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    });
    // The SIP port must also be free for UDP.
    const ok = await new Promise((resolve) => {
      const u = createSocket('udp4');
      u.on('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (ok && !given.has(port)) { given.add(port); return port; }
  }
}

export function startServer(bin, args, log) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => log.push(String(d)));
  child.stderr.on('data', (d) => log.push(String(d)));
  return child;
}

export async function waitHealthy(base, child, log, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error('sipdesk serve exited:\n' + log.join(''));
    try {
      const r = await fetch(base + '/healthz');
      if (r.ok) return;
    } catch { /* not yet */ }
    await sleep(150);
  }
  throw new Error('sipdesk serve did not become healthy:\n' + log.join(''));
}

export function admin(bin, dataDir, ...args) {
  const out = execFileSync(bin, ['admin', '--data', dataDir, ...args], { encoding: 'utf8' });
  try { return JSON.parse(out); } catch { return out; }
}

// The dev mailbox: the newest message to `to` whose subject matches.
export async function readMail(base, to, subject, notIds = new Set()) {
  for (let i = 0; i < 50; i++) {
    const html = await (await fetch(base + '/dev/mail')).text();
    const rows = [...html.matchAll(/<tr><td>[^<]*<\/td><td>([^<]*)<\/td><td><a href="\/dev\/mail\/(\d+)">([^<]*)<\/a>/g)];
    for (const [, rcpt, id, subj] of rows) {
      if (decode(rcpt) === to && subject.test(decode(subj)) && !notIds.has(id)) {
        const body = await (await fetch(base + '/dev/mail/' + id)).text();
        return { id, body: decode(body) };
      }
    }
    await sleep(200);
  }
  throw new Error(`no mail to ${to} matching ${subject}`);
}

function decode(s) {
  return s.replace(/&#43;/g, '+').replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

// Steps run in order; after a failure the rest are skipped (they build on
// each other). The closing line is "N passed, N failed".
export class Runner {
  constructor() { this.passed = 0; this.failed = 0; this.skipped = 0; this.broken = false; this.onFail = null; }
  async step(name, fn) {
    if (this.broken) { this.skipped++; console.log(`skip - ${name}`); return; }
    const t0 = Date.now();
    try {
      await fn();
      this.passed++;
      console.log(`ok - ${name} (${Date.now() - t0} ms)`);
    } catch (err) {
      this.failed++;
      this.broken = true;
      console.log(`not ok - ${name}\n  ${String(err && err.stack || err).split('\n').join('\n  ')}`);
      if (this.onFail) await this.onFail(name).catch(() => {});
    }
  }
  // reportFailures: after the failing step, a screenshot of the page in use
  // (page() may be null), the end of the server's log and any extra text
  // (a peer's output).
  reportFailures({ page, work, log, tail = 3000, extra = () => '' }) {
    this.onFail = async () => {
      const p = page();
      const f = join(work, 'failure.png');
      if (p) await p.screenshot({ path: f, fullPage: true }).catch(() => {});
      console.log(`  page: ${p ? p.url() : '-'}\n  screenshot: ${f} (KEEP=1 keeps it)\n  server log:\n${log.join('').slice(-tail)}${extra()}`);
    };
  }
  summary() {
    console.log(`${this.passed} passed, ${this.failed} failed` + (this.skipped ? `, ${this.skipped} skipped` : ''));
    return this.failed === 0;
  }
}

export function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }

// SIP REGISTER over UDP with digest authentication (RFC 8760: answers the
// MD5 challenge). Resolves with the final status code.
export async function sipRegister({ host, port, realm, username, password, timeoutMs = 4000 }) {
  const sock = createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  const lport = sock.address().port;
  const callId = randomBytes(8).toString('hex') + '@e2e';
  const tag = randomBytes(4).toString('hex');
  let cseq = 1;
  const build = (auth) => {
    const branch = 'z9hG4bK' + randomBytes(6).toString('hex');
    return [
      `REGISTER sip:${realm} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${lport};branch=${branch};rport`,
      `Max-Forwards: 70`,
      `From: <sip:${username}@${realm}>;tag=${tag}`,
      `To: <sip:${username}@${realm}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq++} REGISTER`,
      `Contact: <sip:${username}@127.0.0.1:${lport}>`,
      `Expires: 60`,
      ...(auth ? [`Authorization: ${auth}`] : []),
      `User-Agent: sipdesk-e2e`,
      `Content-Length: 0`, '', ''].join('\r\n');
  };
  const exchange = (msg) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => { sock.removeAllListeners('message'); reject(new Error('SIP timeout')); }, timeoutMs);
    const onMsg = (buf) => {
      const text = buf.toString();
      const code = Number(text.split(' ')[1]);
      if (code >= 200) { clearTimeout(timer); sock.removeListener('message', onMsg); resolve({ code, text }); }
    };
    sock.on('message', onMsg);
    sock.send(msg, port, host);
  });
  try {
    let res = await exchange(build());
    if (res.code !== 401) return res.code;
    const auth = digestAnswer(res.text, 'WWW-Authenticate', 'REGISTER', `sip:${realm}`, username, password);
    res = await exchange(build(auth));
    return res.code;
  } finally {
    sock.close();
  }
}

// totp is RFC 6238 (SHA-1, 6 digits, 30 s) of a base32 secret at time t.
export function totp(secret, t = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) key.push(parseInt(bits.slice(i, i + 8), 2));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30000)));
  const h = createHmac('sha1', Buffer.from(key)).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// sipInvite places an outbound call attempt over UDP from the address
// from (default 127.0.0.1) with digest authentication (answers the 407
// challenge) and resolves with the final
// status code and reason phrase; a non-2xx final answer is ACKed. The
// dashboard's charts count such attempts from the call records.
export async function sipInvite({ host, port, realm, username, password, to, timeoutMs = 6000, from = '127.0.0.1' }) {
  const sock = createSocket('udp4');
  await new Promise((r) => sock.bind(0, from, r));
  const lport = sock.address().port;
  const callId = randomBytes(8).toString('hex') + '@e2e';
  const tag = randomBytes(4).toString('hex');
  const uri = `sip:${to}@${realm}`;
  const sdp = ['v=0', `o=- 1 1 IN IP4 ${from}`, 's=-', `c=IN IP4 ${from}`, 't=0 0', `m=audio ${lport + 2} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
  let cseq = 0;
  const build = (method, branch, n, extra = [], toTag = '', body = '') => [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${from}:${lport};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:${username}@${realm}>;tag=${tag}`,
    `To: <${uri}>${toTag}`,
    `Call-ID: ${callId}`,
    `CSeq: ${n} ${method}`,
    `Contact: <sip:${username}@${from}:${lport}>`,
    ...extra,
    ...(body ? ['Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
  const invite = (extra) => new Promise((resolve, reject) => {
    const branch = 'z9hG4bK' + randomBytes(6).toString('hex');
    const n = ++cseq;
    const timer = setTimeout(() => { sock.removeAllListeners('message'); reject(new Error('SIP timeout')); }, timeoutMs);
    const onMsg = (buf) => {
      const text = buf.toString();
      const [, code, ...reason] = text.split('\r\n')[0].split(' ');
      if (Number(code) < 200) return;
      clearTimeout(timer);
      sock.removeListener('message', onMsg);
      if (Number(code) >= 300) { // ACK the failure, in the same transaction
        const toTag = (text.match(/^To:.*?(;tag=[^;\s]+)/im) || [])[1] || '';
        sock.send(build('ACK', branch, n, [], toTag), port, host);
      }
      resolve({ code: Number(code), reason: reason.join(' '), text });
    };
    sock.on('message', onMsg);
    sock.send(build('INVITE', branch, n, extra, '', sdp), port, host);
  });
  try {
    let res = await invite([]);
    if (res.code !== 407 && res.code !== 401) return res;
    const hdr = res.code === 407 ? 'Proxy-Authenticate' : 'WWW-Authenticate';
    const auth = digestAnswer(res.text, hdr, 'INVITE', uri, username, password);
    res = await invite([`${res.code === 407 ? 'Proxy-Authorization' : 'Authorization'}: ${auth}`]);
    return res;
  } finally {
    sock.close();
  }
}

// digestAnswer is the Authorization value answering the MD5 challenge (or
// the first one) in header hdr of the response text, with qop=auth when
// offered (RFC 7616).
function digestAnswer(text, hdr, method, uri, username, password) {
  const chals = text.split('\r\n').filter((l) => l.toLowerCase().startsWith(hdr.toLowerCase() + ':'));
  const chal = chals.find((l) => /algorithm=MD5\b/i.test(l) || !/algorithm=/i.test(l)) || chals[0];
  const p = {};
  for (const m of chal.matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) p[m[1].toLowerCase()] = m[3] !== undefined ? m[3] : m[2];
  const md5 = (v) => createHash('md5').update(v).digest('hex');
  const ha1 = md5(`${username}:${p.realm}:${password}`);
  const ha2 = md5(`${method}:${uri}`);
  const cnonce = randomBytes(8).toString('hex');
  const nc = '00000001';
  const qop = p.qop ? 'auth' : '';
  const response = qop ? md5(`${ha1}:${p.nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : md5(`${ha1}:${p.nonce}:${ha2}`);
  let auth = `Digest username="${username}", realm="${p.realm}", nonce="${p.nonce}", uri="${uri}", response="${response}", algorithm=MD5`;
  if (qop) auth += `, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
  if (p.opaque) auth += `, opaque="${p.opaque}"`;
  return auth;
}

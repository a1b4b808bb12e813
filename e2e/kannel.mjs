// A real Kannel for the SMS test: bearerbox and smsbox (Debian `kannel`)
// with fakesmsc (`kannel-extras`) as the SMSC, on loopback ports, from a
// generated kannel.conf. fakesmsc prints every message it receives as
// "Got message N: <from to text TEXT>"; messages() returns them.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './lib.mjs';

export const FAKESMSC = '/usr/lib/kannel/test/fakesmsc';

export function kannelInstalled() {
  return ['/usr/sbin/bearerbox', '/usr/sbin/smsbox', FAKESMSC].every((p) => existsSync(p));
}

async function waitPort(port, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

export class Kannel {
  constructor(work) { this.work = work; this.procs = []; this.lines = []; this.log = []; }

  async configure() {
    const [admin, box, smsc, sendsms] = [await freePort(), await freePort(), await freePort(), await freePort()];
    Object.assign(this, { admin, box, smsc, sendsms, user: 'sipdesk', password: 'kannel-' + Math.random().toString(36).slice(2) });
    this.conf = join(this.work, 'kannel.conf');
    writeFileSync(this.conf, `group = core
admin-port = ${admin}
admin-password = e2e-admin
admin-interface = 127.0.0.1
smsbox-port = ${box}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
admin-allow-ip = 127.0.0.1
dlr-storage = internal
log-level = 1
log-file = "${join(this.work, 'bearerbox.log')}"

group = smsc
smsc = fake
smsc-id = fake
port = ${smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = ${box}
sendsms-port = ${sendsms}
sendsms-interface = 127.0.0.1
log-level = 1
log-file = "${join(this.work, 'smsbox.log')}"

group = sendsms-user
username = ${this.user}
password = ${this.password}
max-messages = 1

group = sms-service
keyword = default
text = "no service"
`);
    return this;
  }

  get url() { return `http://127.0.0.1:${this.sendsms}/cgi-bin/sendsms`; }

  spawn(cmd, args, onLine) {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    const take = (d) => {
      buf += String(d);
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.log.push(`${cmd}: ${line}`);
        if (onLine) onLine(line);
      }
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    this.procs.push(p);
    return p;
  }

  async start() {
    this.spawn('/usr/sbin/bearerbox', [this.conf]);
    await waitPort(this.smsc);
    await waitPort(this.box);
    // fakesmsc sends no messages of its own (-m 0) and prints those it gets.
    this.spawn(FAKESMSC, ['-H', '127.0.0.1', '-r', String(this.smsc), '-i', '1', '-m', '0', '1 2 text unused'], (line) => {
      const m = line.match(/Got message \d+: <(\S+) (\S+) text (.*)>$/);
      if (m) this.lines.push({ from: m[1], to: m[2], text: m[3] });
    });
    this.spawn('/usr/sbin/smsbox', [this.conf]);
    await waitPort(this.sendsms);
  }

  async stop() {
    const ps = this.procs;
    this.procs = [];
    await Promise.all(ps.map((p) => new Promise((resolve) => {
      if (p.exitCode !== null || p.signalCode) return resolve();
      const t = setTimeout(() => p.kill('SIGKILL'), 5000);
      p.on('exit', () => { clearTimeout(t); resolve(); });
      p.kill('SIGTERM');
    })));
  }

  // The code of the newest message fakesmsc received for `to` (after
  // `seen` messages), waiting up to ms.
  async code(to, seen = 0, ms = 30000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const got = this.lines.slice(seen).filter((l) => l.to === to);
      if (got.length) {
        const m = got[got.length - 1].text.match(/code is (\d{6})\./);
        if (m) return { code: m[1], from: got[got.length - 1].from };
      }
      await sleep(100);
    }
    throw new Error(`fakesmsc got no code for ${to}; it got: ${JSON.stringify(this.lines)}`);
  }
}

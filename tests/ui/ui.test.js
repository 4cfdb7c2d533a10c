/*
 * The daemon's web pages in headless Chromium, against the real daemon
 * (tests/ui/run.sh starts it and sets the environment):
 *   UI_URL             the pages (http://127.0.0.1:8080)
 *   UI_OUT             where screenshots go (tests/out/ui)
 *   UI_PASSWORD_FILE   the daemon's password file (checked: a hash, 0600)
 *   UI_CONFIG          the daemon's UCI config (checked: the client written)
 *   UI_TOKEN_FILE      the daemon's API token (the page logs in with it too)
 *   CHROMIUM           the browser (default /usr/bin/chromium)
 * Steps depend on each other (one daemon, one first run): the first failure
 * stops the rest. Ends with 'N passed, M failed'.
 */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { execFileSync } = require('child_process');
const { chromium } = require('playwright-core');

const URL_ = process.env.UI_URL || 'http://127.0.0.1:8080';
const OUT = process.env.UI_OUT || 'tests/out/ui';
const PASSWORD = 'correct-horse-42';
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 860 };

function eq(got, want, what) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}
function ok(cond, what) {
  if (!cond) throw new Error(what);
}

// Another origin (same site, other port): a page that tries a write with the
// browser's cookie, as a hostile page on the LAN would.
function evilServer() {
  const page = `<!doctype html><title>evil</title><script>
    fetch(${JSON.stringify(URL_)} + '/api/clients', { method: 'POST', mode: 'no-cors', credentials: 'include',
      headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ name: 'evil', upstream: 'vpn1' }) })
      .then(() => { document.title = 'sent'; }, () => { document.title = 'sent'; });
  </script>`;
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(page);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

const steps = [];
const step = (name, fn) => steps.push({ name, fn });
let ctx, page;
const consoleErrors = [];

async function shot(name) {
  await page.screenshot({ path: path.join(OUT, name + '.png'), fullPage: true });
}

async function card(name) {
  return page.locator(`.card[data-client="${name}"]`);
}

step('first run shows the setup page (no default password)', async () => {
  await page.goto(URL_ + '/');
  await page.waitForSelector('form#setup');
  eq(fs.existsSync(process.env.UI_PASSWORD_FILE), false, 'password file before setup');
  await shots('setup', 'form#setup h2');
});

// The current page in every language, desktop and phone; back to English.
const LANGS = ['en', 'zh', 'ru'];
async function shots(name, heading) {
  for (const lang of LANGS) {
    await page.selectOption('#lang', lang);
    await page.waitForFunction((l) => document.documentElement.lang.startsWith(l), lang);
    if (heading) await page.waitForSelector(heading);
    for (const [size, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      await page.setViewportSize(vp);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      ok(wide <= vp.width, `${name} ${lang} ${size}: the page is ${wide}px wide on a ${vp.width}px screen`);
      await shot(`${name}-${lang}-${size}`);
    }
  }
  await page.selectOption('#lang', 'en');
  await page.setViewportSize(DESKTOP);
}

step('the API token logs in before any password is set; a wrong one is refused', async () => {
  await page.click('#use-token');
  await page.waitForSelector('form#login[data-mode=token]');
  await page.fill('#f-password', 'f'.repeat(64));
  await page.click('form#login button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#e-password').textContent !== '');
  eq(await page.textContent('#e-password'), 'Wrong token.', 'message');
  await page.fill('#f-password', fs.readFileSync(process.env.UI_TOKEN_FILE, 'utf8').trim());
  await page.click('form#login button[type=submit]');
  await page.waitForSelector('form#add');
  // Logging out goes back to the setup: still no password.
  await page.click('#logout');
  await page.waitForSelector('form#setup');
});

step('setup refuses differing and short passwords, naming the field', async () => {
  await page.fill('#f-password', 'short');
  await page.fill('#f-password2', 'shorter');
  await page.click('form#setup button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#e-password2').textContent !== '');
  await page.fill('#f-password2', 'short');
  await page.click('form#setup button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#e-password').textContent.includes('at least'));
});

step('setup sets the password: stored hashed, 0600, and logs in', async () => {
  await page.fill('#f-password', PASSWORD);
  await page.fill('#f-password2', PASSWORD);
  await page.click('form#setup button[type=submit]');
  await page.waitForSelector('form#add');
  const f = process.env.UI_PASSWORD_FILE;
  const text = fs.readFileSync(f, 'utf8');
  ok(text.startsWith('pbkdf2-sha256$100000$') && !text.includes(PASSWORD), 'stored as a hash: ' + text);
  eq((fs.statSync(f).mode & 0o777).toString(8), '600', 'password file mode');
  const cookies = await ctx.cookies();
  const c = cookies.find((x) => x.name === 'wgsplit_session');
  ok(c && c.httpOnly && c.sameSite === 'Strict', 'session cookie HttpOnly, SameSite=Strict: ' + JSON.stringify(c));
});

step('log out, then a wrong password is refused', async () => {
  await page.click('#logout');
  await page.waitForSelector('form#login');
  // The cookie no longer reads the API.
  eq(await page.evaluate(() => fetch('/api/clients').then((r) => r.status)), 401, 'after logout');
  await page.fill('#f-password', 'not-the-password');
  await page.click('form#login button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#e-password').textContent !== '');
  eq(await page.textContent('#e-password'), 'Wrong password.', 'message');
  await shot('login-wrong-en-desktop');
});

step('log in with the password', async () => {
  await page.fill('#f-password', PASSWORD);
  await page.click('form#login button[type=submit]');
  await page.waitForSelector('form#add');
});

step('add a client: a bad name is refused next to the field, a good one listed', async () => {
  await page.fill('#f-name', 'bad name');
  await page.selectOption('#f-upstream', 'vpn1');
  await page.click('form#add button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#e-name').textContent !== '');
  await page.fill('#f-name', 'phone1');
  await page.click('form#add button[type=submit]');
  const c = await card('phone1');
  await c.waitFor();
  eq(await c.locator('.state').textContent(), 'offline', 'new client state');
  eq(await c.locator('.handshake').textContent(), 'never', 'handshake');
  ok(fs.readFileSync(process.env.UI_CONFIG, 'utf8').includes("config client 'phone1'"), 'client in the config');
});

let conf;
step('its .conf downloads', async () => {
  const c = await card('phone1');
  const [dl] = await Promise.all([page.waitForEvent('download'), c.locator('a.conf').click()]);
  eq(dl.suggestedFilename(), 'phone1.conf', 'file name');
  conf = fs.readFileSync(await dl.path(), 'utf8');
  ok(/^\[Interface\][\s\S]*PrivateKey = [A-Za-z0-9+/]{43}=[\s\S]*\[Peer\][\s\S]*Endpoint = 192\.0\.2\.1:51820/m.test(conf), 'conf: ' + conf);
});

step('its QR code shows and decodes to the same config', async () => {
  const c = await card('phone1');
  await c.locator('button.qr-toggle').click();
  const img = c.locator('.qr img');
  await img.waitFor();
  await page.waitForFunction((n) => {
    const i = document.querySelector(`.card[data-client="${n}"] .qr img`);
    return i && i.complete && i.naturalWidth > 0;
  }, 'phone1');
  await shot('clients-qr-en-desktop');
  const png = path.join(OUT, 'qr-phone1.png');
  await img.screenshot({ path: png });
  let decoded = null;
  try {
    decoded = execFileSync('zbarimg', ['--raw', '-q', png], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (e) {
    if (e.code === 'ENOENT') { console.log('     (zbarimg missing: QR not decoded)'); return; }
    throw new Error('zbarimg could not read the QR: ' + e.message);
  }
  eq(decoded.replace(/\n+$/, ''), conf.replace(/\n+$/, ''), 'QR text');
});

step('an open QR code stays open when the list is drawn again', async () => {
  await page.selectOption('#lang', 'ru');
  await page.waitForSelector('.card[data-client="phone1"] .qr img');
  await page.selectOption('#lang', 'en');
  await page.waitForSelector('.card[data-client="phone1"] .qr img');
  await (await card('phone1')).locator('button.qr-toggle').click();
  await page.waitForFunction(() => document.querySelector('.card[data-client="phone1"] .qr').hidden);
});

step('disable, then enable again', async () => {
  let c = await card('phone1');
  await c.locator('button.toggle').click();
  await page.waitForFunction(() => document.querySelector('.card[data-client="phone1"] .state').textContent === 'disabled');
  ok(/config client 'phone1'[^]*?option enabled '0'/.test(fs.readFileSync(process.env.UI_CONFIG, 'utf8')), 'disabled in the config');
  c = await card('phone1');
  await c.locator('button.toggle').click();
  await page.waitForFunction(() => document.querySelector('.card[data-client="phone1"] .state').textContent === 'offline');
});

step('a write from another origin is refused (cookie sent, origin checked)', async () => {
  const srv = await evilServer();
  const evil = await ctx.newPage();
  try {
    await evil.goto(`http://127.0.0.1:${srv.address().port}/`);
    await evil.waitForFunction(() => document.title === 'sent');
  } finally {
    await evil.close();
    srv.close();
  }
  // A page can send only a form-like write (text/plain, no preflight): the
  // API refuses it twice over (not JSON: 415; cookie from another origin: 403).
  const names = await page.evaluate(() => fetch('/api/clients').then((r) => r.json()).then((l) => l.map((c) => c.name)));
  ok(!names.includes('evil'), 'the evil page added a client: ' + names);
  // The origin check alone: the cookie, a foreign Origin, no body: 403.
  const cookie = (await ctx.cookies()).find((x) => x.name === 'wgsplit_session');
  const status = await new Promise((resolve, reject) => {
    const u = new URL(URL_ + '/api/clients/phone1/disable');
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
      headers: { Cookie: `wgsplit_session=${cookie.value}`, Origin: 'http://127.0.0.1:9' } }, (res) => resolve(res.statusCode));
    req.on('error', reject);
    req.end();
  });
  eq(status, 403, 'cookie write from another origin');
});

step('the clients page in every language, desktop and phone', async () => {
  await shots('clients', '.card[data-client="phone1"]');
  await page.setViewportSize(PHONE);
  for (const [lang, disable] of [['zh', '停用'], ['ru', 'Отключить']]) {
    await page.selectOption('#lang', lang);
    await page.waitForFunction((d) => {
      const b = document.querySelector('.card[data-client="phone1"] button.toggle');
      return b && b.textContent === d;
    }, disable);
    // Nothing wider than the screen.
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    ok(wide <= PHONE.width, `${lang}: the page is ${wide}px wide on a ${PHONE.width}px screen`);
  }
  await page.selectOption('#lang', 'en');
  await page.setViewportSize(DESKTOP);
});

step('remove (two clicks)', async () => {
  const c = await card('phone1');
  await c.locator('button.remove').click();
  eq(await c.locator('button.remove').textContent(), 'Remove for good?', 'armed');
  await c.locator('button.remove').click();
  await page.waitForFunction(() => !document.querySelector('.card[data-client="phone1"]'));
  ok(!fs.readFileSync(process.env.UI_CONFIG, 'utf8').includes("'phone1'"), 'removed from the config');
});

step('log out', async () => {
  await page.click('#logout');
  await page.waitForSelector('form#login');
  await page.reload();
  await page.waitForSelector('form#login');
  await shots('login', 'form#login');
});

step('no console errors but the expected refusals', async () => {
  // A 401 (not logged in yet, wrong password) and a 400 (the bad name) are
  // logged by Chromium as failed loads: expected; anything else is a bug.
  const unexpected = consoleErrors.filter((m) => !/status of (400|401)\b/.test(m));
  eq(unexpected, [], 'console errors');
});

(async () => {
  const exe = process.env.CHROMIUM || '/usr/bin/chromium';
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wsui-chromium-'));
  fs.mkdirSync(OUT, { recursive: true });
  let passed = 0, failed = 0;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: exe, headless: true, viewport: DESKTOP, acceptDownloads: true, locale: 'en-US',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = ctx.pages()[0] || await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message));
  } catch (e) {
    console.log('FAIL launching Chromium (' + exe + '): ' + e.message);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  for (const s of steps) {
    const t0 = Date.now();
    try {
      await s.fn();
      console.log(`ok   ${s.name} (${Date.now() - t0} ms)`);
      passed++;
    } catch (e) {
      console.log(`FAIL ${s.name}: ${e.message.split('\n')[0]}`);
      await shot('failed').catch(() => {});
      failed++;
      break;
    }
  }
  await ctx.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
  const skipped = steps.length - passed - failed;
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} not run` : ''}`);
  process.exit(failed || skipped ? 1 : 0);
})();

'use strict';
/*
 * The pages under LuCI's own JavaScript (luci.js, form.js, ui.js, uci.js,
 * rpc.js, validation.js) in headless Chromium, instead of the stand-in: a
 * small server answers LuCI's ubus JSON-RPC (session, uci, and the wgsplit
 * object with the stand-in's canned answers) and serves luci-app next to
 * LuCI's resources. LuCI's code is not in this repository: give the folder
 * modules/luci-base/htdocs/luci-static/resources of a LuCI checkout.
 *
 *   LUCI_RESOURCES=path node tests/luci/real-luci.test.js
 * Prints 'N passed, M failed'; without the variable, a skip.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');

const LUCI = process.env.LUCI_RESOURCES;
if (!LUCI) {
	console.log('skip: set LUCI_RESOURCES to the luci-base resources folder of a LuCI checkout');
	console.log('0 passed, 0 failed');
	process.exit(0);
}
const { chromium } = require('playwright-core');
const uciText = require('./uci.js');
const stand = require('./server.js');

const ROOT = path.resolve(__dirname, '../..');
const APP = path.join(ROOT, 'luci-app/htdocs/luci-static/resources');

/* uci `get` as rpcd answers it: { values: { sid: { '.name', '.type', '.anonymous', '.index', … } } } */
function values(config) {
	const out = {};
	config.forEach((s, i) => {
		const v = { '.anonymous': !!s['.anonymous'], '.type': s['.type'], '.name': s['.name'], '.index': i };
		for (const k in s) if (k[0] != '.') v[k] = s[k];
		out[s['.name']] = v;
	});
	return out;
}

function start() {
	const state = stand.makeState();
	const calls = [];
	let added = 0;
	const call = (obj, method, args) => {
		calls.push([ obj, method, args ]);
		if (obj == 'session' && method == 'access') return { access: true };
		if (obj == 'uci' && method == 'get') return { values: args.config == 'wgsplit' ? values(state.config) : {} };
		if (obj == 'uci' && method == 'changes') return { changes: {} };
		if (obj == 'uci' && method == 'add') return { section: 'new' + added++ };
		if (obj == 'wgsplit') {
			const r = stand.ubus(state, obj, method, args);
			return r && !r.__rpc_error ? r : {};
		}
		return {};
	};
	/* the page LuCI's header and view templates make, with the env luci.js reads */
	const page = view => `<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="/stub.css">
<script src="/luci-static/resources/cbi.js"></script><script src="/luci-static/resources/promis.min.js"></script>
<script src="/luci-static/resources/luci.js"></script>
<script>L = new LuCI(${JSON.stringify({ token: 't', media: '/luci-static/bootstrap', resource: '/luci-static/resources',
		scriptname: '/cgi-bin/luci', pathinfo: '/admin/services/wgsplit/' + view, documentroot: '/www',
		requestpath: [ 'admin', 'services', 'wgsplit', view ], dispatchpath: [ 'admin', 'services', 'wgsplit', view ],
		pollinterval: 5, ubuspath: '/ubus/', sessionid: 'test', nodespec: {},
		apply_rollback: 90, apply_holdoff: 4, apply_timeout: 5, apply_display: 1.5 })});</script></head>
<body><div id="maincontent"><div id="view"><div class="spinning">Loading view…</div>
<script>L.require('ui').then(function(ui) { ui.instantiateView('wgsplit/${view}'); });</script></div></div></body></html>`;
	const srv = http.createServer((req, res) => {
		let body = '';
		req.on('data', d => body += d);
		req.on('end', () => {
			const u = new URL(req.url, 'http://127.0.0.1');
			const send = (c, t, b) => { res.writeHead(c, { 'Content-Type': t }); res.end(b); };
			if (u.pathname == '/stub.css') return send(200, 'text/css', fs.readFileSync(path.join(__dirname, 'stub/luci.css')));
			if (u.pathname.startsWith('/page/')) return send(200, 'text/html', page(u.pathname.slice(6)));
			if (u.pathname.startsWith('/ubus')) {
				const msg = JSON.parse(body || '{}');
				const one = m => ({ jsonrpc: '2.0', id: m.id,
					result: m.method == 'call' ? [ 0, call(m.params[1], m.params[2], m.params[3] || {}) ] : {} });
				return send(200, 'application/json', JSON.stringify(Array.isArray(msg) ? msg.map(one) : one(msg)));
			}
			if (u.pathname.startsWith('/luci-static/resources/')) {
				const rel = u.pathname.slice('/luci-static/resources/'.length);
				for (const base of [ APP, LUCI ]) {
					const f = path.join(base, rel);
					if (f.startsWith(base + path.sep) && fs.existsSync(f) && fs.statSync(f).isFile())
						return send(200, f.endsWith('.css') ? 'text/css' : 'application/javascript', fs.readFileSync(f));
				}
			}
			send(404, 'text/plain', 'not found');
		});
	});
	return new Promise(r => srv.listen(0, '127.0.0.1', () => r({ srv, calls, port: srv.address().port })));
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const assert = (c, m) => { if (!c) throw new Error(m); };
const click = (page, sel) => page.evaluate(s => document.querySelector(s).click(), sel);   // no theme: the modal overlay covers all

test('settings: saves while its addresses are set (issue #14)', async (page, h) => {
	await page.goto(`http://127.0.0.1:${h.port}/page/settings`);
	await page.waitForSelector('.cbi-map');
	const port = page.locator('[id="widget.cbid.wgsplit.server.listen_port"]');
	await port.fill('51821');
	await port.press('Tab');
	await click(page, '.cbi-page-actions .cbi-button-save');
	for (let i = 0; i < 30 && !h.calls.some(c => c[1] == 'set'); i++) await page.waitForTimeout(100);
	const set = h.calls.filter(c => c[0] == 'uci' && c[1] == 'set').map(c => c[2].values);
	assert(set.some(v => v.listen_port == '51821'), 'nothing saved: ' + JSON.stringify(h.calls.slice(-5)));
	// a choice left at its default is not written (the stand-in's form does the same)
	assert(!set.some(v => 'backend' in v || 'block_answer' in v), 'defaults written: ' + JSON.stringify(set));
	assert(await page.getAttribute('[id="widget.cbid.wgsplit.server.address"]', 'data-tooltip') == null, 'address flagged');
});

test('clients: one client\'s rules at a time, a new rule is that client\'s, addresses checked by LuCI\'s datatypes', async (page, h) => {
	await page.goto(`http://127.0.0.1:${h.port}/page/clients`);
	await page.waitForSelector('#wgsplit-rule-client');
	await page.selectOption('#wgsplit-rule-client', 'bob');
	await page.waitForFunction(() => /bank\.example/.test(document.querySelector('#cbi-wgsplit-rule').innerText));
	await click(page, '#cbi-wgsplit-rule .cbi-section-create .cbi-button-add');
	await page.waitForSelector('.modal select');
	const client = await page.$eval('.modal select[id$=".client"]', e => e.value).catch(() => null);
	assert(client == 'bob', 'new rule\'s client: ' + client);
	await page.evaluate(() => [ ...document.querySelectorAll('.modal button') ].find(b => /Dismiss/.test(b.textContent)).click());
	await page.waitForTimeout(300);
	await click(page, 'tr[data-sid="alice"] .cbi-button-edit');
	await page.waitForSelector('.modal .cbi-dynlist');
	const add = page.locator('.modal [id$="alice.address"] input[type="text"]').last();
	const tip = async v => { await add.fill(''); await add.type(v); await add.press('Tab'); return add.getAttribute('data-tooltip'); };
	assert(await tip('10.8.0.9/32') == null, '10.8.0.9/32 refused');
	assert(/Outside the server pool/.test(await tip('10.9.0.9/32') || ''), '10.9.0.9/32 taken');
	assert(/valid IPv4 or IPv6 CIDR/.test(await tip('10.8.0.300/32') || ''), '10.8.0.300/32 taken');
});

test('clients: the DNS bypass guard box writes \'0\' when off, nothing when on', async (page, h) => {
	await page.goto(`http://127.0.0.1:${h.port}/page/clients`);
	await page.waitForSelector('#wgsplit-rule-client');
	await click(page, 'tr[data-sid="alice"] .cbi-button-edit');
	// LuCI's ui.Checkbox: the input (its own id) inside the widget's div
	const box = '.modal [id="cbid.wgsplit.alice.dns_guard"] input[type="checkbox"]';
	await page.waitForSelector(box, { state: 'attached' });   // LuCI styles a label over the input
	assert(await page.isChecked(box), 'on while unset');
	await page.evaluate(s => document.querySelector(s).click(), box);
	await page.evaluate(() => [ ...document.querySelectorAll('.modal button') ].find(b => /Save/.test(b.textContent)).click());
	for (let i = 0; i < 30 && !h.calls.some(c => c[1] == 'set'); i++) await page.waitForTimeout(100);
	const set = h.calls.filter(c => c[0] == 'uci' && c[1] == 'set').map(c => c[2]);
	assert(set.some(c => c.section == 'alice' && c.values.dns_guard == '0'), 'saved: ' + JSON.stringify(set));
	assert(!set.some(c => 'enabled' in c.values), 'enabled written: ' + JSON.stringify(set));
});

test('every page renders under LuCI with no error', async (page, h) => {
	for (const view of stand.PAGES) {
		await page.goto(`http://127.0.0.1:${h.port}/page/${view}`);
		await page.waitForSelector('.cbi-map, #view h2', { timeout: 10000 });
	}
});

(async () => {
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wgsplit-realluci-'));
	const ctx = await chromium.launchPersistentContext(profile, { executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true, args: [ '--headless', '--no-sandbox', '--disable-gpu' ] });
	let passed = 0, failed = 0;
	for (const t of tests) {
		const h = await start();
		const page = await ctx.newPage();
		const errs = [];
		page.on('pageerror', e => errs.push(e.message));
		try {
			await t.fn(page, h);
			assert(!errs.length, 'page errors: ' + errs.join(' | '));
			console.log('ok   ' + t.name);
			passed++;
		}
		catch (e) {
			console.log('FAIL ' + t.name + ': ' + e.message);
			failed++;
		}
		await page.close();
		h.srv.close();
	}
	await ctx.close();
	fs.rmSync(profile, { recursive: true, force: true });
	console.log(`${passed} passed, ${failed} failed`);
	process.exit(failed ? 1 : 0);
})();

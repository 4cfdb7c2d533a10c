'use strict';
/*
 * luci-app-wgsplit in headless Chromium: every page renders against the LuCI
 * stand-in (server.js + stub/), screenshots go to tests/out/luci/, and the
 * main flows (add a client, add a rule, QR/config, import an upstream, edit
 * an upstream's down policy, explain, server settings) produce the expected
 * uci changes and ubus calls, recorded by the stand-in server.
 *
 *   node tests/luci/browser.test.js        prints 'N passed, M failed'
 * Env: CHROMIUM (default /usr/bin/chromium), WGSPLIT_BIN (for config check).
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const cp = require('child_process');
const { chromium } = require('playwright-core');
const server = require('./server.js');
const { listsShow } = require('./lists-state.js');

const ROOT = path.resolve(__dirname, '../..');
const OUT = path.join(ROOT, 'tests/out/luci');
fs.mkdirSync(OUT, { recursive: true });
const GENKEY = 'QGxSYnKElJ6us8DJ0ubo+AwWICo0PkhSXGZwdH6ImJI=';

let ctx, srv;

function assert(cond, msg) { if (!cond) throw new Error(msg); }
function eq(a, b, msg) {
	if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
}
const id = s => `[id="${s}"]`;
const saved = () => srv.state.calls.saves.flat();
const uciText = () => require('./uci.js').serialize(srv.state.config);
const hasCall = (call) => saved().some(c => JSON.stringify(c) === JSON.stringify(call));
/* the modal closes before its uci.save() reaches the server: wait for the call */
async function waitCall(page, call) {
	for (let i = 0; i < 50 && !hasCall(call); i++) await page.waitForTimeout(100);
	return hasCall(call);
}

async function open(view, lang, prep) {
	srv = await server.start(0);
	if (prep) prep(srv.state);
	const page = await ctx.newPage();
	page.errors = [];
	page.on('pageerror', e => page.errors.push('pageerror: ' + e.message));
	page.on('console', m => { if (m.type() == 'error') page.errors.push('console: ' + m.text()); });
	await page.goto(`http://127.0.0.1:${srv.port}/?view=wgsplit/${view}` + (lang ? '&lang=' + lang : ''));
	await page.waitForSelector('body[data-view-ready], body[data-view-error]', { timeout: 15000 });
	const err = await page.getAttribute('body', 'data-view-error');
	assert(!err, 'view failed: ' + err);
	return page;
}

async function close(page) {
	const errs = page.errors;
	// LuCI's dom.append shows a nested array (or an object) as text: it must never reach the page
	const text = await page.textContent('body').catch(() => '');
	const junk = /\[object \w+\]/.exec(text || '');
	if (junk) errs.push('page shows ' + junk[0]);
	await page.close();
	srv.server.close();
	assert(!errs.length, 'browser errors:\n   ' + errs.join('\n   '));
}

async function shot(page, name) {
	await page.screenshot({ path: path.join(OUT, name + '.png'), fullPage: true });
}

function findBinary() {
	return [ process.env.WGSPLIT_BIN, path.join(ROOT, 'target/release/wgsplit'), path.join(ROOT, 'target/debug/wgsplit') ]
		.find(c => c && fs.existsSync(c)) || null;
}

/* `wgsplit config check` on a config text, or null when the binary has no working check */
function configCheck(text) {
	const bin = findBinary();
	if (!bin) return null;
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wgsplit-luci-'));
	const run = t => {
		fs.writeFileSync(path.join(dir, 'wgsplit'), t);
		const r = cp.spawnSync(bin, [ '--config', path.join(dir, 'wgsplit'), 'config', 'check' ], { encoding: 'utf8' });
		return { ok: r.status === 0, out: (r.stdout || '') + (r.stderr || '') };
	};
	const probe = run("config server 'server'\n\toption no_such_option 'x'\n");
	const res = (!probe.ok && /no_such_option/.test(probe.out)) ? run(text) : null;
	fs.rmSync(dir, { recursive: true, force: true });
	return res;
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('overview shows server, upstream health and clients with traffic', async () => {
	const page = await open('overview');
	const up = await page.locator('#wgsplit-upstreams tr').allInnerTexts();
	assert(up.some(r => /us1\s+up\s+us1\.example\.net:51820\s+42s ago\s+31 ms\s+through itself\s+block/.test(r)), 'us1 row: ' + up.join(' | '));
	assert(up.some(r => /eu1\s+down\s+203\.0\.113\.10:51820\s+never\s+-\s+direct \(WAN\)\s+direct/.test(r)), 'eu1 row: ' + up.join(' | '));
	const cl = await page.locator('#wgsplit-clients tr').allInnerTexts();
	assert(cl.some(r => /alice\s+online\s+us1\s+198\.51\.100\.7:41234\s+12s ago\s+1\.2 GiB\s+87\.0 MiB/.test(r)), 'alice row: ' + cl.join(' | '));
	assert(cl.some(r => /bob\s+offline\s+eu1/.test(r) && /3d ago/.test(r)), 'bob row: ' + cl.join(' | '));
	const srvRow = await page.locator('#wgsplit-server').innerText();
	assert(/wg0\s+up\s+51820\s+10\.8\.0\.1\/24\s+2\s+present\s+0/.test(srvRow), 'server row: ' + srvRow);
	// the poller refreshes the same tables
	const before = srv.state.calls.ubus.filter(c => c.method == 'status').length;
	await page.evaluate(() => L.stub.poll.run());
	await page.waitForSelector('#wgsplit-upstreams');
	eq(srv.state.calls.ubus.filter(c => c.method == 'status').length, before + 1, 'poll calls status');
	await shot(page, 'overview');
	await close(page);
});

test('clients page lists clients with status and traffic', async () => {
	const page = await open('clients');
	const rows = await page.locator('#cbi-wgsplit-client tr.cbi-section-table-row').allInnerTexts();
	eq(rows.length, 2, 'client rows');
	assert(/alice\s+online\s+↓ 1\.2 GiB ↑ 87\.0 MiB/.test(rows[0]), rows[0]);
	assert(/bob\s+offline/.test(rows[1]) && /proxy \(upstream\)/.test(rows[1]), rows[1]);
	// the rules of one client at a time, alice's first, in her order
	eq(await page.inputValue('#wgsplit-rule-client'), 'alice', 'rules shown for');
	const rules = await page.locator('#cbi-wgsplit-rule tr.cbi-section-table-row').allInnerTexts();
	eq(rules.length, 2, 'alice\'s rules: ' + rules.join(' | '));
	assert(/^proxy/.test(rules[0]) && /netflix\.com/.test(rules[0]) && /8\.8\.8\.0\/24/.test(rules[0]), rules[0]);
	assert(/^block/.test(rules[1]) && /cn/.test(rules[1]), rules[1]);
	await shot(page, 'clients');
	await close(page);
});

test('adding a client through the page writes the expected uci changes', async () => {
	const page = await open('clients');
	// a bad name is refused before anything is added
	await page.fill('#cbi-wgsplit-client .cbi-section-create-name', 'bad-name');
	await page.click('#cbi-wgsplit-client .cbi-section-create .cbi-button-add');
	assert(await page.locator('#cbi-wgsplit-client .cbi-section-create-name.cbi-input-invalid').count() == 1, 'bad name not flagged');
	assert(await page.locator('#modal').count() == 0, 'modal opened for a bad name');

	await page.fill('#cbi-wgsplit-client .cbi-section-create-name', 'carol');
	await page.click('#cbi-wgsplit-client .cbi-section-create .cbi-button-add');
	await page.waitForSelector('#modal');
	// prefilled: next free pool address and a fresh key from `wgsplit genkey`
	eq(await page.inputValue(id('widget.cbid.wgsplit.carol.address') + ' input'), '10.8.0.4/32', 'suggested address');
	eq(await page.inputValue(id('widget.cbid.wgsplit.carol.private_key')), GENKEY, 'generated key');
	await page.selectOption(id('widget.cbid.wgsplit.carol.upstream'), 'us1');
	await page.selectOption(id('widget.cbid.wgsplit.carol.default'), 'proxy');
	await page.fill(id('widget.cbid.wgsplit.carol.expires'), '2027-01-31');
	await page.fill(id('widget.cbid.wgsplit.carol.description'), 'Carol laptop');
	await shot(page, 'clients-add');
	await page.click('#modal .cbi-button-positive');
	await page.waitForSelector('#modal', { state: 'detached', timeout: 5000 }).catch(async e => {
		throw new Error('modal stayed open: ' + await page.innerText('#modal .cbi-modal-error'));
	});
	await page.waitForSelector('tr[data-sid="carol"]');

	for (const c of [
		[ 'add', 'wgsplit', 'client', 'carol' ],
		[ 'set', 'wgsplit', 'carol', 'address', [ '10.8.0.4/32' ] ],
		[ 'set', 'wgsplit', 'carol', 'private_key', GENKEY ],
		[ 'set', 'wgsplit', 'carol', 'upstream', 'us1' ],
		[ 'set', 'wgsplit', 'carol', 'default', 'proxy' ],
		[ 'set', 'wgsplit', 'carol', 'expires', '2027-01-31' ],
		[ 'set', 'wgsplit', 'carol', 'description', 'Carol laptop' ]
	]) assert(hasCall(c), 'missing uci call ' + JSON.stringify(c) + '\n   saved: ' + JSON.stringify(saved()));
	const carolOpts = saved().filter(c => c[0] == 'set' && c[2] == 'carol').map(c => c[3]).sort();
	// as LuCI: an option left at its default is not written (enabled, dns_guard: on)
	eq(carolOpts, [ 'address', 'default', 'description', 'expires', 'private_key', 'upstream' ], 'options written for carol');
	assert(!saved().some(c => c[2] != 'carol' && c[0] != 'add'), 'other sections touched: ' + JSON.stringify(saved()));

	// an invalid value keeps the modal open and writes nothing
	await page.fill('#cbi-wgsplit-client .cbi-section-create-name', 'dave');
	await page.click('#cbi-wgsplit-client .cbi-section-create .cbi-button-add');
	await page.waitForSelector('#modal');
	eq(await page.inputValue(id('widget.cbid.wgsplit.dave.address') + ' input'), '10.8.0.5/32', 'next address for dave');
	// asked of the CLI (client_next_address), the page's clients named as taken, carol's too
	eq(srv.state.calls.ubus.filter(c => c.method == 'client_next_address').map(c => c.args.taken),
		[ [ '10.8.0.2/32', '10.8.0.3/32' ], [ '10.8.0.2/32', '10.8.0.3/32', '10.8.0.4/32' ] ], 'taken addresses');
	await page.fill(id('widget.cbid.wgsplit.dave.expires'), '2027-13-45');
	await page.click('#modal .cbi-button-positive');
	await page.waitForSelector('#modal .cbi-modal-error:not(:empty)');
	const err = await page.innerText('#modal .cbi-modal-error');
	assert(/Expires/.test(err), 'error names the field: ' + err);
	await shot(page, 'clients-invalid');
	await page.click('#modal .right button:has-text("Dismiss")');
	await page.waitForSelector('#modal', { state: 'detached' });
	assert(await page.locator('tr[data-sid="dave"]').count() == 0, 'dismissed client still listed');

	await page.click('#btn-save-apply');
	await page.waitForFunction(() => true);
	for (let i = 0; i < 50 && !srv.state.calls.applies.length; i++) await page.waitForTimeout(100);
	eq(srv.state.calls.applies.length, 1, 'apply calls');
	const applied = srv.state.calls.applies[0];
	assert(/config client 'carol'\n\tlist address '10\.8\.0\.4\/32'/.test(applied), 'applied config lacks carol:\n' + applied);
	assert(!/'dave'/.test(applied), 'dismissed client dave was applied');
	fs.writeFileSync(path.join(OUT, 'wgsplit.after-add-client'), applied);
	const chk = configCheck(applied);
	if (chk) assert(chk.ok, 'wgsplit config check rejects the saved config:\n' + chk.out);
	await close(page);
});

test('adding a rule validates matches like config check and saves them', async () => {
	const page = await open('clients');
	await page.click('#cbi-wgsplit-rule .cbi-section-create .cbi-button-add');
	await page.waitForSelector('#modal');
	const sid = await page.getAttribute('#modal .cbi-section-node', 'data-section-id');
	const w = o => id(`widget.cbid.wgsplit.${sid}.${o}`);
	await page.selectOption(w('client'), 'bob');
	await page.selectOption(w('action'), 'proxy');
	assert(await page.isVisible(w('upstream')), 'upstream shown for proxy');
	await page.fill(w('domain') + ' input', 'bad..domain');
	await page.click('#modal .cbi-button-positive');
	await page.waitForSelector('#modal .cbi-modal-error:not(:empty)');
	assert(/Domains/.test(await page.innerText('#modal .cbi-modal-error')), 'domain error');
	await page.fill(w('domain') + ' input', '*.example.org');
	await page.click(w('domain') + ' .cbi-button-add');
	await page.fill(w('domain') + ' .item:nth-child(2) input', 'netflix.com');
	await page.fill(w('port') + ' input', 'tcp:99999');
	await page.click('#modal .cbi-button-positive');
	await page.waitForFunction(() => /Ports/.test(document.querySelector('#modal .cbi-modal-error').textContent));
	await page.fill(w('port') + ' input', 'tcp:443');
	await page.fill(w('geoip') + ' input', '!cn');
	await page.selectOption(w('action'), 'direct');
	assert(!(await page.isVisible(w('upstream'))), 'upstream hidden unless proxy');
	await shot(page, 'rules-add');
	await page.click('#modal .cbi-button-positive');
	await page.waitForSelector('#modal', { state: 'detached' });
	for (const c of [
		[ 'add', 'wgsplit', 'rule', sid ],
		[ 'set', 'wgsplit', sid, 'client', 'bob' ],
		[ 'set', 'wgsplit', sid, 'action', 'direct' ],
		[ 'set', 'wgsplit', sid, 'domain', [ '*.example.org', 'netflix.com' ] ],
		[ 'set', 'wgsplit', sid, 'port', [ 'tcp:443' ] ],
		[ 'set', 'wgsplit', sid, 'geoip', [ '!cn' ] ]
	]) assert(hasCall(c), 'missing ' + JSON.stringify(c) + '\n   saved: ' + JSON.stringify(saved()));
	assert(!hasCall([ 'set', 'wgsplit', sid, 'upstream', '' ]) && !saved().some(c => c[2] == sid && c[3] == 'upstream'), 'inactive upstream written');
	await close(page);
});

test('a client\'s rules: pick the client, add one for it, reorder, remove', async () => {
	const page = await open('clients');
	const rows = () => page.locator('#cbi-wgsplit-rule tr.cbi-section-table-row').allInnerTexts();
	// bob's rules alone
	await page.selectOption('#wgsplit-rule-client', 'bob');
	await page.waitForFunction(() => document.querySelectorAll('#cbi-wgsplit-rule tr.cbi-section-table-row').length == 1);
	assert(/bank\.example/.test((await rows())[0]), 'bob\'s rule: ' + (await rows()).join(' | '));
	// a rule added here is bob's without choosing him
	await page.click('#cbi-wgsplit-rule .cbi-section-create .cbi-button-add');
	await page.waitForSelector('#modal');
	const sid = await page.getAttribute('#modal .cbi-section-node', 'data-section-id');
	eq(await page.inputValue(id(`widget.cbid.wgsplit.${sid}.client`)), 'bob', 'new rule\'s client');
	await page.selectOption(id(`widget.cbid.wgsplit.${sid}.action`), 'block');
	await page.fill(id(`widget.cbid.wgsplit.${sid}.domain`) + ' input', 'ads.example');
	await page.click('#modal .cbi-button-positive');
	await page.waitForSelector('#modal', { state: 'detached' });
	assert(await waitCall(page, [ 'set', 'wgsplit', sid, 'client', 'bob' ]), 'saved: ' + JSON.stringify(saved()));
	await page.waitForFunction(() => document.querySelectorAll('#cbi-wgsplit-rule tr.cbi-section-table-row').length == 2);
	eq(await page.inputValue('#wgsplit-rule-client'), 'bob', 'still bob\'s rules after the save');
	await shot(page, 'rules-bob');

	// alice: move her block rule above her proxy rule
	await page.selectOption('#wgsplit-rule-client', 'alice');
	await page.waitForFunction(() => /^proxy/.test(document.querySelector('#cbi-wgsplit-rule tr.cbi-section-table-row').innerText));
	assert(await page.isDisabled('#cbi-wgsplit-rule tr.cbi-section-table-row >> nth=0 >> .wgsplit-rule-up'), 'first rule can move up');
	await page.click('#cbi-wgsplit-rule tr.cbi-section-table-row >> nth=1 >> .wgsplit-rule-up');
	await page.waitForFunction(() => /^block/.test(document.querySelector('#cbi-wgsplit-rule tr.cbi-section-table-row').innerText));
	for (let i = 0; i < 50 && !/client 'alice'\n\toption action 'block'[\s\S]*client 'alice'\n\toption action 'proxy'/.test(uciText()); i++)
		await page.waitForTimeout(100);
	const order = uciText().match(/option client '\w+'\n\toption action '\w+'/g).map(l => l.replace(/\s+/g, ' '));
	eq(order, [ "option client 'alice' option action 'block'", "option client 'alice' option action 'proxy'",
		"option client 'bob' option action 'direct'", "option client 'bob' option action 'block'" ], 'rule order saved');
	// remove alice's (now first) block rule
	await page.click('#cbi-wgsplit-rule tr.cbi-section-table-row >> nth=0 >> .cbi-button-remove');
	await page.waitForFunction(() => document.querySelectorAll('#cbi-wgsplit-rule tr.cbi-section-table-row').length == 1);
	await shot(page, 'rules-alice');
	await close(page);
});

test('a client\'s details: this month against its quota, 7 days of traffic, QR code and config', async () => {
	const page = await open('clients');
	await page.click('tr[data-sid="alice"] button:has-text("Details")');
	await page.waitForSelector('#modal .wgsplit-qr svg');
	const conf = await page.innerText('#modal pre.wgsplit-conf');
	assert(/\[Interface\][\s\S]*\[Peer\][\s\S]*Endpoint = vpn\.example\.net:51820/.test(conf), conf);
	eq(await page.innerText('#wgsplit-client-month'), '20.0 GiB of 50.0 GiB this month, 30.0 GiB left.', 'month');
	// one bar an hour for 7 days; the newest hour the tallest (4 MiB), rx and tx stacked
	const bars = await page.$$eval('#wgsplit-client-chart g.wgsplit-bar', gs => gs.map(g =>
		[ ...g.querySelectorAll('rect') ].map(r => +r.getAttribute('height'))));
	eq(bars.length, 168, 'hourly bars');
	eq(bars[167], [ 30, 90 ], 'newest hour: 1 MiB received, 3 MiB sent of a 4 MiB scale');
	eq(bars[0], [ 60, 0 ], 'oldest hour');
	assert(bars.slice(1, 167).every(b => b[0] == 0 && b[1] == 0), 'empty hours drawn');
	assert(/the tallest bar: 4\.0 MiB in an hour/.test(await page.innerText('#wgsplit-client-chart-legend')), 'chart scale');
	const calls = srv.state.calls.ubus.filter(c => c.method.startsWith('client_'));
	eq(calls.map(c => [ c.method, c.args ]), [ [ 'client_conf', { name: 'alice' } ], [ 'client_qr', { name: 'alice' } ],
		[ 'client_history', { name: 'alice' } ] ], 'ubus calls');
	await shot(page, 'clients-details');
	await page.click('#modal button:has-text("Dismiss")');
	// bob keeps no key on the router: no config, but his traffic and no quota
	await page.click('tr[data-sid="bob"] button:has-text("Details")');
	await page.waitForSelector('#wgsplit-client-month');
	eq(await page.innerText('#wgsplit-client-month'), '0 B this month, no quota.', 'bob month');
	assert(/does not keep this client's private key/.test(await page.innerText('#modal')), 'bob: why no config');
	assert(await page.locator('#modal button:has-text("Download")').count() == 0, 'download without a config');
	await close(page);
});

test('upstreams page shows health and edits the down policy', async () => {
	const page = await open('upstreams');
	const rows = await page.locator('#cbi-wgsplit-upstream tr.cbi-section-table-row').allInnerTexts();
	assert(/us1\s+up · 42s ago/.test(rows[0]) && /block/.test(rows[0]), rows[0]);
	assert(/eu1\s+down · never/.test(rows[1]) && /direct/.test(rows[1]), rows[1]);
	await shot(page, 'upstreams');

	await page.click('tr[data-sid="us1"] .cbi-button-edit');
	await page.waitForSelector('#modal');
	const w = o => id(`widget.cbid.wgsplit.us1.${o}`);
	assert(!(await page.isVisible(w('failover'))), 'failover shown while on_down=block');
	await page.selectOption(w('on_down'), 'failover');
	assert(await page.isVisible(w('failover')), 'failover hidden for on_down=failover');
	await page.selectOption(w('failover'), 'us1');
	await page.click('#modal .cbi-button-positive');
	await page.waitForFunction(() => /itself/.test(document.querySelector('#modal .cbi-modal-error').textContent));
	await page.selectOption(w('failover'), 'eu1');
	await shot(page, 'upstreams-edit');
	await page.click('#modal .cbi-button-positive');
	await page.waitForSelector('#modal', { state: 'detached' });
	assert(await waitCall(page, [ 'set', 'wgsplit', 'us1', 'on_down', 'failover' ]) && hasCall([ 'set', 'wgsplit', 'us1', 'failover', 'eu1' ]),
		'saved: ' + JSON.stringify(saved()));
	// back to block: the failover option goes away
	await page.click('tr[data-sid="us1"] .cbi-button-edit');
	await page.waitForSelector('#modal');
	await page.selectOption(w('on_down'), 'block');
	await page.click('#modal .cbi-button-positive');
	await page.waitForSelector('#modal', { state: 'detached' });
	assert(await waitCall(page, [ 'unset', 'wgsplit', 'us1', 'failover' ]), 'failover not removed: ' + JSON.stringify(saved()));
	await close(page);
});

test('importing a provider .conf calls upstream_import', async () => {
	const page = await open('upstreams');
	const conf = '[Interface]\nPrivateKey = SlVga3aBjJeirbjDztnk7/oFEBsmMTxHUl1oc36JlJ8=\nAddress = 10.66.0.2/32\nDNS = 10.66.0.1\n\n' +
		'[Peer]\nPublicKey = b3qFkJumsbzH0t3o8/4JFB8qNUBLVmFsd4KNmKOuucQ=\nEndpoint = nl1.example.net:51820\nAllowedIPs = 0.0.0.0/0\n';
	await page.click('#wgsplit-import');
	await page.waitForSelector('#modal #wgsplit-import-conf');
	await page.fill('#wgsplit-import-name', 'bad name');
	await page.fill('#wgsplit-import-conf', conf);
	await page.click('#wgsplit-import-go');
	await page.waitForFunction(() => document.querySelector('.wgsplit-import-error').textContent != '');
	eq(srv.state.calls.ubus.filter(c => c.method == 'upstream_import').length, 0, 'import with a bad name');
	await page.fill('#wgsplit-import-name', 'us1');
	await page.click('#wgsplit-import-go');
	await page.waitForFunction(() => /already/.test(document.querySelector('.wgsplit-import-error').textContent));
	// upload a file instead of pasting
	const file = path.join(os.tmpdir(), 'nl1.conf');
	fs.writeFileSync(file, conf);
	await page.fill('#wgsplit-import-name', '');
	await page.fill('#wgsplit-import-conf', '');
	await page.setInputFiles('#wgsplit-import-file', file);
	await page.waitForFunction(() => document.querySelector('#wgsplit-import-conf').value.length > 0);
	eq(await page.inputValue('#wgsplit-import-name'), 'nl1', 'name from file name');
	await shot(page, 'upstreams-import');
	await Promise.all([ page.waitForNavigation(), page.click('#wgsplit-import-go') ]);
	fs.rmSync(file);
	const calls = srv.state.calls.ubus.filter(c => c.method == 'upstream_import');
	eq(calls.map(c => c.args), [ { name: 'nl1', conf: conf } ], 'upstream_import args');
	await page.waitForSelector('body[data-view-ready]');
	await close(page);
});

test('a read-only user sees overview and explain without reading uci, and no key', async () => {
	const keys = fs.readFileSync(path.join(ROOT, 'tests/luci/fixtures/wgsplit'), 'utf8')
		.match(/option (private|preshared)_key '[^']+'/g).map(l => l.split("'")[1]);
	srv.state.readOnly = true;
	try {
		for (const view of [ 'overview', 'explain' ]) {
			const page = await open(view);
			const html = await page.content();
			assert(!keys.some(k => html.includes(k)), view + ' shows a key');
			if (view == 'overview')
				assert(/wg0\s+up\s+51820\s+10\.8\.0\.1\/24/.test(await page.locator('#wgsplit-server').innerText()), 'server row from config_view');
			else
				eq(await page.locator('#wgsplit-explain-client option').allInnerTexts(), [ 'alice', 'bob' ], 'clients from config_view');
			await close(page);
		}
		const view = JSON.stringify(srv.state.calls.ubus.filter(c => c.method == 'config_view'));
		assert(view.length > 2, 'config_view called');
	} finally {
		srv.state.readOnly = false;
	}
});

test('explain shows the route and the rule for a client and destination', async () => {
	const page = await open('explain');
	await page.selectOption('#wgsplit-explain-client', 'alice');
	await page.fill('#wgsplit-explain-dest', 'bad dest!');
	await page.click('#wgsplit-explain-go');
	await page.waitForSelector('#wgsplit-explain-out .alert-message');
	eq(srv.state.calls.ubus.filter(c => c.method == 'explain').length, 0, 'explain with a bad destination');
	await page.fill('#wgsplit-explain-dest', 'www.netflix.com');
	await page.click('#wgsplit-explain-go');
	await page.waitForSelector('#wgsplit-explain-result');
	eq(await page.innerText('#wgsplit-explain-action'), 'proxy', 'action');
	const t = await page.innerText('#wgsplit-explain-result');
	assert(/upstream us1/.test(t) && /rule 1 \(@rule\[0\]\): domain netflix\.com/.test(t), t);
	eq(srv.state.calls.ubus.filter(c => c.method == 'explain').map(c => c.args), [ { client: 'alice', dest: 'www.netflix.com' } ], 'explain args');
	await shot(page, 'explain');
	await page.fill('#wgsplit-explain-dest', '[2001:db8::1]:443/tcp');
	await page.click('#wgsplit-explain-go');
	await page.waitForFunction(() => document.querySelector('#wgsplit-explain-action') && document.querySelector('#wgsplit-explain-action').textContent == 'direct');
	assert(/the client's default/.test(await page.innerText('#wgsplit-explain-result')), 'default named');
	assert(/would send it to upstream us1/.test(await page.innerText('#wgsplit-explain-caveats')), 'caveats shown');
	await shot(page, 'explain-default');
	eq(srv.state.calls.ubus.filter(c => c.method == 'explain').map(c => c.args.dest), [ 'www.netflix.com', '[2001:db8::1]:443/tcp' ], 'explain dests');
	await close(page);
});

test('settings page validates and saves server options', async () => {
	const page = await open('settings');
	const w = o => id(`widget.cbid.wgsplit.server.${o}`);
	eq(await page.inputValue(w('address')), '10.8.0.1/24', 'address shown');
	await shot(page, 'settings');
	await page.fill(w('listen_port'), '70000');
	await page.click('#btn-save-apply');
	await page.waitForSelector('#notifications .alert-message');
	assert(/Listen port/.test(await page.innerText('#notifications')), 'error names the field');
	eq(srv.state.calls.applies.length, 0, 'applied with an invalid port');
	await page.fill(w('listen_port'), '51821');
	await page.click('ul.cbi-tabmenu li[data-tab="dns"]');
	await page.fill(w('dns_server') + ' input', '9.9.9.9:53');
	await shot(page, 'settings-dns');
	await page.click('#btn-save-apply');
	for (let i = 0; i < 50 && !srv.state.calls.applies.length; i++) await page.waitForTimeout(100);
	eq(srv.state.calls.applies.length, 1, 'applies');
	assert(hasCall([ 'set', 'wgsplit', 'server', 'listen_port', '51821' ]), 'saved: ' + JSON.stringify(saved()));
	assert(hasCall([ 'set', 'wgsplit', 'server', 'dns_server', [ '9.9.9.9:53' ] ]), 'saved: ' + JSON.stringify(saved()));
	// as LuCI's AbstractValue.parse: a choice left at its default is not written
	const touched = [ ...new Set(saved().map(c => c[3])) ].sort();
	eq(touched, [ 'dns_server', 'listen_port' ], 'options written');
	const chk = configCheck(srv.state.calls.applies[0]);
	if (chk) assert(chk.ok, 'config check rejects the saved settings:\n' + chk.out);
	await page.evaluate(() => document.querySelector('#notifications').replaceChildren());
	await close(page);
});

test('settings: the DNS bypass guard\'s DoH lists name lists of the page', async () => {
	const page = await open('settings');
	const w = o => id(`widget.cbid.wgsplit.server.${o}`);
	await page.click('ul.cbi-tabmenu li[data-tab="dns"]');
	// the choices are the page's lists
	eq(await page.$$eval(w('doh_list') + ' datalist option', os => os.map(o => o.value)), [ 'streaming' ], 'choices');
	await page.fill(w('doh_list') + ' input', 'nope');
	await page.click('#btn-save-apply');
	await page.waitForSelector('#notifications .alert-message');
	assert(/DoH endpoint lists: No list named nope/.test(await page.innerText('#notifications')), await page.innerText('#notifications'));
	eq(srv.state.calls.applies.length, 0, 'applied with a list that does not exist');
	await page.evaluate(() => document.querySelector('#notifications').replaceChildren());
	await page.fill(w('doh_list') + ' input', 'streaming');
	await shot(page, 'settings-doh');
	await page.click('#btn-save-apply');
	for (let i = 0; i < 50 && !srv.state.calls.applies.length; i++) await page.waitForTimeout(100);
	eq(srv.state.calls.applies.length, 1, 'applies');
	eq(saved(), [ [ 'set', 'wgsplit', 'server', 'doh_list', [ 'streaming' ] ] ], 'saved');
	const chk = configCheck(srv.state.calls.applies[0]);
	if (chk) assert(chk.ok, 'config check rejects the saved settings:\n' + chk.out);
	await close(page);
});

test('clients: a hand-written yes/off for enabled shows as the daemon reads it and is not rewritten', async () => {
	const page = await open('clients', null, st => {
		st.config.find(s => s['.name'] == 'alice').enabled = 'yes';
		st.config.find(s => s['.name'] == 'bob').enabled = 'off';
	});
	const box = sid => id(`widget.cbid.wgsplit.${sid}.enabled`);
	assert(await page.isChecked(`tr[data-sid="alice"] ${box('alice')}`), 'alice: \'yes\' shown unticked');
	assert(!(await page.isChecked(`tr[data-sid="bob"] ${box('bob')}`)), 'bob: \'off\' shown ticked');
	for (const sid of [ 'alice', 'bob' ]) {
		await page.click(`tr[data-sid="${sid}"] .cbi-button-edit`);
		await page.waitForSelector('#modal');
		await page.click('#modal .cbi-button-positive');
		await page.waitForSelector('#modal', { state: 'detached' });
	}
	await page.waitForTimeout(300);
	// saved unchanged: alice stays on (LuCI drops a value equal to the Flag's
	// default, '1'), bob's 'off' is left as written; before, both became '0'
	eq(saved().filter(c => c[3] == 'enabled'), [ [ 'unset', 'wgsplit', 'alice', 'enabled' ] ], 'enabled writes');
	await close(page);
});

test('clients: the DNS bypass guard box writes \'0\' when off and nothing when on', async () => {
	const page = await open('clients', null, st => {
		// bob's guard is off, written as the daemon also reads it
		st.config.find(s => s['.name'] == 'bob').dns_guard = 'off';
	});
	const box = sid => id(`widget.cbid.wgsplit.${sid}.dns_guard`);
	const edit = async sid => {
		await page.click(`tr[data-sid="${sid}"] .cbi-button-edit`);
		await page.waitForSelector('#modal');
	};
	const save = async () => {
		await page.click('#modal .cbi-button-positive');
		await page.waitForSelector('#modal', { state: 'detached' });
	};
	await edit('alice');
	assert(await page.isChecked(box('alice')), 'alice: on while unset');
	await page.uncheck(box('alice'));
	await shot(page, 'clients-dns-guard');
	await save();
	assert(await waitCall(page, [ 'set', 'wgsplit', 'alice', 'dns_guard', '0' ]), 'saved: ' + JSON.stringify(saved()));
	await edit('bob');
	assert(!(await page.isChecked(box('bob'))), 'bob: \'off\' shown ticked');
	await page.check(box('bob'));
	await save();
	assert(await waitCall(page, [ 'unset', 'wgsplit', 'bob', 'dns_guard' ]), 'saved: ' + JSON.stringify(saved()));
	eq(saved().filter(c => c[3] == 'dns_guard'), [ [ 'set', 'wgsplit', 'alice', 'dns_guard', '0' ], [ 'unset', 'wgsplit', 'bob', 'dns_guard' ] ], 'dns_guard writes');
	await page.click('#btn-save-apply');
	for (let i = 0; i < 50 && !srv.state.calls.applies.length; i++) await page.waitForTimeout(100);
	const applied = srv.state.calls.applies[0] || '';
	assert(/config client 'alice'[^]*?option dns_guard '0'[^]*?config client 'bob'/.test(applied) && !/dns_guard 'off'/.test(applied), applied);
	const chk = configCheck(applied);
	if (chk) assert(chk.ok, 'config check rejects the saved config:\n' + chk.out);
	await close(page);
});

test('settings: a failed list or GeoIP update reads in the page\'s language (ru)', async () => {
	const bin = findBinary();
	assert(bin, 'no wgsplit binary');
	const show = await listsShow(bin);
	const page = await open('settings', 'ru', st => { st.lists = show.state; });
	const cat = server.catalog('ru');
	const row = name => page.locator(`#wgsplit-sources tr[data-source="${name}"]`).innerText();
	const big = show.state.lists.big;
	eq(big.code, 'download_too_large', 'big: code');
	assert((await row('big')).includes('ошибка: Отклонено: ' + big.args[0] + ' больше 1024 байт (max_size)'), await row('big'));
	for (const [ name, st ] of Object.entries(show.state.lists).concat([ [ 'GeoIP', show.state.geoip ] ])) {
		const text = await row(name);
		assert(!text.includes(st.error), `${name}: English shown: ${text}`);
		assert(text.includes(cat['failed: %s'].replace('%s', '')), `${name}: not failed: ${text}`);
	}
	await shot(page, 'settings-sources-ru');
	await close(page);
});

test('settings: each list and GeoIP source shows its last update, and Update now runs one', async () => {
	const page = await open('settings');
	const row = name => page.locator(`#wgsplit-sources tr[data-source="${name}"]`).innerText();
	assert(/streaming\s+1d ago\s+ok\s+1d ago\s+1200 entries/.test(await row('streaming')), await row('streaming'));
	assert(/GeoIP\s+2h ago\s+ok\s+2h ago\s+cn/.test(await row('GeoIP')), await row('GeoIP'));
	await page.click('#wgsplit-lists-update');
	await page.waitForFunction(() => /1250 entries/.test(document.querySelector('#wgsplit-sources').innerText), null, { timeout: 10000 });
	assert(/streaming\s+\ds ago\s+ok\s+\ds ago\s+1250 entries/.test(await row('streaming')), await row('streaming'));
	assert(/GeoIP\s+\ds ago\s+failed: wget could not fetch https:\/\/example\.org\/dbip\.csv \(exit status 8\)\s+2h ago/.test(await row('GeoIP')), await row('GeoIP'));
	eq(srv.state.calls.ubus.filter(c => c.method == 'lists_update').length, 1, 'lists_update calls');
	await shot(page, 'settings-sources');
	await close(page);
});

test('backend errors read in the page\'s language: config check on the overview, a failed import (ru)', async () => {
	// what the rpcd plugin answers: `wgsplit --json-errors config check`'s object
	const check = { error: "server.mtu: 100 is outside 1280-9000\nalice.upstream: no upstream named 'nope'\n@rule[1].geoip: 'usa' is not a two-letter country code",
		problems: [
			{ path: 'server.mtu', message: '100 is outside 1280-9000', code: 'outside_range', args: [ '100', '1280', '9000' ] },
			{ path: 'alice.upstream', message: "no upstream named 'nope'", code: 'no_upstream', args: [ 'nope' ] },
			{ path: '@rule[1].geoip', message: "'usa' is not a two-letter country code", code: 'not_country', args: [ 'usa' ] } ] };
	let page = await open('overview', 'ru', st => { st.check = { ok: false, output: check }; });
	const box = await page.innerText('#wgsplit-check');
	for (const want of [ 'server.mtu: 100 вне диапазона 1280–9000', 'alice.upstream: Нет вышестоящего туннеля с именем nope',
		'@rule[1].geoip: usa — не двухбуквенный код страны' ])
		assert(box.includes(want), 'config check box lacks ' + want + ':\n' + box);
	assert(!/is outside|no upstream named|two-letter/.test(box), 'English left: ' + box);
	await shot(page, 'overview-check-ru');
	await close(page);

	page = await open('upstreams', 'ru');
	await page.click('#wgsplit-import');
	await page.waitForSelector('#modal #wgsplit-import-conf');
	await page.fill('#wgsplit-import-name', 'nl1');
	await page.fill('#wgsplit-import-conf', '[Interface]\nPrivateKey = x\ngarbage\n[Peer]\n');
	await page.click('#wgsplit-import-go');
	await page.waitForFunction(() => document.querySelector('.wgsplit-import-error').textContent != '');
	eq(await page.innerText('.wgsplit-import-error'), 'Строка 3: «garbage» — не «Ключ = Значение»', 'import error');
	await page.waitForTimeout(300);
	assert(await page.locator('#modal #wgsplit-import-conf').count() == 1, 'the page reloaded over the error');
	await close(page);
});

for (const lang of [ 'zh_Hans', 'ru' ]) {
	test(`pages render translated (${lang})`, async () => {
		const cat = server.catalog(lang);
		for (const view of [ 'overview', 'clients', 'upstreams', 'settings' ]) {
			const page = await open(view, lang);
			const title = { overview: 'WireGuard Split: Overview', clients: 'WireGuard Split: Clients',
				upstreams: 'WireGuard Split: Upstreams', settings: 'WireGuard Split: Settings' }[view];
			eq(await page.innerText('#view h2'), cat[title], `${view} title`);
			const text = await page.innerText('#view');
			// no English string of the catalog is left on the page (short ones may be part of others)
			const left = Object.keys(cat).filter(k => k.length > 12 && !/%/.test(k) && cat[k] != k && text.includes(k));
			assert(!left.length, `${view}: untranslated: ${left.join(' | ')}`);
			await shot(page, `${view}-${lang}`);
			await close(page);
		}
	});
}

(async () => {
	const exe = process.env.CHROMIUM || '/usr/bin/chromium';
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wgsplit-chromium-'));
	let passed = 0, failed = 0;
	try {
		ctx = await chromium.launchPersistentContext(profile, {
			executablePath: exe, headless: true, viewport: { width: 1280, height: 860 },
			args: [ '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
				'--disable-background-networking', '--disable-component-update', '--disable-sync' ]
		});
	}
	catch (e) {
		console.log('FAIL launching Chromium (' + exe + '): ' + e.message);
		console.log('0 passed, 1 failed');
		process.exit(1);
	}
	for (const t of tests) {
		try {
			await t.fn();
			console.log('ok   ' + t.name);
			passed++;
		}
		catch (e) {
			console.log('FAIL ' + t.name + ': ' + e.message);
			failed++;
			if (srv) srv.server.close();
			for (const p of ctx.pages()) await p.close().catch(() => {});
		}
	}
	await ctx.close();
	fs.rmSync(profile, { recursive: true, force: true });
	console.log(`screenshots: ${OUT}`);
	console.log(`${passed} passed, ${failed} failed`);
	process.exit(failed ? 1 : 0);
})();

'use strict';
/*
 * Stand-in for a router running LuCI, for the browser tests: serves the
 * luci-app-wgsplit resources, the LuCI stand-in (stub/), the uci data of
 * /etc/config/wgsplit (from fixtures/wgsplit) and the ubus `wgsplit` object
 * (canned answers shaped like the CLI's). Records every uci save/apply and
 * ubus call; GET /__calls returns them, GET /__uci the current config text.
 *
 *   node server.js [PORT]      (listens on 127.0.0.1 only)
 */
const http = require('http');
const fs = require('fs');
const path = require('path');
const uciText = require('./uci.js');

const ROOT = path.resolve(__dirname, '../..');
const RES = path.join(ROOT, 'luci-app/htdocs/luci-static/resources');
const STUB = path.join(__dirname, 'stub');
const FIX = path.join(__dirname, 'fixtures');

const PAGES = [ 'overview', 'clients', 'upstreams', 'explain', 'settings' ];

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29" width="232" height="232" shape-rendering="crispEdges">' +
	'<rect width="29" height="29" fill="#fff"/><path fill="#000" d="M1 1h7v7h-7zM2 2v5h5v-5zM3 3h3v3h-3zM21 1h7v7h-7zM22 2v5h5v-5zM23 3h3v3h-3z' +
	'M1 21h7v7h-7zM2 22v5h5v-5zM3 23h3v3h-3zM10 1h2v2h-2zM13 3h3v1h-3zM10 10h9v1h-9zM12 13h4v4h-4zM20 20h3v3h-3zM24 24h3v3h-3zM10 24h2v3h-2z"/></svg>';

function makeState() {
	return {
		config: uciText.parse(fs.readFileSync(path.join(FIX, 'wgsplit'), 'utf8')),
		calls: { saves: [], applies: [], ubus: [] },
		lists: {
			geoip: { attempted: Math.floor(Date.now() / 1000) - 7200, updated: Math.floor(Date.now() / 1000) - 7200, ok: true, countries: { cn: [ 8000, 3000 ] } },
			lists: { streaming: { attempted: Math.floor(Date.now() / 1000) - 90000, updated: Math.floor(Date.now() / 1000) - 90000, ok: true, entries: 1200 } }
		}
	};
}

/* The rpc `status` answer, shaped like the CLI's `status --json`, `client list
 * --json` and `upstream list --json` (see luci-app/README.md). */
function status(state) {
	const now = Math.floor(Date.now() / 1000);
	const secs = state.config;
	const server = secs.find(s => s['.type'] == 'server') || {};
	const ups = secs.filter(s => s['.type'] == 'upstream');
	const cls = secs.filter(s => s['.type'] == 'client');
	const online = { alice: true };
	return {
		status: {
			table: true,
			interfaces: [ { interface: server.interface || 'wg0', role: 'server', present: true, up: true, peers: cls.length } ]
				.concat(ups.map((u, i) => ({ interface: u.interface || 'wgs_' + u['.name'], role: 'upstream ' + u['.name'], present: true, up: i == 0, peers: 1 }))),
			clients: cls.map(c => ({ name: c['.name'], active: c.enabled != '0', expired: false, rules: secs.filter(r => r['.type'] == 'rule' && r.client == c['.name']).length })),
			rules: 4, routes: 4, pending_changes: 0
		},
		clients: cls.map(c => ({
			name: c['.name'], address: [].concat(c.address || []), default: c.default || 'direct', upstream: c.upstream,
			description: c.description, public_key: c.public_key || 'Ci4jqZMBlmW8mVrJTHyrfYGbTvhVYfBy2PtwiA9O2Vw=',
			state: c.enabled == '0' ? 'disabled' : 'enabled', has_config: !!c.private_key,
			peer: online[c['.name']]
				? { online: true, handshake_age: 12, rx: 1288490188, tx: 91226112, endpoint: '198.51.100.7:41234' }
				: { online: false, handshake_age: 86400 * 3, rx: 4096, tx: 2048, endpoint: null }
		})),
		upstreams: ups.map((u, i) => ({
			name: u['.name'], interface: u.interface || 'wgs_' + u['.name'], endpoint: u.endpoint, on_down: u.on_down || 'block',
			health: i == 0
				? { state: 'up', reasons: [], handshake_age: 42, probe_ms: 31, since: now - 3600, route: { kind: 'own' } }
				: { state: 'down', reasons: [ 'no handshake' ], handshake_age: null, probe_ms: null, since: now - 600, route: { kind: u.on_down || 'block' } }
		}))
	};
}

/* The rpc `config_view` answer: `wgsplit config export` with every private
 * and preshared key null, as the plugin sends it (no uci read needed). */
function configView(state) {
	const secs = state.config;
	const member = s => {
		const o = {};
		Object.keys(s).filter(k => k[0] != '.').forEach(k => o[k] = /^(private|preshared)_key$/.test(k) ? null : s[k]);
		return o;
	};
	const named = type => secs.filter(s => s['.type'] == type).map(s => Object.assign({ name: s['.name'] }, member(s)));
	return {
		server: member(secs.find(s => s['.type'] == 'server') || {}),
		upstreams: named('upstream'), clients: named('client'), lists: named('list'),
		rules: secs.filter(s => s['.type'] == 'rule').map(member)
	};
}

function ubus(state, object, method, args) {
	if (object != 'wgsplit') return { __rpc_error: 'Object not found' };
	switch (method) {
	case 'status': return status(state);
	case 'explain':
		// shaped like `wgsplit explain --json`
		if (!state.config.find(s => s['.type'] == 'client' && s['.name'] == args.client))
			return { error: 'wgsplit: no client named ' + args.client };
		return /netflix\.com$/.test(args.dest)
			? { client: args.client, destination: args.dest, goes: 'upstream us1', active: true, caveats: [],
				rule: { position: 1, section: '@rule[0]', action: 'proxy', matched: 'domain netflix.com' } }
			: { client: args.client, destination: args.dest, goes: 'direct', active: true, rule: null,
				caveats: [ 'rule 1 (@rule[0], proxy) would send it to upstream us1 if the name resolves into its CIDRs' ] };
	case 'client_conf':
		// as the CLI: no config for a client that brought its own key
		if (!(state.config.find(s => s['.type'] == 'client' && s['.name'] == args.name) || {}).private_key)
			return { error: `${args.name}.private_key: the router does not keep this client's private key (it brought its own); its config has to be written on the client`,
				code: 'no_private_key', args: [], path: `${args.name}.private_key` };
		return { conf: '[Interface]\nPrivateKey = 3un0/woVICs2QUxXYm14g46ZpK+6xdDb5vH8BxIdKDM=\nAddress = 10.8.0.2/32\nDNS = 10.8.0.1\n\n' +
			'[Peer]\nPublicKey = Ci4jqZMBlmW8mVrJTHyrfYGbTvhVYfBy2PtwiA9O2Vw=\nEndpoint = vpn.example.net:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n' };
	case 'client_qr': return { svg: SVG };
	case 'client_history': {
		// shaped like `wgsplit client history NAME`: 2016 buckets of 5 minutes;
		// alice used 1 MiB received + 3 MiB sent in the newest hour, 20 GiB this month
		const c = state.config.find(s => s['.type'] == 'client' && s['.name'] == args.name);
		if (!c) return { error: `wgsplit: no client named '${args.name}'` };
		const rx = new Array(2016).fill(0), tx = new Array(2016).fill(0);
		if (args.name == 'alice') { rx[2015] = 1 << 20; tx[2015] = 3 << 20; rx[0] = 2 << 20; }
		const quota = c.quota ? 50 * 2 ** 30 : null, bytes = args.name == 'alice' ? 20 * 2 ** 30 : 0;
		return { client: args.name, interval: 300, start: Math.floor(Date.now() / 1000) - 2015 * 300, rx, tx,
			month: { bytes, quota, left: quota == null ? null : quota - bytes, disabled_by_quota: false } };
	}
	case 'client_next_address': {
		// as `wgsplit client next-address`: the first free 10.8.0.x of the server's /24
		const used = new Set([ '10.8.0.1' ].concat(...state.config.filter(s => s['.type'] == 'client').map(c => [].concat(c.address || [])),
			...(args.taken || []).map(a => [ a ])).map(a => String(a).split('/')[0]));
		for (let i = 2; i < 255; i++)
			if (!used.has('10.8.0.' + i)) return { address: [ `10.8.0.${i}/32` ] };
		return { error: "wgsplit: server.address: the pool 10.8.0.0/24 is full; widen its prefix or give --address" };
	}
	case 'genkey': return { private_key: 'QGxSYnKElJ6us8DJ0ubo+AwWICo0PkhSXGZwdH6ImJI=' };
	case 'upstream_import': {
		// the CLI's wording for a line that is not Key = Value (the plugin passes its stderr on)
		const bad = (args.conf || '').split('\n').findIndex(l => l.trim() && !/^\s*(\[\w+\]|#.*|[\w]+\s*=.*)$/.test(l));
		// as `wgsplit --json-errors upstream import` prints it (util/msgcode.rs)
		if (bad >= 0) {
			const line = args.conf.split('\n')[bad].trim();
			return { error: `line ${bad + 1}: '${line}' is not 'Key = Value'`, code: 'import_bad_line', args: [ String(bad + 1), line ] };
		}
		return { ok: true, name: args.name };
	}
	// `lists show --json`; lists_update starts an update that ends at once here:
	// the list is fetched again, GeoIP fails
	case 'lists_show': return { dir: '/tmp/wgsplit/lists', countries: [ 'cn' ], state: state.lists };
	case 'lists_update': {
		const now = Math.floor(Date.now() / 1000);
		state.lists = {
			// as `lists show --json` has it: the English text, its code and args (util/msgcode.rs)
			geoip: { attempted: now, updated: state.lists.geoip.updated, ok: false, error: 'wget could not fetch https://example.org/dbip.csv (exit status 8)',
				code: 'download_failed', args: [ 'wget', 'https://example.org/dbip.csv', '8' ], countries: state.lists.geoip.countries },
			lists: { streaming: { attempted: now, updated: now, ok: true, entries: 1250 } }
		};
		return { started: true };
	}
	// state.check: a failing `config check` to show ({ ok: false, output: the
	// CLI's --json-errors object, { error, problems: [{ path, message, code, args }] } })
	case 'config_check': return state.check || { ok: true, output: '' };
	case 'config_view': return configView(state);
	}
	return { __rpc_error: 'Method not found' };
}

const TYPES = { '.js': 'application/javascript', '.css': 'text/css', '.html': 'text/html', '.svg': 'image/svg+xml' };

/* msgid -> msgstr of luci-app/po/LANG/wgsplit.po (single-line entries, as ours are) */
function catalog(lang) {
	const file = path.join(ROOT, 'luci-app/po', lang, 'wgsplit.po');
	if (!/^[A-Za-z_]+$/.test(lang) || !fs.existsSync(file)) return null;
	const out = {};
	let id = null;
	for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
		let m = /^msgid (".*")$/.exec(line);
		if (m) { id = JSON.parse(m[1]); continue; }
		m = /^msgstr (".*")$/.exec(line);
		if (m && id) out[id] = JSON.parse(m[1]);
		if (m) id = null;
	}
	return out;
}

function page(view, lang) {
	const tabs = PAGES.map(p => `<li class="${p == view ? 'active' : ''}"><a href="/?view=wgsplit/${p}">${p[0].toUpperCase() + p.slice(1)}</a></li>`).join('');
	return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>wgsplit - LuCI</title>
<link rel="stylesheet" href="/stub/luci.css"></head><body>
<header><span class="brand">OpenWrt</span><span class="host">router.lan</span></header>
<div id="maincontainer"><nav><div class="crumb">Services &raquo; WireGuard Split</div><ul class="tabs">${tabs}</ul></nav>
<div id="notifications"></div><div id="view"><p class="spinning">Loading view…</p></div></div>
<script src="/stub/luci.js"></script>
<script>L.setCatalog(${JSON.stringify(lang ? catalog(lang) : {})});
L.bootView(${JSON.stringify('wgsplit/' + view)}).catch(function(e) {
  document.getElementById('view').textContent = 'VIEW ERROR: ' + e.message;
  document.body.setAttribute('data-view-error', e.stack || e.message);
});</script></body></html>`;
}

function start(port, state) {
	state = state || makeState();
	const srv = http.createServer((req, res) => {
		const url = new URL(req.url, 'http://127.0.0.1');
		const send = (code, type, body) => { res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' }); res.end(body); };
		const json = (obj) => send(200, 'application/json', JSON.stringify(obj));
		let body = '';
		req.on('data', d => body += d);
		req.on('end', () => {
			const p = url.pathname;
			if (p == '/') {
				const v = (url.searchParams.get('view') || 'wgsplit/overview').replace(/^wgsplit\//, '');
				const lang = url.searchParams.get('lang');
				if (lang && !catalog(lang)) return send(404, 'text/plain', 'no such language');
				return PAGES.includes(v) ? send(200, 'text/html', page(v, lang)) : send(404, 'text/plain', 'no such view');
			}
			const file = p.startsWith('/luci-static/resources/') ? path.join(RES, p.slice(23))
				: p.startsWith('/stub/') ? path.join(STUB, p.slice(6)) : null;
			if (file) {
				if (!file.startsWith(RES) && !file.startsWith(STUB)) return send(403, 'text/plain', 'no');
				return fs.readFile(file, (err, data) => err ? send(404, 'text/plain', 'not found') : send(200, TYPES[path.extname(file)] || 'application/octet-stream', data));
			}
			if (p == '/favicon.ico') return send(204, 'image/x-icon', '');
			// A read-only user (the luci-app-wgsplit ACL group alone) may not read the config.
			if (p == '/uci/wgsplit') return state.readOnly ? send(403, 'text/plain', 'Permission denied') : json(state.config);
			if (p == '/uci/save' && req.method == 'POST') {
				const b = JSON.parse(body);
				state.calls.saves.push(b.changes);
				if (b.state && b.state.wgsplit) state.config = b.state.wgsplit;
				return json({});
			}
			if (p == '/uci/apply' && req.method == 'POST') {
				state.calls.applies.push(uciText.serialize(state.config));
				return json({});
			}
			if (p == '/ubus' && req.method == 'POST') {
				const b = JSON.parse(body);
				state.calls.ubus.push(b);
				return json(ubus(state, b.object, b.method, b.args || {}));
			}
			if (p == '/__calls') return json(state.calls);
			if (p == '/__uci') return send(200, 'text/plain', uciText.serialize(state.config));
			send(404, 'text/plain', 'not found');
		});
	});
	return new Promise(resolve => srv.listen(port || 0, '127.0.0.1', () => resolve({ server: srv, port: srv.address().port, state })));
}

module.exports = { start, makeState, catalog, ubus, PAGES };

if (require.main === module)
	start(+process.argv[2] || 8088).then(s => console.log('http://127.0.0.1:' + s.port + '/'));

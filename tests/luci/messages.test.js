'use strict';
/*
 * Backend messages in the page's language (issue #14): the real CLI's errors
 * (`--json-errors`, as the rpcd plugin runs it: {error, code, args} or
 * {error, problems}) and `config check` problems, run through luci-app's
 * catalog (common.js MESSAGES, by code) with the ru and zh_Hans translations
 * loaded, come out with no English message left; the path before a message
 * is kept. A new message wording in the daemon without a code fails here,
 * not on a router.
 *
 *   node tests/luci/messages.test.js        prints 'N passed, M failed'
 * Needs a wgsplit binary (WGSPLIT_BIN or target/{release,debug}/wgsplit).
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const cp = require('child_process');
const server = require('./server.js');
const { listsShow } = require('./lists-state.js');

const ROOT = path.resolve(__dirname, '../..');
const RES = path.join(ROOT, 'luci-app/htdocs/luci-static/resources');
const BIN = [ process.env.WGSPLIT_BIN, path.join(ROOT, 'target/release/wgsplit'), path.join(ROOT, 'target/debug/wgsplit') ]
	.find(c => c && fs.existsSync(c));
const STUB = require.resolve('./stub/luci.js');

/* common.js as a page in LANG loads it: LuCI has the catalog before any module
   runs, and the MESSAGES templates are translated when common.js loads */
async function loadCommon(lang) {
	delete require.cache[STUB];
	const L = require(STUB);
	L.readSource = name => fs.readFileSync(path.join(RES, name.replace(/\./g, '/') + '.js'), 'utf8');
	L.setCatalog(lang ? server.catalog(lang) : {});
	return L.require('wgsplit.common');
}

const K = 'JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllkb3o=';
/* a config with one of each problem the pages can meet */
const BROKEN = `config server 'server'
	option address '10.8.0.1/24'
	option mtu '100'
	option private_key '${K}'
config upstream 'us1'
	option private_key '${K}'
	option public_key 'not-a-key'
	list address '10.64.0.2/32'
	option endpoint 'us1.example.net'
	option on_down 'failover'
	option failover 'us1'
config client 'alice'
	option upstream 'nope'
	option default 'proxy'
	list address '10.9.0.2/32'
	option expires '2030-13-01'
	option quota 'lots'
config client 'carol'
	option public_key 'b3qFkJumsbzH0t3o8/4JFB8qNUBLVmFsd4KNmKOuucQ='
	list address '10.8.0.3/32'
config rule
	option client 'bob'
	option action 'proxy'
config rule
	option client 'carol'
	option action 'direct'
	list domain 'bad..domain'
	list geoip 'usa'
	list list 'nolist'
`;

/* every line the CLI printed on stderr/stdout for these runs */
function backendLines() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wgsplit-msg-'));
	const cfg = path.join(dir, 'wgsplit');
	fs.writeFileSync(cfg, BROKEN);
	/* the JSON error the CLI printed (one line on stderr), as the plugin passes it on */
	const run = (args, input) => {
		const r = cp.spawnSync(BIN, [ '--json-errors', '--config', cfg ].concat(args), { encoding: 'utf8', input: input || '' });
		const err = (r.stderr || '').trim();
		if (r.status === 0 || !err.startsWith('{"error":'))
			throw new Error(`${args.join(' ')}: exit ${r.status}, stderr ${JSON.stringify(err)}`);
		return JSON.parse(err);
	};
	const out = { check: run([ 'config', 'check' ]) };
	fs.writeFileSync(cfg, fs.readFileSync(path.join(__dirname, 'fixtures/wgsplit'), 'utf8'));
	out.explain = run([ 'explain', 'zed', 'netflix.com' ]);
	out.importNoPeer = run([ 'upstream', 'import', 'nl1', '-' ], '[Interface]\nPrivateKey = ' + K + '\n');
	out.importBadLine = run([ 'upstream', 'import', 'nl1', '-' ], 'garbage\n');
	out.importTaken = run([ 'upstream', 'import', 'us1', '-' ], '[Peer]\n');
	out.confNoKey = run([ 'client', 'conf', 'bob' ]);
	// a router without a public endpoint cannot write a client's config
	fs.writeFileSync(cfg, fs.readFileSync(path.join(__dirname, 'fixtures/wgsplit'), 'utf8').replace("\toption endpoint 'vpn.example.net'\n", ''));
	out.confNoEndpoint = run([ 'client', 'conf', 'alice' ]);
	fs.rmSync(dir, { recursive: true, force: true });
	return out;
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('the catalog has the code the rpcd plugin sends for each of its own errors', async () => {
	const common = await loadCommon(null);
	const plugin = fs.readFileSync(path.join(ROOT, 'luci-app/root/usr/libexec/rpcd/wgsplit'), 'utf8');
	const codes = [ ...plugin.matchAll(/fail_code ([a-z_]+) /g) ].map(m => m[1]);
	if (codes.length < 5) throw new Error('plugin codes: ' + codes);
	const missing = codes.filter(c => !common.messageCodes.includes(c));
	if (missing.length) throw new Error('no catalog entry for ' + missing.join(', '));
});

let lines;
for (const lang of [ 'ru', 'zh_Hans' ]) {
	test(`every CLI message the pages show reads in ${lang}`, async () => {
		const common = await loadCommon(lang);
		lines = lines || backendLines();
		const errs = [];
		for (const [ what, res ] of Object.entries(lines)) {
			const items = Array.isArray(res.problems) ? res.problems : [ res ];
			const shown = common.errorText(res).split('\n');
			if (shown.length != items.length) errs.push(`${what}: ${items.length} messages, ${shown.length} lines shown`);
			items.forEach((m, i) => {
				const t = shown[i] || '';
				if (!m.code) errs.push(`${what}: no code for ${JSON.stringify(m.message || m.error)}`);
				// what is left in English: letters-only words of 4+ outside quotes, paths and names
				else if (/[a-z]{4,} [a-z]{2,} [a-z]{3,}/.test(t.replace(/'[^']*'|"[^"]*"|«[^»]*»|“[^”]*”/g, '')))
					errs.push(`${what}: ${JSON.stringify(m)} -> ${JSON.stringify(t)}`);
				if (m.path && !t.startsWith(m.path + ': '))
					errs.push(`${what}: path lost: ${JSON.stringify(m)} -> ${JSON.stringify(t)}`);
				for (const a of m.args || [])
					if (!t.includes(a)) errs.push(`${what}: argument ${a} lost: ${JSON.stringify(t)}`);
			});
		}
		if (errs.length) throw new Error('\n   ' + errs.join('\n   '));
	});
}

/* Latin words a translated message still holds once its arguments are taken
   out: none but names that stay as they are (options, tools, protocols) */
const KEEP = new Set([ 'wgsplit', 'max_size', 'sha256', 'URL', 'file', 'uclient', 'fetch', 'wget', 'curl',
	'IPv4', 'IPv6', 'DNS', 'DoH', 'TLS', 'QUIC', 'CIDR', 'GeoIP', 'WireGuard' ]);
function latinLeft(text, args) {
	let t = text;
	for (const a of [ ...(args || []) ].sort((x, y) => y.length - x.length))
		t = t.split(a).join(' ');
	return (t.match(/[A-Za-z][A-Za-z0-9_]{2,}/g) || []).filter(w => !KEEP.has(w));
}

/* `client add NAME` for a name each kind of section holds: the whole sentence
   is the page's language, the holder's kind too (not an English argument) */
const TAKEN = { alice: 'client', us1: 'upstream', myrule: 'rule', streaming: 'list', server: 'server' };
function takenNames() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wgsplit-msg-'));
	const cfg = path.join(dir, 'wgsplit');
	fs.writeFileSync(cfg, fs.readFileSync(path.join(__dirname, 'fixtures/wgsplit'), 'utf8') +
		"\nconfig rule 'myrule'\n\toption client 'bob'\n\toption action 'block'\n\tlist domain 'ads.example'\n");
	const out = {};
	for (const name of Object.keys(TAKEN)) {
		const r = cp.spawnSync(BIN, [ '--json-errors', '--config', cfg, 'client', 'add', name ], { encoding: 'utf8' });
		out[name] = JSON.parse((r.stderr || '').trim() || '{}');
	}
	fs.rmSync(dir, { recursive: true, force: true });
	return out;
}

for (const lang of [ 'ru', 'zh_Hans' ]) {
	test(`a taken name reads in ${lang}, whatever holds it`, async () => {
		const common = await loadCommon(lang);
		const errs = [];
		for (const [ name, res ] of Object.entries(takenNames())) {
			const t = common.errorText(res);
			if (!res.code) errs.push(`${name}: no code: ${JSON.stringify(res)}`);
			const left = latinLeft(t, [ name ]);
			if (left.length || !t.includes(name)) errs.push(`${name} (${TAKEN[name]}): ${JSON.stringify(res)} -> ${JSON.stringify(t)}`);
		}
		if (errs.length) throw new Error('\n   ' + errs.join('\n   '));
	});
}

/* the real CLI's lists state after failed updates, once for both languages */
let shown;
for (const lang of [ 'ru', 'zh_Hans' ]) {
	test(`each failed list and GeoIP update reads in ${lang} (lists show --json)`, async () => {
		const common = await loadCommon(lang);
		shown = shown || await listsShow(BIN);
		const st = shown.state || {};
		const sources = Object.entries(st.lists || {}).concat(st.geoip ? [ [ 'geoip', st.geoip ] ] : []);
		const errs = [];
		for (const [ name, s ] of sources) {
			if (s.ok) { errs.push(`${name}: did not fail`); continue; }
			if (!s.code) { errs.push(`${name}: no code for ${JSON.stringify(s.error)}`); continue; }
			if (!s.error) errs.push(`${name}: the English text is gone`);
			const t = common.errorText(s);
			const left = latinLeft(t, s.args);
			if (left.length) errs.push(`${name}: ${JSON.stringify(s.error)} -> ${JSON.stringify(t)}: English ${left.join(' ')}`);
			for (const a of s.args || [])
				if (!t.includes(a)) errs.push(`${name}: argument ${a} lost: ${JSON.stringify(t)}`);
		}
		const want = [ 'big', 'empty', 'pinned', 'planted', 'shrinks', 'http', 'geoip' ];
		const missing = want.filter(n => !sources.some(s => s[0] == n));
		if (missing.length) errs.push('no state for ' + missing.join(', '));
		if (errs.length) throw new Error('\n   ' + errs.join('\n   '));
	});
}

test('the catalog has every code the daemon sends (util/msgcode.rs)', async () => {
	const common = await loadCommon(null);
	const rs = fs.readFileSync(path.join(ROOT, 'daemon/src/util/msgcode.rs'), 'utf8').split('#[cfg(test)]')[0];
	const codes = [ ...new Set([ ...rs.matchAll(/\(\s*"([a-z_]+)",/g) ].map(m => m[1])) ];
	if (codes.length < 30) throw new Error('daemon codes: ' + codes);
	const missing = codes.filter(c => !common.messageCodes.includes(c));
	if (missing.length) throw new Error('no catalog entry for ' + missing.join(', '));
});

test('a config check problem is shown by code, not by its English text', async () => {
	const common = await loadCommon('ru');
	const t = common.errorText({ ok: false, error: 'x', problems: [
		{ path: 'alice.quota', message: 'English we must not show', code: 'not_size', args: [ 'lots' ] } ] });
	if (t.includes('English') || !t.startsWith('alice.quota: ') || !t.includes('lots')) throw new Error(t);
});

test('a message without a code is shown as the backend wrote it', async () => {
	const common = await loadCommon('ru');
	const t = common.errorText({ error: 'wgsplit: something new happened' });
	if (t !== 'something new happened') throw new Error(t);
	const u = common.errorText({ error: 'x', problems: [ { path: 'a.b', message: 'odd thing' } ] });
	if (u !== 'a.b: odd thing') throw new Error(u);
});

(async () => {
	let passed = 0, failed = 0;
	if (!BIN) {
		console.log('messages: no wgsplit binary');
		console.log('0 passed, 1 failed');
		process.exit(1);
	}
	for (const t of tests) {
		try { await t.fn(); console.log('ok   ' + t.name); passed++; }
		catch (e) { console.log('FAIL ' + t.name + ': ' + e.message); failed++; }
	}
	console.log(`${passed} passed, ${failed} failed`);
	process.exit(failed ? 1 : 0);
})();

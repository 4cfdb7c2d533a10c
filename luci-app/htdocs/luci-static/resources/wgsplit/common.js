'use strict';
'require baseclass';
'require rpc';
'require validation';

/*
 * Shared pieces of the wgsplit pages: the rpc calls into the rpcd plugin
 * (/usr/libexec/rpcd/wgsplit, which runs the wgsplit CLI) and the value
 * checks, kept the same as `wgsplit config check` (see the README's config
 * reference) so a form that saves is a config the daemon accepts.
 */

const callStatus = rpc.declare({
	object: 'wgsplit',
	method: 'status',
	expect: { }
});

const callExplain = rpc.declare({
	object: 'wgsplit',
	method: 'explain',
	params: [ 'client', 'dest' ],
	expect: { }
});

const callClientConf = rpc.declare({
	object: 'wgsplit',
	method: 'client_conf',
	params: [ 'name' ],
	expect: { }
});

const callClientQr = rpc.declare({
	object: 'wgsplit',
	method: 'client_qr',
	params: [ 'name' ],
	expect: { }
});

/* `wgsplit client history NAME`: { interval, start, rx: [], tx: [], month:
   { bytes, quota, left, disabled_by_quota } } (bytes per 5-minute bucket, 7 days) */
const callClientHistory = rpc.declare({
	object: 'wgsplit',
	method: 'client_history',
	params: [ 'name' ],
	expect: { }
});

/* `wgsplit client next-address`: { address: [ "10.8.0.4/32", "fd42:8::4/128" ] };
   TAKEN: addresses of clients the page has added and not yet applied */
const callClientNextAddress = rpc.declare({
	object: 'wgsplit',
	method: 'client_next_address',
	params: [ 'taken' ],
	expect: { }
});

const callUpstreamImport = rpc.declare({
	object: 'wgsplit',
	method: 'upstream_import',
	params: [ 'name', 'conf' ],
	expect: { }
});

const callGenkey = rpc.declare({
	object: 'wgsplit',
	method: 'genkey',
	expect: { }
});

const callConfigCheck = rpc.declare({
	object: 'wgsplit',
	method: 'config_check',
	expect: { }
});

/* The config as `wgsplit config export` shows it, every private and preshared
   key null: what the read-only pages (Overview, Explain) read, so the
   luci-app-wgsplit ACL group needs no uci read of the key-holding config. */
const callConfigView = rpc.declare({
	object: 'wgsplit',
	method: 'config_view',
	expect: { }
});

/* `wgsplit lists show --json`: { dir, countries, state: { geoip?, lists: {
   NAME: { attempted, updated?, ok, error?, entries? } } } } */
const callListsShow = rpc.declare({
	object: 'wgsplit',
	method: 'lists_show',
	expect: { }
});

/* Starts `wgsplit lists update` on the router and answers at once. */
const callListsUpdate = rpc.declare({
	object: 'wgsplit',
	method: 'lists_update',
	expect: { }
});

/* ---- value checks: each returns true or an error message ---- */

const RE_NAME = /^[A-Za-z0-9_]{1,32}$/;
const RE_IFNAME = /^(?!\.\.?$)[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$/;
const RE_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/;
const RE_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

function parseIPv4(s) {
	const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
	if (!m)
		return null;
	const b = m.slice(1).map(Number);
	if (b.some(x => x > 255) || m.slice(1).some(x => x.length > 1 && x[0] == '0'))
		return null;
	return ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
}

function isIPv6(s) {
	if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.indexOf(':') < 0)
		return false;
	const dbl = s.split('::');
	if (dbl.length > 2)
		return false;
	let groups = 0;
	for (const part of dbl) {
		if (part === '')
			continue;
		const g = part.split(':');
		for (let i = 0; i < g.length; i++) {
			if (i == g.length - 1 && g[i].indexOf('.') >= 0 && part === dbl[dbl.length - 1]) {
				if (parseIPv4(g[i]) === null)
					return false;
				groups += 2;
			}
			else if (/^[0-9A-Fa-f]{1,4}$/.test(g[i]))
				groups++;
			else
				return false;
		}
	}
	return dbl.length == 2 ? groups < 8 : groups == 8;
}

function checkCidr(value, family) {
	const parts = String(value).split('/');
	if (parts.length > 2)
		return _('Expecting an IP address or CIDR, e.g. 8.8.8.0/24 or 2001:db8::/32');
	const v4 = parseIPv4(parts[0]) !== null, v6 = !v4 && isIPv6(parts[0]);
	if (!v4 && !v6)
		return _('Expecting an IP address or CIDR, e.g. 8.8.8.0/24 or 2001:db8::/32');
	if ((family == 4 && !v4) || (family == 6 && !v6))
		return family == 4 ? _('Expecting an IPv4 address') : _('Expecting an IPv6 address');
	if (parts.length == 2) {
		if (!/^\d{1,3}$/.test(parts[1]) || +parts[1] > (v4 ? 32 : 128))
			return _('Prefix length must be 0–%d').format(v4 ? 32 : 128);
	}
	return true;
}

function checkHostPort(value, portRequired) {
	let host = String(value), port = null;
	let m = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
	if (m) {
		if (!isIPv6(m[1]))
			return _('Expecting [IPv6]:port');
		port = m[2];
	}
	else if (isIPv6(host)) {
		port = null;
	}
	else {
		m = /^([^:]+)(?::(\d+))?$/.exec(host);
		if (!m)
			return _('Expecting host:port');
		host = m[1];
		port = m[2];
		if (parseIPv4(host) === null) {
			const labels = host.replace(/\.$/, '').split('.');
			if (host.length > 253 || !labels.every(l => RE_LABEL.test(l)) || /^\d+$/.test(labels[labels.length - 1]))
				return _('Expecting a host name or IP address');
		}
	}
	if (port == null)
		return portRequired ? _('A port is required, e.g. vpn.example.net:51820') : true;
	if (!(+port >= 1 && +port <= 65535))
		return _('Port must be 1–65535');
	return true;
}

const checks = {
	name(value) {
		return RE_NAME.test(value) ? true : _('Use letters, digits and _ (at most 32)');
	},

	ifname(value) {
		return (value == null || value === '' || RE_IFNAME.test(value))
			? true : _('Interface names have at most 15 letters, digits, _ . -');
	},

	key(value) {
		return (value == null || value === '' || RE_KEY.test(value))
			? true : _('Expecting a base64 WireGuard key (44 characters ending in =)');
	},

	domain(value) {
		let d = String(value);
		if (d.startsWith('*.'))
			d = d.substring(2);
		else if (d.startsWith('='))
			d = d.substring(1);
		d = d.replace(/\.$/, '');
		// as the daemon: labels of letters, digits, - and _, at most 63 each
		if (d === '' || d.length > 253 || !d.split('.').every(l => /^[A-Za-z0-9_-]{1,63}$/.test(l)))
			return _('Expecting a domain: google.com, *.google.com or =google.com');
		return true;
	},

	port(value) {
		const m = /^(?:(tcp|udp):)?(\d{1,5})(?:-(\d{1,5}))?$/.exec(String(value));
		if (!m)
			return _('Expecting tcp:443, udp:5000-6000 or 443');
		const lo = +m[2], hi = m[3] != null ? +m[3] : lo;
		if (lo < 1 || hi > 65535 || lo > hi)
			return _('Ports are 1–65535, low-high');
		return true;
	},

	geoip(value) {
		return /^!?[A-Za-z]{2}$/.test(value) ? true : _('Expecting a two-letter country code (us) or !cn');
	},

	expires(value) {
		if (value == null || value === '')
			return true;
		let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
		if (!m)
			m = /^(\d{4})-(\d{2})-(\d{2})[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(value);
		if (!m)
			return _('Expecting YYYY-MM-DD or an RFC 3339 time');
		const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
		if (d.getUTCMonth() != +m[2] - 1 || d.getUTCDate() != +m[3])
			return _('No such date');
		return true;
	},

	/* not LuCI's hostport: the daemon refuses port 0, which LuCI's port type takes */
	endpoint(value) { return checkHostPort(value, true); },
	serverEndpoint(value) { return checkHostPort(value, false); },

	ipPort(value) {
		let m = /^\[([^\]]+)\]:(\d+)$/.exec(value) || /^([^:]+):(\d+)$/.exec(value);
		if (!m && (parseIPv4(value) !== null || isIPv6(value)))
			return true;
		if (!m || (parseIPv4(m[1]) === null && !isIPv6(m[1])))
			return _('Expecting an IP address, optionally with :port');
		return (+m[2] >= 1 && +m[2] <= 65535) ? true : _('Port must be 1–65535');
	},

	/* explain's destination: a domain, an address or CIDR, or addr:port[/tcp|udp] ([v6]:port…) */
	destination(value) {
		const v = String(value).trim();
		if (checks.domain(v) === true || checkCidr(v, 0) === true)
			return true;
		const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})(?:\/(tcp|udp))?$/.exec(v);
		if (m && (m[1] ? isIPv6(m[1]) : parseIPv4(m[2]) !== null) && +m[3] >= 1 && +m[3] <= 65535)
			return true;
		return _('Expecting a domain, an IP address, or address:port/tcp');
	},

	/* as the daemon's parse_size: digits, then K/M/G/T (powers of 1024), an
	   optional b/ib; not zero (no quota is an empty field); below 2^64 bytes */
	size(value) {
		let t = String(value).trim().toLowerCase();
		t = t.endsWith('ib') ? t.slice(0, -2) : (t.endsWith('b') ? t.slice(0, -1) : t);
		const m = /^(\d+)([kmgt])?$/.exec(t);
		if (!m || m[1].length > 20)
			return _('Expecting a size, e.g. 500M, 50G, 1T');
		const bytes = BigInt(m[1]) * (2n ** BigInt({ k: 10, m: 20, g: 30, t: 40 }[m[2]] || 0));
		if (bytes == 0n)
			return _('A quota of zero: leave the field empty for none');
		return bytes < 2n ** 64n ? true : _('Expecting a size, e.g. 500M, 50G, 1T');
	},

	hexMask(value) {
		return /^0x[0-9A-Fa-f]{1,8}$/.test(value) && parseInt(value, 16) != 0
			? true : _('Expecting a non-zero 32-bit hex mask, e.g. 0xff000000');
	},

	/* wgsplit reads and writes lists only in its own folders (the daemon's
	   sources/confine.rs): /etc/wgsplit/lists/ (kept) and /tmp/wgsplit/ (tmpfs). */
	path(value) {
		const v = String(value);
		const inside = /^\/(etc\/wgsplit\/lists|tmp\/wgsplit)\/[^\0]+$/.test(v);
		const plain = !v.slice(1).split('/').some(p => p === '' || p === '.' || p === '..');
		const name = v.split('/').pop();
		const own = name === 'state.json' || name.startsWith('geo_') || name.startsWith('.');
		return inside && plain && !own ? true
			: _('Expecting a file in /etc/wgsplit/lists/ or /tmp/wgsplit/');
	},

	url(value) {
		return (value == null || value === '' || /^https?:\/\/[^\s\/]+(\/\S*)?$/.test(value))
			? true : _('Expecting an http:// or https:// URL');
	}
};

/*
 * The backend's messages in the page's language, by code: the daemon (CLI
 * --json-errors, API) and the rpcd plugin send {error, code, args} (the
 * daemon's codes: util/msgcode.rs CATALOG), `config check` and bad input
 * {error, problems: [{path, code, args, message}]}; the path is kept as it
 * is. A message without a code the catalog knows is shown as the backend
 * wrote it.
 */
const MESSAGES = {
	/* the rpcd plugin's own */
	bad_client_name: _('Bad client name'),
	bad_upstream_name: _('Bad upstream name'),
	bad_destination: _('Bad destination'),
	bad_address: _('Bad address %s'),
	too_many_addresses: _('More than %s addresses'),
	empty_config: _('The config file is empty'),
	cli_failed: _('wgsplit %s failed (exit %s)'),
	not_json: _('wgsplit %s did not answer with a JSON object'),
	/* the daemon's (util/msgcode.rs) */
	no_client: _('No client named %s'),
	no_upstream: _('No upstream named %s'),
	no_list: _('No list named %s'),
	name_used_client: _('The name %s is already used by a client'),
	name_used_upstream: _('The name %s is already used by an upstream'),
	name_used_rule: _('The name %s is already used by a rule'),
	name_used_list: _('The name %s is already used by a list'),
	name_used_server: _('The name %s is already used by the server section'),
	/* older daemons: the holder's kind (English) as the second argument */
	name_used: _('The name %s is already used by a %s'),
	required: _('Required'),
	required_key: _('Required (or a private key to derive it from)'),
	required_hostport: _('Required (host:port)'),
	required_action: _('Required (proxy, direct or block)'),
	required_eg: _('Required, e.g. %s'),
	outside_pool: _('%s is outside the server pool %s'),
	outside_range: _('%s is outside %s–%s'),
	port_range: _('Must be 1–65535'),
	overlaps: _('Overlaps an address of %s'),
	table_reserved: _('Table %s is reserved'),
	table_used: _('Table %s is already used by %s'),
	already_used: _('%s is already used by %s'),
	same_key: _('The same key as client %s'),
	not_domain: _('%s is not a domain name'),
	not_ip: _('%s is not an IP address'),
	not_cidr: _('%s is not an IP address or CIDR'),
	not_prefix: _('%s is not an address with prefix'),
	needs_prefix: _('%s needs a prefix: the server address and its client pool, e.g. 10.8.0.1/24'),
	not_port: _('%s is not a port (1–65535)'),
	not_proto: _('%s is not tcp or udp'),
	port_backwards: _('Port range %s–%s is backwards'),
	not_date: _('%s is not a date (YYYY-MM-DD or RFC 3339)'),
	not_size: _('%s is not a size (e.g. 500M, 50G, 1T)'),
	not_country: _('%s is not a two-letter country code'),
	not_hostport: _('%s is not host:port'),
	not_host: _('%s is not a host name or address'),
	not_addrport: _('%s is not address:port'),
	not_ifname: _('%s is not an interface name (1–15 characters, no "/", ":" or spaces)'),
	no_ipv6_pool: _('%s: the server has no IPv6 address (address6)'),
	not_key: _('Not a WireGuard key (44 characters of base64)'),
	key_mismatch: _('Does not belong to the private key'),
	proxy_rule_upstream: _('A proxy rule needs an upstream (here or on its client)'),
	proxy_default_upstream: _('A proxy default needs an upstream'),
	rule_matches_nothing: _('The rule matches nothing: give domains, CIDRs, ports, countries or lists'),
	failover_itself: _('An upstream cannot fail over to itself'),
	import_no_peer: _('The file has no [Peer] section: an upstream needs the provider\'s peer'),
	import_bad_line: _('Line %s: "%s" is not "Key = Value"'),
	no_endpoint: _('Not set: clients need the router\'s public host name or address'),
	no_private_key: _('The router does not keep this client\'s private key (it brought its own); its config has to be written on the client'),
	/* a list or GeoIP update's result (the lists state): the daemon's
	   sources/confine.rs and sources/update.rs */
	list_dir_outside: _('%s: outside wgsplit\'s folders'),
	list_dir_link: _('%s: leads outside wgsplit\'s folders (a symbolic link?)'),
	list_dir_not_own: _('%s: must be a folder owned by wgsplit\'s user and writable by nobody else'),
	list_target_link: _('%s: is a symbolic link; wgsplit does not write through one'),
	list_not_file: _('%s: is not a regular file'),
	list_not_ours: _('%s: exists and was not written by wgsplit; remove it to let wgsplit download it'),
	source_outside: _('%s: leads outside the folders file:// may read'),
	download_too_large: _('Rejected: %s is larger than %s bytes (max_size)'),
	download_empty: _('Rejected: %s is empty'),
	download_sha256: _('Rejected: %s has sha256 %s, the pinned sha256 is %s'),
	no_download_tool: _('No download tool (uclient-fetch, wget or curl)'),
	download_timeout: _('%s: %s did not finish within %s s; stopped'),
	download_failed_says: _('%s could not fetch %s (exit status %s): %s'),
	download_failed: _('%s could not fetch %s (exit status %s)'),
	geoip_no_countries: _('Rejected: none of the countries the rules use is in the file'),
	geoip_shrinks: _('Rejected: %s %s would shrink from %s to %s ranges'),
	geoip_no_country: _('Rejected: %s is not in the file'),
	geoip_no_source: _('Rejected: no path or URL'),
	list_unreadable: _('Rejected: list %s: %s'),
	list_shrinks: _('Rejected: list %s would go from %s to %s entries'),
	bad_format: _('Bad format: %s')
};

/* One {code, args, message} (or a text) -> the page's language. */
function translateOne(m) {
	if (!L.isObject(m))
		return String(m == null ? '' : m).replace(/^wgsplit: /, '');
	const t = m.code && MESSAGES[m.code];
	const text = t ? t.format.apply(t, Array.isArray(m.args) ? m.args.map(String) : [])
		: String(m.message != null ? m.message : (m.error != null ? m.error : '')).replace(/^wgsplit: /, '');
	return m.path ? m.path + ': ' + text : text;
}

/* An rpc answer's error (or a message text) in the page's language: one line
   a problem. */
function errorText(res) {
	if (res == null)
		return '';
	if (L.isObject(res)) {
		if (Array.isArray(res.problems) && res.problems.length)
			return res.problems.map(translateOne).join('\n');
		if (res.code)
			return translateOne(res);
		res = res.error;
		if (L.isObject(res))
			return errorText(res);
	}
	return String(res == null ? '' : res).split('\n').filter(l => l !== '').map(translateOne).join('\n');
}

/* Address inside an IPv4 pool "a.b.c.d/len"? (IPv6 pools are left to the daemon.) */
function inPool4(addr, pool) {
	const a = parseIPv4(String(addr).split('/')[0]);
	const p = String(pool || '').split('/');
	const base = parseIPv4(p[0]), len = +p[1];
	if (a === null || base === null || !(len >= 0 && len <= 32))
		return true;
	const mask = len == 0 ? 0 : ((~0 << (32 - len)) >>> 0);
	return ((a & mask) >>> 0) == ((base & mask) >>> 0);
}

/*
 * LuCI's own datatype engine on one value, outside a form's datatype: true or
 * the message. For a validate() that needs the whole value: an option whose
 * datatype is cidr/cidr4/ipaddr/… hands its validate() what the datatype left
 * (the prefix, "24"), so such a check sets datatype 'string' and calls this.
 * The field sits in a [data-field] holder: LuCI skips fields in no page.
 */
function datatype(type, value) {
	const field = E('input', { 'type': 'text', 'value': value == null ? '' : String(value) });
	E('div', { 'data-field': 'wgsplit' }, [ field ]);
	const vd = validation.create(field, type, true, null);
	return vd.validate() ? true : _('Expecting: %s').format(vd.error);
}

/* Wrap a check as a LuCI validate function; empty values pass (rmempty handles "required"). */
function validator(check, arg) {
	return function(section_id, value) {
		if (value == null || value === '')
			return true;
		return checks[check](value, arg);
	};
}

/*
 * A boolean option as a form.Flag shows it: the daemon reads UCI booleans as
 * uci does (1/yes/on/true/enabled, 0/no/off/false/disabled), so a hand-written
 * 'yes' shows ticked and 'off' unticked; a Flag's own load would show both as
 * unticked and write '0' over 'yes' on the next save. null: unset (the
 * Flag's default).
 */
function uciBool(v) {
	return v == null ? null : (/^(0|no|off|false|disabled)$/.test(v) ? '0' : '1');
}

function formatBytes(n) {
	n = +n || 0;
	const u = [ 'B', 'KiB', 'MiB', 'GiB', 'TiB' ];
	let i = 0;
	while (n >= 1024 && i < u.length - 1) {
		n /= 1024;
		i++;
	}
	return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}

/* "12s ago" from an age in seconds; null/undefined = never */
function formatAge(age) {
	if (age == null || age === '' || isNaN(+age))
		return _('never');
	const s = Math.max(0, Math.floor(+age));
	if (s < 60)
		return _('%ds ago').format(s);
	if (s < 3600)
		return _('%dm ago').format(Math.floor(s / 60));
	if (s < 86400)
		return _('%dh ago').format(Math.floor(s / 3600));
	return _('%dd ago').format(Math.floor(s / 86400));
}

/*
 * The rpc `status` answer (`wgsplit overview --json`): { status: as `wgsplit
 * status --json`, clients: as `client list --json`, upstreams: as `upstream list --json`,
 * or { error } }. These pick one entry out of it.
 */
function findByName(list, name) {
	return Array.isArray(list) ? list.filter(x => x && x.name == name)[0] || null : null;
}
function clientLive(st, name) { return findByName(L.isObject(st) ? st.clients : null, name); }
function upstreamLive(st, name) { return findByName(L.isObject(st) ? st.upstreams : null, name); }
function serverInterface(st) {
	const ifs = (L.isObject(st) && L.isObject(st.status) && Array.isArray(st.status.interfaces)) ? st.status.interfaces : [];
	return ifs.filter(i => i.role == 'server')[0] || null;
}

return baseclass.extend({
	callStatus: callStatus,
	callExplain: callExplain,
	callClientConf: callClientConf,
	callClientQr: callClientQr,
	callClientHistory: callClientHistory,
	callClientNextAddress: callClientNextAddress,
	callUpstreamImport: callUpstreamImport,
	callGenkey: callGenkey,
	callConfigCheck: callConfigCheck,
	callConfigView: callConfigView,
	callListsShow: callListsShow,
	callListsUpdate: callListsUpdate,
	checks: checks,
	validator: validator,
	datatype: datatype,
	errorText: errorText,
	messageCodes: Object.keys(MESSAGES),
	inPool4: inPool4,
	uciBool: uciBool,
	formatBytes: formatBytes,
	formatAge: formatAge,
	clientLive: clientLive,
	upstreamLive: upstreamLive,
	serverInterface: serverInterface
});

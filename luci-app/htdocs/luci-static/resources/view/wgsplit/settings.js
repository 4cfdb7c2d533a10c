'use strict';
'require view';
'require form';
'require uci';
'require ui';
'require dom';
'require wgsplit.common as common';

const v = common.validator;

/* How long "Update now" watches for the update it started to finish, and how
   often it looks: downloads of GeoIP databases take a while on a router. */
const UPDATE_WAIT_MS = 180000;
const UPDATE_POLL_MS = 2000;

/* { name: state } of every source `lists show --json` reports, GeoIP first */
function sourceStates(show) {
	const st = L.isObject(show) && L.isObject(show.state) ? show.state : {};
	const out = [];
	if (L.isObject(st.geoip))
		out.push([ 'GeoIP', st.geoip ]);
	for (const name in (L.isObject(st.lists) ? st.lists : {}))
		out.push([ name, st.lists[name] ]);
	return out;
}

/* the latest attempt of any source, to tell a finished update from the last one */
function lastAttempt(show) {
	return sourceStates(show).reduce((t, s) => Math.max(t, +s[1].attempted || 0), 0);
}

function sourcesTable(show) {
	const now = Date.now() / 1000;
	const age = t => t ? common.formatAge(now - t) : _('never');
	const rows = sourceStates(show).map(function(s) {
		const st = s[1];
		const size = st.entries != null ? _('%d entries').format(st.entries)
			: (L.isObject(st.countries) ? Object.keys(st.countries).join(' ') : '-');
		return E('tr', { 'class': 'tr', 'data-source': s[0] }, [
			E('td', { 'class': 'td' }, s[0]),
			E('td', { 'class': 'td' }, age(st.attempted)),
			E('td', { 'class': 'td' }, st.ok
				? E('span', { 'class': 'wgsplit-online' }, _('ok'))
				/* the state's error with its code and args: in the page's language */
				: E('span', { 'class': 'wgsplit-offline' }, [ _('failed: %s').format(common.errorText(st.code ? st : (st.error || '')) || _('unknown error')) ])),
			E('td', { 'class': 'td' }, age(st.updated)),
			E('td', { 'class': 'td' }, size || '-')
		]);
	});
	// one flat list of rows: LuCI's dom.append shows a nested array as text
	return E('table', { 'class': 'table', 'id': 'wgsplit-sources' }, [
		E('tr', { 'class': 'tr table-titles' }, [ _('Source'), _('Last attempt'), _('Result'), _('Data from'), _('Holds') ]
			.map(h => E('th', { 'class': 'th' }, h)))
	].concat(rows.length ? rows : [ E('tr', { 'class': 'tr placeholder' },
		E('td', { 'class': 'td', 'colspan': 5 }, E('em', _('No list or GeoIP update has run yet.')))) ]));
}

function pollUntil(before, deadline) {
	return new Promise(resolve => window.setTimeout(resolve, UPDATE_POLL_MS))
		.then(() => L.resolveDefault(common.callListsShow(), {}))
		.then(show => (lastAttempt(show) > before || Date.now() > deadline) ? show : pollUntil(before, deadline));
}

/* "Update now": start `wgsplit lists update`, then show each source's result */
function updateNow(box, shown) {
	const before = lastAttempt(shown.show);
	return common.callListsUpdate().then(function(res) {
		if (!L.isObject(res) || !res.started) {
			ui.addNotification(null, E('p', [ _('Could not start the update: %s').format(common.errorText(res) || _('no answer')) ]), 'error');
			return;
		}
		return pollUntil(before, Date.now() + UPDATE_WAIT_MS).then(function(show) {
			shown.show = show;
			dom.content(box, sourcesTable(show));
			if (lastAttempt(show) <= before)
				ui.addNotification(null, E('p', _('The update is still running; reload the page later to see its result.')), 'warning');
		});
	});
}

return view.extend({
	load: function() {
		return Promise.all([
			uci.load('wgsplit'),
			L.resolveDefault(common.callListsShow(), {})
		]);
	},

	render: function(data) {
		const shown = { show: data[1] };
		let m, s, o;

		m = new form.Map('wgsplit', _('WireGuard Split: Settings'),
			_('The WireGuard server the clients connect to, its DNS resolver, and the named lists rules can refer to.'));

		s = m.section(form.NamedSection, 'server', 'server', _('Server'));
		s.addremove = false;

		s.tab('general', _('General'));
		s.tab('dns', _('DNS'));
		s.tab('advanced', _('Advanced'));

		o = s.taboption('general', form.Value, 'interface', _('Interface'),
			_('WireGuard server interface name (at most 15 characters).'));
		o.datatype = 'maxlength(15)';
		o.validate = v('ifname');
		o.placeholder = 'wg0';

		/* LuCI's port takes 0 and range() takes 1.5; the daemon neither */
		o = s.taboption('general', form.Value, 'listen_port', _('Listen port'));
		o.datatype = 'and(uinteger, range(1,65535))';
		o.placeholder = '51820';

		o = s.taboption('general', form.Value, 'address', _('IPv4 address'),
			_('Server address with prefix, e.g. 10.8.0.1/24; the prefix is the client pool.'));
		/* LuCI's cidr4 alone: a validate function paired with it would be handed
		   the prefix ("24"), not the address (cidr4 checks the prefix with
		   apply('ip4prefix', …), which replaces the value it validates). */
		o.datatype = 'cidr4';
		o.rmempty = false;

		o = s.taboption('general', form.Value, 'address6', _('IPv6 address'),
			_('Optional, e.g. fd42:8::1/64.'));
		o.datatype = 'cidr6';

		o = s.taboption('general', form.Value, 'private_key', _('Private key'),
			_('Generated on first start; kept in /etc/config/wgsplit (mode 0600).'));
		o.datatype = 'string';
		o.password = true;
		o.validate = v('key');
		o.rmempty = false;

		o = s.taboption('general', form.Value, 'endpoint', _('Public endpoint'),
			_('Host or IP (optionally :port) written into client configs.'));
		/* not LuCI's hostport: its port type takes 0, which the daemon refuses */
		o.datatype = 'string';
		o.validate = v('serverEndpoint');

		o = s.taboption('general', form.Value, 'mtu', _('MTU'));
		o.datatype = 'and(uinteger, range(1280,9000))';
		o.placeholder = '1420';

		o = s.taboption('dns', form.Value, 'dns_port', _('Resolver port'));
		o.datatype = 'and(uinteger, range(1,65535))';
		o.placeholder = '53';

		o = s.taboption('dns', form.DynamicList, 'dns_listen', _('Extra listen addresses'),
			_('The resolver always listens on the server addresses; add e.g. a LAN address.'));
		o.datatype = 'ipaddr(1)';

		o = s.taboption('dns', form.DynamicList, 'dns_server', _('Direct resolvers'),
			_('Resolvers for names that go direct (ip or ip:port). Default: /etc/resolv.conf.'));
		o.datatype = 'string';
		o.validate = v('ipPort');

		o = s.taboption('dns', form.ListValue, 'block_answer', _('Answer for blocked names'));
		o.value('nxdomain', _('NXDOMAIN'));
		o.value('null', _('Null address (0.0.0.0 / ::)'));
		o.default = 'nxdomain';

		/* names of `config list` sections (below); empty: the shipped list */
		o = s.taboption('dns', form.DynamicList, 'doh_list', _('DoH endpoint lists'),
			_('Lists naming the DoH servers the DNS bypass guard blocks: domain lists give the names refused, CIDR lists the addresses dropped. Empty: the small built-in list.'));
		uci.sections('wgsplit', 'list').forEach(l => o.value(l['.name']));
		o.datatype = 'string';
		o.validate = function(section_id, value) {
			if (value == null || value === '')
				return true;
			/* the Lists section of this page, saved or not, as config check asks */
			return uci.sections('wgsplit', 'list').some(l => l['.name'] == value)
				? true : _('No list named %s').format(value);
		};

		o = s.taboption('dns', form.Value, 'ttl_min', _('Minimum TTL'),
			_('Seconds; DNS TTLs are clamped and used as set-entry timeouts.'));
		o.datatype = 'uinteger';
		o.placeholder = '60';

		o = s.taboption('dns', form.Value, 'ttl_max', _('Maximum TTL'));
		o.datatype = 'uinteger';
		o.placeholder = '86400';

		o = s.taboption('advanced', form.ListValue, 'backend', _('WireGuard backend'));
		o.value('kernel', _('Kernel'));
		o.value('userspace', _('Userspace'));
		o.default = 'kernel';

		o = s.taboption('advanced', form.Value, 'fwmark_mask', _('Firewall mark mask'),
			_('The mark bits wgsplit owns; the default leaves mwan3 and pbr alone.'));
		o.datatype = 'string';
		o.validate = v('hexMask');
		o.placeholder = '0xff000000';

		o = s.taboption('advanced', form.Value, 'table_base', _('Routing table base'));
		o.datatype = 'uinteger';
		o.placeholder = '20000';

		o = s.taboption('advanced', form.Value, 'rule_priority', _('IP rule priority'));
		o.datatype = 'uinteger';
		o.placeholder = '6000';

		o = s.taboption('advanced', form.Value, 'api_listen', _('API address'));
		o.datatype = 'ipaddrport(1)';
		o.placeholder = '127.0.0.1:8274';

		s = m.section(form.GridSection, 'list', _('Lists'),
			_('Files on the router with many domains or CIDRs; rules refer to them by name.'));
		s.addremove = true;
		s.anonymous = false;
		s.nodescriptions = true;

		o = s.option(form.Value, 'path', _('File'));
		o.datatype = 'string';
		o.validate = v('path');
		o.rmempty = false;
		o.placeholder = '/etc/wgsplit/lists/streaming.txt';

		o = s.option(form.ListValue, 'format', _('Format'));
		o.value('domains', _('Domains, one per line'));
		o.value('cidr', _('CIDRs, one per line'));
		o.value('dnsmasq', _('dnsmasq (server=/…/, nftset=/…/)'));
		o.value('v2fly', _('v2fly (domain:, full:)'));
		o.default = 'domains';

		o = s.option(form.Value, 'url', _('Update URL'));
		o.datatype = 'string';
		o.validate = v('url');
		o.modalonly = true;

		const box = E('div', { 'id': 'wgsplit-sources-box' }, sourcesTable(shown.show));
		return m.render().then(node => E('div', {}, [
			node,
			E('div', { 'class': 'cbi-section', 'id': 'wgsplit-sources-section' }, [
				E('h3', _('List and GeoIP updates')),
				E('div', { 'class': 'cbi-section-descr' },
					_('The last update of each source and its result. Update now fetches the lists and GeoIP data with a URL again, checks them and loads them.')),
				box,
				E('div', { 'class': 'right' }, E('button', {
					'class': 'btn cbi-button cbi-button-action', 'id': 'wgsplit-lists-update',
					'click': ui.createHandlerFn(this, updateNow, box, shown)
				}, _('Update now')))
			])
		]));
	}
});

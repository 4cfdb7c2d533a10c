'use strict';
'require view';
'require form';
'require uci';
'require ui';
'require dom';
'require wgsplit.common as common';

const v = common.validator;

/* The client whose rules the Rules grid shows: a client's rules are an ordered
   list of its own, so they are edited one client at a time. Kept across the
   form's re-renders (Map.reset, Map.save). */
let ruleClient = null;


function downloadText(filename, text) {
	const a = E('a', {
		href: 'data:text/plain;charset=utf-8,' + encodeURIComponent(text),
		download: filename
	});
	document.body.appendChild(a);
	a.click();
	a.remove();
}

/* The traffic chart's shape: one bar an hour over the history's 7 days. */
const CHART_BUCKETS_PER_BAR = 12;         // 5-minute buckets in an hour
const CHART_BAR_W = 4, CHART_H = 120;

/* Hourly sums of the history's rx and tx (bytes per 5-minute bucket). */
function hourly(series) {
	const out = [];
	for (let i = 0; i < series.length; i += CHART_BUCKETS_PER_BAR)
		out.push(series.slice(i, i + CHART_BUCKETS_PER_BAR).reduce((a, b) => a + (+b || 0), 0));
	return out;
}

/* The busiest hour's bytes, received and sent: the chart's full height. */
function peakHour(h) {
	const rx = hourly(Array.isArray(h.rx) ? h.rx : []), tx = hourly(Array.isArray(h.tx) ? h.tx : []);
	return Math.max(0, ...rx.map((v, i) => v + (tx[i] || 0)));
}

/* SVG markup: received (from the client) and sent (to it) stacked per hour. */
function trafficChart(h) {
	const rx = hourly(Array.isArray(h.rx) ? h.rx : []), tx = hourly(Array.isArray(h.tx) ? h.tx : []);
	const n = Math.max(rx.length, tx.length), w = n * CHART_BAR_W;
	const max = Math.max(1, peakHour(h));
	let bars = '';
	for (let i = 0; i < n; i++) {
		const a = Math.round((rx[i] || 0) / max * CHART_H), b = Math.round((tx[i] || 0) / max * CHART_H);
		bars += '<g class="wgsplit-bar"><rect x="%d" y="%d" width="%d" height="%d" fill="#3b82f6"/><rect x="%d" y="%d" width="%d" height="%d" fill="#f59e0b"/></g>'
			.format(i * CHART_BAR_W, CHART_H - a, CHART_BAR_W - 1, a, i * CHART_BAR_W, CHART_H - a - b, CHART_BAR_W - 1, b);
	}
	return '<svg xmlns="http://www.w3.org/2000/svg" class="wgsplit-chart" viewBox="0 0 %d %d" width="100%%" height="%d" preserveAspectRatio="none">'
		.format(w, CHART_H, CHART_H) + '<rect width="%d" height="%d" fill="#f8fafc"/>'.format(w, CHART_H) + bars + '</svg>';
}

/* This month's use against the quota, one line. */
function monthText(m) {
	if (!L.isObject(m))
		return _('No traffic recorded yet.');
	const used = common.formatBytes(m.bytes);
	if (m.quota == null)
		return _('%s this month, no quota.').format(used);
	return _('%s of %s this month, %s left.').format(used, common.formatBytes(m.quota), common.formatBytes(m.left));
}

/* A client at a glance: this month against its quota, its traffic over 7 days,
   its QR code and config file. */
function showClient(name) {
	return Promise.all([
		L.resolveDefault(common.callClientConf(name), {}),
		L.resolveDefault(common.callClientQr(name), {}),
		L.resolveDefault(common.callClientHistory(name), {})
	]).then(function(res) {
		const conf = res[0], qr = res[1], hist = res[2];
		const usage = [];
		if (L.isObject(hist) && !hist.error) {
			const m = L.isObject(hist.month) ? hist.month : null;
			const pct = m && m.quota ? Math.min(100, Math.round(100 * m.bytes / m.quota)) : null;
			usage.push(E('p', { 'id': 'wgsplit-client-month' }, monthText(m)));
			if (pct != null)
				usage.push(E('div', { 'class': 'cbi-progressbar', 'title': pct + '%' }, E('div', { 'style': 'width:%d%%'.format(pct) })));
			if (m && m.disabled_by_quota)
				usage.push(E('p', { 'class': 'alert-message warning' }, _('Disabled: this month\'s quota is spent; enabled again when the month (UTC) ends.')));
			const chart = E('div', { 'id': 'wgsplit-client-chart' });
			chart.innerHTML = trafficChart(hist);
			usage.push(E('h5', _('Last 7 days, per hour')), chart,
				E('p', { 'class': 'cbi-value-description', 'id': 'wgsplit-client-chart-legend' }, [
					E('span', { 'style': 'color:#3b82f6' }, '■ '), _('received from the client'), '  ',
					E('span', { 'style': 'color:#f59e0b' }, '■ '), _('sent to it'), ' · ',
					_('the tallest bar: %s in an hour').format(common.formatBytes(peakHour(hist)))
				]));
		}
		else {
			usage.push(E('p', [ E('em', [ _('No traffic history: %s').format(common.errorText(hist) || _('no answer')) ]) ]));
		}

		const body = [ E('h5', _('Traffic')) ].concat(usage);
		if (conf.error || !conf.conf) {
			// E(tag, element) takes the element as attributes in LuCI: children go in an array
			body.push(E('h5', _('Config')), E('p', [ E('em', [ _('Cannot render the config of %s: %s')
				.format(name, common.errorText(conf) || _('no answer')) ]) ]));
		}
		else {
			const qrEl = E('div', { 'class': 'wgsplit-qr', 'style': 'max-width:320px' });
			if (qr.svg)
				qrEl.innerHTML = qr.svg;
			else
				qrEl.appendChild(E('em', [ _('QR code unavailable: %s').format(common.errorText(qr) || _('no answer')) ]));
			body.push(E('h5', _('Config')), E('p', _('Scan with the WireGuard app, or download the file.')), qrEl,
				E('pre', { 'class': 'wgsplit-conf', 'style': 'white-space:pre-wrap' }, conf.conf));
		}
		body.push(E('div', { 'class': 'right' }, [
			conf.conf ? E('button', {
				'class': 'btn cbi-button cbi-button-action',
				'click': function() { downloadText(name + '.conf', conf.conf); }
			}, _('Download')) : '',
			' ',
			E('button', { 'class': 'btn cbi-button', 'click': ui.hideModal }, _('Dismiss'))
		]));
		ui.showModal(_('Client %s').format(name), body);
	});
}

return view.extend({
	load: function() {
		return Promise.all([
			uci.load('wgsplit'),
			L.resolveDefault(common.callStatus(), {})
		]);
	},

	render: function(data) {
		const status = data[1];
		let m, s, o;

		const upstreams = uci.sections('wgsplit', 'upstream').map(u => u['.name']);
		const clients = uci.sections('wgsplit', 'client').map(c => c['.name']);
		const lists = uci.sections('wgsplit', 'list').map(l => l['.name']);
		const pool = uci.get('wgsplit', 'server', 'address');

		m = new form.Map('wgsplit', _('WireGuard Split: Clients'),
			_('Each client gets its own upstream and its own ordered rules; unmatched traffic follows the client\'s default.'));

		/* ---- clients ---- */
		s = m.section(form.GridSection, 'client', _('Clients'));
		s.addremove = true;
		s.anonymous = false;
		s.nodescriptions = true;
		s.addbtntitle = _('Add client');

		// a new client gets a fresh key and the addresses `wgsplit client add`
		// would give it; the page's own clients (saved or not) count as taken
		s.handleAdd = function(ev, name) {
			const taken = [];
			uci.sections('wgsplit', 'client').forEach(c => L.toArray(c.address).forEach(a => taken.push(a)));
			return Promise.all([
				L.resolveDefault(common.callGenkey(), {}),
				L.resolveDefault(common.callClientNextAddress(taken), {})
			]).then(L.bind(function(res) {
				const sid = uci.add('wgsplit', 'client', name);
				if (L.isObject(res[1]) && Array.isArray(res[1].address) && res[1].address.length)
					uci.set('wgsplit', sid, 'address', res[1].address);
				else
					ui.addNotification(null, E('p', _('No free address for the new client: %s')
						.format(common.errorText(res[1]) || _('no answer'))), 'warning');
				if (res[0] && res[0].private_key)
					uci.set('wgsplit', sid, 'private_key', res[0].private_key);
				this.addedSection = sid;
				return this.renderMoreOptionsModal(sid);
			}, this));
		};

		s.renderRowActions = function(section_id) {
			const td = form.GridSection.prototype.renderRowActions.apply(this, [ section_id ]);
			const box = td.querySelector('div') || td;
			box.insertBefore(E('button', {
				'class': 'btn cbi-button cbi-button-action',
				'title': _('Traffic, quota, QR code and config file'),
				'click': ui.createHandlerFn(this, showClient, section_id)
			}, _('Details')), box.firstChild);
			return td;
		};

		o = s.option(form.DummyValue, '_state', _('Status'));
		o.modalonly = false;
		o.textvalue = function(section_id) {
			const c = common.clientLive(status, section_id);
			if (!c)
				return E('em', _('unknown'));
			if (c.state == 'disabled')
				return E('em', _('disabled'));
			if (c.state == 'expired')
				return E('span', { 'class': 'wgsplit-expired' }, _('expired'));
			const online = L.isObject(c.peer) && c.peer.online;
			return E('span', { 'class': online ? 'wgsplit-online' : 'wgsplit-offline' },
				online ? _('online') : _('offline'));
		};

		o = s.option(form.DummyValue, '_traffic', _('Traffic'));
		o.modalonly = false;
		o.textvalue = function(section_id) {
			const c = common.clientLive(status, section_id);
			const p = c && L.isObject(c.peer) ? c.peer : null;
			return p ? '↓ %s ↑ %s'.format(common.formatBytes(p.rx), common.formatBytes(p.tx)) : '-';
		};

		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.load = section_id => common.uciBool(uci.get('wgsplit', section_id, 'enabled'));
		o.editable = true;

		o = s.option(form.DynamicList, 'address', _('Addresses'),
			_('Tunnel addresses inside the server pools, e.g. 10.8.0.2/32.'));
		/* 'string', so validate() sees the whole value: LuCI's cidr datatype
		   would hand it the prefix alone. The format is still LuCI's check. */
		o.datatype = 'string';
		o.rmempty = false;
		o.validate = function(section_id, value) {
			if (value == null || value === '')
				return true;
			const r = common.datatype('or(cidr, ipaddr(1))', value);
			if (r !== true)
				return r;
			if (value.indexOf(':') < 0 && !common.inPool4(value, pool))
				return _('Outside the server pool %s').format(pool);
			return true;
		};

		o = s.option(form.ListValue, 'upstream', _('Upstream'),
			_('Used by the client\'s proxy rules and by a proxy default.'));
		o.value('', _('none'));
		upstreams.forEach(u => o.value(u));
		o.datatype = 'string';

		o = s.option(form.ListValue, 'default', _('Default'),
			_('What traffic matching no rule does.'));
		o.value('direct', _('direct (WAN)'));
		o.value('proxy', _('proxy (upstream)'));
		o.value('block', _('block'));
		o.default = 'direct';
		o.validate = function(section_id, value) {
			if (value != 'proxy')
				return true;
			const up = this.section.formvalue(section_id, 'upstream');
			return (up != null && up !== '') ? true : _('A proxy default needs an upstream');
		};

		o = s.option(form.Value, 'expires', _('Expires'),
			_('YYYY-MM-DD (end of day, UTC) or an RFC 3339 time; past it the client is disabled.'));
		o.datatype = 'string';
		o.validate = v('expires');
		o.placeholder = 'YYYY-MM-DD';

		o = s.option(form.Value, 'quota', _('Monthly quota'),
			_('Data a month, received and sent, e.g. 500M, 50G, 1T; once spent the client is disabled until the month (UTC) ends. Empty: no quota.'));
		o.datatype = 'string';
		o.validate = v('size');
		o.placeholder = '50G';
		o.modalonly = true;

		/* on unless '0': LuCI writes nothing while the box is ticked (its
		   default) and '0' when it is not, as `client add` leaves it */
		o = s.option(form.Flag, 'dns_guard', _('DNS bypass guard'),
			_('For a client with domain rules: drops DNS over TLS/QUIC and known DoH servers, so its DNS comes to the router\'s resolver and the domain rules hold.'));
		o.default = '1';
		o.modalonly = true;
		o.load = section_id => common.uciBool(uci.get('wgsplit', section_id, 'dns_guard'));

		o = s.option(form.Value, 'description', _('Description'));
		o.datatype = 'string';
		o.modalonly = true;

		o = s.option(form.Value, 'public_key', _('Public key'),
			_('Leave empty to derive it from the private key.'));
		o.datatype = 'string';
		o.validate = v('key');
		o.modalonly = true;

		o = s.option(form.Value, 'private_key', _('Private key'),
			_('Kept so the config and QR code can be shown; leave empty for bring-your-own-key clients.'));
		o.datatype = 'string';
		o.password = true;
		o.validate = v('key');
		o.modalonly = true;

		o = s.option(form.Value, 'preshared_key', _('Preshared key'));
		o.datatype = 'string';
		o.password = true;
		o.validate = v('key');
		o.modalonly = true;

		/* ---- rules: one client's at a time ---- */
		if (clients.indexOf(ruleClient) < 0)
			ruleClient = clients[0] || null;

		s = m.section(form.GridSection, 'rule', _('Rules'),
			_('Ordered: the first matching rule of a client wins. Domains, CIDRs, countries and lists are alternatives; ports narrow them.'));
		s.addremove = true;
		s.anonymous = true;
		s.sortable = true;
		s.nodescriptions = true;
		s.addbtntitle = _('Add rule');

		s.filter = function(section_id) {
			return uci.get('wgsplit', section_id, 'client') == ruleClient;
		};

		// a new rule belongs to the client shown
		s.handleAdd = function(ev) {
			const sid = uci.add('wgsplit', 'rule');
			if (ruleClient)
				uci.set('wgsplit', sid, 'client', ruleClient);
			this.addedSection = sid;
			return this.renderMoreOptionsModal(sid);
		};

		// ▲/▼ next to Edit and Delete: the order is the client's rule order
		s.renderRowActions = function(section_id) {
			const td = form.GridSection.prototype.renderRowActions.apply(this, [ section_id ]);
			const box = td.querySelector('div') || td;
			const sids = this.cfgsections(), i = sids.indexOf(section_id);
			const move = (other, after) => ui.createHandlerFn(this, function() {
				uci.move('wgsplit', section_id, other, after);
				return m.save(null, true);
			});
			box.insertBefore(E('button', {
				'class': 'btn cbi-button wgsplit-rule-down', 'title': _('Move down'),
				'disabled': i == sids.length - 1 ? '' : null, 'click': move(sids[i + 1], true)
			}, '▼'), box.firstChild);
			box.insertBefore(E('button', {
				'class': 'btn cbi-button wgsplit-rule-up', 'title': _('Move up'),
				'disabled': i == 0 ? '' : null, 'click': move(sids[i - 1], false)
			}, '▲'), box.firstChild);
			return td;
		};

		// the client picker above the grid
		const renderRules = s.render;
		s.render = function() {
			return Promise.resolve(renderRules.apply(this, arguments)).then(function(node) {
				const table = node.querySelector('table');
				const picker = E('div', { 'class': 'cbi-section-descr wgsplit-rule-client' }, [
					E('label', { 'for': 'wgsplit-rule-client' }, _('Rules of client') + ' '),
					E('select', {
						'id': 'wgsplit-rule-client', 'class': 'cbi-input-select',
						// load before rendering: LuCI loads the values of the sections the
						// filter lets in when the map loads, so the other client's rules
						// would show empty after a plain reset
						'change': function(ev) { ruleClient = ev.target.value; return m.load().then(() => m.reset()); }
					}, clients.map(c => E('option', { 'value': c, 'selected': c == ruleClient ? '' : null }, c)))
				]);
				if (table)
					table.parentNode.insertBefore(picker, table);
				return node;
			});
		};

		o = s.option(form.ListValue, 'client', _('Client'));
		clients.forEach(c => o.value(c));
		o.datatype = 'string';
		o.rmempty = false;
		o.modalonly = true;

		o = s.option(form.ListValue, 'action', _('Action'));
		o.value('proxy', _('proxy'));
		o.value('direct', _('direct'));
		o.value('block', _('block'));
		o.rmempty = false;

		o = s.option(form.ListValue, 'upstream', _('Upstream'));
		o.value('', _('client\'s'));
		upstreams.forEach(u => o.value(u));
		o.datatype = 'string';
		o.depends('action', 'proxy');

		o = s.option(form.DynamicList, 'domain', _('Domains'),
			_('google.com matches it and its subdomains; *.google.com only subdomains; =google.com only itself.'));
		o.datatype = 'string';
		o.validate = v('domain');

		o = s.option(form.DynamicList, 'cidr', _('CIDRs'));
		o.datatype = 'or(cidr, ipaddr(1))';

		o = s.option(form.DynamicList, 'port', _('Ports'),
			_('tcp:443, udp:5000-6000 or 443 (both).'));
		o.datatype = 'string';
		o.validate = v('port');

		o = s.option(form.DynamicList, 'geoip', _('Countries'),
			_('Two-letter codes; !cn means every country but it.'));
		o.datatype = 'string';
		o.validate = v('geoip');

		o = s.option(form.DynamicList, 'list', _('Lists'));
		lists.forEach(l => o.value(l));
		o.datatype = 'string';
		o.validate = function(section_id, value) {
			if (value == null || value === '')
				return true;
			return lists.indexOf(value) >= 0 ? true : _('No list named %s (add it under Settings)').format(value);
		};
		o.modalonly = true;

		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.load = section_id => common.uciBool(uci.get('wgsplit', section_id, 'enabled'));
		o.editable = true;

		o = s.option(form.Value, 'description', _('Description'));
		o.datatype = 'string';
		o.modalonly = true;

		return m.render();
	}
});

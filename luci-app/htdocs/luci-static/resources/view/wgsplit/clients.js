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

function showClientConfig(name) {
	return Promise.all([
		L.resolveDefault(common.callClientConf(name), {}),
		L.resolveDefault(common.callClientQr(name), {})
	]).then(function(res) {
		const conf = res[0], qr = res[1];
		if (conf.error || !conf.conf) {
			ui.addNotification(null, E('p', _('Cannot render the config of %s: %s')
				.format(name, common.errorText(conf) || _('no answer'))), 'error');
			return;
		}
		const qrEl = E('div', { 'class': 'wgsplit-qr', 'style': 'max-width:320px' });
		if (qr.svg)
			qrEl.innerHTML = qr.svg;
		else
			qrEl.appendChild(E('em', _('QR code unavailable: %s').format(common.errorText(qr) || _('no answer'))));

		ui.showModal(_('Client %s').format(name), [
			E('p', _('Scan with the WireGuard app, or download the file.')),
			qrEl,
			E('pre', { 'class': 'wgsplit-conf', 'style': 'white-space:pre-wrap' }, conf.conf),
			E('div', { 'class': 'right' }, [
				E('button', {
					'class': 'btn cbi-button cbi-button-action',
					'click': function() { downloadText(name + '.conf', conf.conf); }
				}, _('Download')),
				' ',
				E('button', { 'class': 'btn cbi-button', 'click': ui.hideModal }, _('Dismiss'))
			])
		]);
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

		s.handleAdd = function(ev, name) {
			const used = [];
			uci.sections('wgsplit', 'client').forEach(c => L.toArray(c.address).forEach(a => used.push(a)));
			return L.resolveDefault(common.callGenkey(), {}).then(L.bind(function(res) {
				const sid = uci.add('wgsplit', 'client', name);
				const addr = common.nextAddress(pool, used);
				if (addr)
					uci.set('wgsplit', sid, 'address', [ addr ]);
				if (res && res.private_key)
					uci.set('wgsplit', sid, 'private_key', res.private_key);
				this.addedSection = sid;
				return this.renderMoreOptionsModal(sid);
			}, this));
		};

		s.renderRowActions = function(section_id) {
			const td = form.GridSection.prototype.renderRowActions.apply(this, [ section_id ]);
			const box = td.querySelector('div') || td;
			box.insertBefore(E('button', {
				'class': 'btn cbi-button cbi-button-action',
				'title': _('QR code and config file'),
				'click': ui.createHandlerFn(this, showClientConfig, section_id)
			}, _('Config')), box.firstChild);
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
						'change': function(ev) { ruleClient = ev.target.value; return m.reset(); }
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
		o.editable = true;

		o = s.option(form.Value, 'description', _('Description'));
		o.datatype = 'string';
		o.modalonly = true;

		return m.render();
	}
});

'use strict';
'require view';
'require form';
'require uci';
'require ui';
'require wgsplit.common as common';

const v = common.validator;


/* Import a provider's wg-quick .conf (pasted or uploaded) as upstream NAME. */
function showImport() {
	const nameEl = E('input', { 'type': 'text', 'class': 'cbi-input-text', 'id': 'wgsplit-import-name', 'placeholder': 'us1' });
	const confEl = E('textarea', {
		'class': 'cbi-input-textarea', 'id': 'wgsplit-import-conf', 'rows': 12, 'style': 'width:100%;font-family:monospace',
		'placeholder': '[Interface]\nPrivateKey = …\nAddress = 10.64.0.2/32\n\n[Peer]\nPublicKey = …\nEndpoint = vpn.example.net:51820'
	});
	const errEl = E('div', { 'class': 'wgsplit-import-error', 'style': 'color:#c00' });
	const fileEl = E('input', {
		'type': 'file', 'accept': '.conf,text/plain', 'id': 'wgsplit-import-file',
		'change': function(ev) {
			const f = ev.target.files && ev.target.files[0];
			if (!f)
				return;
			const r = new FileReader();
			r.onload = function() {
				confEl.value = r.result;
				errEl.textContent = '';
				if (!nameEl.value)
					nameEl.value = f.name.replace(/\.conf$/, '').replace(/[^A-Za-z0-9_]/g, '_').substring(0, 32);
			};
			r.readAsText(f);
		}
	});

	ui.showModal(_('Import upstream'), [
		E('p', _('Paste a WireGuard .conf from your VPN provider, or upload the file.')),
		E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('Name')), nameEl ]),
		E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('File')), fileEl ]),
		confEl,
		errEl,
		E('div', { 'class': 'right' }, [
			E('button', { 'class': 'btn cbi-button', 'click': ui.hideModal }, _('Cancel')),
			' ',
			E('button', {
				'class': 'btn cbi-button cbi-button-positive', 'id': 'wgsplit-import-go',
				'click': ui.createHandlerFn(this, function() {
					const name = nameEl.value.trim();
					const ok = common.checks.name(name);
					if (ok !== true) {
						errEl.textContent = ok;
						return;
					}
					if (uci.get('wgsplit', name) != null) {
						errEl.textContent = _('There is already a section named %s').format(name);
						return;
					}
					if (!/\[Peer\]/i.test(confEl.value)) {
						errEl.textContent = _('This does not look like a WireGuard config (no [Peer] section)');
						return;
					}
					return common.callUpstreamImport(name, confEl.value).then(function(res) {
						if (res && res.error) {
							// the modal stays, with the reason in the page's language
							errEl.textContent = common.errorText(res);
							return;
						}
						ui.hideModal();
						ui.addNotification(null, E('p', _('Upstream %s imported.').format(name)), 'info');
						// LuCI's uci.unload() returns nothing (no promise to chain)
						uci.unload('wgsplit');
						location.reload();
					});
				})
			}, _('Import'))
		])
	]);
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
		const names = uci.sections('wgsplit', 'upstream').map(u => u['.name']);
		let m, s, o;

		m = new form.Map('wgsplit', _('WireGuard Split: Upstreams'),
			_('Tunnels to VPN providers or your own servers. Clients\' proxy rules leave through them.'));

		s = m.section(form.GridSection, 'upstream', _('Upstreams'));
		s.addremove = true;
		s.anonymous = false;
		s.nodescriptions = true;
		s.addbtntitle = _('Add upstream');

		s.renderSectionAdd = function(extra_class) {
			const el = form.GridSection.prototype.renderSectionAdd.apply(this, [ extra_class ]);
			el.appendChild(E('button', {
				'class': 'cbi-button cbi-button-action', 'id': 'wgsplit-import',
				'click': ui.createHandlerFn(this, showImport)
			}, _('Import .conf…')));
			return el;
		};

		o = s.option(form.DummyValue, '_health', _('Health'));
		o.modalonly = false;
		o.textvalue = function(section_id) {
			const u = common.upstreamLive(status, section_id);
			if (uci.get('wgsplit', section_id, 'enabled') == '0')
				return E('em', _('disabled'));
			const h = u && L.isObject(u.health) ? u.health : null;
			if (!h)
				return E('em', _('unknown'));
			const label = { up: _('up'), degraded: _('degraded'), down: _('down') }[h.state] || _('unknown');
			return E('span', { 'class': h.state == 'up' ? 'wgsplit-online' : (h.state == 'degraded' ? 'wgsplit-expired' : 'wgsplit-offline') },
				'%s · %s'.format(label, common.formatAge(h.handshake_age)));
		};

		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.load = section_id => common.uciBool(uci.get('wgsplit', section_id, 'enabled'));
		o.editable = true;

		o = s.option(form.Value, 'endpoint', _('Endpoint'), _('host:port or [v6]:port.'));
		o.datatype = 'string';
		o.validate = v('endpoint');
		o.rmempty = false;

		o = s.option(form.ListValue, 'on_down', _('When down'),
			_('block: kill switch, traffic is dropped; direct: fall back to the WAN; failover: use another upstream.'));
		o.value('block', _('block'));
		o.value('direct', _('direct'));
		o.value('failover', _('failover'));
		o.default = 'block';

		o = s.option(form.ListValue, 'failover', _('Failover upstream'));
		names.forEach(n => o.value(n));
		o.depends('on_down', 'failover');
		o.datatype = 'string';
		o.validate = function(section_id, value) {
			return (value == section_id) ? _('An upstream cannot fail over to itself') : true;
		};

		o = s.option(form.Value, 'interface', _('Interface'), _('Default wgs_<name>.'));
		o.datatype = 'maxlength(15)';
		o.validate = v('ifname');
		o.modalonly = true;

		o = s.option(form.Value, 'private_key', _('Private key'));
		o.datatype = 'string';
		o.password = true;
		o.validate = v('key');
		o.rmempty = false;
		o.modalonly = true;

		o = s.option(form.DynamicList, 'address', _('Addresses'), _('e.g. 10.64.0.2/32, fc00:bbbb::2/128'));
		o.datatype = 'or(cidr, ipaddr(1))';
		o.rmempty = false;
		o.modalonly = true;

		o = s.option(form.Value, 'public_key', _('Peer public key'));
		o.datatype = 'string';
		o.validate = v('key');
		o.rmempty = false;
		o.modalonly = true;

		o = s.option(form.Value, 'preshared_key', _('Preshared key'));
		o.datatype = 'string';
		o.password = true;
		o.validate = v('key');
		o.modalonly = true;

		o = s.option(form.DynamicList, 'allowed_ips', _('Allowed IPs'));
		o.datatype = 'or(cidr, ipaddr(1))';
		o.placeholder = '0.0.0.0/0';
		o.modalonly = true;

		o = s.option(form.DynamicList, 'dns', _('DNS through the tunnel'),
			_('Resolvers used for names routed through this upstream.'));
		o.datatype = 'ipaddr(1)';
		o.modalonly = true;

		o = s.option(form.Value, 'mtu', _('MTU'));
		o.datatype = 'and(uinteger, range(1280,9000))';
		o.placeholder = '1420';
		o.modalonly = true;

		o = s.option(form.Value, 'keepalive', _('Keepalive'), _('Seconds, 0 = off.'));
		o.datatype = 'and(uinteger, range(0,65535))';
		o.placeholder = '25';
		o.modalonly = true;

		o = s.option(form.Value, 'table', _('Routing table'));
		o.datatype = 'uinteger';
		o.validate = function(section_id, value) {
			if (value == null || value === '')
				return true;
			return (+value >= 1 && +value <= 4294967294 && [ 253, 254, 255 ].indexOf(+value) < 0)
				? true : _('Table ids are 1–4294967294, except 253–255 (default, main, local)');
		};
		o.modalonly = true;

		return m.render();
	}
});

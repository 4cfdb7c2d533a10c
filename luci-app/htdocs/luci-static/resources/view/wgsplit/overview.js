'use strict';
'require view';
'require poll';
'require dom';
'require ui';
'require wgsplit.common as common';

function badge(ok, yes, no) {
	return E('span', { 'class': 'label ' + (ok ? 'wgsplit-online' : 'wgsplit-offline') }, ok ? yes : no);
}

function table(id, headers, rows, empty) {
	const t = E('table', { 'class': 'table', 'id': id }, [
		E('tr', { 'class': 'tr table-titles' }, headers.map(h => E('th', { 'class': 'th' }, h)))
	]);
	if (!rows.length)
		t.appendChild(E('tr', { 'class': 'tr placeholder' }, E('td', { 'class': 'td', 'colspan': headers.length }, E('em', empty))));
	rows.forEach(r => t.appendChild(E('tr', { 'class': 'tr' }, r.map(c => E('td', { 'class': 'td' }, c)))));
	return t;
}

return view.extend({
	load: function() {
		return Promise.all([
			L.resolveDefault(common.callStatus(), {}),
			L.resolveDefault(common.callConfigView(), {}),
			L.resolveDefault(common.callConfigCheck(), {})
		]).then(L.bind(function(data) {
			this.check = data[2];
			// The config without its keys (read-only users may not read uci).
			this.server = L.isObject(data[1]) && L.isObject(data[1].server) ? data[1].server : {};
			return data;
		}, this));
	},

	/* `config check`: what the daemon would refuse in the saved config, one
	   problem a line, in the page's language */
	renderCheck: function() {
		const chk = this.check;
		if (!L.isObject(chk) || chk.ok !== false)
			return '';
		const lines = common.errorText(chk.output || '').split('\n').filter(l => l !== '');
		return E('div', { 'class': 'alert-message warning', 'id': 'wgsplit-check' }, [
			E('strong', _('wgsplit config check finds problems in the saved configuration:')),
			E('ul', {}, lines.map(l => E('li', {}, l)))
		]);
	},

	renderStatus: function(st) {
		st = L.isObject(st) ? st : {};
		const kernel = L.isObject(st.status) ? st.status : {};
		const srv = common.serverInterface(st);
		const ups = Array.isArray(st.upstreams) ? st.upstreams : [];
		const cls = Array.isArray(st.clients) ? st.clients : [];

		const healthBadge = function(h) {
			if (!L.isObject(h))
				return E('em', _('unknown'));
			const label = { up: _('up'), degraded: _('degraded'), down: _('down') }[h.state] || _('unknown');
			return E('span', { 'class': 'label ' + (h.state == 'up' ? 'wgsplit-online' : (h.state == 'degraded' ? 'wgsplit-expired' : 'wgsplit-offline')) }, label);
		};
		const routeText = function(h, u) {
			const r = L.isObject(h) ? h.route : null;
			if (!L.isObject(r))
				return u.on_down || 'block';
			return { own: _('through itself'), block: _('blocked'), direct: _('direct (WAN)') }[r.kind]
				|| (r.kind == 'failover' ? _('via %s').format(r.upstream) : r.kind);
		};
		const clientState = function(c) {
			if (c.state == 'disabled')
				return E('em', _('disabled'));
			if (c.state == 'expired')
				return E('span', { 'class': 'wgsplit-expired' }, _('expired'));
			const p = L.isObject(c.peer) ? c.peer : null;
			return badge(!!(p && p.online), _('online'), _('offline'));
		};
		const peer = c => L.isObject(c.peer) ? c.peer : {};

		return E('div', { 'id': 'wgsplit-status' }, [
			st.error ? E('div', { 'class': 'alert-message warning' }, [ _('Some live data is missing: %s').format(common.errorText(st)) ]) : '',
			this.renderCheck(),

			E('h3', _('Server')),
			table('wgsplit-server', [ _('Interface'), _('State'), _('Listen port'), _('Address'), _('Peers'), _('Firewall table'), _('Pending changes') ], [[
				this.server.interface || 'wg0',
				srv ? badge(!!srv.up, _('up'), srv.present ? _('down') : _('absent')) : E('em', _('unknown')),
				String(this.server.listen_port || 51820),
				[ this.server.address || '-', this.server.address6 ].filter(x => x).join(' '),
				srv ? String(srv.peers) : '-',
				kernel.table == null ? '-' : (kernel.table ? _('present') : _('absent')),
				kernel.pending_changes == null ? '-' : String(kernel.pending_changes)
			]], ''),

			E('h3', _('Upstreams')),
			table('wgsplit-upstreams', [ _('Name'), _('Health'), _('Endpoint'), _('Latest handshake'), _('Probe'), _('Traffic goes'), _('When down') ],
				ups.map(u => [
					u.name,
					u.enabled === false || u.enabled === '0' ? E('em', _('disabled')) : healthBadge(u.health),
					u.endpoint || '-',
					common.formatAge(L.isObject(u.health) ? u.health.handshake_age : null),
					(L.isObject(u.health) && u.health.probe_ms != null) ? '%d ms'.format(u.health.probe_ms) : '-',
					routeText(u.health, u),
					u.on_down || 'block'
				]), _('No upstreams configured.')),

			E('h3', _('Clients')),
			table('wgsplit-clients', [ _('Name'), _('State'), _('Upstream'), _('Endpoint'), _('Latest handshake'), _('Received'), _('Sent') ],
				cls.map(c => [
					c.name,
					clientState(c),
					c.upstream || '-',
					peer(c).endpoint || '-',
					common.formatAge(peer(c).handshake_age),
					common.formatBytes(peer(c).rx),
					common.formatBytes(peer(c).tx)
				]), _('No clients configured.'))
		]);
	},

	render: function(data) {
		poll.add(L.bind(function() {
			return L.resolveDefault(common.callStatus(), {}).then(L.bind(function(st) {
				const old = document.getElementById('wgsplit-status');
				if (old)
					dom.content(old.parentNode, this.renderStatus(st));
			}, this));
		}, this), 5);

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', _('WireGuard Split: Overview')),
			E('div', { 'class': 'cbi-map-descr' },
				_('Live state of the WireGuard server, the upstream tunnels and the clients.')),
			E('div', { 'class': 'cbi-section' }, this.renderStatus(data[0]))
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});

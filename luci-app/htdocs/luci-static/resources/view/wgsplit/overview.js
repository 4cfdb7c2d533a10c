'use strict';
'require view';
'require poll';
'require dom';
'require ui';
'require uci';
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
			uci.load('wgsplit')
		]);
	},

	renderStatus: function(st) {
		st = L.isObject(st) ? st : {};
		const srv = L.isObject(st.server) ? st.server : {};
		const ups = Array.isArray(st.upstreams) ? st.upstreams : [];
		const cls = Array.isArray(st.clients) ? st.clients : [];

		if (st.error)
			return E('div', { 'class': 'alert-message warning', 'id': 'wgsplit-status' },
				_('wgsplit is not answering: %s').format(st.error));

		return E('div', { 'id': 'wgsplit-status' }, [
			E('h3', _('Server')),
			table('wgsplit-server', [ _('Interface'), _('State'), _('Listen port'), _('Address'), _('Public key') ], [[
				srv.interface || uci.get('wgsplit', 'server', 'interface') || 'wg0',
				badge(!!srv.running, _('running'), _('stopped')),
				String(srv.listen_port || uci.get('wgsplit', 'server', 'listen_port') || 51820),
				[ srv.address || uci.get('wgsplit', 'server', 'address') || '-', srv.address6 ? ' ' + srv.address6 : '' ].join(''),
				E('code', srv.public_key || '-')
			]], ''),

			E('h3', _('Upstreams')),
			table('wgsplit-upstreams', [ _('Name'), _('Health'), _('Endpoint'), _('Latest handshake'), _('Received'), _('Sent'), _('When down') ],
				ups.map(u => [
					u.name,
					u.enabled === false ? E('em', _('disabled')) : badge(!!u.up, _('up'), _('down')),
					u.endpoint || '-',
					common.formatAgo(u.latest_handshake),
					common.formatBytes(u.rx_bytes),
					common.formatBytes(u.tx_bytes),
					u.on_down || uci.get('wgsplit', u.name, 'on_down') || 'block'
				]), _('No upstreams configured.')),

			E('h3', _('Clients')),
			table('wgsplit-clients', [ _('Name'), _('State'), _('Upstream'), _('Endpoint'), _('Latest handshake'), _('Received'), _('Sent') ],
				cls.map(c => [
					c.name,
					c.enabled === false ? E('em', _('disabled')) : (c.expired ? E('em', _('expired')) : badge(!!c.online, _('online'), _('offline'))),
					c.upstream || '-',
					c.endpoint || '-',
					common.formatAgo(c.latest_handshake),
					common.formatBytes(c.rx_bytes),
					common.formatBytes(c.tx_bytes)
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

'use strict';
'require view';
'require ui';
'require wgsplit.common as common';

return view.extend({
	load: function() {
		// Client names from the config without its keys (read-only users may not read uci).
		return L.resolveDefault(common.callConfigView(), {});
	},

	handleExplain: function(clientEl, destEl, outEl) {
		const client = clientEl.value, dest = destEl.value.trim();
		const okDest = dest !== '' && common.checks.destination(dest) === true;
		if (!client || !okDest) {
			outEl.replaceChildren(E('div', { 'class': 'alert-message warning' },
				_('Pick a client and enter a domain or an IP address.')));
			return Promise.resolve();
		}
		outEl.replaceChildren(E('em', { 'class': 'spinning' }, _('Asking wgsplit…')));
		return common.callExplain(client, dest).then(function(res) {
			if (!L.isObject(res) || res.error) {
				outEl.replaceChildren(E('div', { 'class': 'alert-message warning' },
					_('No answer: %s').format(common.errorText(res) || _('unknown error'))));
				return;
			}
			// `wgsplit explain --json`: { client, destination, goes, rule: null |
			// { position, section, action, matched }, caveats: [], active }
			const show = v => Array.isArray(v) ? v.join(', ') : (L.isObject(v) ? JSON.stringify(v) : String(v));
			const rule = L.isObject(res.rule) ? res.rule : null;
			const goes = res.goes != null ? String(res.goes) : (res.route || '-');
			const action = rule ? rule.action
				: (/^upstream\b/.test(goes) ? 'proxy' : (goes == 'direct' || goes == 'block' ? goes : (res.action || '-')));
			const rows = [
				[ _('Client'), res.client || client ],
				[ _('Destination'), res.destination || res.dest || dest ],
				[ _('Action'), E('strong', { 'id': 'wgsplit-explain-action' }, action) ],
				[ _('Route'), E('span', { 'id': 'wgsplit-explain-goes' }, goes) ],
				[ _('Decided by'), rule
					? _('rule %d (%s): %s').format(rule.position, rule.section, rule.matched)
					: (res.rule != null ? show(res.rule) : _('the client\'s default')) ]
			];
			if (res.active === false)
				rows.push([ _('Note'), _('the client is disabled or expired: it cannot connect') ]);
			if (Array.isArray(res.caveats) && res.caveats.length)
				rows.push([ _('Caveats'), E('ul', { 'id': 'wgsplit-explain-caveats' }, res.caveats.map(c => E('li', [ String(c) ]))) ]);
			// whatever else the CLI tells, as it tells it
			const known = [ 'client', 'destination', 'dest', 'goes', 'route', 'rule', 'action', 'caveats', 'active' ];
			Object.keys(res).filter(k => known.indexOf(k) < 0 && res[k] != null).forEach(k => rows.push([ k, show(res[k]) ]));
			outEl.replaceChildren(E('table', { 'class': 'table', 'id': 'wgsplit-explain-result' },
				rows.map(r => E('tr', { 'class': 'tr' }, [ E('td', { 'class': 'td left', 'style': 'width:33%' }, r[0]), E('td', { 'class': 'td left' }, L.isObject(r[1]) ? r[1] : [ String(r[1]) ]) ]))));
		});
	},

	render: function(config) {
		const clients = (L.isObject(config) && Array.isArray(config.clients) ? config.clients : []).map(c => c.name);
		const clientEl = E('select', { 'class': 'cbi-input-select', 'id': 'wgsplit-explain-client' },
			clients.map(c => E('option', { 'value': c }, c)));
		const destEl = E('input', { 'type': 'text', 'class': 'cbi-input-text', 'id': 'wgsplit-explain-dest', 'placeholder': 'netflix.com / 8.8.8.8 / 1.1.1.1:443/tcp' });
		const outEl = E('div', { 'id': 'wgsplit-explain-out' });

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', _('WireGuard Split: Explain')),
			E('div', { 'class': 'cbi-map-descr' },
				_('Which way does a connection go? Pick a client and a destination to see the route and the rule that decided it.')),
			E('div', { 'class': 'cbi-section' }, [
				E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('Client')), E('div', { 'class': 'cbi-value-field' }, clientEl) ]),
				E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('Destination')), E('div', { 'class': 'cbi-value-field' }, destEl) ]),
				E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, ''), E('div', { 'class': 'cbi-value-field' },
					E('button', { 'class': 'btn cbi-button cbi-button-action', 'id': 'wgsplit-explain-go',
						'click': ui.createHandlerFn(this, 'handleExplain', clientEl, destEl, outEl) }, _('Explain'))) ]),
				outEl
			])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});

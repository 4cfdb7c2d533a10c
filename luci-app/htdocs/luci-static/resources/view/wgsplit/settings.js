'use strict';
'require view';
'require form';
'require uci';
'require wgsplit.common as common';

const v = common.validator;

return view.extend({
	load: function() {
		return uci.load('wgsplit');
	},

	render: function() {
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

		o = s.taboption('general', form.Value, 'listen_port', _('Listen port'));
		o.datatype = 'port';
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
		o.datatype = 'or(host, hostport, ipaddrport(1))';

		o = s.taboption('general', form.Value, 'mtu', _('MTU'));
		o.datatype = 'range(1280,9000)';
		o.placeholder = '1420';

		o = s.taboption('dns', form.Value, 'dns_port', _('Resolver port'));
		o.datatype = 'port';
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

		return m.render();
	}
});

'use strict';
/*
 * The stand-in's datatype engine against LuCI's own validation.js, case by
 * case: every datatype the views use (and the combinators) on a corpus of
 * values, optional and required, compared on the verdict, the value left in
 * the validator (what validate() is handed) and the message. LuCI's code is
 * not in this repository: give the path of a validation.js from a LuCI
 * checkout (modules/luci-base/htdocs/luci-static/resources/validation.js).
 *
 *   LUCI_VALIDATION_JS=path node tests/luci/real-validation.test.js
 * Prints 'N passed, M failed' (one case each); without the variable, a skip.
 */
const fs = require('fs');
const path = require('path');
const file = process.env.LUCI_VALIDATION_JS;
if (!file) {
	console.log('skip: set LUCI_VALIDATION_JS to a LuCI validation.js to compare with');
	console.log('0 passed, 0 failed');
	process.exit(0);
}
const L = require(path.join(__dirname, 'stub/luci.js'));   // also String.prototype.format, as LuCI's
const src = fs.readFileSync(file, 'utf8');
/* what validation.js needs of LuCI around it: baseclass, _(), L.raise, findParent, CustomEvent */
const baseclass = { extend(props) { function C() { if (this.__init__) this.__init__.apply(this, arguments); } Object.assign(C.prototype, props); return C; } };
global.findParent = () => true;   // every field counts as on the page
global.CustomEvent = class { constructor(t, o) { this.type = t; this.detail = o && o.detail; } };
const Lr = { raise(t, fmt, ...a) { throw new Error(t + ': ' + fmt.format(...a)); } };
const VF = new Function('_', 'L', 'baseclass', src.replace(/^'use strict';/, ''))(s => s, Lr, baseclass);
const factory = new VF();
const field = v => ({ value: v, classList: { add() {}, remove() {} }, setAttribute() {}, removeAttribute() {}, dispatchEvent() {} });

const types = [ 'cidr4', 'cidr6', 'cidr', 'ipaddr', 'ipaddr(1)', 'ip4addr', 'ip6addr', 'ip6addr(1)', 'or(cidr, ipaddr(1))', 'ipaddrport(1)',
	'and(uinteger, range(1,65535))', 'and(uinteger, range(1280,9000))', 'and(uinteger, range(0,65535))', 'uinteger', 'port', 'portrange',
	'maxlength(15)', 'string', 'host', 'hostport', 'hostname', 'uciname', 'netdevname', 'range(1280,9000)', 'or(host, hostport, ipaddrport(1))',
	'cidr4(1)', 'neg(ipaddr(1))', 'list(port)', 'or("auto", port)', 'integer', 'float', 'ufloat', 'min(3)', 'max(3)', 'length(3)', 'rangelength(2,4)', 'minlength(2)' ];
const values = [ '', '10.8.0.1/24', '10.8.0.1', '10.8.0.300/24', '10.8.0.1/33', '10.8.0.1/-8', '10.0.0.0/255.0.0.0', 'fd42:8::1/64', 'fd42:8::1', 'fd42:::1/64',
	'::', '::/0', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7::8', '::ffff:10.0.0.1', '::ffff:10.0.0.1/128', 'fe80::1%eth0',
	'[::1]:8274', '::1:8274', '127.0.0.1:8274', '127.0.0.1:0', '127.0.0.1:99999', 'localhost:8274', 'vpn.example.net', 'vpn.example.net:51820',
	'vpn.example.net:0', 'bad host!', '1.2.3', 'a-b', 'a_b', '_x', 'x.', '0', '1', '1.5', '-1', '65535', '65536', '1e3', ' 5', '5 ', '1280', '9000', '9001',
	'1420.5', 'wg0', 'wg0_name_too_long', 'äb', 'äbc', 'auto', '!1.2.3.4', '53 5353', '53 x', 'abc', '0x10', '007', '8.8.8.0/24', '2001:db8::/32',
	'google.com', '300.1.1.1', '01.2.3.4', '1.2.3.4/8', '1.2.3.4/08', 'fd42::1/064', '12345:1::', 'g::1' ];
let n = 0, diffs = 0;
const known = t => /^(\w+)/.exec(t)[1] in factory.types;
for (const t of types.filter(known)) for (const v of values) for (const optional of [ true, false ]) {
	n++;
	const seen = [ [], [] ];
	const rv = factory.create(field(v), t, optional, x => (seen[0].push(x), true));
	const rok = rv.validate();
	const sv = L.stub.validation.create(field(v), t, optional, x => (seen[1].push(x), true));
	const sok = sv.validate();
	const r = [ rok, rv.value, rok ? null : rv.error, seen[0] ], s = [ sok, sv.value, sok ? null : sv.error, seen[1] ];
	if (JSON.stringify(r) != JSON.stringify(s)) {
		diffs++;
		if (diffs <= 40) console.log(`FAIL ${t} ${JSON.stringify(v)} optional=${optional}\n  LuCI  ${JSON.stringify(r)}\n  stand-in ${JSON.stringify(s)}`);
	}
}
console.log(`${n - diffs} passed, ${diffs} failed`);
process.exit(diffs ? 1 : 0);

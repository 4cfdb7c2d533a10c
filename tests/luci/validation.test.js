'use strict';
/*
 * Fidelity of the LuCI stand-in's datatype engine (stub/luci.js) to LuCI's
 * validation.js, for the behaviours the wgsplit views depend on. Issue #14:
 * real LuCI runs an option's datatype first and its validate() after, with
 * the value the datatype left, and `cidr4` leaves the prefix ("24") because
 * it checks it with apply('ip4prefix', …); the stand-in did not, so a
 * Settings page no router could save passed its tests.
 *
 *   node tests/luci/validation.test.js        prints 'N passed, M failed'
 */
const L = require('./stub/luci.js');

const check = L.stub.checkDatatype;
const tests = [];
const test = (name, fn) => tests.push({ name, fn });
function eq(a, b, msg) {
	if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
}
/* the value a datatype leaves in the validator after checking V */
function leftover(type, v) {
	const vd = L.stub.validation.create({ value: v }, type, true, null);
	if (!vd.validate()) throw new Error(`${type} rejects ${v}: ${vd.error}`);
	return vd.value;
}
const accepts = (type, v) => check(type, v) === true;

test('cidr4 and cidr6 leave the prefix as the value, as LuCI\'s apply() does', () => {
	eq(leftover('cidr4', '10.8.0.1/24'), '24', 'cidr4');
	eq(leftover('cidr6', 'fd42:8::1/64'), '64', 'cidr6');
	eq(leftover('cidr', '10.8.0.2/32'), '32', 'cidr');
	eq(leftover('ipaddr', '10.8.0.0/16'), '16', 'ipaddr with a prefix');
	eq(leftover('ipaddrport(1)', '127.0.0.1:8274'), '8274', 'ipaddrport: the port');
	// types that apply() nothing keep the value
	eq(leftover('ipaddr(1)', '192.168.1.1'), '192.168.1.1', 'ipaddr(1)');
	eq(leftover('maxlength(15)', 'wg0'), 'wg0', 'maxlength');
	eq(leftover('string', 'x y'), 'x y', 'string');
});

test('validate() runs after the datatype and is handed what the datatype left', () => {
	const seen = [];
	const r = check('cidr4', '10.8.0.1/24', true, v => (seen.push(v), true));
	eq([ r, seen ], [ true, [ '24' ] ], 'validate() sees the prefix');
	// the pattern settings.js had: cidr4 + a check of the whole address, which
	// real LuCI fails with exactly the message the issue reports
	const old = v => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(v) ? true : 'Expecting an IP address or CIDR, e.g. 8.8.8.0/24 or 2001:db8::/32';
	eq(check('cidr4', '10.8.0.1/24', true, old), 'Expecting an IP address or CIDR, e.g. 8.8.8.0/24 or 2001:db8::/32', 'old settings.js');
	// a failing datatype does not call validate()
	let called = false;
	eq(check('cidr4', '10.8.0.1', true, () => (called = true)), 'Expecting: valid IPv4 CIDR', 'message');
	eq(called, false, 'validate() after a failed datatype');
});

test('empty values: optional passes and reaches validate(), required reads "non-empty value"', () => {
	const seen = [];
	eq(check('cidr4', '', true, v => (seen.push(v), true)), true, 'optional');
	eq(seen, [ '' ], 'validate() of an empty optional value');
	eq(check('cidr4', '', false, () => true), 'Expecting: non-empty value', 'required');
});

test('addresses as LuCI reads them', () => {
	for (const [ t, v, want ] of [
		[ 'cidr4', '10.8.0.300/24', false ], [ 'cidr4', '10.8.0.1/33', false ], [ 'cidr4', '10.8.0.1', false ],
		[ 'cidr4', '10.8.0.1/-8', false ], [ 'cidr4(1)', '10.8.0.1/-8', true ],
		[ 'cidr6', 'fd42:8::1/64', true ], [ 'cidr6', 'fd42:8::1/129', false ], [ 'cidr6', 'fd42:::1/64', false ],
		[ 'cidr6', '::/0', true ], [ 'cidr6', '::ffff:10.0.0.1/128', true ], [ 'cidr6', '1:2:3:4:5:6:7::8/64', false ],
		[ 'ipaddr', '10.0.0.0/255.0.0.0', true ], [ 'ipaddr(1)', '10.0.0.1/8', false ], [ 'ipaddr(1)', 'fe80::1', true ],
		[ 'ip6addr(1)', '1:2:3:4:5:6:7:8', true ], [ 'ip6addr(1)', '1:2:3:4:5:6:7', false ], [ 'ip6addr(1)', '1::2::3', false ],
		[ 'ipaddrport(1)', '[::1]:8274', true ], [ 'ipaddrport(1)', '::1:8274', false ], [ 'ipaddrport(1)', 'localhost:8274', false ],
		[ 'port', '0', true ], [ 'port', '65535', true ], [ 'port', '65536', false ], [ 'port', '1e3', false ],
		[ 'host', 'vpn.example.net', true ], [ 'host', '203.0.113.5', true ], [ 'host', 'bad host!', false ],
		[ 'hostport', 'vpn.example.net:51820', true ], [ 'hostport', 'vpn.example.net:99999', false ],
		[ 'hostname', '1.2.3', false ], [ 'uciname', 'a-b', false ],
		[ 'range(1280,9000)', '1279', false ], [ 'range(1280,9000)', '9000', true ], [ 'uinteger', '-1', false ],
		[ 'maxlength(3)', 'äb', true ], [ 'maxlength(3)', 'äbc', false ],
		[ 'or(cidr, ipaddr(1))', '1.1.1.1', true ], [ 'or(cidr, ipaddr(1))', '8.8.8.0/24', true ], [ 'or(cidr, ipaddr(1))', 'google.com', false ],
		[ 'or("auto", port)', 'auto', true ], [ 'and(port, range(1,9))', '0', false ], [ 'neg(ipaddr(1))', '!1.2.3.4', true ],
		[ 'list(port)', '53 5353', true ], [ 'list(port)', '53 x', false ]
	]) eq(accepts(t, v), want, `${t} on ${v}`);
});

test('messages name what was expected, as LuCI words them', () => {
	eq(check('port', 'x'), 'Expecting: valid port value', 'port');
	eq(check('or(cidr4, "any")', 'x'), 'Expecting: One of the following: \n - valid IPv4 CIDR\n - "any"', 'or');
	eq(check('range(1280,9000)', '1'), 'Expecting: value between 1280 and 9000', 'range');
});

test('an unknown type in an expression is an error, not a pass', () => {
	let threw = false;
	try { check('cidr5', '1.2.3.4/8'); } catch (e) { threw = /unknown type cidr5/.test(e.message); }
	eq(threw, true, 'cidr5');
});

let passed = 0, failed = 0;
for (const t of tests) {
	try { t.fn(); console.log('ok   ' + t.name); passed++; }
	catch (e) { console.log('FAIL ' + t.name + ': ' + e.message); failed++; }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

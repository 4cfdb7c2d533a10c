/*
 * A small stand-in for the LuCI JavaScript runtime, for testing the
 * luci-app-wgsplit views outside a router. It implements the parts of
 * LuCI's API the views use, with LuCI's names and calling conventions:
 *
 *   L (require, bind, isObject, toArray, resolveDefault, resource, url),
 *   E(), _(), String.prototype.format, and the modules baseclass, view,
 *   form (Map, NamedSection, TypedSection, GridSection, Value, Flag,
 *   ListValue, DynamicList, DummyValue, TextValue), uci, rpc, ui, poll, dom.
 *
 * Two modes:
 *  - browser: renders real DOM; uci data and rpc answers come from the test
 *    server (tests/luci/server.js), and every uci.set/add/remove/save call is
 *    recorded there;
 *  - node (require this file): no DOM; forms record their declarations so a
 *    test can read which options each section type writes.
 *
 * Not LuCI's code: written for these tests, behaviour kept close to LuCI's
 * where the views depend on it (module loading with 'require' lines,
 * GridSection add/edit modal, option parse/validate/depends rules).
 */
(function(global) {
	'use strict';

	const inBrowser = typeof document !== 'undefined';
	const recorded = [];           // uci calls, in order
	let rpcHandler = null;         // node mode: function(object, method, args) -> result

	/* ---------------- helpers ---------------- */

	function isObject(v) { return v != null && typeof v == 'object' && !Array.isArray(v); }
	function toArray(v) {
		if (v == null) return [];
		if (Array.isArray(v)) return v;
		return String(v).trim() === '' ? [] : String(v).trim().split(/\s+/);
	}

	String.prototype.format = function() {
		const args = arguments;
		let i = 0;
		return this.replace(/%(?:(\d+)\$)?([-+ 0#]*)(\d*)(?:\.(\d+))?([sdqhfx%]|1024mB)/g, function(m, pos, flags, width, prec, conv) {
			if (conv == '%') return '%';
			const a = pos ? args[+pos - 1] : args[i++];
			switch (conv) {
			case 'd': return String(Math.floor(+a || 0));
			case 'f': return prec != null ? (+a).toFixed(+prec) : String(+a);
			case 'x': return (+a >>> 0).toString(16);
			case 'h': return String(a == null ? '' : a).replace(/[<>&"']/g, c => '&#' + c.charCodeAt(0) + ';');
			case 'q': return String(a == null ? '' : a).replace(/["']/g, c => '&#' + c.charCodeAt(0) + ';');
			case '1024mB': return String(a) + ' B';
			default: return String(a == null ? '' : a);
			}
		});
	};

	/* translations: the catalog the page loaded (msgid -> msgstr), as LuCI's _() */
	let catalog = {};
	function _(s) { return (catalog[s] != null && catalog[s] !== '') ? catalog[s] : s; }
	function N_(n, s, p) { return n == 1 ? s : p; }

	/* E(tag, attrs, children): LuCI's element builder. Pages get pageE, which
	   appends as LuCI's dom.append does; the stand-in's own widgets keep a
	   flattening E (they are not what is under test). */
	function E(tag, attrs, children) { return buildE(appendFlat, tag, attrs, children); }
	function pageE(tag, attrs, children) { return buildE(appendChildren, tag, attrs, children); }
	function buildE(append, tag, attrs, children) {
		if (!inBrowser) {
			// node mode: an inert element, enough for views to build their trees
			const kids = [];
			return { tag: tag, attrs: attrs, children: kids, content: children, value: isObject(attrs) ? attrs.value : undefined,
				appendChild: c => (kids.push(c), c), insertBefore: c => (kids.push(c), c),
				replaceChildren: () => {}, querySelector: () => null, querySelectorAll: () => [],
				setAttribute: () => {}, addEventListener: () => {}, classList: { add() {}, remove() {}, toggle() {} } };
		}
		if (Array.isArray(tag) || tag == null) {
			const frag = document.createDocumentFragment();
			append(frag, Array.isArray(tag) ? tag : attrs);
			return frag;
		}
		const el = document.createElement(tag);
		if (append === appendChildren) {
			// as LuCI's dom.create: only a non-object or an array is the children;
			// an element in the attributes' place is taken as attributes and not
			// appended (E('p', E('em', …)) is an empty <p> on a router)
			if (!(attrs instanceof Object) || Array.isArray(attrs)) {
				children = attrs;
				attrs = null;
			}
			else if (attrs instanceof Node) {
				attrs = null;
			}
		}
		else if (!isObject(attrs) || attrs instanceof Node) {
			children = attrs;
			attrs = null;
		}
		for (const k in (attrs || {})) {
			const v = attrs[k];
			if (v == null) continue;
			if (typeof v == 'function') el.addEventListener(k, v);
			else if (k == 'style' && isObject(v)) Object.assign(el.style, v);
			else el.setAttribute(k, typeof v == 'object' ? JSON.stringify(v) : v);
		}
		append(el, children);
		return el;
	}

	function appendFlat(el, children) {
		if (children == null) return;
		if (!Array.isArray(children)) children = [ children ];
		for (const c of children) {
			if (c == null || c === false) continue;
			if (Array.isArray(c)) appendFlat(el, c);
			else if (typeof c == 'object' && c.nodeType) el.appendChild(c);
			else el.appendChild(document.createTextNode(String(c)));
		}
	}

	/* as LuCI's dom.append (luci.js): an array's elements are appended and its
	   other members (a nested array too: it is not flattened) become text; a
	   lone string is set as innerHTML, so backend text goes in an array */
	function appendChildren(el, children) {
		if (Array.isArray(children)) {
			for (const c of children) {
				if (typeof c == 'object' && c != null && c.nodeType) el.appendChild(c);
				else if (c != null) el.appendChild(document.createTextNode(String(c)));
			}
		}
		else if (typeof children == 'function') appendChildren(el, children(el));
		else if (typeof children == 'object' && children != null && children.nodeType) el.appendChild(children);
		else if (children != null) el.innerHTML = String(children);
	}

	/* ---------------- class system ---------------- */

	function extend(Base, props) {
		class C extends Base {}
		for (const k of Object.keys(props || {}))
			C.prototype[k] = props[k];
		C.extend = function(p) { return extend(C, p); };
		return C;
	}
	class BaseClass {
		super(method, args) {
			return Object.getPrototypeOf(Object.getPrototypeOf(this))[method].apply(this, args || []);
		}
	}
	BaseClass.extend = function(p) { return extend(BaseClass, p); };

	/* ---------------- transport ---------------- */

	function post(url, body) {
		return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
			.then(r => r.json());
	}

	/* ---------------- rpc ---------------- */

	const rpc = {
		declare: function(d) {
			return function() {
				const args = {};
				(d.params || []).forEach((p, i) => { if (arguments[i] !== undefined) args[p] = arguments[i]; });
				const p = inBrowser
					? post('/ubus', { object: d.object, method: d.method, args: args })
					: Promise.resolve(rpcHandler ? rpcHandler(d.object, d.method, args) : {});
				return p.then(function(res) {
					if (res && res.__rpc_error) throw new Error(res.__rpc_error);
					if (isObject(d.expect)) {
						const keys = Object.keys(d.expect);
						if (keys.length == 1) return (res && res[keys[0]] !== undefined) ? res[keys[0]] : d.expect[keys[0]];
					}
					return res;
				});
			};
		}
	};

	/* ---------------- uci ---------------- */

	const uci = {
		state: {},      // conf -> { sid: section }
		order: {},      // conf -> [sid]
		changes: [],    // not yet saved
		counter: 0,

		load: function(conf) {
			if (this.state[conf]) return Promise.resolve([ conf ]);
			const p = inBrowser ? fetch('/uci/' + conf).then(r => r.json()) : Promise.resolve(uci.fixtures[conf] || []);
			return p.then(secs => {
				this.state[conf] = {};
				this.order[conf] = [];
				for (const s of secs) {
					const sid = s['.name'];
					this.state[conf][sid] = Object.assign({}, s);
					this.order[conf].push(sid);
				}
				return [ conf ];
			});
		},
		// as LuCI's uci.js: synchronous, returns undefined (a page that chains
		// .then() on it throws on a router)
		unload: function(confs) {
			(Array.isArray(confs) ? confs : [ confs ]).forEach(c => { delete this.state[c]; delete this.order[c]; });
		},
		fixtures: {},

		record: function(call) {
			recorded.push(call);
			this.changes.push(call);
		},
		sections: function(conf, type, cb) {
			const out = (this.order[conf] || []).map(sid => this.state[conf][sid])
				.filter(s => !type || s['.type'] == type);
			if (cb) out.forEach(s => cb(s, s['.name']));
			return out;
		},
		get: function(conf, sid, opt) {
			const s = (this.state[conf] || {})[sid];
			if (!s) return null;
			if (opt == null) return s['.type'];
			return s[opt] !== undefined ? s[opt] : null;
		},
		get_first: function(conf, type, opt) {
			const s = this.sections(conf, type)[0];
			return s ? (opt == null ? s : this.get(conf, s['.name'], opt)) : null;
		},
		set: function(conf, sid, opt, val) {
			const s = (this.state[conf] || {})[sid];
			if (!s) return;
			if (val == null || val === '' || (Array.isArray(val) && !val.length)) {
				if (s[opt] === undefined) return;
				delete s[opt];
				this.record([ 'unset', conf, sid, opt ]);
			}
			else {
				s[opt] = Array.isArray(val) ? val.slice() : String(val);
				this.record([ 'set', conf, sid, opt, s[opt] ]);
			}
		},
		unset: function(conf, sid, opt) { this.set(conf, sid, opt, null); },
		add: function(conf, type, name) {
			const sid = name || ('new' + (this.counter++).toString(16));
			this.state[conf] = this.state[conf] || {};
			this.order[conf] = this.order[conf] || [];
			this.state[conf][sid] = { '.name': sid, '.type': type, '.anonymous': !name };
			this.order[conf].push(sid);
			this.record([ 'add', conf, type, sid ]);
			return sid;
		},
		remove: function(conf, sid) {
			if (!(this.state[conf] || {})[sid]) return;
			delete this.state[conf][sid];
			this.order[conf] = this.order[conf].filter(s => s != sid);
			this.record([ 'remove', conf, sid ]);
		},
		move: function(conf, sid1, sid2, after) {
			const o = this.order[conf].filter(s => s != sid1);
			let i = sid2 == null ? o.length : o.indexOf(sid2) + (after ? 1 : 0);
			o.splice(i, 0, sid1);
			this.order[conf] = o;
			this.record([ 'move', conf, sid1, sid2, !!after ]);
		},
		save: function() {
			const ch = this.changes;
			this.changes = [];
			if (!inBrowser || !ch.length) return Promise.resolve();
			const full = {};
			for (const c in this.state)
				full[c] = this.order[c].map(sid => this.state[c][sid]);
			return post('/uci/save', { changes: ch, state: full });
		},
		apply: function() {
			return inBrowser ? post('/uci/apply', {}) : Promise.resolve();
		}
	};

	/* ---------------- validation: LuCI's datatype engine ----------------
	 *
	 * Behaves as LuCI's validation.js where the views depend on it (this is a
	 * re-statement of its rules, not its code):
	 *  - a datatype is an expression, `cidr4`, `range(1280,9000)`,
	 *    `or(cidr, ipaddr(1))`: names with optional argument lists, numbers and
	 *    quoted strings as arguments;
	 *  - a validator holds the value under test in `this.value`; a type checks
	 *    it and records `this.error`, the description of what was expected;
	 *  - `apply(type, value, args)` runs another type, and when it is given a
	 *    value it REPLACES `this.value` and leaves it replaced: `cidr4` checks
	 *    its prefix with apply('ip4prefix', '24'), so after `cidr4` the value is
	 *    '24';
	 *  - the option's own validate function runs after the datatype passed,
	 *    with that (possibly replaced) value: the trap issue #14 hit;
	 *  - an empty value is an error only when the field is not optional, and
	 *    then the validate function is not called; a failing datatype reads
	 *    "Expecting: <description>".
	 */
	function parseIPv4(s) {
		const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
		if (!m) return null;
		const b = m.slice(1).map(Number);
		return b.every(x => x <= 255) ? b : null;
	}
	/* eight 16-bit words, or null; a trailing dotted quad counts as two words */
	function parseIPv6(s) {
		let words = [];
		const dotted = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(s);
		if (dotted) {
			const b = parseIPv4(dotted[2]);
			if (!b) return null;
			s = dotted[1] + ((b[0] << 8) | b[1]).toString(16) + ':' + ((b[2] << 8) | b[3]).toString(16);
		}
		if (!/^[0-9a-fA-F:]+$/.test(s)) return null;
		const halves = s.split('::');
		if (halves.length > 2) return null;
		const groups = h => h === '' ? [] : h.split(':');
		const head = groups(halves[0]), tail = halves.length == 2 ? groups(halves[1]) : [];
		if (halves.length == 1 ? head.length != 8 : head.length + tail.length > 7) return null;
		for (const g of head.concat(tail))
			if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
		words = head.map(g => parseInt(g, 16));
		while (halves.length == 2 && words.length + tail.length < 8) words.push(0);
		return words.concat(tail.map(g => parseInt(g, 16)));
	}
	const intOf = x => /^-?\d+$/.test(x) ? +x : NaN;
	const decOf = x => /^-?\d+(?:\.\d+)?$/.test(x) ? +x : NaN;
	const byteLen = x => new TextEncoder().encode(String(x)).length;

	const types = {
		string() { return true; },
		file() { return true; },
		directory() { return true; },
		device() { return true; },
		integer() { return this.assert(!isNaN(intOf(this.value)), _('valid integer value')); },
		uinteger() { return this.assert(intOf(this.value) >= 0, _('positive integer value')); },
		float() { return this.assert(!isNaN(decOf(this.value)), _('valid decimal value')); },
		ufloat() { return this.assert(decOf(this.value) >= 0, _('positive decimal value')); },
		ip4prefix() { return this.assert(/^\d+$/.test(this.value) && +this.value <= 32, _('valid IPv4 prefix value (0-32)')); },
		ip6prefix() { return this.assert(/^\d+$/.test(this.value) && +this.value <= 128, _('valid IPv6 prefix value (0-128)')); },
		ip4addr(nomask) {
			const m = (nomask ? /^([\d.]+)$/ : /^([\d.]+)(?:\/([\d.]+\.[\d.]+)|\/(\d{1,2}))?$/).exec(this.value);
			const ok = !!m && !!parseIPv4(m[1]) && (m[2] ? !!parseIPv4(m[2]) : m[3] ? this.apply('ip4prefix', m[3]) : true);
			return this.assert(ok, nomask ? _('valid IPv4 address') : _('valid IPv4 address or network'));
		},
		ip6addr(nomask) {
			const m = (nomask ? /^([0-9a-fA-F:.]+)$/ : /^([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?$/).exec(this.value);
			const ok = !!m && !!parseIPv6(m[1]) && (m[2] ? this.apply('ip6prefix', m[2]) : true);
			return this.assert(ok, nomask ? _('valid IPv6 address') : _('valid IPv6 address or prefix'));
		},
		ipaddr(nomask) {
			return this.assert(this.apply('ip4addr', null, [ nomask ]) || this.apply('ip6addr', null, [ nomask ]),
				nomask ? _('valid IP address') : _('valid IP address or prefix'));
		},
		cidr4(negative) {
			const m = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\/(-)?(\d{1,2})$/.exec(this.value);
			return this.assert(!!m && !!parseIPv4(m[1]) && (negative || !m[2]) && this.apply('ip4prefix', m[3]), _('valid IPv4 CIDR'));
		},
		cidr6(negative) {
			const m = /^([0-9a-fA-F:.]+)\/(-)?(\d{1,3})$/.exec(this.value);
			return this.assert(!!m && !!parseIPv6(m[1]) && (negative || !m[2]) && this.apply('ip6prefix', m[3]), _('valid IPv6 CIDR'));
		},
		cidr(negative) {
			return this.assert(this.apply('cidr4', null, [ negative ]) || this.apply('cidr6', null, [ negative ]), _('valid IPv4 or IPv6 CIDR'));
		},
		port() { const p = intOf(this.value); return this.assert(p >= 0 && p <= 65535, _('valid port value')); },
		portrange() {
			const m = /^(\d+)-(\d+)$/.exec(this.value);
			if (m) return this.assert(+m[1] <= +m[2] && +m[2] <= 65535, _('valid port or port range (port1-port2)'));
			return this.assert(this.apply('port'), _('valid port or port range (port1-port2)'));
		},
		hostname(strict) {
			const v = this.value;
			const ok = v.length <= 253 && (/^[a-zA-Z0-9_]+$/.test(v) || (/^[a-zA-Z0-9_][a-zA-Z0-9_\-.]*[a-zA-Z0-9]\.?$/.test(v) && /[^0-9.]/.test(v)))
				&& !(strict && v[0] == '_');
			return this.assert(ok, _('valid hostname'));
		},
		host(ipv4only) {
			return this.assert(this.apply('hostname') || this.apply(ipv4only == 1 ? 'ip4addr' : 'ipaddr', null, [ 'nomask' ]),
				_('valid hostname or IP address'));
		},
		hostport(ipv4only) {
			const hp = this.value.split(':');
			return this.assert(hp.length == 2 && this.apply('host', hp[0], [ ipv4only ]) && this.apply('port', hp[1]), _('valid host:port'));
		},
		ip4addrport() {
			const hp = this.value.split(':');
			return this.assert(hp.length == 2 && this.apply('ip4addr', hp[0], [ true ]) && this.apply('port', hp[1]), _('valid IPv4 address:port'));
		},
		ipaddrport(bracket) {
			const m4 = /^([^\[\]:]+):(\d+)$/.exec(this.value);
			if (m4)
				return this.assert(this.apply('ip4addr', m4[1], [ true ]) && this.apply('port', m4[2]), _('valid address:port'));
			const m6 = (bracket == 1 ? /^\[(.+)\]:(\d+)$/ : /^([^\[\]]+):(\d+)$/).exec(this.value);
			return this.assert(!!m6 && this.apply('ip6addr', m6[1], [ true ]) && this.apply('port', m6[2]), _('valid address:port'));
		},
		uciname() { return this.assert(/^[a-zA-Z0-9_]+$/.test(this.value), _('valid UCI identifier')); },
		netdevname() {
			if (this.value == '.' || this.value == '..') return this.assert(false, _('valid network device name, not "." or ".."'));
			return this.assert(/^[^:\/%\s]{1,15}$/.test(this.value), _('valid network device name between 1 and 15 characters not containing ":", "/", "%" or spaces'));
		},
		range(min, max) { const v = decOf(this.value); return this.assert(v >= +min && v <= +max, _('value between %f and %f').format(min, max)); },
		min(min) { return this.assert(decOf(this.value) >= +min, _('value greater or equal to %f').format(min)); },
		max(max) { return this.assert(decOf(this.value) <= +max, _('value smaller or equal to %f').format(max)); },
		length(n) { return this.assert(byteLen(this.value) == +n, _('value with %d characters').format(n)); },
		minlength(n) { return this.assert(byteLen(this.value) >= +n, _('value with at least %d characters').format(n)); },
		maxlength(n) { return this.assert(byteLen(this.value) <= +n, _('value with at most %d characters').format(n)); },
		rangelength(a, b) { const n = byteLen(this.value); return this.assert(n >= +a && n <= +b, _('value between %d and %d characters').format(a, b)); },
		/* or/and/neg/list get their arguments uncompiled: literals and {type, args} terms */
		or(...terms) {
			const errors = [];
			for (const t of terms) {
				if (!isObject(t)) { if (String(t) == this.value) return this.assert(true); errors.push('"%s"'.format(t)); }
				else if (this.run(t)) return this.assert(true);
				else errors.push(this.error);
			}
			return this.assert(false, _('One of the following: %s').format('\n - ' + errors.join('\n - ')));
		},
		and(...terms) {
			for (const t of terms) {
				if (!isObject(t)) { if (String(t) != this.value) return this.assert(false, '"%s"'.format(t)); }
				else if (!this.run(t)) return this.assert(false, this.error);
			}
			return this.assert(true);
		},
		neg(t) {
			this.value = this.value.replace(/^[ \t]*![ \t]*/, '');
			return this.run(t) ? this.assert(true) : this.assert(false, _('Potential negation of: %s').format(this.error));
		},
		list(t) {
			for (const tok of this.value.match(/[^ \t]+/g) || [])
				if (!this.apply(t, tok)) return this.assert(false, this.error);
			return this.assert(true);
		}
	};
	/* "or(cidr, ipaddr(1))" -> { type: 'or', args: [ {type:'cidr', args:[]}, {type:'ipaddr', args:[1]} ] } */
	function compileDatatype(code) {
		let pos = 0;
		const fail = why => { throw new Error('stand-in: datatype "' + code + '": ' + why); };
		const ws = () => { while (/[ \t]/.test(code[pos] || '')) pos++; };
		function term() {
			ws();
			let m;
			const rest = code.slice(pos);
			if ((m = /^(['"])(.*?)\1/.exec(rest))) { pos += m[0].length; return m[2]; }
			if ((m = /^-?\d+(?:\.\d+)?(?![\w])/.exec(rest))) { pos += m[0].length; return parseFloat(m[0]); }
			if (!(m = /^[A-Za-z_]\w*/.exec(rest))) fail('unexpected "' + rest + '"');
			pos += m[0].length;
			if (!types[m[0]]) fail('unknown type ' + m[0]);   // LuCI raises a SyntaxError too
			const t = { type: m[0], args: [] };
			ws();
			if (code[pos] == '(') {
				pos++;
				ws();
				if (code[pos] == ')') pos++;
				else for (;;) {
					t.args.push(term());
					ws();
					if (code[pos] == ',') { pos++; continue; }
					if (code[pos] == ')') { pos++; break; }
					fail('expected , or )');
				}
			}
			return t;
		}
		const t = term();
		ws();
		if (pos != code.length) fail('trailing "' + code.slice(pos) + '"');
		if (!isObject(t)) fail('not a type');
		return t;
	}

	class Validator {
		constructor(field, type, optional, vfunc) {
			this.field = field;
			this.optional = optional;
			this.vfunc = vfunc;
			this.term = compileDatatype(type || 'string');
			this.value = '';
			this.error = null;
		}
		assert(cond, message) {
			this.error = cond ? null : message;
			return !!cond;
		}
		/* run a compiled term on this.value */
		run(t) {
			return types[t.type].apply(this, t.args);
		}
		/* LuCI's apply: a given value replaces this.value, and stays */
		apply(name, value, args) {
			const t = isObject(name) ? name : (types[name] ? { type: name, args: args || [] } : null);
			if (!t) return false;
			if (value != null) this.value = value;
			return types[t.type].apply(this, t === name ? t.args : (args || []));
		}
		/* true, or the message LuCI shows under the field */
		check(value) {
			this.value = value == null ? '' : String(value);
			this.error = null;
			if (this.value.length === 0) {
				if (!this.assert(this.optional, _('non-empty value')))
					return _('Expecting: %s').format(this.error);
			}
			else if (!this.run(this.term)) {
				return _('Expecting: %s').format(this.error);
			}
			if (typeof this.vfunc == 'function') {
				const r = this.vfunc(this.value);
				if (r !== true) return String(r);
			}
			return true;
		}
		/* LuCI's Validator.validate(): a field in no page and no [data-field] holder is not checked */
		validate() {
			const f = this.field;
			if (inBrowser && f && f.closest && !f.closest('body') && !f.closest('[data-field]'))
				return true;
			const r = this.check(f ? f.value : '');
			if (r !== true && this.error == null) this.error = r;
			return r === true;
		}
	}

	const validation = {
		types: types,
		compile: compileDatatype,
		create: function(field, type, optional, vfunc) { return new Validator(field, type, optional, vfunc); }
	};

	/* a datatype on one value: true or the message (the test hook the schema test uses) */
	function checkDatatype(dt, value, optional, vfunc) {
		return new Validator(null, dt || 'string', optional !== false, vfunc).check(value);
	}

	/* ---------------- ui / poll / dom ---------------- */

	const ui = {
		showModal: function(title, children) {
			if (!inBrowser) return;
			ui.hideModal();
			const modal = E('div', { 'class': 'modal', 'id': 'modal' }, [ title ? E('h4', title) : null, children ]);
			document.body.appendChild(E('div', { 'id': 'modal_overlay' }, modal));
			document.body.classList.add('modal-overlay-active');
			return modal;
		},
		hideModal: function() {
			if (!inBrowser) return;
			const o = document.getElementById('modal_overlay');
			if (o) o.remove();
			document.body.classList.remove('modal-overlay-active');
		},
		addNotification: function(title, children, cls) {
			if (!inBrowser) return;
			const n = E('div', { 'class': 'alert-message ' + (cls || '') }, [ title ? E('h4', title) : null, children ]);
			document.getElementById('notifications').appendChild(n);
			return n;
		},
		createHandlerFn: function(ctx, fn) {
			const args = Array.prototype.slice.call(arguments, 2);
			if (typeof fn == 'string') fn = ctx[fn];
			return function(ev) {
				const btn = ev && ev.currentTarget;
				const r = fn.apply(ctx, args.concat([ ev ]));
				if (btn && r && typeof r.then == 'function') {
					btn.classList.add('spinning');
					btn.disabled = true;
					r.finally(() => { btn.classList.remove('spinning'); btn.disabled = false; });
				}
				return r;
			};
		},
		itemlist: function(node, items) {
			for (let i = 0; i < items.length; i += 2)
				node.appendChild(E('span', [ E('strong', items[i] + ': '), items[i + 1] ]));
			return node;
		},
		changes: { apply: function() { return uci.apply(); } }
	};

	const polls = [];
	const poll = {
		add: function(fn, interval) { polls.push({ fn: fn, interval: interval }); },
		remove: function() {},
		start: function() {},
		stop: function() {},
		run: function() { return Promise.all(polls.map(p => p.fn())); }
	};

	const dom = {
		content: function(node, children) {
			while (node.firstChild) node.removeChild(node.firstChild);
			appendChildren(node, children);
			return node;
		},
		append: function(node, children) { appendChildren(node, children); return node; }
	};

	/* ---------------- form ---------------- */

	const form = {};

	class AbstractValue extends BaseClass {
		constructor(section, option, title, description) {
			super();
			this.section = section;
			this.map = section.map;
			this.option = option;
			this.title = title;
			this.description = description;
			this.deps = [];
			this.keylist = [];
			this.vallist = [];
			this.rmempty = true;
			this.modalonly = null;
			this.tab = null;
		}
		depends(field, value) {
			let d = field;
			if (typeof field == 'string') {
				d = {};
				d[field] = value;
			}
			this.deps.push(d);
		}
		value(key, label) {
			this.keylist.push(String(key));
			this.vallist.push(label != null ? label : key);
		}
		/* As LuCI's: an option keeps the value it had when its section was
		   loaded (Map.load loads the sections cfgsections() names then, a
		   modal loads its own); rendering and parsing read that, not uci. A
		   section a filter let in after the load has no values until the
		   map loads again. */
		load(sid) { return uci.get(this.map.config, sid, this.option); }
		cfgvalue(sid, value) {
			if (arguments.length == 2) {
				this.data = this.data || {};
				this.data[sid] = value;
			}
			return this.data && this.data[sid] !== undefined ? this.data[sid] : null;
		}
		textvalue(sid) {
			let v = this.cfgvalue(sid);
			if (v == null) v = this.default;
			if (Array.isArray(v)) v = v.join(', ');
			const i = this.keylist.indexOf(String(v));
			return i >= 0 ? this.vallist[i] : (v == null || v === '' ? '-' : v);
		}
		isActive(sid) {
			if (!this.deps.length) return true;
			return this.deps.some(d => Object.keys(d).every(k => {
				const o = this.section.children.filter(c => c.option == k)[0];
				const v = o ? o.formvalue(sid) : uci.get(this.map.config, sid, k);
				return String(v == null ? '' : v) == String(d[k]);
			}));
		}
		widget(sid) { return this.nodes && this.nodes[sid]; }
		/* LuCI's widgets run the datatype, then the option's validate(section_id,
		   value) with the value the datatype left (see the validation section);
		   a list's items are checked one by one. */
		validateValue(sid, value) {
			const vfunc = this.validate ? (v => this.validate(sid, v)) : null;
			const items = Array.isArray(value) ? value : [ value ];
			for (const v of items) {
				if (v == null || v === '') continue;
				const r = checkDatatype(this.datatype, v, true, vfunc);
				if (r !== true) return r;
			}
			if (vfunc && !Array.isArray(value) && (value == null || value === '')) {
				const r = checkDatatype(this.datatype, '', true, vfunc);
				if (r !== true) return r;
			}
			if (!this.rmempty && !this.optional && (value == null || value === '' || (Array.isArray(value) && !value.length)))
				return _('This field is required');
			return true;
		}
		/* write the form value to uci, as LuCI's AbstractValue.parse does: an
		   empty value, or the option's default while rmempty (LuCI's default)
		   or optional, is removed, not written (a Flag with default '1' left
		   on writes nothing). A value equal to the loaded one is not written
		   again (LuCI sets it again: the same config). */
		parse(sid) {
			if (!this.isActive(sid)) {
				if (uci.get(this.map.config, sid, this.option) != null) uci.unset(this.map.config, sid, this.option);
				return Promise.resolve();
			}
			const fv = this.formvalue(sid);
			const err = this.validateValue(sid, fv);
			if (err !== true)
				return Promise.reject(new Error((this.title || this.option) + ': ' + err));
			const cv = this.cfgvalue(sid);
			const empty = fv == null || fv === '' || (Array.isArray(fv) && !fv.length);
			if (empty || (fv == this.default && (this.optional || this.rmempty))) {
				if (uci.get(this.map.config, sid, this.option) != null) uci.unset(this.map.config, sid, this.option);
			}
			else if (JSON.stringify(cv) != JSON.stringify(fv)) {
				uci.set(this.map.config, sid, this.option, fv);
			}
			return Promise.resolve();
		}
		formvalue(sid) {
			const w = this.widget(sid);
			if (!w) {
				// no widget (a grid row, a test): the config as it stands
				const cv = uci.get(this.map.config, sid, this.option);
				return cv != null ? cv : (this.default != null ? this.default : null);
			}
			return w.getValue();
		}
		/* DOM for editing one section's value: { node, getValue } */
		renderWidget(sid) {
			let cv = this.cfgvalue(sid);
			if (cv == null && this.default != null) cv = this.default;
			const id = 'widget.cbid.%s.%s.%s'.format(this.map.config, sid, this.option);
			const input = E('input', {
				'type': this.password ? 'password' : 'text', 'class': 'cbi-input-text', 'id': id,
				'name': 'cbid.%s.%s.%s'.format(this.map.config, sid, this.option),
				'placeholder': this.placeholder || '', 'value': cv == null ? '' : cv
			});
			return { node: input, input: input, getValue: () => input.value.trim() };
		}
		renderRow(sid) {
			const w = this.renderWidget(sid);
			this.nodes = this.nodes || {};
			this.nodes[sid] = w;
			const err = E('div', { 'class': 'cbi-value-error' });
			const row = E('div', { 'class': 'cbi-value', 'data-name': this.option, 'data-widget': this.constructor.name }, [
				E('label', { 'class': 'cbi-value-title' }, this.title || this.option),
				E('div', { 'class': 'cbi-value-field' }, [
					w.node, err,
					(this.description && !this.section.nodescriptions_in_modal) ? E('div', { 'class': 'cbi-value-description' }, this.description) : null
				])
			]);
			const check = () => {
				const r = this.isActive(sid) ? this.validateValue(sid, this.formvalue(sid)) : true;
				err.textContent = r === true ? '' : r;
				row.classList.toggle('cbi-value-invalid', r !== true);
			};
			row.addEventListener('input', () => { check(); this.section.updateDepends(sid); });
			row.addEventListener('change', () => { check(); this.section.updateDepends(sid); });
			this.rows = this.rows || {};
			this.rows[sid] = row;
			return row;
		}
	}
	form.AbstractValue = AbstractValue;

	class Value extends AbstractValue {}
	class TextValue extends AbstractValue {
		renderWidget(sid) {
			const ta = E('textarea', { 'class': 'cbi-input-textarea', 'rows': this.rows || 6 }, this.cfgvalue(sid) || '');
			return { node: ta, getValue: () => ta.value };
		}
	}
	class ListValue extends AbstractValue {
		renderWidget(sid) {
			let cv = this.cfgvalue(sid);
			if (cv == null) cv = this.default != null ? this.default : (this.keylist[0] || '');
			const sel = E('select', { 'class': 'cbi-input-select', 'id': 'widget.cbid.%s.%s.%s'.format(this.map.config, sid, this.option) },
				this.keylist.map((k, i) => E('option', { 'value': k }, this.vallist[i])));
			sel.value = cv;
			return { node: sel, input: sel, getValue: () => sel.value };
		}
	}
	class Flag extends AbstractValue {
		constructor(...a) {
			super(...a);
			this.enabled = '1';
			this.disabled = '0';
			this.default = this.disabled;
		}
		renderWidget(sid) {
			let cv = this.cfgvalue(sid);
			if (cv == null) cv = this.default;
			const cb = E('input', { 'type': 'checkbox', 'class': 'cbi-input-checkbox', 'id': 'widget.cbid.%s.%s.%s'.format(this.map.config, sid, this.option) });
			cb.checked = cv == this.enabled;
			return { node: cb, input: cb, getValue: () => cb.checked ? this.enabled : this.disabled };
		}
		textvalue(sid) {
			const cv = this.cfgvalue(sid);
			return (cv != null ? cv : this.default) == this.enabled ? _('Yes') : _('No');
		}
	}
	class DynamicList extends AbstractValue {
		renderWidget(sid) {
			let cv = this.cfgvalue(sid);
			if (cv == null) cv = this.default;
			const box = E('div', { 'class': 'cbi-dynlist', 'id': 'widget.cbid.%s.%s.%s'.format(this.map.config, sid, this.option) });
			const addItem = (v) => {
				const inp = E('input', { 'type': 'text', 'class': 'cbi-input-text', 'value': v || '', 'placeholder': this.placeholder || '',
					'list': this.keylist.length ? box.id + '.choices' : null });
				box.insertBefore(E('div', { 'class': 'item' }, inp), adder);
				return inp;
			};
			const adder = E('button', { 'class': 'cbi-button cbi-button-add', 'type': 'button', 'click': () => addItem('').focus() }, '+');
			box.appendChild(adder);
			toArray(cv).forEach(addItem);
			if (!toArray(cv).length) addItem('');
			if (this.keylist.length) {
				const dl = E('datalist', { 'id': box.id + '.choices' }, this.keylist.map(k => E('option', { 'value': k })));
				box.appendChild(dl);
			}
			return {
				node: box,
				getValue: () => Array.prototype.map.call(box.querySelectorAll('input'), i => i.value.trim()).filter(v => v !== '')
			};
		}
	}
	class DummyValue extends AbstractValue {
		parse() { return Promise.resolve(); }
		renderWidget(sid) {
			const t = this.textvalue(sid);
			return { node: E('div', {}, t), getValue: () => null };
		}
	}
	Object.assign(form, { Value, TextValue, ListValue, Flag, DynamicList, DummyValue });

	class AbstractSection extends BaseClass {
		constructor(map, sectiontype, title, description) {
			super();
			this.map = map;
			this.sectiontype = sectiontype;
			this.title = title;
			this.description = description;
			this.children = [];
			this.tabs = null;
		}
		option(cls, name, title, description) {
			if (!(cls.prototype instanceof AbstractValue)) throw new Error('stand-in: not an option class');
			const o = new cls(this, name, title, description);
			this.children.push(o);
			if (this.map.recording) this.map.recording.push({ sectiontype: this.sectiontype, option: o });
			return o;
		}
		tab(name, title) {
			this.tabs = this.tabs || [];
			this.tabs.push({ name: name, title: title });
		}
		taboption(tab, cls, name, title, description) {
			const o = this.option(cls, name, title, description);
			o.tab = tab;
			return o;
		}
		formvalue(sid, opt) {
			const o = this.children.filter(c => c.option == opt)[0];
			return o ? o.formvalue(sid) : null;
		}
		loadSection(sid) {
			for (const o of this.children) o.cfgvalue(sid, o.load(sid));
		}
		load() {
			this.cfgsections().forEach(sid => this.loadSection(sid));
		}
		cfgsections() {
			return uci.sections(this.map.config, this.sectiontype).map(s => s['.name'])
				.filter(sid => !this.filter || this.filter(sid));
		}
		updateDepends(sid) {
			for (const o of this.children) {
				if (o.rows && o.rows[sid]) o.rows[sid].style.display = o.isActive(sid) ? '' : 'none';
			}
		}
		parse() {
			return Promise.all(this.cfgsections().map(sid => this.parseSection(sid)));
		}
		parseSection(sid) {
			return this.children.reduce((p, o) => p.then(() => o.nodes && o.nodes[sid] ? o.parse(sid) : null), Promise.resolve());
		}
		renderOptions(sid, filterFn) {
			const opts = this.children.filter(o => !filterFn || filterFn(o));
			const rows = opts.map(o => o.renderRow(sid));
			let body;
			if (this.tabs) {
				const panes = this.tabs.map((t, i) => E('div', { 'class': 'cbi-tabcontainer', 'data-tab': t.name, 'style': i ? 'display:none' : '' },
					opts.map((o, j) => o.tab == t.name ? rows[j] : null)));
				const menu = E('ul', { 'class': 'cbi-tabmenu' }, this.tabs.map((t, i) => E('li', {
					'class': i ? 'cbi-tab-disabled' : 'cbi-tab', 'data-tab': t.name,
					'click': (ev) => {
						menu.querySelectorAll('li').forEach(li => li.className = li == ev.currentTarget ? 'cbi-tab' : 'cbi-tab-disabled');
						panes.forEach(p => p.style.display = p.getAttribute('data-tab') == t.name ? '' : 'none');
					}
				}, E('a', {}, t.title))));
				body = [ menu, panes ];
			}
			else {
				body = rows;
			}
			setTimeout(() => this.updateDepends(sid), 0);
			return E('div', { 'class': 'cbi-section-node', 'data-section-id': sid }, body);
		}
	}

	class NamedSection extends AbstractSection {
		constructor(map, section, sectiontype, title, description) {
			super(map, sectiontype, title, description);
			this.section = section;
		}
		cfgsections() { return [ this.section ]; }
		render() {
			return E('fieldset', { 'class': 'cbi-section', 'id': 'cbi-%s-%s'.format(this.map.config, this.section) }, [
				this.title ? E('h3', this.title) : null,
				this.description ? E('div', { 'class': 'cbi-section-descr' }, this.description) : null,
				this.renderOptions(this.section)
			]);
		}
	}

	class TypedSection extends AbstractSection {
		renderSectionAdd(extra_class) {
			const box = E('div', { 'class': 'cbi-section-create' + (extra_class ? ' ' + extra_class : '') });
			const title = this.addbtntitle || _('Add');
			if (this.anonymous) {
				box.appendChild(E('button', { 'class': 'cbi-button cbi-button-add', 'title': title,
					'click': ui.createHandlerFn(this, 'handleAdd') }, title));
			}
			else {
				const nameEl = E('input', { 'type': 'text', 'class': 'cbi-section-create-name', 'placeholder': _('New name'),
					'input': () => nameEl.classList.remove('cbi-input-invalid') });
				box.appendChild(nameEl);
				box.appendChild(E('button', { 'class': 'cbi-button cbi-button-add', 'title': title,
					'click': ui.createHandlerFn(this, function(ev) {
						const name = nameEl.value.trim();
						if (!/^[a-zA-Z0-9_]+$/.test(name) || uci.get(this.map.config, name) != null) {
							nameEl.classList.add('cbi-input-invalid');
							return;
						}
						return this.handleAdd(ev, name);
					}) }, title));
			}
			return box;
		}
		// as LuCI's: change uci, then save the map (which loads and renders it again)
		handleAdd(ev, name) {
			uci.add(this.map.config, this.sectiontype, name);
			return this.map.save();
		}
		handleRemove(sid) {
			uci.remove(this.map.config, sid);
			return this.map.save();
		}
		render() {
			return E('fieldset', { 'class': 'cbi-section', 'id': 'cbi-%s-%s'.format(this.map.config, this.sectiontype) }, [
				this.title ? E('h3', this.title) : null,
				this.description ? E('div', { 'class': 'cbi-section-descr' }, this.description) : null,
				this.cfgsections().map(sid => this.renderOptions(sid)),
				this.addremove ? this.renderSectionAdd() : null
			]);
		}
	}

	class GridSection extends TypedSection {
		handleAdd(ev, name) {
			const sid = uci.add(this.map.config, this.sectiontype, name);
			this.addedSection = sid;
			return this.renderMoreOptionsModal(sid);
		}
		renderRowActions(sid) {
			return E('td', { 'class': 'td cbi-section-table-cell nowrap cbi-section-actions' }, E('div', {}, [
				E('button', { 'class': 'cbi-button cbi-button-edit', 'title': _('Edit'),
					'click': ui.createHandlerFn(this, 'renderMoreOptionsModal', sid) }, _('Edit')),
				this.addremove ? E('button', { 'class': 'cbi-button cbi-button-remove', 'title': _('Delete'),
					'click': ui.createHandlerFn(this, 'handleRemove', sid) }, _('Delete')) : null
			]));
		}
		renderMoreOptionsModal(sid) {
			const title = (this.title || this.sectiontype) + ' » ' + (uci.get(this.map.config, sid, '.anonymous') ? _('New') : sid);
			const errBox = E('div', { 'class': 'cbi-modal-error' });
			this.loadSection(sid);   // LuCI's modal loads its section's values itself
			// modalonly === false: a grid column only (LuCI's convention)
			const body = this.renderOptions(sid, o => o.modalonly !== false);
			body.addEventListener('input', () => { errBox.textContent = ''; });
			ui.showModal(title, [
				body, errBox,
				E('div', { 'class': 'right' }, [
					E('button', { 'class': 'cbi-button', 'click': () => {
						if (this.addedSection) uci.remove(this.map.config, this.addedSection);
						this.addedSection = null;
						this.children.forEach(o => o.nodes && delete o.nodes[sid]);
						ui.hideModal();
						return this.map.rerender();
					} }, _('Dismiss')), ' ',
					E('button', { 'class': 'cbi-button cbi-button-positive important', 'click': () => {
						return this.parseSection(sid).then(() => {
							this.addedSection = null;
							this.children.forEach(o => o.nodes && delete o.nodes[sid]);
							ui.hideModal();
							return uci.save().then(() => this.map.load()).then(() => this.map.rerender());
						}).catch(e => { errBox.textContent = e.message; });
					} }, _('Save'))
				])
			]);
			return Promise.resolve();
		}
		render() {
			const cols = this.children.filter(o => o.modalonly !== true);
			const table = E('table', { 'class': 'table cbi-section-table' }, [
				E('tr', { 'class': 'tr cbi-section-table-titles' }, [
					this.anonymous ? null : E('th', { 'class': 'th' }, _('Name')),
					cols.map(o => E('th', { 'class': 'th' }, o.title || o.option)),
					E('th', { 'class': 'th' }, '')
				])
			]);
			const sids = this.cfgsections();
			if (!sids.length)
				table.appendChild(E('tr', { 'class': 'tr placeholder' }, E('td', { 'class': 'td', 'colspan': cols.length + 2 }, E('em', _('This section contains no values yet')))));
			for (const sid of sids) {
				table.appendChild(E('tr', { 'class': 'tr cbi-section-table-row', 'data-sid': sid }, [
					this.anonymous ? null : E('td', { 'class': 'td' }, E('strong', sid)),
					cols.map(o => {
						if (o.editable && o instanceof Flag) {
							const w = o.renderWidget(sid);
							w.node.addEventListener('change', () => { uci.set(this.map.config, sid, o.option, w.getValue()); });
							return E('td', { 'class': 'td', 'data-name': o.option }, w.node);
						}
						return E('td', { 'class': 'td', 'data-name': o.option }, o.textvalue(sid));
					}),
					this.renderRowActions(sid)
				]));
			}
			return E('fieldset', { 'class': 'cbi-section cbi-tblsection', 'id': 'cbi-%s-%s'.format(this.map.config, this.sectiontype) }, [
				this.title ? E('h3', this.title) : null,
				this.description ? E('div', { 'class': 'cbi-section-descr' }, this.description) : null,
				table,
				this.addremove ? this.renderSectionAdd('cbi-tblsection-create') : null
			]);
		}
	}

	class Map extends BaseClass {
		constructor(config, title, description) {
			super();
			this.config = config;
			this.title = title;
			this.description = description;
			this.children = [];
			this.recording = form.__recording || null;
			if (form.__maps) form.__maps.push(this);
		}
		section(cls) {
			const args = Array.prototype.slice.call(arguments, 1);
			const s = new cls(this, ...args);
			this.children.push(s);
			return s;
		}
		load() {
			return uci.load(this.config).then(() => { this.children.forEach(s => s.load()); });
		}
		render() {
			if (!inBrowser) return this.load().then(() => ({ map: this }));
			// as LuCI's, a section's render() may answer a node or a promise of one
			return this.load().then(() => Promise.all(this.children.map(s => s.render()))).then(nodes => {
				this.root = E('div', { 'class': 'cbi-map', 'id': 'cbi-' + this.config }, [
					this.title ? E('h2', this.title) : null,
					this.description ? E('div', { 'class': 'cbi-map-descr' }, this.description) : null,
					E('div', { 'class': 'cbi-map-body' }, nodes)
				]);
				return this.root;
			});
		}
		rerender() {
			if (!this.root) return Promise.resolve();
			const body = this.root.querySelector('.cbi-map-body');
			return Promise.all(this.children.map(s => s.render())).then(nodes => { dom.content(body, nodes); });
		}
		/* LuCI's Map.reset(): render the form again from the uci data */
		reset() { return this.rerender(); }
		/* LuCI's Map.save(cb, silent): parse, cb, save the uci changes, load, render again */
		save(cb) {
			return Promise.all(this.children.map(s => s.parse())).then(() => cb ? cb() : null)
				.then(() => uci.save()).then(() => this.load()).then(() => this.rerender());
		}
	}

	Object.assign(form, { Map, NamedSection, TypedSection, GridSection, AbstractSection });

	/* ---------------- view ---------------- */

	const View = BaseClass.extend({
		load: function() { return Promise.resolve(); },
		render: function() { return E('div'); },
		handleSave: function() {
			return Promise.all((form.__maps || []).map(m => m.save())).catch(e => {
				ui.addNotification(null, E('p', _('Some fields are invalid, cannot save values!') + ' ' + e.message), 'error');
				throw e;
			});
		},
		handleSaveApply: function() {
			return this.handleSave().then(() => ui.changes.apply(), () => null);
		},
		handleReset: function() { location.reload(); }
	});

	/* ---------------- module loader ---------------- */

	const modules = { baseclass: BaseClass, view: View, form: form, uci: uci, rpc: rpc, ui: ui, poll: poll, dom: dom, validation: validation };
	const loading = {};

	/* Compile a LuCI-style module source: 'require x.y as z' lines become parameters. */
	function compile(name, src) {
		const deps = [], names = [];
		const re = /^\s*'require\s+([\w.]+)(?:\s+as\s+(\w+))?'\s*;/gm;
		let m;
		while ((m = re.exec(src)) !== null) {
			deps.push(m[1]);
			names.push(m[2] || m[1].split('.').pop());
		}
		return Promise.all(deps.map(d => L.require(d))).then(instances => {
			const fn = new Function('_', 'N_', 'E', 'L', ...names, src + '\n//# sourceURL=' + name + '.js');
			let res = fn(_, N_, pageE, L, ...instances);
			if (typeof res == 'function' && res.prototype instanceof BaseClass && !res.prototype.__isView)
				res = new res();
			return res;
		});
	}

	const L = {
		env: { sessionid: 'test' },
		isObject: isObject,
		toArray: toArray,
		bind: function(fn, ctx) {
			const args = Array.prototype.slice.call(arguments, 2);
			return function() { return fn.apply(ctx, args.concat(Array.prototype.slice.call(arguments))); };
		},
		resolveDefault: function(p, def) { return Promise.resolve(p).catch(() => def); },
		resource: function() { return '/luci-static/resources/' + Array.prototype.join.call(arguments, '/'); },
		url: function() { return '/cgi-bin/luci/' + Array.prototype.join.call(arguments, '/'); },
		Class: BaseClass,
		ui: ui,
		require: function(name) {
			if (modules[name]) return Promise.resolve(modules[name]);
			if (!loading[name]) {
				const load = inBrowser
					? fetch(L.resource(name.replace(/\./g, '/') + '.js')).then(r => { if (!r.ok) throw new Error('no module ' + name); return r.text(); })
					: Promise.resolve(L.readSource(name));
				loading[name] = load.then(src => compile(name, src)).then(mod => (modules[name] = mod));
			}
			return loading[name];
		},
		readSource: null,
		/* test hooks */
		stub: {
			recorded: recorded,
			uci: uci,
			form: form,
			poll: poll,
			checkDatatype: checkDatatype,
			validation: validation,
			setRpcHandler: function(fn) { rpcHandler = fn; }
		}
	};
	View.prototype.__isView = true;

	/* Boot a view into #view the way LuCI's view constructor does: load, render, footer. */
	L.setCatalog = function(c) { catalog = c || {}; };
	L.bootView = function(path) {
		form.__maps = [];
		return L.require('view.' + path.replace(/\//g, '.')).then(V => {
			const v = new V();
			return Promise.resolve(v.load()).then(data => v.render(data)).then(node => {
				const root = document.getElementById('view');
				dom.content(root, node);
				const footer = [];
				if (v.handleSaveApply) footer.push(E('button', { 'class': 'cbi-button cbi-button-apply', 'id': 'btn-save-apply', 'click': ui.createHandlerFn(v, 'handleSaveApply') }, _('Save & Apply')));
				if (v.handleSave) footer.push(E('button', { 'class': 'cbi-button cbi-button-save', 'id': 'btn-save', 'click': ui.createHandlerFn(v, 'handleSave') }, _('Save')));
				if (v.handleReset) footer.push(E('button', { 'class': 'cbi-button cbi-button-reset', 'click': ui.createHandlerFn(v, 'handleReset') }, _('Reset')));
				if (footer.length) root.appendChild(E('div', { 'class': 'cbi-page-actions' }, footer));
				document.body.setAttribute('data-view-ready', '1');
				return v;
			});
		});
	};

	if (typeof module != 'undefined' && module.exports) module.exports = L;
	else { global.L = L; global.E = pageE; global._ = _; }
})(typeof window != 'undefined' ? window : globalThis);

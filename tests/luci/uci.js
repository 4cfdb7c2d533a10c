'use strict';
/* UCI text <-> [{'.name', '.type', '.anonymous', option: string | [string]}] for the LuCI tests. */

function tokens(line) {
	const out = [];
	const re = /'((?:[^'])*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g;
	let m;
	while ((m = re.exec(line)) !== null)
		out.push(m[1] != null ? m[1] : m[2] != null ? m[2].replace(/\\(.)/g, '$1') : m[3]);
	return out;
}

function parse(text) {
	const secs = [];
	let cur = null, anon = 0;
	for (const raw of text.split('\n')) {
		const line = raw.trim();
		if (!line || line.startsWith('#')) continue;
		const w = tokens(line);
		if (w[0] == 'config') {
			cur = { '.type': w[1], '.name': w[2] || ('cfg' + (anon++).toString(16).padStart(2, '0')), '.anonymous': !w[2] };
			secs.push(cur);
		}
		else if (w[0] == 'option' && cur) cur[w[1]] = w[2] || '';
		else if (w[0] == 'list' && cur) (cur[w[1]] = Array.isArray(cur[w[1]]) ? cur[w[1]] : []).push(w[2] || '');
		else throw new Error('UCI parse error: ' + raw);
	}
	return secs;
}

function q(v) { return "'" + String(v).replace(/'/g, "'\\''") + "'"; }

function serialize(secs) {
	const out = [];
	for (const s of secs) {
		out.push('config ' + s['.type'] + (s['.anonymous'] ? '' : ' ' + q(s['.name'])));
		for (const k of Object.keys(s)) {
			if (k[0] == '.') continue;
			if (Array.isArray(s[k])) s[k].forEach(v => out.push('\tlist ' + k + ' ' + q(v)));
			else out.push('\toption ' + k + ' ' + q(s[k]));
		}
		out.push('');
	}
	return out.join('\n');
}

module.exports = { parse, serialize };

'use strict';
/*
 * A lists state with failed updates, from the real CLI: `wgsplit lists update
 * --no-kernel` on a config whose sources each fail one way (over max_size,
 * empty, a wrong sha256 pin, a file wgsplit did not write, a list that would
 * shrink, a download tool that cannot connect, GeoIP data without the used
 * country), then `lists show --json` as the rpcd plugin's lists_show passes
 * it on. Everything lives in a temporary folder (WGSPLIT_LIST_ROOTS); the one
 * URL is a loopback port just closed.
 *
 *   const { listsShow } = require('./lists-state.js');
 *   await listsShow(bin)   ->  { dir, countries, state: { geoip, lists } }
 */
const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const cp = require('child_process');

/* a loopback port nothing listens on (one that was just closed) */
function closedPort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const port = s.address().port;
			s.close(() => resolve(port));
		});
	});
}

async function listsShow(bin) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wgsplit-lists-'));
	try {
		const root = path.join(dir, 'root'), src = path.join(dir, 'src');
		for (const d of [ dir, root, src ]) {
			fs.mkdirSync(d, { recursive: true });
			fs.chmodSync(d, 0o755);
		}
		const four = 'a.example\nb.example\nc.example\nd.example\n';
		fs.writeFileSync(path.join(src, 'four.txt'), four);
		fs.writeFileSync(path.join(src, 'shrink.txt'), four);
		fs.writeFileSync(path.join(src, 'empty.txt'), '');
		fs.writeFileSync(path.join(src, 'big.txt'), 'a'.repeat(3000));
		fs.writeFileSync(path.join(src, 'geo.csv'), '1.0.0.0,1.0.0.255,CN\n');
		// a file someone else put where a list is downloaded to
		fs.writeFileSync(path.join(root, 'planted.txt'), 'x.example\n');
		const port = await closedPort();
		const list = (name, file, url, extra) => `config list '${name}'\n\toption path '${root}/${file}'\n\toption url '${url}'\n` + (extra || '');
		const cfg = path.join(dir, 'wgsplit');
		fs.writeFileSync(cfg, [
			"config server 'server'\n\toption address '10.8.0.1/24'\n\toption private_key 'JTA7RlFcZ3J9iJOeqbS/ytXg6/YBDBciLThDTllkb3o='\n",
			list('big', 'big.txt', `file://${src}/big.txt`, "\toption max_size '1K'\n"),
			list('empty', 'empty.txt', `file://${src}/empty.txt`),
			list('pinned', 'pinned.txt', `file://${src}/four.txt`, `\toption sha256 '${'0'.repeat(64)}'\n`),
			list('planted', 'planted.txt', `file://${src}/four.txt`),
			list('shrinks', 'shrinks.txt', `file://${src}/shrink.txt`),
			list('http', 'http.txt', `http://127.0.0.1:${port}/none.txt`),
			`config geoip 'geoip'\n\toption path '${src}/geo.csv'\n\toption format 'csv'\n\toption dir '${root}/lists'\n`,
			"config client 'c'\n\tlist address '10.8.0.2/32'\n\toption public_key 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='\n",
			"config rule\n\toption client 'c'\n\toption action 'block'\n\tlist geoip 'us'\n"
		].join(''));
		const env = Object.assign({}, process.env, { WGSPLIT_LIST_ROOTS: `${root}:${src}`, WGSPLIT_DOWNLOAD_SECONDS: '10' });
		const run = args => cp.spawnSync(bin, [ '--config', cfg ].concat(args), { encoding: 'utf8', env: env });
		run([ 'lists', 'update', '--no-kernel' ]);
		// the second run: the list that was fine shrinks to one entry
		fs.writeFileSync(path.join(src, 'shrink.txt'), 'a.example\n');
		run([ 'lists', 'update', '--no-kernel' ]);
		const r = run([ 'lists', 'show', '--json' ]);
		if (r.status !== 0)
			throw new Error(`lists show: exit ${r.status}: ${r.stderr}`);
		return JSON.parse(r.stdout);
	}
	finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

module.exports = { listsShow };

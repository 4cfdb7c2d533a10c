#!/usr/bin/env python3
"""Tests of the OpenWrt feed (openwrt-feed/) and the packages build-ipk.sh makes.

Usage: test_openwrt.py BINARY   (a host-built wgsplit, packaged as x86_64)

Optional, with OpenWrt's own tools built for the host:
  REAL_UCI=path/to/uci       run the uci-defaults tests with OpenWrt's uci
                             (openwrt/uci + libubox) instead of the stand-in
  OPKG_CL=path/to/opkg-cl    install both packages with OpenWrt's opkg
                             (openwrt/opkg-lede) into an offline root

Prints one line per check and ends with 'N passed, M failed'.
"""
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FEED = REPO / "openwrt-feed"
PKG = FEED / "net/wgsplit"
FILES = PKG / "files"
LUCI = REPO / "luci-app"
FAKE = Path(__file__).resolve().parent / "fake"
OUT = REPO / "tests/out/openwrt"

BIN = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None
# OpenWrt runs these scripts with busybox ash; use it when the host has busybox.
ASH = ["busybox", "sh"] if shutil.which("busybox") else ["sh"]
results = []


def test(fn):
    results.append(fn)
    return fn


def sh(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(map(str, args)), **kw)


# ---------- README contract: option names per section type ----------

def readme_schema():
    """{section type: set(option names)} from the README's config reference tables."""
    text = (REPO / "README.md").read_text()
    ref = text.split("## Config reference", 1)[1]
    schema, cur = {}, None
    for line in ref.splitlines():
        m = re.match(r"^### `config (\w+)", line)
        if m:
            cur = schema.setdefault(m.group(1), set())
            continue
        if line.startswith("## "):
            break
        if cur is not None and line.startswith("| `"):
            first = line.split("|")[1]
            for name in re.findall(r"`(\w+)`", first):
                cur.add(name)
    return schema


def parse_uci(text):
    secs = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        import shlex
        w = shlex.split(s)
        if w[0] == "config":
            secs.append({"type": w[1], "name": w[2] if len(w) > 2 else None, "opts": {}})
        elif w[0] in ("option", "list"):
            secs[-1]["opts"].setdefault(w[1], []).append(w[2] if len(w) > 2 else "")
        else:
            raise AssertionError(f"bad UCI line {line!r}")
    return secs


# ---------- shell scripts ----------

SCRIPTS = [
    FILES / "wgsplit.init",
    FILES / "wgsplit.uci-defaults",
    FILES / "wgsplit.hotplug",
    FILES / "wgsplit.postrm",
    FEED / "build-ipk.sh",
    LUCI / "root/usr/libexec/rpcd/wgsplit",
]


@test
def scripts_parse_with_sh_n():
    for s in SCRIPTS:
        r = sh("sh", "-n", s)
        assert r.returncode == 0, f"{s.name}: {r.stderr}"
        # busybox ash is what runs them on the router; dash is the closest strict POSIX shell here
        r = sh(*ASH, "-n", s)
        assert r.returncode == 0, f"{s.name} ({ASH}): {r.stderr}"


@test
def scripts_pass_shellcheck():
    r = sh("shellcheck", "-S", "warning", *SCRIPTS)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------- Makefiles ----------

@test
def package_makefile_follows_rust_package_conventions():
    mk = (PKG / "Makefile").read_text()
    for needle in [
        "include $(TOPDIR)/rules.mk",
        "include $(INCLUDE_DIR)/package.mk",
        "include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk",
        "PKG_BUILD_DEPENDS:=rust/host",
        "$(RUST_ARCH_DEPENDS)",
        "+kmod-wireguard",
        "+kmod-nft-core",
        "+kmod-nft-nat",
        "$(eval $(call RustBinPackage,wgsplit))",
        "$(eval $(call BuildPackage,wgsplit))",
    ]:
        assert needle in mk, f"Makefile lacks {needle}"
    assert "ip-full" not in mk, "ip-full is not needed (netlink)"
    # no rule the daemon, its guard or its fw4 include makes uses `fib`
    assert "kmod-nft-fib" not in mk, "kmod-nft-fib is not needed (no fib expression)"
    conff = re.search(r"define Package/wgsplit/conffiles\n(.*?)endef", mk, re.S).group(1).split()
    assert conff == ["/etc/config/wgsplit"], conff
    for ref in re.findall(r"\./files/([\w.-]+)", mk):
        assert (FILES / ref).is_file(), f"Makefile installs missing files/{ref}"


@test
def luci_makefile_follows_luci_conventions():
    mk = (LUCI / "Makefile").read_text()
    for needle in ["LUCI_TITLE:=", "LUCI_DEPENDS:=+luci-base +wgsplit", "include $(TOPDIR)/feeds/luci/luci.mk"]:
        assert needle in mk, f"luci-app/Makefile lacks {needle}"
    link = FEED / "luci/luci-app-wgsplit"
    assert link.is_symlink() and link.resolve() == LUCI.resolve(), "feed link to luci-app/ broken"


def make_install_tree(dest):
    """Run the Makefile's Package/wgsplit/install recipe against stand-in OpenWrt includes."""
    top = Path(tempfile.mkdtemp(prefix="owrt-top-"))
    (top / "include").mkdir()
    (top / "feeds/packages/lang/rust").mkdir(parents=True)
    (top / "rules.mk").write_text(
        "INCLUDE_DIR:=$(TOPDIR)/include\n"
        "INSTALL_DIR:=install -d -m0755\nINSTALL_BIN:=install -m0755\n"
        "INSTALL_DATA:=install -m0644\nINSTALL_CONF:=install -m0600\nCP:=cp -fpR\n")
    (top / "include/package.mk").write_text(
        "define BuildPackage\ninstall-$(1):\n\t$$(call Package/$(1)/install,$$(DESTDIR))\nendef\n")
    (top / "feeds/packages/lang/rust/rust-package.mk").write_text(
        "RUST_ARCH_DEPENDS:=@(aarch64||arm||i386||i686||mips||mipsel||mips64||mips64el||powerpc||powerpc64||riscv64||x86_64)\n"
        "define RustBinPackage\nendef\n")
    inst = top / "pkg-install/bin"
    inst.mkdir(parents=True)
    shutil.copy(BIN, inst / "wgsplit")
    r = sh("make", "-s", "-C", PKG, f"TOPDIR={top}", f"PKG_INSTALL_DIR={top}/pkg-install",
           f"DESTDIR={dest}", "install-wgsplit")
    shutil.rmtree(top)
    assert r.returncode == 0, r.stderr
    return dest


# ---------- the packages ----------

_built = {}


def build():
    if not _built:
        d = Path(tempfile.mkdtemp(prefix="ipk-"))
        env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
        r = sh(FEED / "build-ipk.sh", BIN, "x86_64", d, env=env)
        assert r.returncode == 0, r.stderr
        ipks = sorted(d.glob("*.ipk"))
        _built["dir"] = d
        _built["main"] = next(p for p in ipks if p.name.startswith("wgsplit_"))
        _built["luci"] = next(p for p in ipks if p.name.startswith("luci-app-wgsplit_"))
        OUT.mkdir(parents=True, exist_ok=True)
        for p in ipks:
            shutil.copy(p, OUT / p.name)
    return _built


def ipk_parts(path):
    """The three members of an OpenWrt ipk, in archive order."""
    outer = tarfile.open(path, "r:gz")
    names = outer.getnames()
    parts = {n: outer.extractfile(n).read() for n in names}
    return names, parts


def members(blob):
    return {m.name: m for m in tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz").getmembers()}


def control_fields(parts):
    t = tarfile.open(fileobj=io.BytesIO(parts["./control.tar.gz"]), mode="r:gz")
    text = t.extractfile("./control").read().decode()
    fields, last = {}, None
    for line in text.splitlines():
        if line.startswith(" ") and last:
            fields[last] += "\n" + line
        else:
            last, _, v = line.partition(":")
            fields[last] = v.strip()
    return fields, t


@test
def ipk_outer_format_matches_ipkg_build():
    b = build()
    for key in ("main", "luci"):
        raw = b[key].read_bytes()
        assert raw[:2] == b"\x1f\x8b", "outer archive is not gzip"
        names, parts = ipk_parts(b[key])
        assert names == ["./debian-binary", "./data.tar.gz", "./control.tar.gz"], names
        assert parts["./debian-binary"] == b"2.0\n"
        for inner in ("./data.tar.gz", "./control.tar.gz"):
            assert parts[inner][:2] == b"\x1f\x8b", f"{inner} not gzip"


@test
def ipk_name_and_control_fields():
    b = build()
    mk = (PKG / "Makefile").read_text()
    ver = re.search(r"PKG_VERSION:=(\S+)", mk).group(1) + "-r" + re.search(r"PKG_RELEASE:=(\S+)", mk).group(1)
    assert b["main"].name == f"wgsplit_{ver}_x86_64.ipk", b["main"].name
    names, parts = ipk_parts(b["main"])
    f, _ = control_fields(parts)
    assert f["Package"] == "wgsplit"
    assert f["Version"] == ver
    assert f["Architecture"] == "x86_64"
    deps = [d.strip() for d in f["Depends"].split(",")]
    # nftables-json: the daemon runs `nft -f`; it is the variant firewall4 depends on
    for d in ("kmod-wireguard", "kmod-nft-core", "kmod-nft-nat", "nftables-json"):
        assert d in deps, f"Depends lacks {d}: {deps}"
    assert "ip-full" not in deps
    assert "kmod-nft-fib" not in deps
    data = members(parts["./data.tar.gz"])
    total = sum(m.size for m in data.values() if m.isfile())
    assert int(f["Installed-Size"]) == total, (f["Installed-Size"], total)
    assert f["Description"].strip(), "empty Description"
    assert f["License"] == "GPL-2.0-or-later"


EXPECTED_MAIN = {
    "./usr/bin/wgsplit": 0o755,
    "./etc/config/wgsplit": 0o600,
    "./etc/init.d/wgsplit": 0o755,
    "./etc/uci-defaults/90-wgsplit": 0o755,
    "./etc/hotplug.d/iface/90-wgsplit": 0o644,
    "./lib/upgrade/keep.d/wgsplit": 0o644,
}


@test
def ipk_file_list_modes_and_owner():
    names, parts = ipk_parts(build()["main"])
    data = members(parts["./data.tar.gz"])
    files = {n: m.mode & 0o7777 for n, m in data.items() if m.isfile()}
    assert files == EXPECTED_MAIN, f"files differ:\n{files}"
    assert "./etc/wgsplit" in data and data["./etc/wgsplit"].isdir(), "no /etc/wgsplit"
    # The one persistent folder wgsplit keeps lists in (sources/confine.rs).
    assert "./etc/wgsplit/lists" in data and data["./etc/wgsplit/lists"].isdir(), "no /etc/wgsplit/lists"
    assert data["./etc/wgsplit/lists"].mode & 0o022 == 0, "lists folder writable by others"
    for m in data.values():
        assert (m.uid, m.gid) == (0, 0), f"{m.name} not owned by root"
        assert m.mtime == 1700000000, f"{m.name} mtime not SOURCE_DATE_EPOCH"
    t = tarfile.open(fileobj=io.BytesIO(parts["./data.tar.gz"]), mode="r:gz")
    packaged = t.extractfile("./usr/bin/wgsplit").read()
    assert hashlib.sha256(packaged).digest() == hashlib.sha256(BIN.read_bytes()).digest(), "binary altered"


@test
def ipk_control_scripts_and_conffiles():
    names, parts = ipk_parts(build()["main"])
    f, t = control_fields(parts)
    ctl = {m.name: m for m in t.getmembers() if m.isfile()}
    assert set(ctl) == {"./control", "./conffiles", "./postinst", "./prerm", "./postrm"}, set(ctl)
    assert ctl["./postrm"].mode & 0o777 == 0o755, "postrm not executable"
    assert t.extractfile("./postrm").read() == (FILES / "wgsplit.postrm").read_bytes(), "postrm is not files/wgsplit.postrm"
    assert t.extractfile("./conffiles").read().decode().split() == ["/etc/config/wgsplit"]
    for s in ("./postinst", "./prerm"):
        assert ctl[s].mode & 0o777 == 0o755, f"{s} not executable"
        body = t.extractfile(s).read().decode()
        assert body.startswith("#!/bin/sh\n")
        assert ("default_postinst" if s == "./postinst" else "default_prerm") in body
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as tmp:
            tmp.write(body)
            tmp.flush()
            assert sh("sh", "-n", tmp.name).returncode == 0


@test
def makefile_install_matches_ipk():
    """The SDK path (Makefile install recipe) and build-ipk.sh ship the same files and modes."""
    dest = Path(tempfile.mkdtemp(prefix="mk-dest-"))
    make_install_tree(dest)
    got = {"./" + str(p.relative_to(dest)): p.stat().st_mode & 0o7777 for p in dest.rglob("*") if p.is_file()}
    shutil.rmtree(dest)
    assert got == EXPECTED_MAIN, f"Makefile installs {got}"


@test
def luci_ipk_contents():
    b = build()
    assert re.fullmatch(r"luci-app-wgsplit_[\d.]+-r\d+_all\.ipk", b["luci"].name), b["luci"].name
    names, parts = ipk_parts(b["luci"])
    f, t = control_fields(parts)
    assert f["Package"] == "luci-app-wgsplit" and f["Architecture"] == "all"
    assert [d.strip() for d in f["Depends"].split(",")] == ["luci-base", "wgsplit"], f["Depends"]
    data = members(parts["./data.tar.gz"])
    files = {n: m.mode & 0o7777 for n, m in data.items() if m.isfile()}
    want = {
        "./usr/libexec/rpcd/wgsplit": 0o755,
        "./usr/share/rpcd/acl.d/luci-app-wgsplit.json": 0o644,
        "./usr/share/luci/menu.d/luci-app-wgsplit.json": 0o644,
        "./www/luci-static/resources/wgsplit/common.js": 0o644,
    }
    for v in ("overview", "clients", "upstreams", "explain", "settings"):
        want[f"./www/luci-static/resources/view/wgsplit/{v}.js"] = 0o644
    assert files == want, f"luci files differ: {files}"
    total = sum(m.size for m in data.values() if m.isfile())
    assert int(f["Installed-Size"]) == total


def load_po2lmo():
    import importlib.util
    spec = importlib.util.spec_from_file_location("po2lmo", FEED / "po2lmo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lmo_lookup(lmo, key, sfh):
    """Translate KEY with an .lmo catalog the way LuCI's loader does: whitespace-normalised
    key, SuperFastHash seeded with its length, binary search of the sorted index."""
    import struct
    idx = struct.unpack(">I", lmo[-4:])[0]
    n = (len(lmo) - idx - 4) // 16
    recs = [struct.unpack(">IIII", lmo[idx + 16 * i: idx + 16 * i + 16]) for i in range(n)]
    assert [r[0] for r in recs] == sorted(r[0] for r in recs), "index not sorted"
    canon = " ".join(key.split()).encode()
    h = sfh(canon, len(canon))
    lo, hi = 0, n - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if recs[mid][0] == h:
            _, _, off, length = recs[mid]
            return lmo[off:off + length].decode()
        if recs[mid][0] < h:
            lo = mid + 1
        else:
            hi = mid - 1
    return None


@test
def i18n_ipks_hold_catalogs_luci_can_read():
    b = build()
    p2l = load_po2lmo()
    for lang, code in (("zh_Hans", "zh-cn"), ("ru", "ru")):
        ipk = next(b["dir"].glob(f"luci-i18n-wgsplit-{code}_*_all.ipk"))
        names, parts = ipk_parts(ipk)
        f, _ = control_fields(parts)
        assert f["Package"] == f"luci-i18n-wgsplit-{code}" and f["Depends"] == "luci-app-wgsplit" and f["Architecture"] == "all"
        t = tarfile.open(fileobj=io.BytesIO(parts["./data.tar.gz"]), mode="r:gz")
        files = [m.name for m in t.getmembers() if m.isfile()]
        assert files == [f"./usr/lib/lua/luci/i18n/wgsplit.{code}.lmo"], files
        lmo = t.extractfile(files[0]).read()
        po = (LUCI / "po" / lang / "wgsplit.po").read_text()
        pairs = [(json.loads(a), json.loads(b_)) for a, b_ in re.findall(r'^msgid (".*")\nmsgstr (".*")$', po, re.M)]
        pairs = [(k, v) for k, v in pairs if k]
        assert len(pairs) > 150, len(pairs)
        for k, v in pairs:
            got = lmo_lookup(lmo, k, p2l.sfh_hash)
            want = None if k == v else v
            assert got == want, f"{lang}: {k!r} -> {got!r}, want {want!r}"
        assert lmo_lookup(lmo, "not a message of ours", p2l.sfh_hash) is None
        plural = re.search(r'Plural-Forms: ([^\\]*)', po).group(1)
        assert plural.encode() in lmo, "Plural-Forms record missing"


KNOWN_SFH = {
    "a": 291415938, "ab": 1366002500, "abc": 3535673738, "abcd": 3671636187, "abcde": 1374488366,
    "é": 3304826196, "ыы": 3482715798, "中": 2960337290, "中文": 4232330521,
    "WireGuard Split": 4113710224, "Clients": 2974059812,
}


@test
def po2lmo_hash_matches_known_values():
    # SuperFastHash (seeded with the length) of short inputs, computed with LuCI's C sfh_hash
    # (gcc, x86_64); covers the 1/2/3-byte tails and a signed-char tail byte.
    sfh = load_po2lmo().sfh_hash
    for text, want in KNOWN_SFH.items():
        b = text.encode()
        assert sfh(b, len(b)) == want, (text, sfh(b, len(b)), want)


@test
def builds_are_reproducible():
    b = build()
    d = Path(tempfile.mkdtemp(prefix="ipk2-"))
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    r = sh(FEED / "build-ipk.sh", BIN, "x86_64", d, env=env)
    assert r.returncode == 0, r.stderr
    for key in ("main", "luci"):
        again = d / b[key].name
        assert again.read_bytes() == b[key].read_bytes(), f"{b[key].name} differs between builds"
    shutil.rmtree(d)


@test
def build_ipk_rejects_bad_input():
    d = Path(tempfile.mkdtemp(prefix="ipk3-"))
    r = sh(FEED / "build-ipk.sh", "/nonexistent/wgsplit", "x86_64", d)
    assert r.returncode != 0 and "no binary" in r.stderr
    r = sh(FEED / "build-ipk.sh", BIN, "x86 64; rm", d)
    assert r.returncode != 0 and "bad architecture" in r.stderr
    assert not list(d.glob("*.ipk")), "a package was written for bad input"
    shutil.rmtree(d)


# ---------- default config ----------

@test
def default_config_uses_only_documented_options():
    schema = readme_schema()
    assert {"server", "upstream", "client", "rule", "list"} <= set(schema), schema.keys()
    secs = parse_uci((FILES / "wgsplit.config").read_text())
    assert [s["type"] for s in secs] == ["server"] and secs[0]["name"] == "server"
    for s in secs:
        unknown = set(s["opts"]) - schema[s["type"]]
        assert not unknown, f"undocumented options {unknown}"
    # the commented examples too: uncomment and check
    body = "\n".join(l[1:] if l.startswith("#config") or l.startswith("#\t") else l
                     for l in (FILES / "wgsplit.config").read_text().splitlines())
    for s in parse_uci(body):
        unknown = set(s["opts"]) - schema[s["type"]]
        assert not unknown, f"example {s['type']}: undocumented options {unknown}"


def binary_has(*sub):
    """Does the binary implement SUB? `--help` is not enough (an unfinished CLI may exit 0 on
    anything), so `config check` must reject a bogus config and `genkey` must print a key."""
    if sub == ("config", "check"):
        with tempfile.NamedTemporaryFile("w") as tmp:
            tmp.write("config server 'server'\n\toption no_such_option 'x'\n")
            tmp.flush()
            r = sh(BIN, "--config", tmp.name, "config", "check")
        return r.returncode != 0 and "no_such_option" in (r.stdout + r.stderr)
    if sub == ("genkey",):
        r = sh(BIN, "genkey")
        return r.returncode == 0 and re.fullmatch(r"[A-Za-z0-9+/]{43}=", r.stdout.strip()) is not None
    raise ValueError(sub)


@test
def default_config_passes_config_check_once_keyed():
    """With the key uci-defaults would add, `wgsplit config check` accepts the shipped config."""
    if not binary_has("config", "check"):
        raise Skip("binary has no `config check` yet")
    d = Path(tempfile.mkdtemp(prefix="cfg-"))
    key = sh(BIN, "genkey").stdout.strip() if binary_has("genkey") else "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
    text = (FILES / "wgsplit.config").read_text().replace("option private_key ''", f"option private_key '{key}'")
    (d / "wgsplit").write_text(text)
    r = sh(BIN, "--config", d / "wgsplit", "config", "check")
    shutil.rmtree(d)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------- fw4 include ----------

def fw4_include(mask=None):
    """`wgsplit fw4-include` for the LuCI fixture config (upstreams us1 and eu1, eu1 on the
    custom interface tun_x), with fwmark_mask MASK if given."""
    text = (REPO / "tests/luci/fixtures/wgsplit").read_text()
    text = text.replace("config upstream 'eu1'\n", "config upstream 'eu1'\n\toption interface 'tun_x'\n")
    if mask:
        text = text.replace("config server 'server'\n", f"config server 'server'\n\toption fwmark_mask '{mask}'\n")
    with tempfile.NamedTemporaryFile("w") as tmp:
        tmp.write(text)
        tmp.flush()
        r = sh(BIN, "--config", tmp.name, "fw4-include")
    if r.returncode != 0 and "unknown command" in r.stderr:
        raise Skip("binary has no fw4-include yet")
    assert r.returncode == 0, r.stderr
    return r.stdout


@test
def fw4_include_is_valid_nft_in_a_zone_chain():
    for mask, want in [(None, "meta mark & 0xff000000 { 0x03000000, 0x04000000 }"),
                       ("0x00ff0000", "meta mark & 0x00ff0000 { 0x00030000, 0x00040000 }")]:
        inc = fw4_include(mask)
        # names and marks from the config, not written down in the package
        assert 'oifname { "wgs_us1", "tun_x" }' in inc and want in inc, inc
        ruleset = ("table inet wgsplit_owrt_check {\n chain forward_wgsplit {\n"
                   + inc + "\n }\n}\n")
        with tempfile.NamedTemporaryFile("w", suffix=".nft") as tmp:
            tmp.write(ruleset)
            tmp.flush()
            r = sh("nft", "-c", "-f", tmp.name)
        assert r.returncode == 0, r.stderr
        assert "table" not in "".join(l for l in inc.splitlines() if not l.startswith("#")), \
            "a chain include must hold rules only"
    assert not list(FILES.glob("*.nft")), "a static include with names or marks is back in the package"


@test
def fw4_include_forwards_upstream_traffic_in_a_netns():
    """Real packets: a router namespace with an fw4-like forward chain (policy drop, zone jump
    for the server interface, the include `wgsplit fw4-include` made, then reject) forwards
    client pings into the upstreams' interfaces (wgs_us1, and eu1's custom tun_x), and into
    another interface only when the packet carries an upstream's mark; the rest is rejected."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        raise Skip("needs root and iproute2")
    inc_text = fw4_include()
    tag = f"ow{os.getpid() % 10000}"
    ns = {"c": f"{tag}c", "r": f"{tag}r", "u": f"{tag}u", "x": f"{tag}x", "o": f"{tag}o"}

    def ip(*a, check=True):
        r = sh("ip", *a)
        if check:
            assert r.returncode == 0, f"ip {' '.join(map(str, a))}: {r.stderr}"
        return r

    def nsx(n, *a):
        return sh("ip", "netns", "exec", ns[n], *a)

    inc = Path(tempfile.mkdtemp(prefix="fw4inc-")) / "fw4-forward.nft"
    inc.write_text(inc_text)
    try:
        for n in ns.values():
            ip("netns", "add", n)
        # client --(cl0|wg0)-- router --(wgs_us1|up0)-- us1's peer
        #                             --(tun_x|x0)--    eu1's peer (custom interface name)
        #                             --(other0|o0)--   an interface of no upstream
        ip("link", "add", "cl0", "netns", ns["c"], "type", "veth", "peer", "name", "wg0", "netns", ns["r"])
        ip("link", "add", "wgs_us1", "netns", ns["r"], "type", "veth", "peer", "name", "up0", "netns", ns["u"])
        ip("link", "add", "tun_x", "netns", ns["r"], "type", "veth", "peer", "name", "x0", "netns", ns["x"])
        ip("link", "add", "other0", "netns", ns["r"], "type", "veth", "peer", "name", "o0", "netns", ns["o"])
        for n, dev, addr in [("c", "cl0", "10.99.0.2/24"), ("r", "wg0", "10.99.0.1/24"),
                             ("r", "wgs_us1", "10.99.1.1/24"), ("u", "up0", "10.99.1.2/24"),
                             ("r", "tun_x", "10.99.2.1/24"), ("x", "x0", "10.99.2.2/24"),
                             ("r", "other0", "10.99.3.1/24"), ("o", "o0", "10.99.3.2/24")]:
            assert nsx(n, "ip", "addr", "add", addr, "dev", dev).returncode == 0
            assert nsx(n, "ip", "link", "set", dev, "up").returncode == 0
        for n in ("c", "r", "u", "x", "o"):
            nsx(n, "ip", "link", "set", "lo", "up")
        nsx("c", "ip", "route", "add", "default", "via", "10.99.0.1")
        nsx("u", "ip", "route", "add", "default", "via", "10.99.1.1")
        nsx("x", "ip", "route", "add", "default", "via", "10.99.2.1")
        nsx("o", "ip", "route", "add", "default", "via", "10.99.3.1")
        nsx("r", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        ruleset = f"""
table inet fw4 {{
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "wg0" jump forward_wgsplit
  }}
  chain forward_wgsplit {{
    include "{inc}"
    reject
  }}
}}
table inet wgsplit_marks {{
  chain pre {{
    type filter hook prerouting priority -150;
    iifname "wg0" ip daddr 10.99.3.3 meta mark set 0x04000000
    iifname "wg0" ip daddr 10.99.3.4 meta mark set 0x01000000
  }}
}}
"""
        r = subprocess.run(["ip", "netns", "exec", ns["r"], "nft", "-f", "-"], input=ruleset, text=True, capture_output=True)
        assert r.returncode == 0, r.stderr
        for a in ("10.99.3.3/24", "10.99.3.4/24"):
            nsx("o", "ip", "addr", "add", a, "dev", "o0")

        def ping(dst):
            return nsx("c", "ping", "-c", "1", "-W", "1", dst).returncode == 0

        assert ping("10.99.1.2"), "traffic into wgs_us1 was not forwarded"
        assert ping("10.99.2.2"), "traffic into eu1's custom interface tun_x was not forwarded"
        assert not ping("10.99.3.2"), "unmarked traffic into an interface of no upstream was forwarded"
        assert ping("10.99.3.3"), "traffic marked for upstream eu1 was not forwarded"
        assert not ping("10.99.3.4"), "traffic marked direct was forwarded by the include"
    finally:
        for n in ns.values():
            ip("netns", "del", n, check=False)
        shutil.rmtree(inc.parent)


# ---------- init script under a stand-in procd ----------

class Env:
    def __init__(self, running=False, check_fail=False, enabled=True):
        self.dir = Path(tempfile.mkdtemp(prefix="procd-"))
        self.log = self.dir / "log"
        self.log.touch()
        (self.dir / "state").mkdir()
        if running:
            (self.dir / "state/running").touch()
        self.env = dict(os.environ,
                        PATH=f"{FAKE}/bin:{os.environ['PATH']}",
                        FAKE_LOG=str(self.log), FAKE_STATE=str(self.dir / "state"),
                        FAKE_PROG=str(FAKE / "bin/wgsplit"),
                        FAKE_CHECK_FAIL="1" if check_fail else "0",
                        FAKE_ENABLED="1" if enabled else "0",
                        UCI_CONFDIR=str(self.dir / "config"), UCI_SAVEDIR=str(self.dir / "save"))
        (self.dir / "config").mkdir()
        (self.dir / "save").mkdir()
        real = os.environ.get("REAL_UCI")
        if real:
            # OpenWrt's own uci CLI (built from openwrt/uci) instead of the stand-in
            wrap = self.dir / "realbin"
            wrap.mkdir()
            (wrap / "uci").write_text(f'#!/bin/sh\nexec {real} -c "$UCI_CONFDIR" -t "$UCI_SAVEDIR" "$@"\n')
            (wrap / "uci").chmod(0o755)
            self.env["PATH"] = f"{wrap}:{self.env['PATH']}"

    def init(self, action):
        # the fw4 include and the firewall's init script, kept inside this test's folder
        script = self.dir / "wgsplit.init"
        script.write_text((FILES / "wgsplit.init").read_text()
                          .replace("/var/run/wgsplit/fw4-forward.nft", str(self.dir / "run/fw4-forward.nft"))
                          .replace("/etc/init.d/firewall", str(self.dir / "firewall")))
        fw = self.dir / "firewall"
        fw.write_text(f'#!/bin/sh\necho "firewall $*" >> "{self.log}"\n')
        fw.chmod(0o755)
        return sh(*ASH, FAKE / "rc.common", script, action, env=self.env)

    def lines(self):
        return self.log.read_text().splitlines()

    def close(self):
        shutil.rmtree(self.dir)


@test
def init_start_registers_respawning_daemon_with_reload_trigger():
    e = Env()
    r = e.init("start")
    log = e.lines()
    e.close()
    assert r.returncode == 0, r.stderr
    prog = str(FAKE / "bin/wgsplit")
    expect_in_order = [
        "wgsplit --config /etc/config/wgsplit config check",
        "procd_open_instance wgsplit",
        f"procd_set_param command {prog} --config /etc/config/wgsplit daemon",
        "procd_set_param respawn 3600 5 5",
        "procd_close_instance",
        "procd_add_reload_trigger wgsplit",
        "procd_close_service",
    ]
    pos = 0
    for want in expect_in_order:
        assert want in log[pos:], f"missing/out of order: {want!r}\nlog: {log}"
        pos = log.index(want, pos) + 1


@test
def init_writes_the_fw4_include_and_reloads_fw4_only_when_it_changed():
    e = Env()
    inc = e.dir / "run/fw4-forward.nft"
    e.env["FAKE_FW4"] = "oifname { \"wgs_us1\" } accept"
    assert e.init("start").returncode == 0
    assert inc.read_text() == "oifname { \"wgs_us1\" } accept\n", inc.read_text()
    log = e.lines()
    assert log.index("wgsplit --config /etc/config/wgsplit fw4-include") < log.index("procd_open_instance wgsplit"), log
    assert log.count("firewall reload") == 1, log
    # a reload with the same upstreams: fw4 is left alone
    (e.dir / "state/running").touch()
    assert e.init("reload").returncode == 0
    assert e.lines().count("firewall reload") == 1, e.lines()
    # an upstream added: the include is rewritten and fw4 reloaded
    e.env["FAKE_FW4"] = "oifname { \"wgs_us1\", \"wgs_eu1\" } accept"
    assert e.init("reload").returncode == 0
    assert "wgs_eu1" in inc.read_text() and e.lines().count("firewall reload") == 2, e.lines()
    # the CLI failing leaves the last include and no half-written file
    e.env["FAKE_FW4_FAIL"] = "1"
    assert e.init("reload").returncode == 0
    assert "wgs_eu1" in inc.read_text() and not (e.dir / "run/fw4-forward.nft.new").exists()
    e.close()


@test
def init_start_refuses_invalid_config_and_logs_why():
    e = Env(check_fail=True)
    r = e.init("start")
    log = e.lines()
    e.close()
    assert r.returncode != 0
    assert not any(l.startswith("procd_open_instance") for l in log), log
    assert "logger server.address: required option missing" in log, log


@test
def init_stop_kills_daemon_then_runs_down():
    e = Env(running=True)
    r = e.init("stop")
    log = e.lines()
    e.close()
    assert r.returncode == 0, r.stderr
    kill = log.index("procd_kill wgsplit wgsplit")
    down = log.index("wgsplit --config /etc/config/wgsplit down")
    assert kill < down, log


@test
def init_reload_signals_running_daemon():
    e = Env(running=True)
    r = e.init("reload")
    log = e.lines()
    e.close()
    assert r.returncode == 0, r.stderr
    assert "procd_send_signal wgsplit wgsplit HUP" in log, log
    assert not any(l.startswith("procd_open_instance") for l in log), "reload restarted the daemon"


@test
def init_reload_starts_stopped_daemon():
    e = Env(running=False)
    r = e.init("reload")
    log = e.lines()
    e.close()
    assert r.returncode == 0, r.stderr
    assert "procd_open_instance wgsplit" in log and not any("procd_send_signal" in l for l in log), log


@test
def init_reload_with_bad_config_keeps_running_daemon():
    e = Env(running=True, check_fail=True)
    r = e.init("reload")
    log = e.lines()
    e.close()
    assert r.returncode != 0
    assert not any("procd_send_signal" in l or "procd_kill" in l for l in log), log


# ---------- hotplug ----------

def run_hotplug(e, action, iface):
    script = (FILES / "wgsplit.hotplug").read_text()
    initwrap = e.dir / "initd-wgsplit"
    initwrap.write_text(f"#!/bin/sh\nexec {' '.join(ASH)} {FAKE}/rc.common {FILES}/wgsplit.init \"$@\"\n")
    initwrap.chmod(0o755)
    hp = e.dir / "hotplug"
    hp.write_text(script.replace("/etc/init.d/wgsplit", str(initwrap)))
    env = dict(e.env, ACTION=action, INTERFACE=iface, DEVICE="eth1")
    return sh(*ASH, hp, env=env)


@test
def hotplug_reapplies_on_wan_events_only_when_running():
    for action, running, expect in [("ifup", True, True), ("ifupdate", True, True), ("ifdown", True, True),
                                    ("ifup", False, False), ("ifup-failed", True, False)]:
        e = Env(running=running)
        r = run_hotplug(e, action, "wan")
        log = e.lines()
        e.close()
        assert r.returncode == 0, r.stderr
        signalled = "procd_send_signal wgsplit wgsplit HUP" in log
        assert signalled == expect, f"{action} running={running}: {log}"
    e = Env(running=True, enabled=False)
    run_hotplug(e, "ifup", "wan")
    log = e.lines()
    e.close()
    assert not any("procd_send_signal" in l for l in log), "disabled service was reloaded"


# ---------- uci-defaults ----------

DEFAULT_DHCP = """
config dnsmasq
	option domainneeded '1'
	option localservice '1'
	option port '53'

config dhcp 'lan'
	option interface 'lan'
"""

DEFAULT_FIREWALL = """
config defaults
	option input 'REJECT'

config zone
	option name 'wan'
	list network 'wan'
	option masq '1'
"""


def run_uci_defaults(e):
    script = (FILES / "wgsplit.uci-defaults").read_text().replace("/usr/bin/wgsplit", str(FAKE / "bin/wgsplit"))
    script = script.replace("/etc/wgsplit/defaults-added", str(e.dir / "defaults-added"))
    p = e.dir / "uci-defaults"
    p.write_text(script.replace("chmod 0600 /etc/config/wgsplit", f"chmod 0600 {e.dir}/config/wgsplit"))
    return sh(*ASH, p, env=e.env)


@test
def uci_defaults_keys_firewall_dnsmasq_and_is_rerunnable():
    e = Env()
    cfg = e.dir / "config"
    shutil.copy(FILES / "wgsplit.config", cfg / "wgsplit")
    (cfg / "dhcp").write_text(DEFAULT_DHCP)
    (cfg / "firewall").write_text(DEFAULT_FIREWALL)
    r = run_uci_defaults(e)
    assert r.returncode == 0, r.stderr
    first = {n: (cfg / n).read_text() for n in ("wgsplit", "dhcp", "firewall")}
    w = {s["name"]: s for s in parse_uci(first["wgsplit"])}
    assert w["server"]["opts"]["private_key"] == ["yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="], w
    assert (cfg / "wgsplit").stat().st_mode & 0o777 == 0o600
    fw = parse_uci(first["firewall"])
    zone = [s for s in fw if s["type"] == "zone" and s["opts"].get("name") == ["wgsplit"]]
    assert len(zone) == 1 and zone[0]["opts"]["device"] == ["wg0"], fw
    assert zone[0]["opts"]["forward"] == ["REJECT"] and zone[0]["opts"]["input"] == ["REJECT"]
    fwd = [s for s in fw if s["type"] == "forwarding"]
    assert [(s["opts"]["src"], s["opts"]["dest"]) for s in fwd] == [(["wgsplit"], ["wan"])], fwd
    rules = {s["opts"]["name"][0]: s["opts"] for s in fw if s["type"] == "rule"}
    assert rules["Allow-wgsplit-DNS"]["dest_port"] == ["53"] and rules["Allow-wgsplit-DNS"]["src"] == ["wgsplit"]
    assert rules["Allow-wgsplit-WireGuard"]["dest_port"] == ["51820"] and rules["Allow-wgsplit-WireGuard"]["src"] == ["wan"]
    dm = [s for s in parse_uci(first["dhcp"]) if s["type"] == "dnsmasq"][0]["opts"]
    assert dm["notinterface"] == ["wg0"] and dm["nonwildcard"] == ["1"], dm
    left = sh("uci", "changes", env=e.env)
    assert left.returncode == 0 and left.stdout.strip() == "", f"uncommitted uci changes left: {left.stdout}"

    # run again (sysupgrade, reinstall): nothing changes, the key is kept
    env_key = e.env["FAKE_KEY"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    r = run_uci_defaults(e)
    assert r.returncode == 0, r.stderr
    for n, text in first.items():
        assert (cfg / n).read_text() == text, f"second run changed {n}"
    assert env_key not in (cfg / "wgsplit").read_text()
    e.close()


@test
def uci_defaults_follows_configured_interface_and_port():
    e = Env()
    cfg = e.dir / "config"
    text = (FILES / "wgsplit.config").read_text().replace("'wg0'", "'wgsrv'").replace("'51820'", "'4500'")
    (cfg / "wgsplit").write_text(text)
    (cfg / "dhcp").write_text(DEFAULT_DHCP)
    (cfg / "firewall").write_text(DEFAULT_FIREWALL)
    r = run_uci_defaults(e)
    assert r.returncode == 0, r.stderr
    fw = parse_uci((cfg / "firewall").read_text())
    zone = [s for s in fw if s["type"] == "zone" and s["opts"].get("name") == ["wgsplit"]][0]
    assert zone["opts"]["device"] == ["wgsrv"]
    wg = [s for s in fw if s["opts"].get("name") == ["Allow-wgsplit-WireGuard"]][0]
    assert wg["opts"]["dest_port"] == ["4500"]
    dm = [s for s in parse_uci((cfg / "dhcp").read_text()) if s["type"] == "dnsmasq"][0]["opts"]
    assert dm["notinterface"] == ["wgsrv"]
    e.close()


def run_postrm(e, extra_env=None):
    """The postrm as the .ipk carries it, against the stand-in uci; init scripts not run."""
    names, parts = ipk_parts(build()["main"])
    _, t = control_fields(parts)
    script = t.extractfile("./postrm").read().decode()
    script = script.replace("/etc/wgsplit/defaults-added", str(e.dir / "defaults-added"))
    script = script.replace("/etc/wgsplit", str(e.dir / "etc-wgsplit")).replace("/etc/init.d/", str(e.dir / "no-init.d") + "/")
    p = e.dir / "postrm"
    p.write_text(script)
    return sh(*ASH, p, env=dict(e.env, IPKG_INSTROOT="", **(extra_env or {})))


def uci_sections(text):
    """A config as comparable data: [(type, name-or-None, sorted options)]."""
    return [(x["type"], x.get("name"), sorted((k, tuple(v)) for k, v in x["opts"].items())) for x in parse_uci(text)]


@test
def postrm_undoes_exactly_what_uci_defaults_added():
    e = Env()
    cfg = e.dir / "config"
    shutil.copy(FILES / "wgsplit.config", cfg / "wgsplit")
    (cfg / "dhcp").write_text(DEFAULT_DHCP)
    (cfg / "firewall").write_text(DEFAULT_FIREWALL)
    assert run_uci_defaults(e).returncode == 0
    assert "wgsplit" in (cfg / "firewall").read_text() and "notinterface" in (cfg / "dhcp").read_text()
    # an upgrade (opkg/apk run the old package's scripts with PKG_UPGRADE=1) keeps everything
    before = {n: (cfg / n).read_text() for n in ("firewall", "dhcp")}
    r = run_postrm(e, {"PKG_UPGRADE": "1"})
    assert r.returncode == 0, r.stderr
    assert {n: (cfg / n).read_text() for n in ("firewall", "dhcp")} == before, "an upgrade undid the defaults"
    # the user adds a rule of their own after installing: removal keeps it
    r = sh("uci", "batch", input="set firewall.mine=rule\nset firewall.mine.name='Allow-mine'\ncommit firewall\n", env=e.env)
    assert r.returncode == 0, r.stderr
    r = run_postrm(e)
    assert r.returncode == 0, r.stderr
    fw = uci_sections((cfg / "firewall").read_text())
    assert fw == uci_sections(DEFAULT_FIREWALL) + [("rule", "mine", [("name", ("Allow-mine",))])], fw
    assert uci_sections((cfg / "dhcp").read_text()) == uci_sections(DEFAULT_DHCP), (cfg / "dhcp").read_text()
    assert not (e.dir / "defaults-added").exists(), "the record is left behind"
    left = sh("uci", "changes", env=e.env)
    assert left.stdout.strip() == "", f"uncommitted uci changes left: {left.stdout}"
    e.close()


@test
def postrm_leaves_what_the_user_had_before():
    """A zone named wgsplit the user made, and nonwildcard already on, are not uci-defaults' to remove."""
    e = Env()
    cfg = e.dir / "config"
    shutil.copy(FILES / "wgsplit.config", cfg / "wgsplit")
    dhcp = DEFAULT_DHCP.replace("\toption port '53'\n", "\toption port '53'\n\toption nonwildcard '1'\n\tlist notinterface 'wg0'\n")
    fwtext = DEFAULT_FIREWALL + "\nconfig zone 'wgsplit'\n\toption name 'wgsplit'\n\toption input 'ACCEPT'\n"
    (cfg / "dhcp").write_text(dhcp)
    (cfg / "firewall").write_text(fwtext)
    assert run_uci_defaults(e).returncode == 0
    record = (e.dir / "defaults-added").read_text().splitlines()
    assert "section firewall.wgsplit" not in record and not any("dhcp." in l for l in record), record
    assert run_postrm(e).returncode == 0
    assert uci_sections((cfg / "firewall").read_text()) == uci_sections(fwtext), (cfg / "firewall").read_text()
    assert uci_sections((cfg / "dhcp").read_text()) == uci_sections(dhcp), (cfg / "dhcp").read_text()
    e.close()


@test
def keep_list_covers_config_and_lists():
    keep = (FILES / "wgsplit.keep").read_text().split()
    assert "/etc/config/wgsplit" in keep and "/etc/wgsplit/" in keep, keep


# ---------- rpcd plugin ----------

def rpcd(method, args, env_extra=None):
    env = dict(os.environ, PATH=f"{FAKE}/bin:{os.environ['PATH']}", WGSPLIT_BIN=str(FAKE / "bin/rpc-wgsplit"),
               FAKE_LOG="/dev/null")
    env.update(env_extra or {})
    return sh(*ASH, LUCI / "root/usr/libexec/rpcd/wgsplit", "call", method, input=json.dumps(args), env=env)


@test
def rpcd_plugin_lists_methods_and_answers_json():
    r = sh("sh", LUCI / "root/usr/libexec/rpcd/wgsplit", "list")
    methods = json.loads(r.stdout)
    assert set(methods) == {"status", "explain", "client_conf", "client_qr", "upstream_import", "genkey", "config_check",
                            "config_view", "lists_show", "lists_update", "client_history", "client_next_address"}
    groups = json.loads((LUCI / "root/usr/share/rpcd/acl.d/luci-app-wgsplit.json").read_text())
    granted = {m for g in groups.values() for part in g.values() if isinstance(part, dict)
               for m in part.get("ubus", {}).get("wgsplit", [])}
    assert granted == set(methods), f"ACL grants {granted}, plugin has {set(methods)}"
    # The group a read-only user gets shows no key: no uci read of the config
    # (it holds every private key), no method that prints one.
    ro = groups["luci-app-wgsplit"]
    assert "uci" not in ro.get("read", {}) and "uci" not in ro.get("write", {}), ro
    assert set(ro["read"]["ubus"]["wgsplit"]) == {"status", "explain", "config_check", "config_view", "lists_show",
                                                  "client_history"}, ro
    full = groups["luci-app-wgsplit-config"]
    assert full["read"]["uci"] == ["wgsplit"] and full["write"]["uci"] == ["wgsplit"], full
    assert {"client_conf", "client_qr"} <= set(full["read"]["ubus"]["wgsplit"]), full
    # starting downloads is a change: the config group only
    assert "lists_update" in full["write"]["ubus"]["wgsplit"], full
    menu = json.loads((LUCI / "root/usr/share/luci/menu.d/luci-app-wgsplit.json").read_text())
    for page in ("clients", "upstreams", "settings"):
        assert menu[f"admin/services/wgsplit/{page}"]["depends"]["acl"] == ["luci-app-wgsplit-config"], page
    view = json.loads(rpcd("config_view", {}).stdout)
    assert view["server"]["private_key"] is None and view["clients"][0]["preshared_key"] is None, view
    assert view["clients"][0]["public_key"] == "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=", view
    assert "4EqAuesG" not in rpcd("config_view", {}).stdout

    fake = FAKE / "bin/rpc-wgsplit"
    calls = Path(tempfile.mkdtemp(prefix="rpcd-calls-")) / "calls"
    st = json.loads(rpcd("status", {}, {"FAKE_CALLS": str(calls)}).stdout)
    assert st == {"status": {"table": True, "args": "overview --json"},
                  "clients": [{"name": "alice", "peer": {"online": True}}],
                  "upstreams": [{"name": "us1", "health": {"state": "up"}}]}, st
    # the page polls it every 5 s: one run of the CLI per call (it was three)
    assert calls.read_text().splitlines() == ["overview --json"], calls.read_text()
    shutil.rmtree(calls.parent)
    st = json.loads(rpcd("status", {}, {"FAKE_OVERVIEW_FAIL": "1"}).stdout)
    assert st == {"error": "cannot read health"}, st
    out = json.loads(rpcd("explain", {"client": "alice", "dest": "netflix.com"}).stdout)
    assert out["args"] == "explain --json alice netflix.com", out
    conf = json.loads(rpcd("client_conf", {"name": "alice"}).stdout)["conf"]
    assert conf.startswith("[Interface]\n") and 'quote"back\\slash' in conf and "\t" in conf, conf
    svg = json.loads(rpcd("client_qr", {"name": "alice"}).stdout)["svg"]
    assert svg.startswith("<svg") and "--format svg" in svg
    imp = json.loads(rpcd("upstream_import", {"name": "us1", "conf": "[Interface]\nPrivateKey = x\n[Peer]\n"}).stdout)
    assert imp == {"ok": True, "name": "us1"}, imp
    assert json.loads(rpcd("genkey", {}).stdout)["private_key"].endswith("=")
    # hostile or broken input is refused before the CLI runs
    for m, a in [("explain", {"client": "a;b", "dest": "x.com"}), ("explain", {"client": "alice", "dest": "--help"}),
                 ("client_conf", {"name": "../etc"}), ("upstream_import", {"name": "us1", "conf": ""})]:
        out = json.loads(rpcd(m, a).stdout)
        assert "error" in out, (m, a, out)
    # CLI failures come back as {"error": stderr}
    # the CLI's error passed on with its code (--json-errors)
    out = json.loads(rpcd("client_conf", {"name": "nobody"}).stdout)
    assert out == {"error": "no client named 'nobody'", "code": "no_client", "args": ["nobody"]}, out
    out = json.loads(rpcd("upstream_import", {"name": "bad", "conf": "junk"}).stdout)
    assert out == {"error": "line 1: expected [Interface]"}, out


@test
def rpcd_plugin_errors_carry_a_code_and_arguments():
    """The plugin's own errors come with the code the pages translate (common.js MESSAGES)."""
    common = (LUCI / "htdocs/luci-static/resources/wgsplit/common.js").read_text()
    for m, a, code, args in [("explain", {"client": "a;b", "dest": "x.com"}, "bad_client_name", []),
                             ("explain", {"client": "alice", "dest": "--help"}, "bad_destination", []),
                             ("client_qr", {"name": "../etc"}, "bad_client_name", []),
                             ("upstream_import", {"name": "a b", "conf": "x"}, "bad_upstream_name", []),
                             ("upstream_import", {"name": "us1", "conf": ""}, "empty_config", [])]:
        out = json.loads(rpcd(m, a).stdout)
        assert out.get("code") == code and out.get("args") == args and out.get("error"), (m, a, out)
        assert f"\n\t{code}: _(" in common, f"common.js has no message {code}"
    # a CLI that fails without a word: the code names the command and its exit status
    out = json.loads(rpcd("genkey", {}, {"WGSPLIT_BIN": "/bin/false"}).stdout)
    assert out == {"error": "wgsplit genkey failed (exit 1)", "code": "cli_failed", "args": ["genkey", "1"]}, out


@test
def rpcd_plugin_lists_update_answers_at_once_and_runs_the_update_apart():
    d = Path(tempfile.mkdtemp(prefix="rpcd-lists-"))
    try:
        mark = d / "updated"
        env = {"FAKE_LISTS_UPDATED": str(mark), "FAKE_LISTS_SLEEP": "3"}
        t0 = time.monotonic()
        r = rpcd("lists_update", {}, env)
        took = time.monotonic() - t0
        assert json.loads(r.stdout) == {"started": True}, r.stdout + r.stderr
        # the plugin answered before the (3 s) update ended: rpcd is not held
        assert took < 2 and not mark.exists(), took
        for _ in range(60):
            if mark.exists():
                break
            time.sleep(0.1)
        assert mark.read_text().strip() == "lists update", "the update did not run"
        show = json.loads(rpcd("lists_show", {}).stdout)
        assert show["args"] == "lists show --json", show
    finally:
        shutil.rmtree(d)


@test
def rpcd_plugin_against_the_real_cli():
    """The plugin's commands exist in the wgsplit CLI and answer what the pages read."""
    if not binary_has("config", "check"):
        raise Skip("binary has no CLI yet")
    d = Path(tempfile.mkdtemp(prefix="rpcd-real-"))
    cfg = d / "wgsplit"
    shutil.copy(REPO / "tests/luci/fixtures/wgsplit", cfg)
    wrap = d / "wgsplit-cli"
    wrap.write_text(f'#!/bin/sh\nexec {BIN} --config {cfg} "$@"\n')
    wrap.chmod(0o755)

    def call(method, args):
        env = dict(os.environ, PATH=f"{FAKE}/bin:{os.environ['PATH']}", WGSPLIT_BIN=str(wrap), FAKE_LOG="/dev/null")
        r = sh(*ASH, LUCI / "root/usr/libexec/rpcd/wgsplit", "call", method, input=json.dumps(args), env=env)
        return json.loads(r.stdout)

    try:
        st = call("status", {})
        assert "error" not in st, st
        # `overview --json` answers status with the members `status --json` has, same values
        alone = json.loads(sh(wrap, "status", "--json").stdout)
        assert st["status"] == alone, (st["status"], alone)
        assert [c["name"] for c in st["clients"]] == ["alice", "bob"], st["clients"]
        assert [u["name"] for u in st["upstreams"]] == ["us1", "eu1"], st["upstreams"]
        assert all("state" in c and "peer" in c for c in st["clients"]), st["clients"]
        assert all("health" in u and "on_down" in u for u in st["upstreams"]), st["upstreams"]
        srv = [i for i in st["status"]["interfaces"] if i["role"] == "server"]
        assert srv and srv[0]["interface"] == "wg0" and "up" in srv[0] and "peers" in srv[0], st["status"]
        conf = call("client_conf", {"name": "alice"})["conf"]
        assert "[Interface]" in conf and "[Peer]" in conf and "Endpoint = vpn.example.net" in conf, conf
        assert call("client_qr", {"name": "alice"})["svg"].startswith("<svg")
        assert "error" in call("client_conf", {"name": "bob"}), "bob has no private key on the router"
        assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", call("genkey", {})["private_key"])
        imp = call("upstream_import", {"name": "nl1", "conf": "[Interface]\nPrivateKey = SlVga3aBjJeirbjDztnk7/oFEBsmMTxHUl1oc36JlJ8=\n"
                                       "Address = 10.66.0.2/32\n\n[Peer]\nPublicKey = b3qFkJumsbzH0t3o8/4JFB8qNUBLVmFsd4KNmKOuucQ=\n"
                                       "Endpoint = nl1.example.net:51820\nAllowedIPs = 0.0.0.0/0\n"})
        assert imp == {"ok": True, "name": "nl1"}, imp
        assert "config upstream 'nl1'" in cfg.read_text()
        bad = call("upstream_import", {"name": "nl2", "conf": "not a config"})
        assert "error" in bad and "nl2" not in cfg.read_text(), bad
        chk = call("config_check", {})
        assert chk["ok"] is True, chk
        # a new client's addresses, asked of the CLI; the page's unsaved ones count as taken
        assert call("client_next_address", {"taken": []}) == {"address": ["10.8.0.4/32"]}
        assert call("client_next_address", {"taken": ["10.8.0.4/32", "10.8.0.5/32"]}) == {"address": ["10.8.0.6/32"]}
        bad = call("client_next_address", {"taken": ["10.8.0.4/32", "--help"]})
        assert bad.get("code") == "bad_address" and bad.get("args") == ["--help"], bad
        # MAX_TAKEN bounds the argument list the plugin builds
        limit = int(re.search(r"^MAX_TAKEN=(\d+)$", (LUCI / "root/usr/libexec/rpcd/wgsplit").read_text(), re.M).group(1))
        many = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}/32" for i in range(limit + 1)]
        over = call("client_next_address", {"taken": many})
        assert over.get("code") == "too_many_addresses", {k: over[k] for k in over if k != "address"}
        assert "address" in call("client_next_address", {"taken": many[:limit]})
        # what the client details read of `client history`: 7 days of 5-minute buckets, the month
        h = call("client_history", {"name": "alice"})
        assert len(h["rx"]) == len(h["tx"]) == 2016 and h["interval"] == 300, {k: h[k] for k in h if k not in ("rx", "tx")}
        assert {"bytes", "quota", "left", "disabled_by_quota"} <= set(h["month"]), h["month"]
        assert "no client named 'zed'" in call("client_history", {"name": "zed"}).get("error", "")
        # what settings.js reads of `lists show --json`
        ls = call("lists_show", {})
        assert "error" not in ls and isinstance(ls.get("state"), dict) and isinstance(ls.get("countries"), list), ls
        view = call("config_view", {})
        assert [c["name"] for c in view["clients"]] == ["alice", "bob"] and view["server"]["interface"] == "wg0", view
        text = json.dumps(view)
        keys = re.findall(r"option (?:private|preshared)_key '([^']+)'", cfg.read_text())
        assert keys and not any(k in text for k in keys), "config_view shows a key"
        assert all(v.get(f) is None for v in [view["server"], *view["clients"], *view["upstreams"]]
                   for f in ("private_key", "preshared_key")), view
        ex = call("explain", {"client": "alice", "dest": "netflix.com"})
        if "unknown command" not in ex.get("error", ""):
            # the members explain.js reads
            assert ex.get("goes") == "upstream us1" and ex["rule"]["action"] == "proxy", ex
            assert {"position", "section", "matched"} <= set(ex["rule"]) and isinstance(ex.get("caveats"), list), ex
            ex = call("explain", {"client": "alice", "dest": "1.1.1.1:443/tcp"})
            assert "error" not in ex and "goes" in ex, ex
    finally:
        shutil.rmtree(d)


@test
def real_opkg_installs_both_packages():
    """With OpenWrt's opkg built for the host (OPKG_CL=path to opkg-cl from openwrt/opkg-lede,
    which needs libubox), install both packages into an offline root."""
    opkg = os.environ.get("OPKG_CL")
    if not opkg:
        raise Skip("set OPKG_CL to an opkg-cl built from openwrt/opkg-lede to run it")
    b = build()
    root = Path(tempfile.mkdtemp(prefix="opkg-root-"))
    (root / "var/lock").mkdir(parents=True)
    (root / "usr/lib/opkg").mkdir(parents=True)
    # the router already has (or can get) these
    (root / "usr/lib/opkg/status").write_text("".join(
        f"Package: {p}\nVersion: 1\nStatus: install user installed\nArchitecture: x86_64\nInstalled-Time: 1\n\n"
        for p in ("kmod-wireguard", "kmod-nft-core", "kmod-nft-nat", "nftables-json", "luci-base")))
    conf = root / "opkg.conf"
    conf.write_text(f"dest root /\nlists_dir ext {root}/lists\n")
    r = sh(opkg, "-f", conf, "-o", root, "--add-arch", "all:1", "--add-arch", "x86_64:10",
           "install", b["main"], b["luci"], *sorted(b["dir"].glob("luci-i18n-wgsplit-*.ipk")))
    try:
        assert "Configuring wgsplit." in r.stdout and "Configuring luci-app-wgsplit." in r.stdout, r.stdout + r.stderr
        assert "Configuring luci-i18n-wgsplit-zh-cn." in r.stdout, r.stdout
        assert (root / "usr/lib/lua/luci/i18n/wgsplit.ru.lmo").is_file()
        assert (root / "etc/config/wgsplit").stat().st_mode & 0o777 == 0o600
        assert (root / "usr/libexec/rpcd/wgsplit").stat().st_mode & 0o777 == 0o755
        status = (root / "usr/lib/opkg/status").read_text()
        assert re.search(r"Package: wgsplit\n(.+\n)*Conffiles:\n /etc/config/wgsplit [0-9a-f]{64}", status), status
    finally:
        shutil.rmtree(root)


@test
def real_apk_builds_and_installs_openwrt25_packages():
    """With apk-tools 3 (APK=path, built from alpinelinux/apk-tools), build-ipk.sh also writes
    .apk packages; apk installs them (with stand-ins for the kmods and luci-base) into an
    offline root."""
    apk = os.environ.get("APK")
    if not apk:
        raise Skip("set APK to an apk-tools 3 binary to run it")
    d = Path(tempfile.mkdtemp(prefix="apk-"))
    try:
        env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
        r = sh(FEED / "build-ipk.sh", BIN, "x86_64", d / "dist", env=env)
        assert r.returncode == 0, r.stderr
        apks = sorted(p.name for p in (d / "dist").glob("*.apk"))
        assert apks == ["luci-app-wgsplit-0.1.0-r1.apk", "luci-i18n-wgsplit-ru-0.1.0-r1.apk",
                        "luci-i18n-wgsplit-zh-cn-0.1.0-r1.apk", "wgsplit-0.1.0-r1.apk"], apks
        dump = sh(apk, "adbdump", d / "dist/wgsplit-0.1.0-r1.apk").stdout
        for want in ("name: wgsplit", "version: 0.1.0-r1", "arch: x86_64", "- kmod-wireguard", "- kmod-nft-nat"):
            assert want in dump, want
        assert "arch: noarch" in sh(apk, "adbdump", d / "dist/luci-app-wgsplit-0.1.0-r1.apk").stdout
        (d / "empty").mkdir()
        for dep in ("kmod-wireguard", "kmod-nft-core", "kmod-nft-nat", "nftables-json", "luci-base"):
            r = sh(apk, "mkpkg", "--info", f"name:{dep}", "--info", "version:1-r1", "--info", "arch:x86_64",
                   "--files", d / "empty", "--output", d / f"{dep}.apk")
            assert r.returncode == 0, r.stderr
        root = d / "root"
        root.mkdir()
        # scripts need the router's /bin/sh and /lib/functions.sh: not in an empty root
        r = sh(apk, "add", "--root", root, "--initdb", "--allow-untrusted", "--no-network", "--arch", "x86_64",
               "--no-scripts", *sorted(d.glob("*.apk")), *sorted((d / "dist").glob("*.apk")))
        assert r.returncode == 0 and "OK:" in r.stdout, r.stdout + r.stderr
        assert (root / "etc/config/wgsplit").stat().st_mode & 0o777 == 0o600
        assert (root / "etc/init.d/wgsplit").stat().st_mode & 0o777 == 0o755
        assert (root / "usr/lib/lua/luci/i18n/wgsplit.zh-cn.lmo").is_file()
        static = (root / "lib/apk/packages/wgsplit.conffiles_static").read_text().split()
        assert static[0] == "/etc/config/wgsplit"
        assert static[1] == hashlib.sha256((root / "etc/config/wgsplit").read_bytes()).hexdigest()
        listed = (root / "lib/apk/packages/wgsplit.list").read_text().split()
        assert "/usr/bin/wgsplit" in listed and "/etc/init.d/wgsplit" in listed, listed
        # reproducible
        r = sh(FEED / "build-ipk.sh", BIN, "x86_64", d / "dist2", env=env)
        for name in apks:
            assert (d / "dist" / name).read_bytes() == (d / "dist2" / name).read_bytes(), f"{name} differs"
    finally:
        shutil.rmtree(d)


class Skip(Exception):
    pass


def main():
    if BIN is None or not BIN.is_file():
        print("usage: test_openwrt.py BINARY", file=sys.stderr)
        return 2
    passed = failed = skipped = 0
    for fn in results:
        try:
            fn()
            print(f"ok   {fn.__name__}")
            passed += 1
        except Skip as s:
            print(f"skip {fn.__name__}: {s}")
            skipped += 1
        except Exception as ex:
            print(f"FAIL {fn.__name__}: {type(ex).__name__}: {ex}")
            if os.environ.get("VERBOSE"):
                traceback.print_exc()
            failed += 1
    if _built:
        shutil.rmtree(_built["dir"], ignore_errors=True)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


sys.exit(main())

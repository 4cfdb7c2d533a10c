#!/usr/bin/env python3
"""Offline checks of the Buildroot external tree in board/.

    lint_board.py [BOARD_DIR] [--symbols DIR] [--buildroot DIR]

Structure, symbol syntax, that every file a defconfig or Config.in names
exists (through $(BR2_EXTERNAL_WGSPLIT_PATH)), the one list of kernel options
(common/linux-wgsplit.fragment, which the package reads), pinned kernels,
small QEMU kernel configs, scripts parse, the firmware's defaults (each
image's overlay ships /etc/config/wgsplit with the web pages on one LAN
address and no private key; its /etc/sysctl.d has something to apply it).
And every BR2_ symbol board/ sets
(defconfigs), selects or depends on (Config.in, .mk) against the symbol lists
of each supported Buildroot release (symbols-<release>.txt and
legacy-<release>.txt in --symbols DIR, default: shared/data/buildroot beside
the repository): a symbol a release lacks is named with that release, a
legacy (removed) one is refused.  With --buildroot DIR (a checkout) also
against that tree's Config.in files.
Prints one line per check and 'N passed, M failed'; exit 1 on failure.
"""

import os
import re
import subprocess
import sys

VAR = "$(BR2_EXTERNAL_WGSPLIT_PATH)"
KVAR = "$BR2_EXTERNAL_WGSPLIT_PATH"
SYM = re.compile(r"^BR2_[A-Za-z0-9_]+$")
KSYM = re.compile(r"^CONFIG_[A-Z0-9_]+$")
# The Buildroot releases board/ supports (the long-term-support lines; README
# "Firmware images"): every symbol must exist in each.
SUPPORTED_RELEASES = ("2025.02.16", "2026.02.3")
# Kernel options the daemon uses, and nothing else (the fragment must be
# exactly these): WireGuard; nf_tables (inet) with ct mark, masquerade,
# redirect (the DNS hijack) and reject (daemon/src/plan/nft.rs); fwmark policy
# routing for both families; the menus they sit in.
REQUIRED_KERNEL = {
    "CONFIG_NET", "CONFIG_INET", "CONFIG_IPV6",
    "CONFIG_IP_ADVANCED_ROUTER", "CONFIG_IP_MULTIPLE_TABLES", "CONFIG_IPV6_MULTIPLE_TABLES",
    "CONFIG_WIREGUARD",
    "CONFIG_NETFILTER", "CONFIG_NETFILTER_ADVANCED", "CONFIG_NF_TABLES", "CONFIG_NF_TABLES_INET",
    "CONFIG_NF_CONNTRACK", "CONFIG_NF_CONNTRACK_MARK", "CONFIG_NFT_CT",
    "CONFIG_NF_NAT", "CONFIG_NFT_NAT", "CONFIG_NFT_MASQ", "CONFIG_NFT_REDIR",
    "CONFIG_NFT_REJECT",
    # S95wgsplit's guard keeping the web pages on their LAN address (fib daddr
    # . iif); NFT_FIB_INET needs both families' fib.
    "CONFIG_NFT_FIB_IPV4", "CONFIG_NFT_FIB_IPV6", "CONFIG_NFT_FIB_INET",
}
FRAGMENT = "common/linux-wgsplit.fragment"
# WireGuard and concatenated interval sets are in tree from 5.6.
MIN_KERNEL = (5, 6)
# Defconfig keys whose values are paths inside the Buildroot or kernel tree by
# design (not files of ours).
NON_FILE_KEYS = {"BR2_LINUX_KERNEL_INTREE_DTS_NAME", "BR2_LINUX_KERNEL_DEFCONFIG",
                 "BR2_TARGET_GENERIC_HOSTNAME", "BR2_TARGET_GENERIC_ISSUE",
                 "BR2_ROOTFS_POST_SCRIPT_ARGS", "BR2_LINUX_KERNEL_UIMAGE_LOADADDR"}
QEMU_TWINS = {"aarch64": r"qemu_aarch64", "arm": r"qemu_arm", "mips": r"qemu_mips32r2el_malta",
              "x86_64": r"qemu_x86_64"}

passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}" + (f"\n     {detail}" if detail else ""))


def read(path):
    with open(path) as f:
        return f.read()


def resolve(board, value):
    """A value through $(BR2_EXTERNAL_WGSPLIT_PATH) -> path on disk."""
    return os.path.normpath(value.replace(VAR, board).replace(KVAR, board))


def symbol_lists(symbols_dir):
    """{release: (defined symbols, legacy symbols)}; a missing list is None."""
    out = {}
    for rel in SUPPORTED_RELEASES:
        paths = [os.path.join(symbols_dir, f"{kind}-{rel}.txt") for kind in ("symbols", "legacy")]
        if not all(os.path.isfile(p) for p in paths):
            out[rel] = None
            continue
        sets = []
        for p in paths:
            with open(p) as f:
                sets.append({ln.strip() for ln in f if ln.startswith("BR2_")})
        out[rel] = tuple(sets)
    return out


def default_symbols_dir():
    repo = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
    for d in (os.path.join(repo, "../shared/data/buildroot"), "/work/shared/data/buildroot"):
        if os.path.isdir(d):
            return d
    return os.path.join(repo, "../shared/data/buildroot")


def kconfig_refs(text):
    """(symbol, line number, how) for every BR2_ symbol a Kconfig file refers
    to outside help texts and comments: depends on, select, default/if."""
    refs, in_help, help_indent = [], False, 0
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if in_help:
            if stripped and indent <= help_indent:
                in_help = False
            else:
                continue
        if stripped in ("help", "---help---"):
            in_help, help_indent = True, indent
            continue
        code = stripped.split("#", 1)[0]
        if re.match(r"^(menu)?config\s", code):
            continue
        how = code.split()[0] if code else ""
        if how == "depends":
            how = "depends on"
        for s in re.findall(r"\b(BR2_[A-Za-z0-9_]+)", code):
            refs.append((s, n, how))
    return refs


def main():
    args = sys.argv[1:]
    buildroot = None
    symbols_dir = None
    if "--buildroot" in args:
        i = args.index("--buildroot")
        buildroot = args[i + 1]
        del args[i:i + 2]
    if "--symbols" in args:
        i = args.index("--symbols")
        symbols_dir = args[i + 1]
        del args[i:i + 2]
    symbols_dir = symbols_dir or os.environ.get("WGSPLIT_BR_SYMBOLS") or default_symbols_dir()
    board = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), "../../board"))
    # (symbol, where, how) for the release check at the end
    used = []

    # external.desc
    desc = read(os.path.join(board, "external.desc")) if os.path.exists(os.path.join(board, "external.desc")) else ""
    check("external.desc names the tree WGSPLIT", re.search(r"^name:\s*WGSPLIT\s*$", desc, re.M) is not None)
    check("external.desc has a desc: line", re.search(r"^desc:\s*\S", desc, re.M) is not None)

    # Config.in / external.mk
    for f in ("Config.in", "external.mk"):
        check(f"{f} exists", os.path.isfile(os.path.join(board, f)))
    top = read(os.path.join(board, "Config.in"))
    sources = re.findall(r'^\s*source\s+"([^"]+)"', top, re.M)
    check("Config.in sources something", len(sources) > 0)
    for s in sources:
        check(f"Config.in source {s} goes through $BR2_EXTERNAL_WGSPLIT_PATH and exists",
              s.startswith(KVAR + "/") and os.path.isfile(resolve(board, s)))
    ext = read(os.path.join(board, "external.mk"))
    check("external.mk includes packages through $(BR2_EXTERNAL_WGSPLIT_PATH)",
          VAR + "/package/" in ext)

    # Packages
    pkgdir = os.path.join(board, "package")
    pkgs = sorted(os.listdir(pkgdir)) if os.path.isdir(pkgdir) else []
    check("package/wgsplit exists", "wgsplit" in pkgs)
    defined = set()
    for p in pkgs:
        up = p.upper().replace("-", "_")
        cin = os.path.join(pkgdir, p, "Config.in")
        mk = os.path.join(pkgdir, p, f"{p}.mk")
        check(f"package {p}: Config.in and {p}.mk", os.path.isfile(cin) and os.path.isfile(mk))
        if not (os.path.isfile(cin) and os.path.isfile(mk)):
            continue
        ctext, mtext = read(cin), read(mk)
        syms = re.findall(r"^\s*(?:menu)?config\s+(\S+)", ctext, re.M)
        defined.update(syms)
        for s, n, how in kconfig_refs(ctext):
            used.append((s, f"package/{p}/Config.in:{n}", how))
        for n, line in enumerate(mtext.splitlines(), 1):
            for s in re.findall(r"\b(BR2_[A-Za-z0-9_]+)", line.split("#", 1)[0]):
                used.append((s, f"package/{p}/{p}.mk:{n}", "used"))
        check(f"package {p}: Config.in symbols are BR2_PACKAGE_{up}*",
              syms and all(s.startswith(f"BR2_PACKAGE_{up}") and SYM.match(s) for s in syms), str(syms))
        check(f"package {p}: Config.in is source'd from the top Config.in",
              f"{KVAR}/package/{p}/Config.in" in sources)
        check(f"package {p}: .mk evaluates a package infrastructure",
              re.search(r"\$\(eval \$\((cargo|generic|host-generic)-package\)\)", mtext) is not None)
        vars_ = set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*[+:?]?=", mtext, re.M))
        bad = [v for v in vars_ if not v.startswith(up + "_")]
        check(f"package {p}: every variable it sets is {up}_*", not bad, str(bad))
        # Files the package installs from its own folder.
        for ref in re.findall(r"\$\(%s_PKGDIR\)/([\w./-]+)" % up, mtext):
            check(f"package {p}: installs existing {ref}", os.path.isfile(os.path.join(pkgdir, p, ref)))
        # Referenced Kconfig symbols in the .mk are defined somewhere sensible.
        for s in set(re.findall(r"\b(BR2_PACKAGE_%s[A-Z0-9_]*)" % up, mtext)):
            check(f"package {p}: {s} used in .mk is defined in its Config.in", s in syms)
        if p == "wgsplit":
            frag_path = os.path.join(board, FRAGMENT)
            frag = read(frag_path) if os.path.exists(frag_path) else ""
            frag_opts = re.findall(r"^(CONFIG_[A-Z0-9_]+)=y$", frag, re.M)
            check("kernel fragment lines are well-formed", frag and all(
                re.match(r"^(CONFIG_[A-Z0-9_]+=(y|m|n|\d+|\"[^\"]*\")|# CONFIG_[A-Z0-9_]+ is not set|#.*|)$", l)
                for l in frag.splitlines()))
            # One list: the package forces the fragment's lines, it lists none itself.
            listed = re.findall(r"KCONFIG_ENABLE_OPT,\s*CONFIG_[A-Z0-9_]+", mtext)
            check(f"package forces the kernel options by reading {FRAGMENT} (one list)",
                  f"$(BR2_EXTERNAL_WGSPLIT_PATH)/{FRAGMENT}" in mtext
                  and re.search(r"foreach[^\n]*KCONFIG_ENABLE_OPT", mtext) is not None and not listed,
                  f"options listed in the .mk too: {listed}" if listed else "no $(foreach … KCONFIG_ENABLE_OPT …) over the fragment")
            missing = sorted(REQUIRED_KERNEL - set(frag_opts))
            extra = sorted(set(frag_opts) - REQUIRED_KERNEL)
            check("fragment has every kernel option wgsplit needs", not missing, str(missing))
            check("fragment forces nothing the daemon does not use", not extra, str(extra))
            init = os.path.join(pkgdir, p, "S95wgsplit")
            if os.path.exists(init):
                it = read(init)
                check("init script is executable", os.access(init, os.X_OK))
                check("init script starts `wgsplit ... daemon` and has start/stop",
                      "start" in it and "stop" in it and re.search(r"wgsplit.*daemon", it) is not None)
                r = subprocess.run(["sh", "-n", init], capture_output=True, text=True)
                check("init script parses (sh -n)", r.returncode == 0, r.stderr)

    # Defconfigs
    cfgdir = os.path.join(board, "configs")
    cfgs = sorted(f for f in os.listdir(cfgdir) if f.endswith("_defconfig")) if os.path.isdir(cfgdir) else []
    for arch, pat in QEMU_TWINS.items():
        check(f"a QEMU twin defconfig for {arch}", any(re.search(pat, c) for c in cfgs))
    real = [c for c in cfgs if "qemu" not in c]
    arches = {}
    all_syms = {}
    for c in cfgs:
        text = read(os.path.join(cfgdir, c))
        seen, bad_lines, bad_paths, dup = {}, [], [], []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            m = re.match(r'^(BR2_[A-Za-z0-9_]+)=(y|"[^"]*"|\d+|0x[0-9a-fA-F]+)$', line)
            if not m:
                bad_lines.append(f"{n}: {line}")
                continue
            k, v = m.group(1), m.group(2)
            used.append((k, f"configs/{c}:{n}", "set"))
            if k in seen:
                dup.append(k)
            seen[k] = v
            if v.startswith('"') and k not in NON_FILE_KEYS:
                for word in v.strip('"').split():
                    if "/" in word or word.endswith((".sh", ".txt", ".cfg", ".config", ".fragment")):
                        if not word.startswith(VAR + "/"):
                            bad_paths.append(f"{k}: {word} (not through {VAR})")
                        elif word.startswith(VAR + "/board/"):
                            bad_paths.append(f"{k}: {word} (board/board/…: the tree's folders sit at its top)")
                        elif "/target/cross/" in word:
                            pass  # build output, made by image/cross-build.sh
                        elif not os.path.exists(resolve(board, word)):
                            bad_paths.append(f"{k}: {word} (missing)")
                        elif k.endswith("_SCRIPT") and not os.access(resolve(board, word), os.X_OK):
                            bad_paths.append(f"{k}: {word} (not executable)")
        all_syms[c] = seen
        check(f"{c}: every line is BR2_SYMBOL=value or a comment", not bad_lines, "; ".join(bad_lines))
        check(f"{c}: no symbol set twice", not dup, str(dup))
        check(f"{c}: every file it names exists, through {VAR}", not bad_paths, "; ".join(bad_paths))
        check(f"{c}: enables BR2_PACKAGE_WGSPLIT and a kernel", seen.get("BR2_PACKAGE_WGSPLIT") == "y"
              and seen.get("BR2_LINUX_KERNEL") == "y")
        check(f"{c}: applies the wgsplit kernel fragment",
              f"{VAR}/{FRAGMENT}" in seen.get("BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES", ""))
        # A pinned kernel: LATEST moves with every Buildroot release.
        kver = seen.get("BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE", "").strip('"')
        km = re.match(r"^(\d+)\.(\d+)(\.\d+)?$", kver)
        pinned = seen.get("BR2_LINUX_KERNEL_CUSTOM_VERSION") == "y" and km is not None
        check(f"{c}: kernel pinned (BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE), not LATEST",
              pinned and "BR2_LINUX_KERNEL_LATEST_VERSION" not in seen,
              f"version {kver or 'unset'}")
        if pinned:
            series = (int(km.group(1)), int(km.group(2)))
            check(f"{c}: kernel {kver} has WireGuard and concatenated interval sets in tree (>= 5.6)",
                  series >= MIN_KERNEL)
            hdr = f"BR2_PACKAGE_HOST_LINUX_HEADERS_CUSTOM_{series[0]}_{series[1]}"
            check(f"{c}: kernel headers are the kernel's series ({hdr}=y)", seen.get(hdr) == "y",
                  str([s for s in seen if s.startswith("BR2_PACKAGE_HOST_LINUX_HEADERS_CUSTOM_")]))
        # Buildroot's rustc targets musl only with a C++ toolchain
        # (BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS); without it the wgsplit
        # package silently disappears from the config. Otherwise no C++.
        from_source = seen.get("BR2_PACKAGE_WGSPLIT_PREBUILT") != "y"
        cxx = seen.get("BR2_TOOLCHAIN_BUILDROOT_CXX") == "y"
        if seen.get("BR2_TOOLCHAIN_BUILDROOT_MUSL") == "y" and from_source:
            check(f"{c}: C++ toolchain on (Buildroot's rustc needs it for musl)", cxx)
        else:
            check(f"{c}: no C++ toolchain (nothing needs it)", not cxx)
        if "qemu" in c:
            kconf = seen.get("BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE", "").strip('"')
            check(f"{c}: QEMU twin uses a small kernel config of its own under qemu/, not a full defconfig",
                  seen.get("BR2_LINUX_KERNEL_USE_CUSTOM_CONFIG") == "y" and kconf.startswith(f"{VAR}/qemu/")
                  and "BR2_LINUX_KERNEL_USE_DEFCONFIG" not in seen, kconf or "no custom config")
        arch = next((a for a in ("aarch64", "arm", "mipsel", "mips", "x86_64") if seen.get(f"BR2_{a}") == "y"), None)
        check(f"{c}: selects one architecture", arch is not None)
        arches[c] = arch
        if arch in ("mips", "mipsel"):
            check(f"{c}: MIPS uses the prebuilt binary (Buildroot's rustc has no MIPS std)",
                  seen.get("BR2_PACKAGE_WGSPLIT_PREBUILT") == "y")
    check("at least two real (non-QEMU) boards", len(real) >= 2, str(real))
    check("a real ARM board", any(arches.get(c) in ("arm", "aarch64") for c in real))
    check("a real MIPS board", any(arches.get(c) in ("mips", "mipsel") for c in real))

    # Scripts
    for root, _, files in os.walk(board):
        for f in files:
            path = os.path.join(root, f)
            if f.endswith(".sh"):
                shell = "bash" if read(path).startswith("#!/usr/bin/env bash") or read(path).startswith("#!/bin/bash") else "sh"
                r = subprocess.run([shell, "-n", path], capture_output=True, text=True)
                check(f"{os.path.relpath(path, board)} parses ({shell} -n) and is executable",
                      r.returncode == 0 and os.access(path, os.X_OK), r.stderr.strip())

    # Firmware defaults, per defconfig, from its rootfs overlays: the config the
    # image ships turns the web pages on, on one LAN address, and holds no
    # private key (every device would share it: S95wgsplit makes one at first
    # boot in place of FIRSTBOOT); and a sysctl.d file (forwarding) has
    # something to apply it: Buildroot's only applier is procps-ng's S02sysctl.
    for c in cfgs:
        seen = all_syms[c]
        overlays = [resolve(board, w) for w in seen.get("BR2_ROOTFS_OVERLAY", "").strip('"').split()]
        in_overlay = lambda rel: [os.path.join(o, rel) for o in overlays if os.path.exists(os.path.join(o, rel))]  # noqa: E731
        conf = in_overlay("etc/config/wgsplit")
        check(f"{c}: its overlay ships /etc/config/wgsplit (the web pages on by default)", bool(conf))
        if conf:
            text = read(conf[-1])
            keys = re.findall(r"^\s*option\s+private_key\s+'([^']*)'", text, re.M)
            check(f"{c}: /etc/config/wgsplit ships no private key (FIRSTBOOT, made on the router)",
                  keys and all(k == "FIRSTBOOT" for k in keys), str(keys))
            ui = re.findall(r"^\s*option\s+ui_listen\s+'([^']*)'", text, re.M)
            host = ui[-1].rsplit(":", 1)[0].strip("[]") if ui else ""
            check(f"{c}: /etc/config/wgsplit serves the pages on one LAN address (ui_listen), not a wildcard or loopback",
                  bool(ui) and host not in ("", "0.0.0.0", "::") and not host.startswith("127.") and host != "::1",
                  str(ui) if ui else "no ui_listen")
        if any(f.endswith(".conf") for d in in_overlay("etc/sysctl.d") for f in os.listdir(d)):
            appliers = [f for d in in_overlay("etc/init.d") for f in os.listdir(d) if re.match(r"^S\d\dsysctl$", f)]
            check(f"{c}: something applies its /etc/sysctl.d (procps-ng or an S??sysctl in the overlay)",
                  seen.get("BR2_PACKAGE_PROCPS_NG") == "y" or bool(appliers))
    init_path = os.path.join(pkgdir, "wgsplit", "S95wgsplit")
    if os.path.exists(init_path):
        check("init script makes the server key at first boot (FIRSTBOOT)", "FIRSTBOOT" in read(init_path))

    # Every BR2_ symbol board/ names, against each supported release.
    lists = symbol_lists(symbols_dir)
    for rel in SUPPORTED_RELEASES:
        check(f"symbol lists of Buildroot {rel} found in {symbols_dir}", lists[rel] is not None,
              f"need symbols-{rel}.txt and legacy-{rel}.txt (--symbols DIR or WGSPLIT_BR_SYMBOLS)")
    ours = lambda s: s in defined or s.startswith("BR2_EXTERNAL_")  # noqa: E731
    by_symbol = {}
    for s, where, how in used:
        if not ours(s):
            by_symbol.setdefault(s, []).append(f"{where} ({how})")
    problems = []
    for s in sorted(by_symbol):
        lacking = [r for r in SUPPORTED_RELEASES if lists[r] is not None and s not in lists[r][0]]
        legacy = [r for r in SUPPORTED_RELEASES if lists[r] is not None and s in lists[r][1]]
        where = ", ".join(by_symbol[s])
        if legacy:
            problems.append(f"{s}: legacy (removed) in Buildroot {', '.join(legacy)}: {where}")
        elif lacking:
            problems.append(f"{s}: not in Buildroot {', '.join(lacking)}: {where}")
    check(f"every BR2_ symbol board/ sets, selects or depends on ({len(by_symbol)}) exists in "
          f"Buildroot {' and '.join(SUPPORTED_RELEASES)}, none legacy", not problems, "\n     ".join(problems))

    # Optional: symbols against a Buildroot tree.
    if buildroot:
        known = set(defined)
        for root, _, files in os.walk(buildroot):
            if "/output" in root or "/.git" in root:
                continue
            for f in files:
                if f.startswith("Config.in") or f == "Config.in.host":
                    try:
                        known.update(re.findall(r"^\s*(?:menu)?config\s+(BR2_[A-Za-z0-9_]+)", read(os.path.join(root, f)), re.M))
                    except (UnicodeDecodeError, OSError):
                        pass
        for c, seen in all_syms.items():
            unknown = [k for k in seen if k not in known]
            check(f"{c}: every symbol is defined by Buildroot or this tree", not unknown, str(unknown))

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

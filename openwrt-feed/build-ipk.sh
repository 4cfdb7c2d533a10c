#!/bin/sh
# Build installable OpenWrt packages without the SDK, from a binary that is
# already cross-built (see board/ or `cargo build --target ...`):
#
#   openwrt-feed/build-ipk.sh BINARY ARCH [OUTDIR]
#
#   BINARY  the static wgsplit binary for the router
#   ARCH    the OpenWrt package architecture, e.g. aarch64_cortex-a53,
#           mipsel_24kc, arm_cortex-a7_neon-vfpv4, x86_64
#           (`opkg print-architecture` on the router shows it)
#   OUTDIR  where the packages go (default: ./dist)
#
# Writes wgsplit_<ver>_<ARCH>.ipk, luci-app-wgsplit_<ver>_all.ipk and one
# luci-i18n-wgsplit-<lang>_<ver>_all.ipk per translation (compiled with
# po2lmo.py; needs python3), in the format OpenWrt's own ipkg-build produces
# and opkg reads: a gzip'd tar of ./debian-binary, ./data.tar.gz, ./control.tar.gz.
# With apk-tools 3 at hand (APK=/path/to/apk, or `apk` on PATH reporting
# apk-tools 3), it also writes the same packages as OpenWrt 25 .apk files
# (<name>-<ver>.apk, unsigned: install with `apk add --allow-untrusted`), laid
# out as OpenWrt's package-pack.mk does (lib/apk/packages/<name>.list,
# .conffiles, .conffiles_static; post-install/pre-deinstall scripts).
# Without it only .ipk files are written.
set -eu

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
BIN=$1
ARCH=$2
OUT=${3:-dist}

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PKGDIR=$HERE/net/wgsplit
LUCIDIR=$ROOT/luci-app

[ -f "$BIN" ] || { echo "build-ipk: no binary at $BIN" >&2; exit 1; }
case "$ARCH" in
	''|*[!A-Za-z0-9_.+-]*) echo "build-ipk: bad architecture name '$ARCH'" >&2; exit 1 ;;
esac

# Reproducible timestamps: the last commit, or SOURCE_DATE_EPOCH if given.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

mkvar() { sed -n "s/^$1:=[[:space:]]*//p" "$2" | head -n 1; }
VERSION="$(mkvar PKG_VERSION "$PKGDIR/Makefile")-r$(mkvar PKG_RELEASE "$PKGDIR/Makefile")"
LUCI_VERSION="$(mkvar PKG_VERSION "$LUCIDIR/Makefile")-r$(mkvar PKG_RELEASE "$LUCIDIR/Makefile")"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

TAR_OPTS="--format=gnu --numeric-owner --owner=0 --group=0 --sort=name --mtime=@$SOURCE_DATE_EPOCH"

# pack NAME VERSION ARCH ROOTDIR CONTROLDIR -> $OUT/NAME_VERSION_ARCH.ipk
pack() {
	name=$1 ver=$2 arch=$3 data=$4 ctrl=$5
	t=$WORK/pack-$name
	mkdir -p "$t"
	size=$(find "$data" -type f -exec stat -c %s {} + | awk '{ s += $1 } END { print s + 0 }')
	sed -i "s/^Installed-Size:.*/Installed-Size: $size/" "$ctrl/control"
	# shellcheck disable=SC2086
	(cd "$data" && tar $TAR_OPTS -cf - .) | gzip -n -9 > "$t/data.tar.gz"
	# shellcheck disable=SC2086
	(cd "$ctrl" && tar $TAR_OPTS -cf - .) | gzip -n -9 > "$t/control.tar.gz"
	printf '2.0\n' > "$t/debian-binary"
	# shellcheck disable=SC2086
	(cd "$t" && tar $TAR_OPTS -cf - ./debian-binary ./data.tar.gz ./control.tar.gz) \
		| gzip -n -9 > "$OUT/${name}_${ver}_${arch}.ipk"
	echo "$OUT/${name}_${ver}_${arch}.ipk"
}

# apk-tools 3, if present: OpenWrt 25 packages too
APK=${APK:-}
if [ -z "$APK" ] && command -v apk >/dev/null 2>&1 && apk --version 2>/dev/null | grep -q 'apk-tools 3'; then
	APK=$(command -v apk)
fi

# field NAME CONTROLFILE: one control field's value
field() { sed -n "s/^$1: *//p" "$2" | head -n 1; }

# pack_apk NAME ROOTDIR CONTROLDIR: the same package as an apk v3 file
# (the scripts it writes expand their variables on the router)
# shellcheck disable=SC2016
pack_apk() {
	[ -n "$APK" ] || return 0
	name=$1 data=$2 ctrl=$3
	a=$WORK/apk-$name
	rm -rf "$a"
	mkdir -p "$a"
	cp -a "$data" "$a/root"
	mkdir -p "$a/root/lib/apk/packages"
	if [ -f "$ctrl/conffiles" ]; then
		cp "$ctrl/conffiles" "$a/root/lib/apk/packages/$name.conffiles"
		while read -r f; do
			[ -f "$a/root$f" ] || continue
			echo "$f $(sha256sum "$a/root$f" | cut -d' ' -f1)"
		done < "$ctrl/conffiles" > "$a/root/lib/apk/packages/$name.conffiles_static"
	fi
	: > "$a/root/lib/apk/packages/$name.list"
	(cd "$a/root" && find . \( -type f -o -type l \) | sed 's|^\.||' | LC_ALL=C sort) > "$a/list"
	mv "$a/list" "$a/root/lib/apk/packages/$name.list"
	find "$a/root/lib/apk" -type d -exec chmod 0755 {} +
	find "$a/root/lib/apk" -type f -exec chmod 0644 {} +
	find "$a/root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	{
		echo '#!/bin/sh'
		echo '[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0'
		echo '[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0'
		echo '. "${IPKG_INSTROOT}/lib/functions.sh"'
		echo 'export root="${IPKG_INSTROOT}"'
		echo "export pkgname=\"$name\""
		echo 'add_group_and_user'
		echo 'default_postinst'
		# the package's own post-install steps (LuCI cache, rpcd), if any
		[ -f "$ctrl/postinst-pkg" ] && sed '1{/^#!/d}' "$ctrl/postinst-pkg"
	} > "$a/post-install"
	{ echo '#!/bin/sh'; echo 'export PKG_UPGRADE=1'; sed '1d' "$a/post-install"; } > "$a/post-upgrade"
	{
		echo '#!/bin/sh'
		echo '[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0'
		echo '. "${IPKG_INSTROOT}/lib/functions.sh"'
		echo 'export root="${IPKG_INSTROOT}"'
		echo "export pkgname=\"$name\""
		echo 'default_prerm'
	} > "$a/pre-deinstall"
	# the package's postrm, which apk runs after removal as post-deinstall
	if [ -f "$ctrl/postrm" ]; then
		cp "$ctrl/postrm" "$a/post-deinstall"
		set -- --script "post-deinstall:$a/post-deinstall"
	else
		set --
	fi
	arch=$(field Architecture "$ctrl/control")
	[ "$arch" = all ] && arch=noarch
	ver=$(field Version "$ctrl/control")
	"$APK" mkpkg \
		--info "name:$name" \
		--info "version:$ver" \
		--info "description:$(field Description "$ctrl/control")" \
		--info "arch:$arch" \
		--info "license:$(field License "$ctrl/control")" \
		--info "origin:$(field Source "$ctrl/control")" \
		--info "maintainer:$(field Maintainer "$ctrl/control")" \
		--info "depends:$(field Depends "$ctrl/control" | tr -d ',')" \
		--script "post-install:$a/post-install" \
		--script "post-upgrade:$a/post-upgrade" \
		--script "pre-deinstall:$a/pre-deinstall" \
		"$@" \
		--files "$a/root" \
		--output "$OUT/$name-$ver.apk"
	echo "$OUT/$name-$ver.apk"
}

postinst_default() {
	cat <<-'SH'
	#!/bin/sh
	[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
	[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
	. "${IPKG_INSTROOT}/lib/functions.sh"
	default_postinst "$0" "$@"
	SH
}
prerm_default() {
	cat <<-'SH'
	#!/bin/sh
	[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
	. "${IPKG_INSTROOT}/lib/functions.sh"
	default_prerm "$0" "$@"
	SH
}

# ---- wgsplit -------------------------------------------------------------
D=$WORK/wgsplit/data
C=$WORK/wgsplit/control
F=$PKGDIR/files
mkdir -p "$C"
install -d -m 0755 "$D/usr/bin" "$D/etc/config" "$D/etc/wgsplit/lists" "$D/etc/init.d" \
	"$D/etc/uci-defaults" "$D/etc/hotplug.d/iface" \
	"$D/lib/upgrade/keep.d"
install -m 0755 "$BIN" "$D/usr/bin/wgsplit"
install -m 0600 "$F/wgsplit.config" "$D/etc/config/wgsplit"
install -m 0755 "$F/wgsplit.init" "$D/etc/init.d/wgsplit"
install -m 0755 "$F/wgsplit.uci-defaults" "$D/etc/uci-defaults/90-wgsplit"
install -m 0644 "$F/wgsplit.hotplug" "$D/etc/hotplug.d/iface/90-wgsplit"
install -m 0644 "$F/wgsplit.keep" "$D/lib/upgrade/keep.d/wgsplit"

# Depends: the kmod names from the Makefile's DEPENDS (+foo), in order.
deps_of() { grep -o '+[A-Za-z0-9._-]*' | sed 's/^+//' | paste -sd, - | sed 's/,/, /g'; }
DEPS=$(sed -n '/^define Package\/wgsplit$/,/^endef/p' "$PKGDIR/Makefile" | deps_of)

{
	echo "Package: wgsplit"
	echo "Version: $VERSION"
	echo "Depends: $DEPS"
	echo "Source: feeds/wgsplit/net/wgsplit"
	echo "SourceName: wgsplit"
	echo "License: $(mkvar PKG_LICENSE "$PKGDIR/Makefile")"
	echo "Section: net"
	echo "SourceDateEpoch: $SOURCE_DATE_EPOCH"
	echo "Maintainer: $(mkvar PKG_MAINTAINER "$PKGDIR/Makefile")"
	echo "Architecture: $ARCH"
	echo "Installed-Size: 0"
	echo "Description:  Per-client split tunnelling for WireGuard: per-client rules send traffic"
	echo " through upstream WireGuard tunnels, straight out the WAN, or nowhere."
} > "$C/control"
printf '/etc/config/wgsplit\n' > "$C/conffiles"
postinst_default > "$C/postinst"
prerm_default > "$C/prerm"
# the Makefile's Package/wgsplit/postrm is this file too
install -m 0755 "$F/wgsplit.postrm" "$C/postrm"
chmod 0755 "$C/postinst" "$C/prerm"
chmod 0644 "$C/control" "$C/conffiles"
pack wgsplit "$VERSION" "$ARCH" "$D" "$C"
pack_apk wgsplit "$D" "$C"

# ---- luci-app-wgsplit ----------------------------------------------------
D=$WORK/luci/data
C=$WORK/luci/control
mkdir -p "$C" "$D/www"
cp -R "$LUCIDIR/htdocs/." "$D/www/"
cp -R "$LUCIDIR/root/." "$D/"
find "$D" -type d -exec chmod 0755 {} +
find "$D" -type f -exec chmod 0644 {} +
chmod 0755 "$D/usr/libexec/rpcd/wgsplit"
{
	echo "Package: luci-app-wgsplit"
	echo "Version: $LUCI_VERSION"
	echo "Depends: $(grep '^LUCI_DEPENDS:=' "$LUCIDIR/Makefile" | deps_of)"
	echo "Source: feeds/wgsplit/luci/luci-app-wgsplit"
	echo "SourceName: luci-app-wgsplit"
	echo "License: $(mkvar PKG_LICENSE "$LUCIDIR/Makefile")"
	echo "Section: luci"
	echo "SourceDateEpoch: $SOURCE_DATE_EPOCH"
	echo "Maintainer: $(mkvar PKG_MAINTAINER "$LUCIDIR/Makefile")"
	echo "Architecture: all"
	echo "Installed-Size: 0"
	echo "Description:  LuCI pages for wgsplit: clients, upstreams, rules, live status, explain."
} > "$C/control"
cat > "$C/postinst" <<-'SH'
#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] && exit 0
rm -f /tmp/luci-indexcache /tmp/luci-indexcache.*
rm -rf /tmp/luci-modulecache/
/etc/init.d/rpcd reload 2>/dev/null
exit 0
SH
chmod 0755 "$C/postinst"
chmod 0644 "$C/control"
pack luci-app-wgsplit "$LUCI_VERSION" all "$D" "$C"
cp "$C/postinst" "$WORK/luci-postinst-pkg"
mv "$WORK/luci-postinst-pkg" "$C/postinst-pkg"
pack_apk luci-app-wgsplit "$D" "$C"

# ---- luci-i18n-wgsplit-<lang> ----------------------------------------------
# One package per luci-app/po/<lang>/wgsplit.po, named and laid out as LuCI's
# luci.mk does it: /usr/lib/lua/luci/i18n/wgsplit.<code>.lmo.
for po in "$LUCIDIR"/po/*/wgsplit.po; do
	[ -f "$po" ] || continue
	lang=$(basename "$(dirname "$po")")
	case "$lang" in
		zh_Hans) code=zh-cn ;;
		zh_Hant) code=zh-tw ;;
		*) code=$(printf '%s' "$lang" | tr 'A-Z_' 'a-z-') ;;
	esac
	D=$WORK/i18n-$code/data
	C=$WORK/i18n-$code/control
	mkdir -p "$C" "$D/usr/lib/lua/luci/i18n"
	python3 "$HERE/po2lmo.py" "$po" "$D/usr/lib/lua/luci/i18n/wgsplit.$code.lmo"
	find "$D" -type d -exec chmod 0755 {} +
	chmod 0644 "$D/usr/lib/lua/luci/i18n/wgsplit.$code.lmo"
	{
		echo "Package: luci-i18n-wgsplit-$code"
		echo "Version: $LUCI_VERSION"
		echo "Depends: luci-app-wgsplit"
		echo "Source: feeds/wgsplit/luci/luci-app-wgsplit"
		echo "SourceName: luci-app-wgsplit"
		echo "License: $(mkvar PKG_LICENSE "$LUCIDIR/Makefile")"
		echo "Section: luci"
		echo "SourceDateEpoch: $SOURCE_DATE_EPOCH"
		echo "Maintainer: $(mkvar PKG_MAINTAINER "$LUCIDIR/Makefile")"
		echo "Architecture: all"
		echo "Installed-Size: 0"
		echo "Description:  Translation for luci-app-wgsplit ($lang)"
	} > "$C/control"
	cat > "$C/postinst" <<-'SH'
	#!/bin/sh
	[ -n "${IPKG_INSTROOT}" ] && exit 0
	rm -f /tmp/luci-indexcache /tmp/luci-indexcache.*
	rm -rf /tmp/luci-modulecache/
	exit 0
	SH
	chmod 0755 "$C/postinst"
	chmod 0644 "$C/control"
	pack "luci-i18n-wgsplit-$code" "$LUCI_VERSION" all "$D" "$C"
	cp "$C/postinst" "$C/postinst-pkg"
	pack_apk "luci-i18n-wgsplit-$code" "$D" "$C"
done

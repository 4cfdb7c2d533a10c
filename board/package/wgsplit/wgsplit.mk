################################################################################
#
# wgsplit
#
################################################################################

# The package is the repository this br2-external tree lives in.
WGSPLIT_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(BR2_EXTERNAL_WGSPLIT_PATH)/../Cargo.toml | head -n 1)
WGSPLIT_SITE = $(BR2_EXTERNAL_WGSPLIT_PATH)/..
WGSPLIT_SITE_METHOD = local
WGSPLIT_LICENSE = GPL-2.0-or-later
WGSPLIT_DEPENDENCIES = nftables
WGSPLIT_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude /tests/out --exclude /board --exclude /fuzz

# Forced on whatever the board's kernel config says: WireGuard, nf_tables
# with sets (concatenations, intervals and timeouts live in nf_tables itself;
# concatenated intervals need >= 5.6), conntrack + ct mark, NAT (masquerade,
# redirect for the DNS hijack), policy routing for both families, IPv6.
# The same list, as a fragment, is board/common/linux-wgsplit.fragment.
define WGSPLIT_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_NET)
	$(call KCONFIG_ENABLE_OPT,CONFIG_INET)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IPV6)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IP_ADVANCED_ROUTER)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IP_MULTIPLE_TABLES)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IPV6_MULTIPLE_TABLES)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NET_UDP_TUNNEL)
	$(call KCONFIG_ENABLE_OPT,CONFIG_WIREGUARD)
	$(call KCONFIG_ENABLE_OPT,CONFIG_TUN)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER_ADVANCED)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NETFILTER_NETLINK)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NF_CONNTRACK)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NF_CONNTRACK_MARK)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NF_NAT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NF_TABLES)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NF_TABLES_INET)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NF_TABLES_IPV4)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NF_TABLES_IPV6)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_CT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_NAT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_MASQ)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_REDIR)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_REJECT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_REJECT_INET)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_FIB_INET)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_LIMIT)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_SET_RBTREE)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_SET_HASH)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NFT_SET_BITMAP)
endef

define WGSPLIT_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(WGSPLIT_PKGDIR)/S95wgsplit \
		$(TARGET_DIR)/etc/init.d/S95wgsplit
endef

ifeq ($(BR2_PACKAGE_WGSPLIT_PREBUILT),y)

WGSPLIT_PREBUILT_BIN = $(call qstrip,$(BR2_PACKAGE_WGSPLIT_PREBUILT_PATH))

define WGSPLIT_BUILD_CMDS
	@test -f "$(WGSPLIT_PREBUILT_BIN)" || { \
		echo "wgsplit: no prebuilt binary at $(WGSPLIT_PREBUILT_BIN);" \
		     "run image/cross-build.sh in the wgsplit repository first" >&2; \
		exit 1; }
endef

define WGSPLIT_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 "$(WGSPLIT_PREBUILT_BIN)" $(TARGET_DIR)/usr/bin/wgsplit
endef

$(eval $(generic-package))

else # built from source with Buildroot's rustc

WGSPLIT_SUBDIR = daemon

# Buildroot maps BR2_OPTIMIZE_* onto the cargo profile; wgsplit is meant to
# be small on flash, whatever the rest of the system is tuned for.
WGSPLIT_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
	CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	CARGO_PROFILE_RELEASE_PANIC=abort

# A local package skips the download step, where Buildroot vendors cargo
# dependencies; vendor them here (the one step that needs the network).
define WGSPLIT_CARGO_VENDOR
	if [ ! -d $(@D)/VENDOR ]; then \
		mkdir -p $(@D)/.cargo $(BR_CARGO_HOME) && \
		cd $(@D) && $(TARGET_MAKE_ENV) CARGO_HOME=$(BR_CARGO_HOME) \
			cargo vendor --manifest-path daemon/Cargo.toml --locked VENDOR \
			> $(@D)/.cargo/config.toml; \
	fi
endef
WGSPLIT_PRE_BUILD_HOOKS += WGSPLIT_CARGO_VENDOR

$(eval $(cargo-package))

endif

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

# Forced on whatever the board's kernel config says: every `CONFIG_…=y` line
# of the one list, common/linux-wgsplit.fragment (boards also name it in
# BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES; this covers boards that do not).
WGSPLIT_KCONFIG_FRAGMENT = $(BR2_EXTERNAL_WGSPLIT_PATH)/common/linux-wgsplit.fragment
WGSPLIT_KCONFIG_OPTS = \
	$(shell sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=y$$/\1/p' $(WGSPLIT_KCONFIG_FRAGMENT))
define WGSPLIT_LINUX_CONFIG_FIXUPS
	$(foreach opt,$(WGSPLIT_KCONFIG_OPTS),$(call KCONFIG_ENABLE_OPT,$(opt))$(sep))
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

# `make pack`: the C grouping core as a standard library for programs that are not Python.
#
# Included by the top-level Makefile; also works alone: make -f cffi_build/pack.mk pack
#   pack            build/pack/{lib,include}: libopenpose_plus_paf.so.X.Y.Z (SONAME .so.X;
#                   .so.0.Y while X is 0) with its SONAME and .so links, libopenpose_plus_paf.a, the header,
#                   lib/pkgconfig/openpose_plus_paf.pc
#   install-pack    copies them under $(DESTDIR)$(PREFIX) (PREFIX ?= /usr/local)
#   uninstall-pack  removes what install-pack put there
#   clean-pack      removes $(PACK_DIR)
# Variables: PREFIX LIBDIR INCLUDEDIR PKGCONFIGDIR DESTDIR, CC AR CFLAGS CPPFLAGS LDFLAGS
# (cross-compiling for a Jetson: CC=aarch64-linux-gnu-gcc AR=aarch64-linux-gnu-ar),
# PACK_DIR (build output, default build/pack). Linux/ELF toolchains (GNU ld, lld, gold).
#
# The sources are the ones cffi builds (cffi_build/*.c: paf.c and one file per step, behind
# the internal paf_internal.h) and the installed header is the one cffi reads, so the Python
# extension and this library cannot drift apart. The version comes
# from the header's OPP_VERSION_* macros: bump OPP_VERSION_MAJOR on an ABI change and the
# SONAME follows. While MAJOR is 0 a MINOR bump may break the ABI (0.5 appended a field to
# opp_track_params, which a 0.4 program's opp_default_track_params would write past), so
# the SONAME carries 0.MINOR: a program keeps loading the library it was built against.

# Included before the including Makefile's first target, this fragment must not become
# its default goal (restored at the end).
PACK_SAVED_GOAL := $(.DEFAULT_GOAL)

# Where this fragment lives, whoever includes it and from wherever make runs.
PACK_SRC_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PACK_ROOT    := $(patsubst %/,%,$(dir $(PACK_SRC_DIR)))

PACK_DIR     ?= $(PACK_ROOT)/build/pack
PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

PACK_HEADER  := $(PACK_SRC_DIR)/openpose_plus_paf.h
PACK_MAP     := $(PACK_SRC_DIR)/openpose_plus_paf.map
PACK_PC_IN   := $(PACK_SRC_DIR)/openpose_plus_paf.pc.in
PACK_SOURCES := $(wildcard $(PACK_SRC_DIR)/*.c)
PACK_HEADERS := $(wildcard $(PACK_SRC_DIR)/*.h)

pack_define = $(shell sed -n 's/^\#define $(1) \([0-9][0-9]*\).*/\1/p' $(PACK_HEADER))
PACK_MAJOR   := $(call pack_define,OPP_VERSION_MAJOR)
PACK_MINOR   := $(call pack_define,OPP_VERSION_MINOR)
PACK_PATCH   := $(call pack_define,OPP_VERSION_PATCH)
PACK_VERSION := $(PACK_MAJOR).$(PACK_MINOR).$(PACK_PATCH)
ifeq ($(strip $(PACK_MAJOR)),)
$(error pack.mk: no OPP_VERSION_MAJOR in $(PACK_HEADER))
endif

PACK_NAME    := libopenpose_plus_paf
PACK_ABI     := $(if $(filter 0,$(PACK_MAJOR)),$(PACK_MAJOR).$(PACK_MINOR),$(PACK_MAJOR))
PACK_SONAME  := $(PACK_NAME).so.$(PACK_ABI)
PACK_REAL    := $(PACK_NAME).so.$(PACK_VERSION)
PACK_OBJDIR  := $(PACK_DIR)/obj
PACK_LIB     := $(PACK_DIR)/lib
PACK_OBJECTS := $(patsubst $(PACK_SRC_DIR)/%.c,$(PACK_OBJDIR)/%.o,$(PACK_SOURCES))
# Compiled with hidden visibility, and the header's declarations pre-included with default
# visibility: only the opp_* API is public, internal calls need no PLT, and the header
# itself needs no export macro. The version script says the same at link time.
PACK_EXPORT  := $(PACK_OBJDIR)/opp_export.h
# No -ffast-math (the NaN checks must hold) and no -march=native (Jetsons build it too).
PACK_CFLAGS  := -O3 -std=c99 -fPIC -fvisibility=hidden -Wall -Wextra

PACK_OUTPUTS := $(PACK_LIB)/$(PACK_REAL) $(PACK_LIB)/$(PACK_SONAME) $(PACK_LIB)/$(PACK_NAME).so \
                $(PACK_LIB)/$(PACK_NAME).a $(PACK_DIR)/include/openpose_plus_paf.h \
                $(PACK_LIB)/pkgconfig/openpose_plus_paf.pc

.PHONY: pack install-pack uninstall-pack clean-pack pack-FORCE

pack: $(PACK_OUTPUTS)
	@echo "pack: openpose_plus_paf $(PACK_VERSION) in $(PACK_DIR)"

$(PACK_EXPORT): $(PACK_HEADER)
	@mkdir -p $(@D)
	printf '#pragma GCC visibility push(default)\n#include "openpose_plus_paf.h"\n#pragma GCC visibility pop\n' > $@

$(PACK_OBJDIR)/%.o: $(PACK_SRC_DIR)/%.c $(PACK_HEADERS) $(PACK_EXPORT)
	@mkdir -p $(@D)
	$(CC) $(PACK_CFLAGS) $(CPPFLAGS) $(CFLAGS) -I$(PACK_SRC_DIR) -include $(PACK_EXPORT) -c $< -o $@

$(PACK_LIB)/$(PACK_REAL): $(PACK_OBJECTS) $(PACK_MAP)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(PACK_SONAME) -Wl,--version-script=$(PACK_MAP) -Wl,-z,defs \
	    $(LDFLAGS) -o $@ $(PACK_OBJECTS) -lm

$(PACK_LIB)/$(PACK_SONAME): $(PACK_LIB)/$(PACK_REAL)
	ln -sfn $(PACK_REAL) $@

$(PACK_LIB)/$(PACK_NAME).so: $(PACK_LIB)/$(PACK_SONAME)
	ln -sfn $(PACK_SONAME) $@

$(PACK_LIB)/$(PACK_NAME).a: $(PACK_OBJECTS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $(PACK_OBJECTS)

$(PACK_DIR)/include/openpose_plus_paf.h: $(PACK_HEADER)
	@mkdir -p $(@D)
	cp $< $@

# The .pc file names PREFIX: regenerated whenever PREFIX, LIBDIR or INCLUDEDIR change.
pack_pc_vars = $(PREFIX)|$(LIBDIR)|$(INCLUDEDIR)|$(PACK_VERSION)
$(PACK_DIR)/.pc-vars: pack-FORCE
	@mkdir -p $(@D)
	@echo '$(pack_pc_vars)' | cmp -s - $@ || echo '$(pack_pc_vars)' > $@

# libdir/includedir under the prefix are written as ${prefix}/..., so the file stays
# relocatable (pkg-config --define-prefix).
pack_rel = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
pack_pc_sed = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pack_rel,$(LIBDIR))|' \
                  -e 's|@INCLUDEDIR@|$(call pack_rel,$(INCLUDEDIR))|' -e 's|@VERSION@|$(PACK_VERSION)|'

$(PACK_LIB)/pkgconfig/openpose_plus_paf.pc: $(PACK_PC_IN) $(PACK_DIR)/.pc-vars
	@mkdir -p $(@D)
	$(pack_pc_sed) $< > $@

install-pack: pack
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 $(PACK_HEADER) $(DESTDIR)$(INCLUDEDIR)/openpose_plus_paf.h
	install -m 755 $(PACK_LIB)/$(PACK_REAL) $(DESTDIR)$(LIBDIR)/$(PACK_REAL)
	ln -sfn $(PACK_REAL) $(DESTDIR)$(LIBDIR)/$(PACK_SONAME)
	ln -sfn $(PACK_SONAME) $(DESTDIR)$(LIBDIR)/$(PACK_NAME).so
	install -m 644 $(PACK_LIB)/$(PACK_NAME).a $(DESTDIR)$(LIBDIR)/$(PACK_NAME).a
	$(pack_pc_sed) $(PACK_PC_IN) > $(DESTDIR)$(PKGCONFIGDIR)/openpose_plus_paf.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/openpose_plus_paf.pc
	@# A real install (not a staged one) refreshes the loader cache, where we may.
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null && [ "$$(id -u)" = 0 ]; then ldconfig; fi
	@echo "install-pack: openpose_plus_paf $(PACK_VERSION) in $(DESTDIR)$(PREFIX)"

uninstall-pack:
	rm -f $(DESTDIR)$(INCLUDEDIR)/openpose_plus_paf.h $(DESTDIR)$(PKGCONFIGDIR)/openpose_plus_paf.pc \
	      $(DESTDIR)$(LIBDIR)/$(PACK_NAME).so $(DESTDIR)$(LIBDIR)/$(PACK_SONAME) \
	      $(DESTDIR)$(LIBDIR)/$(PACK_REAL) $(DESTDIR)$(LIBDIR)/$(PACK_NAME).a

clean-pack:
	rm -rf $(PACK_DIR)

ifneq ($(words $(MAKEFILE_LIST)),1)
.DEFAULT_GOAL := $(PACK_SAVED_GOAL)
endif

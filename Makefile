# lifeblood-worker — the one build entry. See README.md and docs/BUILDING.md.
#
#   make deps    install the Debian 12 packages the build and tests need (root)
#   make all     build build/lifeblood-worker
#   make test    deps if missing, build, unit tests (CUnit, Python) + integration tests
#   make check   the same tests built with -fsanitize=address,undefined
#   make fuzz    libFuzzer targets (clang), each for FUZZ_SECONDS (default 30)
#   make bench   benchmarks (figures, not tests); see docs/BENCHMARKS.md
#   make demo    local demo on a built-in default
#   make install PREFIX=/usr/local DESTDIR=  (binary, man pages, runtime, config, units)
#   make deb     build/deb/lifeblood-worker_<version>_<arch>.deb (dpkg-buildpackage)
#   make rpm     build/rpm/RPMS/<arch>/lifeblood-worker-<version>-1.<arch>.rpm (rpmbuild)
#   make package-check  build, lint, install, exercise and purge the packages (root)
#   make clean

SHELL        := /bin/bash
VERSION      := 0.1.0
PREFIX       ?= /usr/local
DESTDIR      ?=
O            ?= build
CC           ?= cc
FUZZ_SECONDS ?= 30
SAN          ?=

DEB_PKGS := gcc make pkg-config liburing-dev libnl-3-dev libnl-route-3-dev \
            libcunit1-dev libpcre2-dev python3 iproute2 util-linux
FUZZ_PKGS := clang libclang-rt-14-dev
# What `make deb`, `make rpm` and `make package-check` need on top (and only they).
PKG_PKGS  := debhelper dpkg-dev elfutils fakeroot lintian rpm systemd

# Installation directories (make install; the packages set them).
BINDIR      ?= $(PREFIX)/bin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
SYSCONFDIR  ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MAN5        := docs/lifeblood-worker.toml.5
MAN8        := docs/lifeblood-worker.8 docs/lifeblood-worker-probe.8 \
               docs/lifeblood-worker-inspect.8 docs/lifeblood-worker-status.8

WARN     := -Wall -Wextra -Werror -Wvla -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -DLBW_VERSION='"$(VERSION)"' -I/usr/include/libnl3
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c17 $(WARN) -fno-strict-aliasing -MMD -MP
LDLIBS   += -luring -lnl-3 -lpcre2-8

ifeq ($(SAN),1)
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
endif

# ---- layers ----------------------------------------------------------------
# Each layer is a static library compiled with only its own and the lower
# layers' include paths, so an include that points the wrong way (probes/
# including a wire header, wire/ including the reactor, daemon/ including
# pool/) fails to build. See docs/ARCHITECTURE.md.
#
#   base/          pure C helpers (no syscalls beyond memory)
#   kernel-iface/  Linux interfaces                       <- base
#   probes/        host resources                         <- kernel-iface
#   wire/          Lifeblood's codecs, pure               <- base
#   wire/net/      transport, commands, discovery         <- wire, kernel-iface
#   daemon/        the worker (run/, runtime/ inside)     <- probes, wire/net
#   pool/          the local worker pool                  <- probes, wire/net
#   cmd/           commands that join daemon/ and pool/   <- daemon, pool
#                  (the pool command); daemon/main.c, the program's entry,
#                  is compiled as part of it
INC_BASE   := -Ibase
INC_KI     := $(INC_BASE) -Ikernel-iface
INC_PROBES := $(INC_KI) -Iprobes
INC_WIRE   := $(INC_BASE) -Iwire
INC_NET    := $(INC_KI) -Iwire -Iwire/net
INC_DAEMON := $(INC_KI) -Iprobes -Iwire -Iwire/net -Idaemon -Idaemon/run -Idaemon/runtime
INC_POOL   := $(INC_KI) -Iprobes -Iwire -Iwire/net -Ipool
INC_ALL    := $(INC_DAEMON) -Ipool
INC_CMD    := $(INC_ALL) -Icmd

# The include paths a source file is compiled with, from its directory.
layer_inc = $(strip \
  $(if $(filter cmd/% daemon/main.c,$1),$(INC_CMD), \
  $(if $(filter base/%,$1),$(INC_BASE), \
  $(if $(filter kernel-iface/%,$1),$(INC_KI), \
  $(if $(filter probes/%,$1),$(INC_PROBES), \
  $(if $(filter wire/net/%,$1),$(INC_NET), \
  $(if $(filter wire/%,$1),$(INC_WIRE), \
  $(if $(filter daemon/%,$1),$(INC_DAEMON), \
  $(if $(filter pool/%,$1),$(INC_POOL),$(INC_CMD) -Itests/unit)))))))))

BASE_SRC   := $(wildcard base/*.c)
KI_SRC     := $(wildcard kernel-iface/*.c)
PROBES_SRC := $(wildcard probes/*.c)
WIRE_SRC   := $(wildcard wire/*.c wire/net/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c daemon/run/*.c daemon/runtime/*.c))
POOL_SRC   := $(wildcard pool/*.c)
CMD_SRC    := $(wildcard cmd/*.c)
LIB_SRC    := $(BASE_SRC) $(KI_SRC) $(PROBES_SRC) $(WIRE_SRC) $(DAEMON_SRC) $(POOL_SRC) \
              $(CMD_SRC)
LIB_OBJ    := $(LIB_SRC:%.c=$(O)/%.o)
# Link order: top layers first.
LAYERS     := cmd daemon pool wire probes kernel-iface base
layer_lib   = $(O)/lib/lib$(1).a
layer_objs  = $(filter $(O)/$(1)/%,$(LIB_OBJ))
LIBS       := $(foreach l,$(LAYERS),$(if $(call layer_objs,$(l)),$(call layer_lib,$(l))))
LIB        := $(LIBS)
BIN        := $(O)/lifeblood-worker

UNIT_SRC   := $(wildcard tests/unit/*.c)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(O)/%.o)
UNIT_BIN   := $(O)/tests/unit-tests
HELPERS    := $(patsubst tests/helpers/%.c,$(O)/tests/helpers/%,\
                $(filter-out tests/helpers/fake_nvml.c,$(wildcard tests/helpers/*.c))) \
              $(O)/tests/fake-nvml/libnvidia-ml.so.1

BENCH_SRC  := $(wildcard bench/*.c)
BENCH_BIN  := $(patsubst bench/%.c,$(O)/bench/%,$(BENCH_SRC))

FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all deps deps-check deps-pkg test test-run unit integration check fuzz bench demo \
        install deb rpm package-check clean help
.DEFAULT_GOAL := all

all: $(BIN)

help:
	@sed -n '2,15p' Makefile | sed 's/^# \{0,1\}//'

# ---- dependencies --------------------------------------------------------

# Lists the packages from $(1) that dpkg does not report as installed.
missing = $(shell for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
            | grep -q 'ok installed' || echo $$p; done)

deps:
	@miss="$(call missing,$(DEB_PKGS))"; \
	if [ -z "$$miss" ]; then echo "deps: all build and test packages are installed"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "deps: missing Debian packages: $$miss"; \
	  echo "deps: run 'sudo make deps' (or apt-get install $$miss) and try again"; exit 1; fi; \
	echo "deps: installing $$miss"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q --no-install-recommends $$miss >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $$miss; }

deps-check:
	@[ -z "$(call missing,$(DEB_PKGS))" ] || $(MAKE) --no-print-directory deps

deps-fuzz:
	@miss="$(call missing,$(FUZZ_PKGS))"; [ -z "$$miss" ] || { \
	  [ "$$(id -u)" = 0 ] || { echo "fuzz: needs $$miss (run as root or install them)"; exit 1; }; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q $$miss >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q $$miss; }; }

deps-pkg:
	@miss="$(call missing,$(PKG_PKGS))"; [ -z "$$miss" ] || { \
	  [ "$$(id -u)" = 0 ] || { echo "packages: need $$miss (run as root or install them)"; \
	    exit 1; }; \
	  echo "packages: installing $$miss"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends $$miss >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $$miss; }; }

# ---- build ---------------------------------------------------------------

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(call layer_inc,$<) $(CFLAGS) -c -o $@ $<

define layer_rule
$(call layer_lib,$(1)): $(call layer_objs,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,$(LAYERS),$(eval $(call layer_rule,$(l))))

$(BIN): $(O)/daemon/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_BIN): $(UNIT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcunit -lpthread

# A stand-in NVML for the GPU probe's tests (selected by path, never installed).
$(O)/tests/fake-nvml/libnvidia-ml.so.1: tests/helpers/fake_nvml.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $<

$(O)/tests/helpers/%: tests/helpers/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(INC_CMD) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(O)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(INC_CMD) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# ---- tests ---------------------------------------------------------------

test: deps-check
	@$(MAKE) --no-print-directory test-run

test-run: $(BIN) $(UNIT_BIN) $(HELPERS)
	@echo "== unit tests ($(O)) =="
	LBW_BUILD=$(O) $(UNIT_BIN)
	@echo "== unit tests: lifeblood_connection.py =="
	PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s tests/unit_py
	@echo "== integration tests ($(O)) =="
	LBW_BUILD=$(O) tests/integration/run.sh

unit: $(UNIT_BIN) $(HELPERS)
	LBW_BUILD=$(O) $(UNIT_BIN)
	PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s tests/unit_py

integration: $(BIN) $(HELPERS)
	LBW_BUILD=$(O) tests/integration/run.sh

check: deps-check
	@$(MAKE) --no-print-directory O=build/san SAN=1 test-run

# ---- fuzzing -------------------------------------------------------------

comma := ,
FUZZ_CFLAGS := -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
               -D_GNU_SOURCE -I/usr/include/libnl3 \
               $(INC_CMD) -DLBW_VERSION='"$(VERSION)"'

# The library is compiled once for every target (sanitizers and coverage,
# libFuzzer's main only in the targets), so adding a target costs one link.
FUZZ_LIB_CFLAGS := $(subst -fsanitize=fuzzer$(comma),-fsanitize=fuzzer-no-link$(comma),$(FUZZ_CFLAGS))
FUZZ_OBJ   := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
FUZZ_LIB   := build/fuzz/liblbw-fuzz.a
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_LIB_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB) $(LDLIBS)

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: deps-check deps-fuzz
	@mkdir -p build/fuzz
	@if [ -z "$(FUZZ_SRC)" ]; then echo "fuzz: no targets"; exit 0; fi; \
	$(MAKE) --no-print-directory -j$$(nproc) fuzz-build >/dev/null || \
	  $(MAKE) --no-print-directory fuzz-build; \
	set -e; for t in $(basename $(notdir $(FUZZ_SRC))); do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS)s =="; \
	  mkdir -p build/fuzz/corpus-$$t; \
	  seeds=tests/fuzz/corpus/$$t; [ -d $$seeds ] || seeds=; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -print_final_stats=1 \
	    build/fuzz/corpus-$$t $$seeds 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' ; \
	  test $${PIPESTATUS[0]} -eq 0; \
	done

# Hours-long runs: every target for FUZZ_SECONDS (3600 unless given), corpus
# kept in build/fuzz/corpus-TARGET across runs, crashes/timeouts/OOMs in
# build/fuzz/artifacts-TARGET/; a unit slower than 10 s counts as a finding
# (the nesting and big-integer freezes show up that way).
FUZZ_LONG_SECONDS = $(if $(filter command line environment,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),3600)
.PHONY: fuzz-long
fuzz-long: deps-check deps-fuzz
	@mkdir -p build/fuzz
	@$(MAKE) --no-print-directory -j$$(nproc) fuzz-build >/dev/null || \
	  $(MAKE) --no-print-directory fuzz-build
	@set -e; for t in $(basename $(notdir $(FUZZ_SRC))); do \
	  echo "== fuzz-long $$t for $(FUZZ_LONG_SECONDS)s =="; \
	  mkdir -p build/fuzz/corpus-$$t build/fuzz/artifacts-$$t; \
	  seeds=tests/fuzz/corpus/$$t; [ -d $$seeds ] || seeds=; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_LONG_SECONDS) -rss_limit_mb=2048 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts-$$t/ \
	    build/fuzz/corpus-$$t $$seeds 2>&1 | tee build/fuzz/$$t.log \
	    | grep -E 'stat::number_of_executed_units|(INITED|DONE) +cov:|ERROR|SUMMARY' ; \
	  test $${PIPESTATUS[0]} -eq 0; \
	done

# ---- benchmarks, demo, install --------------------------------------------

bench: deps-check $(BIN) $(BENCH_BIN) $(HELPERS)
	@LBW_BUILD=$(O) bench/run.sh

demo: deps-check $(BIN)
	@LBW_BUILD=$(O) ./demo/run.sh

install: $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(DATADIR)/lifeblood-worker/runtime \
	  $(DESTDIR)$(SYSCONFDIR)/lifeblood/worker/config.d \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/lifeblood-worker
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 daemon/runtime/lifeblood_connection.py \
	  $(DESTDIR)$(DATADIR)/lifeblood-worker/runtime/
	@# configuration: never over a file that is already there
	for f in config.toml service.env; do \
	  t=$(DESTDIR)$(SYSCONFDIR)/lifeblood/worker/$$f; \
	  [ -e $$t ] || install -m 0644 packaging/etc/worker/$$f $$t; done
	for u in lifeblood-worker.service lifeblood-worker@.service lifeblood-pool.service; do \
	  sed -e 's|/usr/bin/lifeblood-worker|$(BINDIR)/lifeblood-worker|' \
	      -e 's|/etc/lifeblood|$(SYSCONFDIR)/lifeblood|g' packaging/systemd/$$u \
	    > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; done
	install -m 0644 packaging/systemd/lifeblood-worker.sysusers \
	  $(DESTDIR)$(SYSUSERSDIR)/lifeblood-worker.conf
	install -m 0644 packaging/systemd/lifeblood-worker.tmpfiles \
	  $(DESTDIR)$(TMPFILESDIR)/lifeblood-worker.conf

# ---- packages -------------------------------------------------------------
# Both build from a copy of the source tree (the files git knows, or all
# but build/ outside a checkout), never from the working tree itself.
PKG_NAME := lifeblood-worker-$(VERSION)
define source_copy
rm -rf $(1) && mkdir -p $(1) && \
if git rev-parse --git-dir >/dev/null 2>&1; then \
  git ls-files -z --cached --others --exclude-standard | \
    xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
    tar --null -T - -cf - | tar -xf - -C $(1); \
else tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C $(1); fi
endef

deb: deps-check deps-pkg
	@$(call source_copy,$(O)/deb/$(PKG_NAME))
	cp -a packaging/debian $(O)/deb/$(PKG_NAME)/debian
	cd $(O)/deb/$(PKG_NAME) && dpkg-buildpackage -b -us -uc -j2 >../build.log 2>&1 || \
	  { tail -60 ../build.log; echo "deb: dpkg-buildpackage failed; log in $(O)/deb/build.log"; \
	    exit 1; }
	@ls -1 $(O)/deb/*.deb

rpm: deps-check deps-pkg
	@$(call source_copy,$(O)/rpm/src/$(PKG_NAME))
	mkdir -p $(O)/rpm/SOURCES
	tar -C $(O)/rpm/src -czf $(O)/rpm/SOURCES/$(PKG_NAME).tar.gz $(PKG_NAME)
	@# --nodeps: the BuildRequires name EL packages, which dpkg provides here
	rpmbuild -bb --nodeps --define "_topdir $(abspath $(O)/rpm)" \
	  packaging/rpm/lifeblood-worker.spec >$(O)/rpm/build.log 2>&1 || \
	  { tail -60 $(O)/rpm/build.log; echo "rpm: rpmbuild failed; log in $(O)/rpm/build.log"; \
	    exit 1; }
	@ls -1 $(O)/rpm/RPMS/*/*.rpm

package-check: deps-check deps-pkg
	packaging/ci-check.sh

clean:
	rm -rf build

-include $(FUZZ_OBJ:.o=.d)
-include $(LIB_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(O)/daemon/main.d

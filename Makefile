# hmmfs — top-level Makefile.
#
#   make                     build build/hmmfs and build/hmmfsctl
#   make demo                mount a demo directory and show it working
#   make bench               the benchmark suite (bench/run.sh; QUICK=1: < 5 min)
#   make check               build and run every test suite (tests/run.sh)
#   make check SANITIZE=address,undefined   the same under ASan+UBSan (build-san-*/)
#   make check SANITIZE=thread              the same under TSan
#   make check-unit [SUITE=name]            the unit suites, or one (e.g. SUITE=cache_index)
#   make check-integration [T=sel]          the integration tests, or a suite (T=io)
#                                           or one test (T='faults:slow backing I/O')
#   make check-crash         the crash loop alone (tests/crash/run.sh -n 100: long mode)
#   make install PREFIX=/usr/local          daemon, control tool, mount helper, man pages
#   make deps                apt-install what the build and tests need (Debian 12);
#                            the README's two commands run it first, make does not
#   tests/gpu/run.sh         on a machine with an NVIDIA GPU: the device contract
#                            on the real driver, copy bandwidth (build/tests/cudabw)
#   V=1                      show full compiler command lines
#   WERROR=1                 warnings are errors (CI sets it; off by default so a
#                            newer compiler's new warnings do not stop a build)
#   DEBUG=1                  check that each *_locked function's lock is held
#                            (lib/lockcheck.h; CI sets it); builds in build-debug/
#
# Users may tune CFLAGS; the warning flags are always added.

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DESTDIR    ?=

CC         ?= cc
CFLAGS     ?= -O2 -g
SANITIZE   ?=

VERSION    := 0.1.0

PKGS       := fuse3 liburing liburcu-bp libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WERROR     ?= 0

override CFLAGS += -std=gnu11 -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -D_GNU_SOURCE \
		   -DHMMFS_VERSION='"$(VERSION)"' -MMD -MP -I. $(PKG_CFLAGS)
override LDLIBS += $(PKG_LIBS) -laio -lpthread -ldl

comma := ,
ifeq ($(SANITIZE),)
B := build
else
B := build-san-$(subst $(comma),-,$(SANITIZE))
override CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=$(SANITIZE)
endif
# DEBUG=1: the lock assertions of lib/lockcheck.h (CI), in a build of its own
ifeq ($(DEBUG),1)
B := $(B)-debug
override CFLAGS += -DHMMFS_DEBUG
endif
ifeq ($(V),1)
Q :=
quiet = @true
else
Q := @
quiet = @printf '  %-7s %s\n'
endif

# Sources, sorted.  fs/main.c is the daemon's entry point; everything else
# in FS_SRCS is linked into the unit tests too.
FS_SRCS    := fs/atime.c fs/bdi.c fs/devio.c fs/fdcache.c fs/guard.c fs/inode.c fs/notify.c fs/ops.c \
	      fs/ops_attr.c fs/ops_cred.c fs/ops_data.c fs/ops_dir.c fs/ops_entry.c fs/ops_file.c \
	      fs/ops_ioctl.c fs/ops_xattr.c fs/opstat.c fs/options.c \
	      $(sort $(wildcard bounce/*.c cache/*.c device/*.c fault/*.c io/*.c log/*.c util/*.c))
DAEMON_SRC := fs/main.c
CTL_SRCS   := ctl/hmmfsctl.c util/size.c
UNIT_SRCS  := $(sort $(wildcard tests/unit/*.c))
IT_SRCS    := $(sort $(wildcard tests/integration/*.c))
FSX_SRCS   := $(sort $(wildcard tests/fsx/*.c))
CRASH_SRCS := $(sort $(wildcard tests/crash/*.c))
RACE_SRCS  := $(sort $(wildcard tests/stress/*.c))
# helpers shared by the checkers (the drop_caches thread of -D), and the
# CUnit runners' closing list of failures
TCOMMON_SRCS := tests/common/dropcaches.c
CUREPORT_OBJ := $(B)/obj/tests/common/cunit_report.o

FS_OBJS    := $(FS_SRCS:%.c=$(B)/obj/%.o)
ALL_OBJS   := $(FS_OBJS) $(DAEMON_SRC:%.c=$(B)/obj/%.o) $(CTL_SRCS:%.c=$(B)/obj/%.o) \
	      $(UNIT_SRCS:%.c=$(B)/obj/%.o) $(IT_SRCS:%.c=$(B)/obj/%.o) \
	      $(FSX_SRCS:%.c=$(B)/obj/%.o) $(CRASH_SRCS:%.c=$(B)/obj/%.o) \
	      $(RACE_SRCS:%.c=$(B)/obj/%.o) $(TCOMMON_SRCS:%.c=$(B)/obj/%.o) $(CUREPORT_OBJ) \
	      $(B)/obj/tests/gpu/cudabw.o

HMMFS      := $(B)/hmmfs
HMMFSCTL   := $(B)/hmmfsctl
UNIT_BIN   := $(B)/tests/unit_tests
# The fake CUDA driver the unit tests load in place of libcuda.so.1, and
# the copy-bandwidth tool of tests/gpu/run.sh (device/ only).
FAKECUDA   := $(B)/tests/libfakecuda.so
CUDABW     := $(B)/tests/cudabw
DEV_OBJS   := $(filter $(B)/obj/device/% $(B)/obj/fault/% $(B)/obj/log/%,$(FS_OBJS))
IT_BIN     := $(B)/tests/integration_tests
FSX_BIN    := $(B)/tests/hmmfsx
CRASH_BIN  := $(B)/tests/hmmfscrash
RACE_BIN   := $(B)/tests/hmmfsrace

.PHONY: all bench bench-everyday bench-devread bench-replicas bench-opencl bench-gluster demo deps check check-unit check-integration check-fsx check-crash \
	install uninstall clean
.DEFAULT_GOAL := all

all: $(HMMFS) $(HMMFSCTL)

deps:
	$(Q)scripts/deps.sh

# The main job: mount a demo directory with default options and show it.
demo: all
	$(Q)HMMFS=$(abspath $(HMMFS)) HMMFSCTL=$(abspath $(HMMFSCTL)) scripts/demo.sh

# fio and more against native and libfuse's passthrough_ll; results go to
# bench/results/DATE/.  Needs root (drop_caches, mounts).
bench: all
	$(Q)HMMFS=$(abspath $(HMMFS)) HMMFSCTL=$(abspath $(HMMFSCTL)) QUICK=$(QUICK) bench/run.sh

# Everyday workloads (tar, git, a build, sqlite, rsync) and single-call
# latencies through native, passthrough_ll and hmmfs side by side; results
# go to bench/results/DATE-everyday/ and DATE-oplat/.  Needs root.
bench-everyday: all
	$(Q)HMMFS=$(abspath $(HMMFS)) HMMFSCTL=$(abspath $(HMMFSCTL)) bench/everyday.sh
	$(Q)HMMFS=$(abspath $(HMMFS)) HMMFSCTL=$(abspath $(HMMFSCTL)) bench/oplat.sh

# Reads of device-resident pages against host-resident ones (hostsim, and
# hostsim with a PCIe-like model); results go to bench/results/DATE-devread/.
bench-devread: all
	$(Q)HMMFS=$(abspath $(HMMFS)) HMMFSCTL=$(abspath $(HMMFSCTL)) bench/devread.sh

bench-replicas: all
	$(Q)HMMFS=$(abspath $(HMMFS)) HMMFSCTL=$(abspath $(HMMFSCTL)) bench/replicas.sh

# hmmfs in front of GlusterFS on two nodes with a 1 Gbit/s link (namespaces).
bench-gluster: all
	$(Q)HMMFS=$(abspath $(HMMFS)) HMMFSCTL=$(abspath $(HMMFSCTL)) bench/gluster.sh

# The device tier on opencl (POCL) against hostsim, the same fio jobs.
bench-opencl: all
	$(Q)HMMFS=$(abspath $(HMMFS)) HMMFSCTL=$(abspath $(HMMFSCTL)) bench/opencl.sh

$(B)/obj/%.o: %.c
	$(quiet) CC $@
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(HMMFS): $(FS_OBJS) $(B)/obj/fs/main.o
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(HMMFSCTL): $(CTL_SRCS:%.c=$(B)/obj/%.o)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_BIN): $(FS_OBJS) $(UNIT_SRCS:%.c=$(B)/obj/%.o) $(CUREPORT_OBJ)
	$(quiet) LD $@
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcunit

$(IT_BIN): $(IT_SRCS:%.c=$(B)/obj/%.o) $(CUREPORT_OBJ)
	$(quiet) LD $@
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcunit

$(FSX_BIN): $(FSX_SRCS:%.c=$(B)/obj/%.o) $(TCOMMON_SRCS:%.c=$(B)/obj/%.o)
	$(quiet) LD $@
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(CRASH_BIN): $(CRASH_SRCS:%.c=$(B)/obj/%.o) $(TCOMMON_SRCS:%.c=$(B)/obj/%.o)
	$(quiet) LD $@
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(RACE_BIN): $(RACE_SRCS:%.c=$(B)/obj/%.o)
	$(quiet) LD $@
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(FAKECUDA): tests/fakecuda/fakecuda.c
	$(quiet) CC $@
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -shared $(LDFLAGS) -o $@ $< -lpthread

$(CUDABW): $(B)/obj/tests/gpu/cudabw.o $(DEV_OBJS)
	$(quiet) LD $@
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -ldl -lpthread -lxxhash

# Each suite reports its own summary; tests/run.sh runs them in order,
# prints one closing line and fails if any suite failed.  The device
# contract runs against hostsim and against the cuda backend over the fake
# driver, and against opencl where there is an OpenCL device (POCL in make
# check); set both variables to run it on a real GPU (tests/gpu/run.sh).
HMMFS_TEST_DEVICES ?= hostsim,cuda$(shell clinfo -l 2>/dev/null | grep -q Device && echo ,opencl)
HMMFS_CUDA_LIB     ?= $(abspath $(FAKECUDA))
TEST_ENV = HMMFS=$(abspath $(HMMFS)) HMMFSCTL=$(abspath $(HMMFSCTL)) BUILD=$(abspath $(B)) \
	   $(if $(SANITIZE),HMMFS_IT_SANITIZED=1) \
	   HMMFS_TEST_DEVICES=$(HMMFS_TEST_DEVICES) HMMFS_CUDA_LIB=$(HMMFS_CUDA_LIB) \
	   TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) $(TSAN_OPTIONS)" \
	   ASAN_OPTIONS="abort_on_error=0 $(ASAN_OPTIONS)" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 $(UBSAN_OPTIONS)"

check: all $(UNIT_BIN) $(FAKECUDA) $(CUDABW) $(IT_BIN) $(FSX_BIN) $(CRASH_BIN) $(RACE_BIN)
	$(Q)$(TEST_ENV) tests/run.sh $(abspath $(UNIT_BIN)) $(abspath $(IT_BIN)) $(abspath $(FSX_BIN))

check-unit: all $(UNIT_BIN) $(FAKECUDA) $(CUDABW)
	$(Q)$(TEST_ENV) $(UNIT_BIN) $(SUITE)

check-integration: all $(IT_BIN)
	$(Q)$(TEST_ENV) $(IT_BIN) $(if $(T),"$(T)")

check-fsx: all $(FSX_BIN)
	$(Q)$(TEST_ENV) tests/fsx/run.sh $(abspath $(FSX_BIN))

check-crash: all $(CRASH_BIN)
	$(Q)$(TEST_ENV) tests/crash/run.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(HMMFS) $(DESTDIR)$(BINDIR)/hmmfs
	install -m 755 $(HMMFSCTL) $(DESTDIR)$(BINDIR)/hmmfsctl
	install -m 644 docs/hmmfs.8 docs/hmmfsctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 ctl/hmmfsctl.bash $(DESTDIR)$(BASHCOMPDIR)/hmmfsctl
	@# mount -t fuse.hmmfs runs mount.fuse3, which execs "hmmfs" from PATH;
	@# mount(8) drops PATH to a fixed list, so link it where that list looks.
	@if [ "$(BINDIR)" != /usr/bin ] && [ "$(BINDIR)" != /usr/sbin ] && [ -z "$(DESTDIR)" ]; then \
		ln -sf $(BINDIR)/hmmfs /usr/sbin/hmmfs; \
		echo "  linked /usr/sbin/hmmfs -> $(BINDIR)/hmmfs (for mount -t fuse.hmmfs)"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/hmmfs $(DESTDIR)$(BINDIR)/hmmfsctl \
	      $(DESTDIR)$(MANDIR)/man8/hmmfs.8 $(DESTDIR)$(MANDIR)/man8/hmmfsctl.8 \
	      $(DESTDIR)$(BASHCOMPDIR)/hmmfsctl
	@if [ -L /usr/sbin/hmmfs ] && [ -z "$(DESTDIR)" ]; then rm -f /usr/sbin/hmmfs; fi

clean:
	rm -rf build build-debug build-san-*

-include $(ALL_OBJS:.o=.d) $(FAKECUDA:.so=.d)

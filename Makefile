# SPDX-License-Identifier: GPL-2.0
#
# Entry points; tools/ does the work. KDIR=<Rust-enabled 7.3 build tree>
# builds against your own tree with your own toolchain instead of ours.

export KDIR
export IMPL ?= rs

.PHONY: all module test-modules demo check check-lifecycle fuzz fuzz-genl debug-modules check-debug check-faults interop check-peer-cap bench bench-scale kselftest soak env clean clean-cache

all: module

module:
	tools/module modules

# Test-only kernel modules (tests/kmod), loaded by the VM tests.
test-modules:
	tools/module M=$(CURDIR)/tests/kmod modules

demo: module
	tools/vm-run tests/demo.sh

# Slab poisoning and red zones on the kmalloc caches turn a use-after-free
# into a crash; limited to them, they cost the boot nothing measurable.
CHECK_APPEND := slub_debug=FZPU,kmalloc-*

# The timeout only tells a hang from a slow run: on a machine shared with
# other VMs the suite has taken over 30 minutes under TCG.
check: module test-modules
	VM_APPEND='$(CHECK_APPEND)' VM_TIMEOUT=$${VM_TIMEOUT:-3600} tools/vm-run tests/suite.sh

# The packet fuzzer (tests/packet-fuzz.sh): N hostile datagrams from the
# userspace peer tests/wgpeer.py at a wg0 with a live session; SEED replays
# a run (its seed is printed). make check runs 20,000.
fuzz: module
	VM_TIMEOUT=$${VM_TIMEOUT:-7200} tools/vm-run tests/packet-fuzz.sh $(or $(N),1000000) $(SEED)

# The netlink fuzzer in volume (tests/fuzz-genl.sh): N requests from the
# generator of tests/netlink-fuzz.py at our module alone, every answer judged
# by the model of the genetlink core, then the final state checked; SEED
# replays a run (its seed is printed); TIME=SECONDS stops the sending after
# that long (a random seed is then picked here). make check runs 20,000.
fuzz-genl: module
	VM_TIMEOUT=$${VM_TIMEOUT:-7200} tools/vm-run tests/fuzz-genl.sh $(or $(N),1000000) \
		$(or $(SEED),$(if $(TIME),$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '))) $(TIME)

# Lifecycle under traffic (tests/lifecycle.sh): device and namespace
# deletion, moves, down/up, peer removal, key changes and rmmod, each with
# iperf3 flowing and handshakes in flight. Not in make check: it takes about
# 15 minutes per driver under TCG. IMPL=c runs it on the C driver; on a kernel
# with kmemleak (WGRS_KERNEL_PROFILE=kasan, module built for it) it also scans
# for leaks.
check-lifecycle: module
	VM_APPEND='$(CHECK_APPEND)' VM_TIMEOUT=$${VM_TIMEOUT:-3600} tools/vm-run tests/lifecycle.sh

# The debug kernel profile (issue 7): tools/kernel.config with
# tools/kernel-kasan.config over it (KASAN generic inline, UBSAN bounds and
# shift, kmemleak, DEBUG_PAGEALLOC, failslab and fail_page_alloc), a second
# cached kernel, built the first time it is asked for (about 85 minutes on 2
# cores). The module and tests/kmod are built for it in build/profile-kasan/.
# check-debug runs the whole make check suite on it (or SUITES='control
# kselftest', names from tests/suite.sh, in that order), then unloads the module and runs a
# kmemleak scan (tests/check-debug.sh); check-faults sweeps
# allocation failures over device creation and a setconf of PEERS peers and
# fails allocations at random under traffic (tests/fault-inject.sh;
# TESTS='setconf*' picks tests, REQUESTS=A-B the setconf requests swept). KASAN
# makes every exec in the TCG guest several times slower: hence the timeout.
# KASAN's shadow takes an eighth of the guest's memory: hence VM_MEM.
DEBUG_ENV := WGRS_KERNEL_PROFILE=kasan VM_MEM=$${VM_MEM:-3072}
debug-modules:
	WGRS_KERNEL_PROFILE=kasan tools/module modules
	WGRS_KERNEL_PROFILE=kasan tools/module M=$(CURDIR)/tests/kmod modules

check-debug: debug-modules
	$(DEBUG_ENV) VM_APPEND='$(CHECK_APPEND)' VM_TIMEOUT=$${VM_TIMEOUT:-10800} tools/vm-run tests/check-debug.sh $(SUITES)

check-faults: debug-modules
	$(DEBUG_ENV) VM_TIMEOUT=$${VM_TIMEOUT:-7200} tools/vm-run tests/fault-inject.sh $(or $(PEERS),1000) $(or $(CHECK_EVERY),1) '$(TESTS)' '$(REQUESTS)'

# Two guests on one QEMU network: the C driver in A, ours in B (swap them
# with IMPL_A=rs IMPL_B=c).
interop: module
	tools/interop

# Opt-in: the 2^20 peer cap (some ten minutes under TCG; IMPL=rs only). The
# peers need more than 2 GiB since they carry data-plane state: hence VM_MEM.
check-peer-cap: module
	VM_MEM=$${VM_MEM:-6144} tools/vm-run tests/peer-cap.sh

kselftest: module
	VM_TIMEOUT=$${VM_TIMEOUT:-2400} tools/vm-run tests/kselftest.sh

# The performance benchmark, ours against the C driver in one boot
# (tests/bench.sh), on the bench kernel profile: tools/kernel.config with
# tools/kernel-bench.config over it (no lockdep or other debug checks),
# cached under its own key. The module and tests/kmod are built against it in
# build/profile-bench/, leaving the debug build here as it is. QUICK=1: one
# round, 3 s per workload (a smoke test); BENCH_ARGS: more arguments for
# tests/bench.sh (rounds=N secs=S topos=... impls=...); PERF=1: perf
# (tools/perf) profiles round 1 of each driver; COUNT=1 counts the guest
# kernel's instructions per function in round 1 of each driver, exactly
# (tools/tcg-count, a QEMU plugin), and prints them per unit of work after
# the run. The guest CPU is
# qemu64 (VM_CPU overrides): TCG emulates AVX2 and SSSE3 slowly, so with
# -cpu max lib/crypto's SIMD ChaCha20-Poly1305 runs at 8 MB/s against 55 MB/s
# for its generic code (Documentation/benchmarks.md).
BENCH_ENV := WGRS_KERNEL_PROFILE=bench VM_CPU=$${VM_CPU:-qemu64}
# COUNT=1: tools/tcg-count's QEMU plugin in the VM, and its report after it.
COUNT_ENV = $(if $(COUNT),VM_RUN_FILE=build/vm/.run.$$$$ VM_QEMU_ARGS="$$(tools/tcg-count qemu-args "$$($(BENCH_ENV) tools/kernel)")")
COUNT_REPORT = $(if $(COUNT),; rc=$$?; tools/tcg-count report "$$(cat build/vm/.run.$$$$)"; rm -f build/vm/.run.$$$$; exit $$rc)
bench:
	$(BENCH_ENV) tools/module modules
	$(BENCH_ENV) tools/module M=$(CURDIR)/tests/kmod modules
	$(if $(PERF),mkdir -p build && cp "$$(tools/perf)" build/perf)
	$(BENCH_ENV) VM_TIMEOUT=$${VM_TIMEOUT:-3600} \
		$(COUNT_ENV) \
		tools/vm-run tests/bench.sh $(if $(QUICK),quick) \
		$(if $(PERF),perf=build/perf) $(if $(COUNT),count=1) $(BENCH_ARGS) \
		$(COUNT_REPORT)

# PEERS= sets the count (default 100000); PERF=1 profiles ten dumps per
# driver, COUNT=1 counts their instructions (tools/tcg-count). The dumps are
# timed by build/dump-count, a C client built for the guest.
bench-scale: build/dump-count
	$(BENCH_ENV) tools/module modules
	$(if $(PERF),mkdir -p build && cp "$$(tools/perf)" build/perf)
	$(BENCH_ENV) VM_MEM=$${VM_MEM:-8192} VM_TIMEOUT=$${VM_TIMEOUT:-3600} \
		$(COUNT_ENV) \
		tools/vm-run tests/bench-scale.sh $(or $(PEERS),100000) "rs c" $(if $(PERF),build/perf)$(if $(COUNT),count) \
		$(COUNT_REPORT)

build/dump-count: tests/dump-count.c
	tools/guest-cc $< $@

# Boots N VMs in a row with a CPU hog on the host: the harness must not crash.
soak: module
	tools/soak $(or $(N),50)

env:
	tools/toolchain && tools/kernel && tools/rootfs

clean:
	tools/module clean
	tools/module M=$(CURDIR)/tests/kmod clean
	rm -rf build src/bindings_generated.rs

clean-cache:
	tools/clean-cache

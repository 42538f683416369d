#!/bin/bash
# Allocation-failure injection (issue 7): failslab and fail_page_alloc,
# limited to allocations with the module under test ($IMPL) on the stack.
# Needs the kasan kernel profile (make check-faults).
#
#   tools/vm-run tests/fault-inject.sh [PEERS [CHECK_EVERY [TESTS [REQUESTS]]]]
#
# TESTS: name globs, separated by spaces, of the tests to run (e.g.
# 'newlink* private*'); all by default. REQUESTS: A-B, the setconf requests
# to sweep (from 1; the others are applied without injection), to split the
# 1000-peer sweep (39 requests, hours on the kasan profile) over runs.
#   newlink   fail-nth swept over every allocation of RTM_NEWLINK
#             (tests/fault-inject.py newlink);
#   setconf   fail-nth swept over every allocation of a `wg setconf` of PEERS
#             peers (default 1000) with allowed IPs (tests/fault-inject.py
#             setconf; the dump is checked after every CHECK_EVERY-th
#             injected failure, default 1, and after all of them in the first
#             and last request); then the device must still carry traffic;
#   privkey   fail-nth swept over a set-device of the private key alone, on a
#             device with a working tunnel: after each failure, the other
#             end is given the public key the dump shows, and a ping must
#             pass (the dump and the handshakes must agree on the key);
#   traffic   fail-nth cannot reach softirq (should_fail_ex counts only in
#             task context) nor the module's workers: instead a probability
#             run, 10% of the module's allocations failing in every context,
#             for 30 s of flood ping with the sessions dropped every 3 s
#             (handshakes); then, injection off, the tunnel must work again.
# After every test: no kernel report in the log but the allocation-failure
# warnings the injection itself causes (the test judges the log itself, and
# clears it: the console is quietened while it runs, see below). At the
# end: the module unloaded, a kmemleak scan (tests/kmemleak.sh) must find
# nothing of ours.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh
. tests/kmemleak.sh

PEERS=${1:-1000}
CHECK_EVERY=${2:-1}
# shellcheck disable=SC2206
[ -n "${3:-}" ] && { set -f; T_ONLY=($3); set +f; }
REQUESTS=${4:+--requests $4}
DBG=/sys/kernel/debug
# The sweep's progress lines (fd 3): this script's output, which a test's
# own output (kept for its verdict) is not.
exec 3>&1
mountpoint -q $DBG || mount -t debugfs debugfs $DBG
for c in failslab fail_page_alloc; do
	[ -e $DBG/$c/require-start ] || {
		echo "no $DBG/$c/require-start: not the kasan kernel profile (make check-faults)"
		exit 1
	}
done
[ -e /proc/self/fail-nth ] || { echo "no /proc/self/fail-nth"; exit 1; }
kmemleak_available && kmemleak_clear
# The injected failures of vmalloc and the page allocator print a warning
# with a stack trace (warn_alloc); they are expected, and would read as a
# splat to tools/vm-run. Keep them off the console; log_check judges the log
# after each test and clears it, and prints what it does not expect. The
# sweeps' own stack dumps (one per injected failure) outgrow the kernel's
# log buffer: a follower keeps the whole log in $KLOG, and log_check reads
# what it gained since the last check (its offset in a file: tests run in
# subshells).
dmesg -n 1
dmesg -C
KLOG=$T_DIR/kernel.log
dmesg -W >"$KLOG" 2>&1 &
KLOG_PID=$!
echo 0 >"$T_DIR/klog.off"

# Warnings with a stack trace that an injected failure causes, beside the
# allocators' own: a percpu area or a slab cache that could not be had
# (the C driver creates its ratelimiter's cache with each first device;
# SLUB says EINVAL when a kmem_cache_node allocation fails, mm/slub.c
# do_kmem_cache_create; we create no caches).
KLOG_OK='page allocation failure|vmalloc error:|FAULT_INJECTION: forcing|SLUB: Unable to allocate|kmem_cache_create[a-z_]*[(].*[)] failed with error -(12|22)|percpu: allocation failed'

# log_check: the kernel log since the last check holds no report other
# than the injection's own allocation-failure warnings.
log_check() {
	local bad off size new=$T_DIR/klog.new
	sleep 1
	off=$(cat "$T_DIR/klog.off")
	size=$(stat -c %s "$KLOG")
	tail -c +$((off + 1)) "$KLOG" | head -c $((size - off)) | tr -d '\r' >"$new"
	echo "$size" >"$T_DIR/klog.off"
	[ -w /wgrs ] && cp "$new" "/wgrs/kernel-log.$IMPL.$(date +%s).txt"
	bad=$(awk -v okre="$KLOG_OK" '
		$0 ~ okre { ok = 1; next }
		/<\/TASK>/ { ok = 0; next }
		/Call Trace:/ { if (!ok) print; next }
		/Oops|BUG:|WARNING:|Kernel panic|general protection|KASAN|UBSAN|INFO: (possible|suspicious|task|trying)|circular locking|ODEBUG|soft lockup|hard LOCKUP|rcu: INFO|list_(add|del) corruption|unreferenced object/ { ok = 0; print }' "$new")
	if [ -n "$bad" ]; then
		# To the console, each unexpected report with the lines before
		# it (the injection's own stack dumps would fill a plain tail).
		awk -v okre="$KLOG_OK" '
			$0 ~ okre { ok = 1 }
			/<\/TASK>/ { ok = 0 }
			{ h[NR % 12] = $0 }
			/Call Trace:/ && !ok || /Oops|BUG:|WARNING:|KASAN|UBSAN|unreferenced object/ {
				for (i = NR - 11; i < NR; i++) if (i > last && i > 0) print h[i % 12]
				if (NR + 40 > last) last = NR + 40
			}
			NR <= last { print }' "$new" >/dev/console
		dmesg -C
		fail "kernel report(s): $(printf '%s' "$bad" | head -n 3 | tr '\n' '|')"
	fi
	note "kernel log: $(grep -cE 'page allocation failure|vmalloc error' "$new") allocation-failure warnings, $(grep -c 'FAULT_INJECTION: forcing' "$new") injected-failure dumps, nothing else"
	dmesg -C
}

pub() { wg pubkey <<<"$1"; }
K1=$(wg genkey) K2=$(wg genkey)
# tunnel_up DEV: DEV (init netns) and wg9 in netns fi2 (created here, so
# its socket stays in the init netns: endpoints on 127.0.0.1) as a pair.
tunnel_up() {
	ip netns add fi2 &&
	ip link add wg9 type wireguard && ip link set wg9 netns fi2 &&
	wg set "$1" private-key <(echo "$K1") listen-port 51820 \
		peer "$(pub "$K2")" allowed-ips 10.200.0.2/32 endpoint 127.0.0.1:51821 &&
	ip netns exec fi2 wg set wg9 private-key <(echo "$K2") listen-port 51821 \
		peer "$(pub "$K1")" allowed-ips 10.200.0.1/32 endpoint 127.0.0.1:51820 &&
	ip addr add 10.200.0.1/24 dev "$1" && ip link set "$1" up &&
	ip -n fi2 addr add 10.200.0.2/24 dev wg9 && ip -n fi2 link set wg9 up
}
tunnel_works() { wait_for 60 ping -c 1 -W 2 10.200.0.2; }

test_cleanup() {
	for c in failslab fail_page_alloc; do echo 0 >$DBG/$c/probability; done
	ip netns del fi2 2>/dev/null
	ip link del wg0 2>/dev/null
	ip link del wgfi0 2>/dev/null
	sleep 1
	return 0
}

modprobe "$WGRS_MODULE" || { echo "modprobe $WGRS_MODULE failed"; exit 1; }
python3 tests/fault-inject.py arm "$WGRS_MODULE" || exit 1

# Where a sweep logs each point (the injected failure's stack): the VM's
# run directory when writable.
points_log() {
	if [ -w /wgrs ]; then echo "/wgrs/$1-points.$IMPL.txt"; else echo "$T_DIR/$1-points.txt"; fi
}

t_newlink() {
	expect_ok python3 tests/fault-inject.py newlink wgfi0 --log "$(points_log newlink)"
	note "$(grep 'without injection' <<<"$T_OUT")"
	note "$(tail -n 1 <<<"$T_OUT")"
	note "$(grep -c 'EINVAL (core' "$(points_log newlink)") points ended in EINVAL from the core (netdev_register_kobject ignores dev_set_name's ENOMEM)"
	expect_ok ip link add wgfi0 type wireguard
	expect_ok wg show wgfi0
	log_check
}
run_test "newlink: every allocation failed once" t_newlink

t_setconf() {
	local partial=
	[ "$IMPL" = c ] && partial=--c-partial-ok
	expect_ok ip link add wg0 type wireguard
	expect_ok python3 tests/fault-inject.py setconf wg0 "$PEERS" --check-every "$CHECK_EVERY" $partial \
		--log "$(points_log setconf)" --progress-fd 3 $REQUESTS
	note "$(tail -n 1 <<<"$T_OUT")"
	expect_ok tunnel_up wg0
	tunnel_works || fail "no ping through wg0 after the sweep"
	expect_eq "$(wg show wg0 peers | wc -l)" $((PEERS + 1)) "peers on wg0"
	log_check
}
run_test "setconf of $PEERS peers: every allocation${4:+ of requests $4} failed once" t_setconf

# The private key alone: the key the dump shows must be the one the device
# answers handshakes with, whatever allocation failed.
t_privkey() {
	local k3
	k3=$(wg genkey)
	expect_ok ip link add wg0 type wireguard
	expect_ok tunnel_up wg0
	tunnel_works || fail "no ping before the sweep"
	cat >"$T_DIR/repoint.sh" <<-'EOS'
		for p in $(ip netns exec fi2 wg show wg9 peers); do ip netns exec fi2 wg set wg9 peer "$p" remove; done
		ip netns exec fi2 wg set wg9 peer "$1" allowed-ips 10.200.0.1/32 endpoint 127.0.0.1:51820
	EOS
	expect_ok python3 tests/fault-inject.py privkey wg0 "$K1" "$k3" "bash $T_DIR/repoint.sh {}" \
		--log "$(points_log privkey)"
	note "$(tail -n 1 <<<"$T_OUT")"
	log_check
}
run_test "private key: every allocation failed once, then a handshake" t_privkey

t_traffic() {
	local c n0=1000000000 left pid i hs
	expect_ok ip link add wg0 type wireguard
	expect_ok tunnel_up wg0
	tunnel_works || fail "no ping before the injection"
	for c in failslab fail_page_alloc; do
		echo $n0 >$DBG/$c/times
		echo 10 >$DBG/$c/probability
	done
	ping -f -w 30 10.200.0.2 >"$T_DIR/flood" 2>&1 &
	pid=$!
	for i in $(seq 10); do
		sleep 3
		ip -n fi2 link set wg9 down 2>/dev/null
		ip -n fi2 link set wg9 up 2>/dev/null
	done
	wait $pid
	for c in failslab fail_page_alloc; do
		echo 0 >$DBG/$c/probability
		left=$(cat $DBG/$c/times)
		note "$c: $((n0 - left)) allocations failed"
		echo -1 >$DBG/$c/times
	done
	note "flood ping under injection: $(grep -E 'packets transmitted' "$T_DIR/flood")"
	# Injection off: whatever it left behind, the pair must recover.
	ip -n fi2 link set wg9 up
	ip link set wg0 up
	tunnel_works || fail "no ping through wg0 after the injection stopped"
	hs=$(wg show wg0 latest-handshakes | awk '{ print $2 }')
	note "a handshake after the run: latest $(( $(date +%s) - hs )) s ago"
	log_check
}
run_test "traffic and handshakes with 10% of allocations failing" t_traffic

rmmod "$WGRS_MODULE" 2>/dev/null
run_test "kmemleak after unloading $WGRS_MODULE" kmemleak_check "$WGRS_MODULE"
kill "$KLOG_PID"
dmesg -n 5
summary

#!/bin/bash
# Hostile-peer tests: tests/wgpeer.py, an independent userspace WireGuard
# peer, plays a peer of wg0 over a real UDP socket (tests/hostile.py holds
# the tests and says how the namespaces are laid out). Run as root in the
# test VM with IMPL=rs|c; both drivers must pass (the expectations are
# those of Linux 7.3's C driver):
#   tools/vm-run tests/hostile.sh [TEST-GLOB...]
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh

test_setup "$@"

modprobe "$WGRS_MODULE" || { echo "FAIL modprobe $WGRS_MODULE"; exit 1; }

# hostile TEST: runs one test of tests/hostile.py; its NOTE lines become notes.
hostile() {
	local out rc line reason
	out=$(python3 tests/hostile.py "$1" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	while IFS= read -r line; do note "${line#NOTE: }"; done < <(printf '%s\n' "$out" | grep '^NOTE: ')
	[ $rc = 0 ] && return 0
	reason=$(printf '%s\n' "$out" | sed -n 's/^FAIL: //p' | head -n 1)
	fail "${reason:-tests/hostile.py $1 exited with status $rc: $(printf '%s\n' "$out" | tail -n 1)}"
}

test_cleanup() {
	ip netns del wgh-dut 2>/dev/null
	ip netns del wgh-peer 2>/dev/null
}

run_test "wgpeer self-test" expect_ok python3 tests/wgpeer.py selftest
for t in handshake_initiator handshake_responder replayed_initiation older_timestamp initiation_flood \
	bad_mac1 cookie_under_load ratelimiter transport_replay superseded_keypair allowed_ips keepalive; do
	run_test "$t" hostile "$t"
done
summary

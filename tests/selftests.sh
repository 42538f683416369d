#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Loads the module with its in-kernel self-tests (run_selftests=1), checks
# that they passed, and unloads it. Runs in the VM: tools/vm-run tests/selftests.sh
set -u

name="self-tests"
module=${WGRS_MODULE:-wireguard_rs}
topics='allowedips|nonce counter|ratelimiter|peer lookup|index table|noise'

fail() {
	dmesg | grep -E "$topics|wireguard" | sed 's/^/    /'
	echo "FAIL $name: $*"
	exit 1
}

dmesg -C
start=$(date +%s%N)
out=$(modprobe "$module" run_selftests=1 2>&1) || fail "modprobe failed: $out"
end=$(date +%s%N)
grep -q "^$module " /proc/modules || fail "the module is not loaded"
log=$(dmesg)
for suite in allowedips "nonce counter" ratelimiter "peer lookup" noise; do
	grep -q "$suite self-tests: pass" <<<"$log" || fail "no pass line for $suite in dmesg"
done
! grep -q 'FAIL' <<<"$log" || fail "a self-test failed"
grep -E "$topics" <<<"$log" | sed 's/^/    /'
echo "    modprobe with self-tests took $(((end - start) / 1000000)) ms"
rmmod "$module" || fail "rmmod failed"
echo "ok   $name"

#!/bin/bash
# Run the upstream WireGuard selftest, unmodified, against $WGRS_MODULE:
#   $KSRC/tools/testing/selftests/wireguard/netns.sh
# Its output goes to the console and to /tmp/netns.log; at the end we report
# how many "[+]" steps ran and, on failure, the last one. Exits with netns.sh's
# status.
set -u
KSRC=${KSRC:-/usr/src/linux}
WGRS_MODULE=${WGRS_MODULE:-wireguard_rs}
script=$KSRC/tools/testing/selftests/wireguard/netns.sh
log=/tmp/netns.log

[ -f "$script" ] || { echo "kselftest: FAIL: $script not found"; exit 1; }
# Load it explicitly: netns.sh would autoload through "ip link add", but then
# a module that fails to load would look like a failing first step.
modprobe "$WGRS_MODULE" || { echo "kselftest: FAIL: modprobe $WGRS_MODULE failed"; exit 1; }

cd /tmp || exit 1
# stdin stays the VM's never-ending FIFO: netns.sh sleeps with `read -t`.
bash "$script" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# Step lines are "[+] ..." (in colour). netns.sh's EXIT trap prints steps of
# its own, starting with "NS0: ip link del dev wg0", which the test proper
# never runs; count only the steps before it.
read -r steps last < <(sed 's/\x1b\[[0-9;]*m//g; s/\r$//' "$log" | awk '
	/^\[\+\] NS0: ip link del dev wg0$/ { exit }
	/^\[\+\] / { n++; line = substr($0, 5) }
	END { print n + 0, line }')
if [ "$rc" = 0 ]; then
	echo "kselftest: PASS ($steps steps; last: $last)"
else
	echo "kselftest: FAIL after $steps steps; last step: $last (netns.sh exit status $rc)"
fi
exit "$rc"

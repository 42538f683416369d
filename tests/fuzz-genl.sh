#!/bin/bash
# Netlink fuzzing in volume: tests/netlink-fuzz.py's volume mode runs one
# seeded sequence of COUNT wireguard requests (the differential fuzzer's
# generator with the slow steps made rarer: device operations, bulk
# requests, helper-process senders) on wireguard_rs alone. Every answer must
# be what the model of the genetlink core predicts; at the end the devices
# must be where the generator put them, each one's dump must parse and say
# what `wg showconf` says, and each must carry a ping through a handshake
# with a fresh device. The kernel must stay quiet (tools/vm-run fails the
# run on any splat).
#
#   tools/vm-run tests/fuzz-genl.sh [COUNT [SEED [SECONDS]]]
#                                       (default: 20000, a random seed)
#   make fuzz-genl [N=COUNT] [SEED=SEED] [TIME=SECONDS]   (default N: 1000000)
#
# The seed is printed first and in the result line: run again with it to
# replay the same sequence. SECONDS stops the sending after that long (at
# the end of a batch of 100 steps; the final checks follow): the requests
# sent are the first ones of the sequence, and the summary says how many.
# The lines before the result give the mutation mix and the errno histogram.
set -u
cd "$(dirname "$0")/.." || exit 1
count=${1:-20000}
seed=${2:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
budget=${3:-}
name="netlink volume fuzz"
replay="make fuzz-genl N=$count SEED=$seed"
[ -z "$budget" ] || replay="the summary's count of requests sent as N, with SEED=$seed"
echo "    seed $seed, $count requests${budget:+ or $budget s} (replay: $replay)"
fail() { echo "FAIL $name (seed $seed, $count requests): $*"; exit 1; }
for m in wireguard_rs wireguard; do
	[ ! -d "/sys/module/$m" ] || rmmod "$m" || fail "cannot unload $m"
done
# The helpers run as nobody and in user namespaces: they need a readable copy.
dir=$(mktemp -d /tmp/wgrs-fuzz.XXXXXX)
chmod 755 "$dir"
install -m 644 tests/netlink-fuzz.py tests/genl.py "$dir/" || fail "install failed"
modprobe wireguard_rs || fail "modprobe wireguard_rs failed"
# A task the hung-task detector reports: its stack, and every blocked
# task's, onto the console (the detector's own stack lines are below the
# console's log level).
(
	while sleep 20; do
		dmesg | grep -q 'blocked for more than' || continue
		echo "    a task is blocked: the blocked tasks' stacks follow"
		for t in /proc/[0-9]*/task/[0-9]*; do
			[ "$(awk '{ print $3 }' "$t/stat" 2>/dev/null)" = D ] || continue
			echo "    task ${t##*/} ($(cat "$t/comm" 2>/dev/null)):"
			sed 's/^/      /' "$t/stack" 2>/dev/null
		done
		break
	done
) &
watch=$!
python3 "$dir/netlink-fuzz.py" volume "$seed" "$count" $budget | tee "$dir/out"
rc=${PIPESTATUS[0]}
kill $watch 2>/dev/null
result=$(tail -n 1 "$dir/out")
rmmod wireguard_rs || fail "rmmod wireguard_rs failed"
[ "$rc" = 0 ] || fail "${result:-the run failed (status $rc)}"
echo "ok   $name: $result"

#!/bin/bash
# Packet fuzzing: tests/packet-fuzz.py throws COUNT hostile datagrams (one
# seeded sequence over every message type; the script's header lists the
# classes) at an up wg0 that has peers and a live session, then checks that
# the session still carries traffic both ways and that wg0's rx counters
# add up to what upstream counts. The kernel must stay quiet (tools/vm-run
# fails the run on any splat). Run as root in the test VM, IMPL=rs|c:
#
#   tools/vm-run tests/packet-fuzz.sh [COUNT [SEED]]   (default: 20000, a random seed)
#   make fuzz N=COUNT [SEED=SEED]                      (default N: 1000000)
#
# The seed is printed first and in the result line: run again with it to
# replay the same sequence.
set -u
cd "$(dirname "$0")/.." || exit 1
count=${1:-20000}
seed=${2:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
WGRS_MODULE=${WGRS_MODULE:-wireguard_rs}
modprobe "$WGRS_MODULE" || { echo "FAIL packet fuzz (seed $seed): modprobe $WGRS_MODULE failed"; exit 1; }
# The debug lines of a million bad packets would only fill the log.
message_cost=$(cat /proc/sys/net/core/message_cost)
echo 100 >/proc/sys/net/core/message_cost
python3 tests/packet-fuzz.py "$count" "$seed"
rc=$?
echo "$message_cost" >/proc/sys/net/core/message_cost
exit $rc

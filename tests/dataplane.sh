#!/bin/bash
# Data-plane tests that the kernel's netns.sh does not make, run as root in
# the test VM with IMPL=rs|c (both must pass; the expectations are what the
# C driver of Linux 7.3 does, but for fast-lane, ours only):
#   tools/vm-run tests/dataplane.sh [TEST-GLOB...]
#
# Two namespaces, wgrs-a and wgrs-b, hold wga and wgb; their UDP sockets stay
# in the initial namespace and meet over its loopback, as in netns.sh, so
# that tests/outer-capture.py sees the outer packets on `lo`.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh

test_setup "$@"

# The tests read debug lines, which net_ratelimit() may drop: no limit
# while they run, as in netns.sh.
message_cost=$(cat /proc/sys/net/core/message_cost)
echo 0 >/proc/sys/net/core/message_cost

A=wgrs-a B=wgrs-b
PORT_A=10001 PORT_B=10002
KEYS=$(mktemp -d /tmp/wgrs-keys.XXXXXX)
for k in a b c; do wg genkey >"$KEYS/$k"; done

na() { ip netns exec $A "$@"; }
nb() { ip netns exec $B "$@"; }
# (pair and pub: tests/lib.sh.)

# capture SECONDS [PORT...]: starts tests/outer-capture.py on lo for PORTs
# (default: ours); its lines go to $T_DIR/capture. stop_capture ends it.
capture() {
	local seconds=$1
	shift
	[ $# -gt 0 ] || set -- $PORT_A $PORT_B
	python3 tests/outer-capture.py lo "$seconds" "$@" >"$T_DIR/capture" &
	CAPTURE=$!
	bg_pid $CAPTURE
	# Python starts slowly in a loaded TCG guest: 10 s was not always enough.
	wait_for 60 grep -q capturing "$T_DIR/capture" || fail "the capture did not start in 60 s"
}
# stop_capture: ends the capture, and leaves its lines in $CAPTURED.
stop_capture() {
	kill "$CAPTURE" 2>/dev/null
	wait "$CAPTURE" 2>/dev/null
	captured_in_full
	CAPTURED=$(grep -v capturing "$T_DIR/capture")
}
# captured_in_full: fails if the capture fell behind (tests/outer-capture.py
# says `dropped N`): a frame it missed may be one a test looks for, or one
# it must not see.
captured_in_full() {
	! grep '^dropped' "$T_DIR/capture" || fail "the capture fell behind: what it saw is not all that was sent"
}

test_cleanup() {
	kill_bg_pids
	ip netns del $A 2>/dev/null
	ip netns del $B 2>/dev/null
}

# ---- long waits, run beside the other tests ----------------------------------
# Each runs in the background in namespaces of its own from the start, and
# its test judges what it left in $LONG/NAME when it is done.

LONG=$(mktemp -d /tmp/wgrs-long.XXXXXX)

# long_start NAME FUNC: runs FUNC in the background with T_DIR=$LONG/NAME
# (so that `fail` leaves its reason there), then writes $LONG/NAME/done.
long_start() {
	local name=$1 func=$2
	selected "$name" || return 0
	mkdir -p "$LONG/$name"
	( T_DIR=$LONG/$name; ( "$func" ) >"$T_DIR/log" 2>&1; echo $? >"$T_DIR/done" ) </dev/null &
}

# long_result NAME SECONDS: waits for NAME to be done, shows its log, and
# fails with its reason if it failed.
long_result() {
	wait_for "$2" test -e "$LONG/$1/done" || fail "$1 did not finish in $2 s"
	cat "$LONG/$1/log"
	cat "$LONG/$1/notes" >>"$T_DIR/notes" 2>/dev/null
	[ "$(cat "$LONG/$1/done")" = 0 ] || fail "$(cat "$LONG/$1/reason" 2>/dev/null || echo "exit $(cat "$LONG/$1/done")")"
}

# REKEY_AFTER_TIME (120 s): the initiator starts a new handshake when it
# sends with a keypair that old; the traffic, two pings a second, loses
# nothing meanwhile.
long_rekey() {
	pair wgrs-r1 wgrs-r2 10011 10012
	expect_ok ip netns exec wgrs-r1 ping -c 1 -W 10 192.168.241.2
	ping_through_rekey r1_handshake ip netns exec wgrs-r1 ping -i 0.5 -W 10 192.168.241.2
	[ "$REKEY_LATER" -ge $((REKEY_FIRST + 120)) ] && [ "$REKEY_LATER" -le $((REKEY_FIRST + 150)) ] ||
		fail "the second handshake came $((REKEY_LATER - REKEY_FIRST)) s after the first, want 120-150 s"
}
r1_handshake() { ip netns exec wgrs-r1 wg show wga latest-handshakes | cut -f2; }

# No answer: the initiation is sent again every REKEY_TIMEOUT (5 s, plus
# up to 1/3 s of jitter) until REKEY_ATTEMPT_TIME (90 s) is up. Upstream
# retries while its attempt count is at most MAX_TIMER_HANDSHAKES (18), so
# 1 + 19 initiations go out, and then it gives up with "after 20 attempts".
long_give_up() {
	local out
	pair wgrs-g1 wgrs-g2 10021 10022
	ip -n wgrs-g2 link set wgb down || fail "wgb down"
	capture 140 10021 10022
	run ip netns exec wgrs-g1 ping -c 1 -W 1 192.168.241.2
	wait "$CAPTURE"
	out=$(grep -c '^10021 10022 1 ' "$T_DIR/capture")
	note "initiations sent: $out"
	captured_in_full
	expect_eq "$out" 20 "initiations sent before giving up"
	run dmesg
	expect_match "$T_OUT" 'wga: Handshake for peer [0-9]+ \(127\.0\.0\.1:10022\) did not complete after 20 attempts, giving up' "dmesg"
}

long_start rekey-after-time long_rekey
long_start handshake-gives-up long_give_up

# ---- tests ------------------------------------------------------------------

# handshake_from SIDE: SIDE pings first, so SIDE initiates; the capture shows
# one initiation (type 1) from SIDE's port and a response (type 2) from the
# other, and no initiation from the other.
handshake_from() {
	local me=$1 sport dport out
	pair
	if [ "$me" = a ]; then sport=$PORT_A dport=$PORT_B; else sport=$PORT_B dport=$PORT_A; fi
	capture 60
	if [ "$me" = a ]; then
		expect_ok na ping -c 1 -W 10 192.168.241.2
	else
		expect_ok nb ping -c 1 -W 10 192.168.241.1
	fi
	stop_capture
	out=$CAPTURED
	printf '%s\n' "$out"
	expect_match "$out" "^$sport $dport 1 " "initiation from wg$me"
	expect_match "$out" "^$dport $sport 2 " "response to wg$me"
	expect_no_match "$out" "^$dport $sport 1 " "initiation from the other side"
	expect_match "$out" "^$sport $dport 4 " "data from wg$me"
	expect_match "$out" "^$dport $sport 4 " "data to wg$me"
	expect_ok na wg show wga latest-handshakes
	expect_no_match "$T_OUT" $'\t0$' "wga latest-handshakes"
	expect_ok nb wg show wgb latest-handshakes
	expect_no_match "$T_OUT" $'\t0$' "wgb latest-handshakes"
}
t_handshake_a() { handshake_from a; }
t_handshake_b() { handshake_from b; }

# Packets sent before a session exists are staged (up to 128 per peer) and
# all sent once the handshake completes: 50 datagrams in one burst, before
# the first handshake, all arrive, in order.
t_staged_flush() {
	local got
	pair
	nb python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.168.241.2", 5000))
s.settimeout(20)
seen = []
try:
    while len(seen) < 50:
        seen.append(int(s.recv(100)))
except socket.timeout:
    pass
print(" ".join(map(str, seen)))
' >"$T_DIR/received" &
	bg_pid $!
	sleep 1
	expect_ok na python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(50):
    s.sendto(b"%d" % i, ("192.168.241.2", 5000))
'
	wait_for 30 grep -q . "$T_DIR/received" || fail "the receiver did not finish"
	got=$(cat "$T_DIR/received")
	expect_eq "$got" "$(seq -s ' ' 0 49)" "datagrams received at wgb"
}

# No peer for the destination: ICMP host unreachable (v4) or address
# unreachable (v6) from icmp_ndo_send, and the debug line. A peer without
# an endpoint: the same, with its own line.
t_icmp_unreachable() {
	pair
	na wg set wga peer "$(pub c)" allowed-ips 10.9.1.0/24,fd09:1::/64 || fail "wg set"
	na ip route add 10.9.0.0/16 dev wga || fail "ip route add"
	na ip -6 route add fd09::/16 dev wga || fail "ip -6 route add"
	run na ping -c 1 -W 3 10.9.0.1
	expect_match "$T_OUT" 'Destination Host Unreachable' "ping to a destination no peer has"
	run na ping -c 1 -W 3 fd09::1
	expect_match "$T_OUT" 'Destination unreachable: Address unreachable' "ping -6 to a destination no peer has"
	run na ping -c 1 -W 3 10.9.1.1
	expect_match "$T_OUT" 'Destination Host Unreachable' "ping to a peer without an endpoint"
	run na ping -c 1 -W 3 fd09:1::1
	expect_match "$T_OUT" 'Destination unreachable: Address unreachable' "ping -6 to a peer without an endpoint"
	run dmesg
	expect_match "$T_OUT" 'wga: No peer has allowed IPs matching 10\.9\.0\.1$' "dmesg"
	# %pI6: the full form.
	expect_match "$T_OUT" 'wga: No peer has allowed IPs matching fd09:0000:0000:0000:0000:0000:0000:0001$' "dmesg"
	expect_match "$T_OUT" 'wga: No valid endpoint has been configured or discovered for peer [0-9]+$' "dmesg"
}

# The outer IP header: handshake messages carry TOS 0x88 (AF41); data
# carries the inner packet's ECN bits only, and CE inside becomes ECT(0)
# outside (ip_tunnel_ecn_encap, INET_ECN_encapsulate).
t_outer_dscp_ecn() {
	local out tos want bad
	pair
	capture 60
	expect_ok na ping -c 1 -W 10 192.168.241.2
	stop_capture
	out=$CAPTURED
	printf '%s\n' "$out"
	expect_match "$out" "^$PORT_A $PORT_B 1 0x88 " "initiation TOS"
	expect_match "$out" "^$PORT_B $PORT_A 2 0x88 " "response TOS"
	for tos in 0x00:0x00 0x02:0x02 0x01:0x01 0xb8:0x00 0xba:0x02 0x03:0x02 0xbb:0x02; do
		want=${tos#*:}
		tos=${tos%:*}
		capture 30
		expect_ok na ping -c 1 -W 10 -Q "$tos" 192.168.241.2
		expect_ok na ping -6 -c 1 -W 10 -Q "$tos" fd00::2
		stop_capture
		out=$CAPTURED
		printf 'inner %s:\n%s\n' "$tos" "$out"
		# Keepalives (no inner packet, 32 bytes) carry no inner ECN.
		bad=$(printf '%s\n' "$out" | awk -v w="$want" -v a=$PORT_A -v b=$PORT_B \
			'$1 == a && $2 == b && $3 == 4 && $5 > 32 && $4 != w')
		expect_match "$out" "^$PORT_A $PORT_B 4 $want " "outer TOS of data with inner TOS $tos"
		[ -z "$bad" ] || fail "outer TOS of data with inner TOS $tos, want $want: $bad"
	done
}

# Bringing either side down and up while a flood runs: no splat (vm-run
# watches the console), and the tunnel works afterwards.
t_down_up_under_traffic() {
	local i
	pair
	expect_ok na ping -c 1 -W 10 192.168.241.2
	# Until the test ends (the cleanup kills them): a side whose peer lost
	# its keys learns it only from that peer's next handshake, or after
	# 15 s without an answer (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT), so the
	# checks below need both sides still sending. Not through na and nb:
	# ip netns exec execs ping, so $! is ping itself, which kill reaches.
	ip netns exec $A ping -f -q 192.168.241.2 >/dev/null 2>&1 &
	bg_pid $!
	ip netns exec $B ping -f -q 192.168.241.1 >/dev/null 2>&1 &
	bg_pid $!
	for i in $(seq 1 10); do
		na ip link set wga down && na ip link set wga up || fail "wga down/up, round $i"
		sleep 0.5
		nb ip link set wgb down && nb ip link set wgb up || fail "wgb down/up, round $i"
		sleep 0.5
	done
	# (Down removes IPv6 addresses: IPv4 it is.)
	expect_ok na ping -c 2 -W 10 192.168.241.2
	expect_ok nb ping -c 2 -W 10 192.168.241.1
}

# veth_tunnel OUTER MTU [FEATURE=on|off...]: wga in $A and wgb in $B, each
# with its socket in its own namespace, meeting over a veth pair of MTU MTU
# (vetha, vethb) on OUTER addresses (4: 10.10.0.0/24, 6: fd10::/64), with
# the features set on both veths; the tunnel keeps its default MTU.
veth_tunnel() {
	local outer=$1 mtu=$2 side ns veth wg me them addr peer_addr port peer_port inner peer_inner
	shift 2
	ip netns add $A && ip netns add $B || fail "ip netns add"
	ip link add vetha mtu "$mtu" netns $A type veth peer name vethb mtu "$mtu" netns $B || fail "veth"
	for side in "$A vetha wga a b 1 2 $PORT_A $PORT_B 192.168.241.1 192.168.241.2" \
		"$B vethb wgb b a 2 1 $PORT_B $PORT_A 192.168.241.2 192.168.241.1"; do
		read -r ns veth wg me them addr peer_addr port peer_port inner peer_inner <<<"$side"
		if [ "$outer" = 4 ]; then
			addr=10.10.0.$addr/24 peer_addr=10.10.0.$peer_addr
		else
			addr=fd10::$addr/64 peer_addr=[fd10::$peer_addr]
		fi
		ip -n "$ns" link set lo up && ip -n "$ns" addr add "$addr" dev "$veth" nodad &&
			ip -n "$ns" link set "$veth" up || fail "$veth"
		[ $# = 0 ] || ip netns exec "$ns" python3 tests/ethtool-features.py "$veth" "$@" ||
			fail "features of $veth: $*"
		ip -n "$ns" link add "$wg" type wireguard &&
			ip netns exec "$ns" wg set "$wg" private-key "$KEYS/$me" listen-port "$port" \
				peer "$(pub "$them")" allowed-ips "$peer_inner/32" endpoint "$peer_addr:$peer_port" &&
			ip -n "$ns" addr add "$inner/24" dev "$wg" && ip -n "$ns" link set "$wg" up ||
			fail "$wg"
	done
	expect_ok na ping -c 1 -W 10 192.168.241.2
}

# iperf3_server: an iperf3 server in $B for one client, listening.
iperf3_server() {
	nb iperf3 -s -1 -B 192.168.241.2 >/dev/null 2>&1 &
	bg_pid $!
	wait_for 20 sh -c "ip netns exec $B ss -Htln 'sport = :5201' | grep -q ." || fail "no iperf3 server"
}

# bulk_both_ways: 5 s of TCP each way at once through the tunnel, which
# must arrive; iperf3 checks nothing of the data, so a patterned ping of
# 1300 bytes and one of the tunnel's MTU follow.
bulk_both_ways() {
	iperf3_server
	expect_ok na iperf3 -t 5 --bidir -c 192.168.241.2
	expect_match "$T_OUT" 'receiver' "iperf3's summary"
	! grep 'receiver' <<<"$T_OUT" | grep -q ' 0\.00 bits/sec' || fail "iperf3 moved nothing one way"
	note "$(grep -m2 'receiver' <<<"$T_OUT" | awk '{ print $7, $8 }' | paste -sd' ')"
	expect_ok na ping -c 20 -i 0.05 -W 10 -p a5 -s 1300 192.168.241.2
	expect_ok na ping -c 1 -W 10 -M do -s 1392 192.168.241.2
}

# Datagrams merged by GRO before they reach the socket: with GRO and
# rx-gro-list on a veth (and no TSO on its peer, else veth skips GRO), UDP
# GRO chains our outer datagrams into one fraglist packet (the socket takes
# no GRO of its own), which the UDP layer parts again and hands us one
# datagram at a time, each still linked to the next.
t_gro_list_receive() {
	veth_tunnel 4 1500 rx-gro=on rx-gro-list=on tx-tcp-segmentation=off \
		tx-tcp-ecn-segmentation=off tx-tcp-mangleid-segmentation=off tx-tcp6-segmentation=off
	bulk_both_ways
}

# An outer path narrower than the tunnel's packets (a veth of MTU 1280 under
# a tunnel of 1420): the stack fragments every full-sized outer datagram.
t_outer_fragments_v4() {
	veth_tunnel 4 1280
	bulk_both_ways
}
t_outer_fragments_v6() {
	veth_tunnel 6 1280
	bulk_both_ways
}

# flow_order: tests/flow-order.py from $A to $B through the tunnel (a burst
# of bulk datagrams, then small ones of that flow and of four others), while
# a TCP stream keeps the tunnel's queue long, so that the burst waits in it
# (alone, the crypto workers can keep up with the sender: fast-lane failed
# two .ci/runs so); its verdicts in $T_OUT. Over a veth pair: on lo, the
# stream would swamp the captures of the tests running in the background.
flow_order() {
	veth_tunnel 4 1500
	iperf3_server
	ip netns exec $A iperf3 -c 192.168.241.2 -t 120 >/dev/null 2>&1 &
	bg_pid $!
	sleep 2
	nb python3 tests/flow-order.py recv 7000 5 >"$T_DIR/order" 2>&1 &
	bg_pid $!
	wait_for 60 grep -q listening "$T_DIR/order" || fail "the receiver did not start"
	expect_ok na python3 tests/flow-order.py send 192.168.241.2 7000
	wait_for 60 grep -q '^overtook' "$T_DIR/order" || fail "the receiver did not finish"
	T_OUT=$(tail -n 3 "$T_DIR/order")
	note "$(paste -sd';' <<<"$T_OUT")"
}

# No flow is reordered through the tunnel, whatever its packets' sizes and
# whatever else is queued (our fast lane lets small packets of other flows
# overtake, never of their own).
t_flows_keep_order() {
	flow_order
	expect_match "$T_OUT" '^order ok$' "the order of each flow"
	# The datagrams share the tunnel's queues with the TCP stream.
	expect_match "$T_OUT" '^lost ([0-9]|[1-2][0-9]) ' "datagrams lost (at most 29 of 325)"
}

# Beyond the C driver: a small packet of a flow with nothing queued
# overtakes a burst of another flow that fills the tunnel (the fast lane),
# in order with its own flow (above).
t_fast_lane() {
	flow_order
	expect_match "$T_OUT" '^order ok$' "the order of each flow"
	expect_match "$T_OUT" '^overtook [1-9]' "small datagrams of other flows ahead of the burst"
}

# new_kernel_lines SINCE: the kernel log after its first SINCE lines.
new_kernel_lines() { dmesg | tail -n +$(($1 + 1)); }

# Suspend, as far as pm_test's "freezer" level goes: the PM notifiers run
# and user space freezes, then all resumes. Before the system sleeps every
# session and handshake is forgotten (upstream's wg_pm_notification), and
# the next packet makes a new handshake.
t_suspend_forgets_keys() {
	local lines new
	pair
	expect_ok na ping -c 1 -W 10 192.168.241.2
	[ -w /sys/power/pm_test ] || fail "no /sys/power/pm_test (CONFIG_PM_DEBUG)"
	lines=$(dmesg | wc -l)
	echo 1 >/sys/module/suspend/parameters/pm_test_delay && echo freezer >/sys/power/pm_test ||
		fail "pm_test setup"
	run sh -c 'echo freeze >/sys/power/state'
	echo none >/sys/power/pm_test
	[ "$T_RC" = 0 ] || fail "suspend (pm_test freezer) failed: $T_OUT"
	new=$(new_kernel_lines "$lines")
	printf '%s\n' "$new"
	expect_match "$new" 'wga: Keypair [0-9]+ destroyed for peer [0-9]+$' "wga's session forgotten"
	expect_match "$new" 'wgb: Keypair [0-9]+ destroyed for peer [0-9]+$' "wgb's session forgotten"
	expect_ok na ping -c 1 -W 10 192.168.241.2
	new=$(new_kernel_lines "$lines")
	expect_match "$new" 'wga: Sending handshake initiation to peer [0-9]+ ' "a new handshake after resuming"
}

# A VM fork (played by tests/kmod/vmfork_trigger): the current
# sessions may no longer send (upstream's wg_vm_notification), so the next
# packet makes a new handshake, where without the fork it would not.
t_vm_fork_rehandshakes() {
	local lines new
	pair
	expect_ok na ping -c 1 -W 10 192.168.241.2
	lines=$(dmesg | wc -l)
	expect_ok na ping -c 1 -W 10 192.168.241.2
	expect_no_match "$(new_kernel_lines "$lines")" 'Sending handshake initiation' "the log of a second ping"
	lines=$(dmesg | wc -l)
	expect_ok vm_fork
	expect_ok na ping -c 1 -W 10 192.168.241.2
	new=$(new_kernel_lines "$lines")
	printf '%s\n' "$new"
	expect_match "$new" 'wga: Sending handshake initiation to peer [0-9]+ ' "a new handshake after the fork"
	expect_match "$new" 'wga: Keypair [0-9]+ created for peer [0-9]+$' "a new session after the fork"
}

run_test handshake-a-initiates   t_handshake_a
run_test handshake-b-initiates   t_handshake_b
run_test staged-queue-flushed    t_staged_flush
run_test icmp-unreachable        t_icmp_unreachable
run_test outer-dscp-ecn          t_outer_dscp_ecn
run_test down-up-under-traffic   t_down_up_under_traffic
run_test gro-list-receive        t_gro_list_receive
run_test outer-fragments-v4      t_outer_fragments_v4
run_test outer-fragments-v6      t_outer_fragments_v6
run_test flows-keep-order        t_flows_keep_order
# Only when named (tools/vm-run tests/dataplane.sh fast-lane): it needs
# the bursts to outrun the crypto workers, which the debug kernel's stack
# does not always do (a .ci/run saw "overtook 0"). make bench shows the lane.
if [ "$IMPL" != rs ]; then
	echo "skip fast-lane: the C driver has none"
elif [ ${#T_ONLY[@]} -gt 0 ]; then
	run_test fast-lane           t_fast_lane
else
	echo "skip fast-lane: only when named"
fi
run_test handshake-gives-up      long_result handshake-gives-up 300
run_test rekey-after-time        long_result rekey-after-time 300
# These touch every device in the kernel: after the long waits.
run_test suspend-forgets-keys    t_suspend_forgets_keys
run_test vm-fork-rehandshakes    t_vm_fork_rehandshakes
for ns in wgrs-r1 wgrs-r2 wgrs-g1 wgrs-g2; do ip netns del "$ns" 2>/dev/null; done
echo "$message_cost" >/proc/sys/net/core/message_cost
summary

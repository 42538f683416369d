#!/bin/bash
# Lifecycle under traffic (issue 7, section 5), run as root in the test VM
# with IMPL=rs|c (both must pass):
#   tools/vm-run tests/lifecycle.sh [TEST-GLOB...]
#
# Every test sets up the same scene (begin), does one thing to it while
# traffic flows and handshakes are in flight, and checks the aftermath
# (finish). The scene:
#   - wga in wgrs-a and wgb in wgrs-b (tests/lib.sh pair), with iperf3
#     --bidir between them through the tunnel (client in wgrs-a), and
#     20 pings a second from wgrs-b;
#   - handshakes at wga all the time: wgc, in wgrs-c, has wga as its peer and
#     is given that peer afresh every 0.2 s or so, with a persistent
#     keepalive, so that it initiates a handshake each time, which wga
#     answers; and wga has a peer whose endpoint never answers, to which it
#     sends an initiation every 5 s;
#   - the UDP sockets live in the initial namespace, or in wgrs-s for
#     netns-del-sockets (the devices are created there and moved).
# finish checks that:
#   - the kernel logged no splat while the test ran (the patterns that
#     tools/vm-run looks for, and "waiting for DEV to become free", a
#     leaked device reference);
#   - with the namespaces deleted, rmmod succeeds within 60 s: a leaked
#     reference would hold the module or a device. So every test starts on
#     a freshly loaded module.
# Last, the kmemleak test scans for leaks if the kernel has kmemleak (the
# kasan profile); on a kernel without it, it says so and is not counted.
set -u
# Progress lines (fd 3): this script's output, which a test's own output
# (kept for its verdict) is not.
exec 3>&1
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh

test_setup "$@"

A=wgrs-a B=wgrs-b C=wgrs-c S=wgrs-s M=wgrs-m
PORT_A=10001 PORT_B=10002 PORT_C=10003 PORT_DEAD=10009
KEYS=$(mktemp -d /tmp/wgrs-keys.XXXXXX)
for k in a a2 b c dead; do wg genkey >"$KEYS/$k"; done
PUB_A=$(pub a) PUB_B=$(pub b) PUB_C=$(pub c) PUB_DEAD=$(pub dead)

na() { ip netns exec $A "$@"; }
nb() { ip netns exec $B "$@"; }
nc() { ip netns exec $C "$@"; }

# What tools/vm-run calls a splat, and a device reference never put.
SPLAT='Oops|BUG:|WARNING:|Kernel panic|general protection|KASAN|UBSAN|INFO: (possible|suspicious|task|trying)|circular locking|ODEBUG|soft lockup|hard LOCKUP|rcu: INFO|Call Trace:|list_(add|del) corruption|unreferenced object|waiting for .* to become free'

KMEMLEAK=/sys/kernel/debug/kmemleak
[ -e /sys/kernel/debug/kmemleak ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
# Boot-time suspects are not ours to judge.
[ -w $KMEMLEAK ] && echo clear >$KMEMLEAK

loaded() { [ -d "/sys/module/$WGRS_MODULE" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
port_free() { ! ss -Hnul "sport = :$1" | grep -q .; }
# TCP orphans (closed sockets still sending), counted over all namespaces.
tcp_orphans() { awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "orphan") print $(i + 1) }' /proc/net/sockstat; }

# How long a deleted namespace may take to let go of its devices. A leaked
# reference holds a device for good, and logs "waiting for DEV to become
# free" after 10 s: the bound is there to catch that, and the time is noted
# to catch slowness. (A namespace outlives its deletion while a socket in
# it does: see the orphans in begin.)
case ${WGRS_KERNEL_PROFILE:-debug} in
kasan) GONE_WAIT=300 ;; # its suites run 3-5 times slower
*) GONE_WAIT=60 ;;
esac

# released_by_netns_del NS PORT: NS was just deleted; waits for PORT (its
# device's) to be unbound, and notes how long that took.
# Also notes the TCP orphans at the deletion and when none was left: a
# closed socket still sending keeps its namespace, hence the device, alive.
released_by_netns_del() {
	local orphans
	orphans=$(tcp_orphans)
	RELEASE_START=$SECONDS NO_ORPHANS=
	wait_for $GONE_WAIT port_free_noting_orphans "$2" ||
		fail "port $2 still bound $GONE_WAIT s after $1 was deleted (TCP orphans: $orphans then, $(tcp_orphans) now)"
	note "port $2 unbound $((SECONDS - RELEASE_START)) s after $1 was deleted; TCP orphans: $orphans then, none left after ${NO_ORPHANS:-$((SECONDS - RELEASE_START))} s"
}
# port_free_noting_orphans PORT: port_free, for wait_for (which runs it in
# this shell), noting in NO_ORPHANS when the orphans were first all gone.
port_free_noting_orphans() {
	[ -n "$NO_ORPHANS" ] || [ "$(tcp_orphans)" != 0 ] || NO_ORPHANS=$((SECONDS - RELEASE_START))
	port_free "$1"
}

# ---- the scene -------------------------------------------------------------

# begin [NS_SOCK]: the scene, with the sockets in NS_SOCK (created here) or
# in the initial namespace; returns once iperf3 has moved 1 MB to wgb and
# wga has completed a handshake with wgc.
begin() {
	local sock=${1:-} in=()
	stdbuf -oL dmesg -W >"$T_DIR/kmsg" 2>&1 &
	echo $! >"$T_DIR/kmsg.pid"
	if [ -n "$sock" ]; then
		ip netns add "$sock" || fail "ip netns add $sock"
		in=(ip netns exec "$sock")
	fi
	pair $A $B $PORT_A $PORT_B "$sock"
	# A TCP socket closed with data unacknowledged (iperf3's, once its peer
	# is gone) lives on as an orphan, retransmitting 8 times (over 100 s),
	# and keeps its namespace, hence the device, alive meanwhile: once,
	# ours held wgb's port 128 s after wgrs-b's deletion, with one orphan
	# left all along. One retransmission keeps the test on the driver.
	ip netns exec $A sysctl -qw net.ipv4.tcp_orphan_retries=1 &&
		ip netns exec $B sysctl -qw net.ipv4.tcp_orphan_retries=1 || fail "tcp_orphan_retries"
	ip netns add $C || fail "ip netns add $C"
	"${in[@]}" ip link add $C-wg type wireguard && "${in[@]}" ip link set $C-wg netns $C name wgc ||
		fail "ip link add wgc"
	nc wg set wgc private-key "$KEYS/c" listen-port $PORT_C && ip -n $C link set wgc up ||
		fail "wgc setup"
	na wg set wga peer "$PUB_C" allowed-ips 192.168.242.3/32 endpoint 127.0.0.1:$PORT_C \
		peer "$PUB_DEAD" allowed-ips 10.77.0.0/16 endpoint 127.0.0.1:$PORT_DEAD persistent-keepalive 1 ||
		fail "wga's peers c and dead"

	nb iperf3 -s -p 5201 >"$T_DIR/iperf-s" 2>&1 &
	bg_pid $!
	wait_for 60 iperf_listening || fail "iperf3 -s did not listen in 60 s"
	na iperf3 -c 192.168.241.2 -p 5201 -t 900 --bidir -i 0 >"$T_DIR/iperf-c" 2>&1 &
	bg_pid $!
	nb ping -q -i 0.05 192.168.241.1 >/dev/null 2>&1 &
	bg_pid $!
	churn &
	bg_pid $!
	wait_for 120 flowing || fail "iperf3 moved less than 1 MB to wgb in 120 s: $(nb wg show wgb transfer)"
	wait_for 120 c_handshaked || fail "no handshake between wgc and wga in 120 s"
}
iperf_listening() { nb ss -Hltn 'sport = :5201' | grep -q .; }
flowing() { [ "$(nb wg show wgb transfer | awk -v k="$PUB_A" '$1 == k { print $2 }')" -gt 1000000 ]; }
c_handshaked() { na wg show wga latest-handshakes | awk -v k="$PUB_C" '$1 == k && $2 > 0 { f = 1 } END { exit !f }'; }

# churn: gives wgc its peer wga afresh, again and again; each new peer
# sends a keepalive, hence a handshake initiation, at once.
churn() {
	exec >/dev/null 2>&1
	while :; do
		nc wg set wgc peer "$PUB_A" remove
		nc wg set wgc peer "$PUB_A" endpoint 127.0.0.1:$PORT_A allowed-ips 192.168.242.1/32 \
			persistent-keepalive 1
		sleep 0.2
	done
}

# netns_del_now NS: deletes NS and ends the processes in it (iperf3, ping),
# which would keep it alive.
netns_del_now() {
	local pids
	pids=$(ip netns pids "$1")
	ip netns del "$1" || fail "ip netns del $1"
	[ -z "$pids" ] || kill $pids
}

# tunnel_works: a ping from wga to wgb is answered (within 60 s).
tunnel_works() {
	wait_for 60 na ping -c 1 -W 2 192.168.241.2 || fail "no ping answered through the tunnel in 60 s"
}

teardown() {
	local ns
	kill_bg_pids
	for ns in $A $B $C $M $S; do ip netns del "$ns" 2>/dev/null; done
}

# unload_within SECONDS: rmmod, again while the module is in use, until it
# is gone; fails if it is still there (or rmmod still running) after SECONDS.
unload_within() {
	local deadline=$((SECONDS + $1)) tries=0 pid
	while loaded; do
		[ $SECONDS -lt $deadline ] || fail "$WGRS_MODULE still loaded $1 s after its last device went ($tries rmmod tries: $(cat "$T_DIR/rmmod"))"
		tries=$((tries + 1))
		rmmod "$WGRS_MODULE" >"$T_DIR/rmmod" 2>&1 &
		pid=$!
		wait_for $((deadline - SECONDS)) gone $pid ||
			fail "rmmod $WGRS_MODULE still running $1 s after the last device went"
		wait $pid || sleep 0.2
	done
	[ $tries -le 1 ] || note "rmmod: $tries tries"
	UNLOAD_TRIES=$tries
}

# finish: tears the scene down, unloads the module and checks the log.
finish() {
	local log
	teardown
	unload_within 60
	sleep 1
	kill "$(cat "$T_DIR/kmsg.pid")"
	log=$(grep -E -- "$SPLAT" "$T_DIR/kmsg")
	[ -z "$log" ] || fail "the kernel reported: $(_short "$log")"
	rm -f "$T_DIR/kmsg.pid"
	[ -z "${LAST_TRANSFER:-}" ] || note "wgb's bytes received/sent from/to wga: $LAST_TRANSFER"
}

transfer() { LAST_TRANSFER=$(nb wg show wgb transfer 2>/dev/null | cut -f2,3 | tr '\t' /); }

test_cleanup() {
	teardown
	[ -f "$T_DIR/kmsg.pid" ] && kill "$(cat "$T_DIR/kmsg.pid")" 2>/dev/null
	rm -f "$T_DIR/kmsg.pid"
	# Leave no module for the next test, as finish would have.
	if loaded; then
		timeout 60 rmmod "$WGRS_MODULE" || echo "cleanup: rmmod failed"
	fi
}

# ---- tests -----------------------------------------------------------------

t_link_del() {
	begin
	expect_ok na ip link del wga
	transfer
	expect_ok nb ip link del wgb
	expect_ok nc ip link del wgc
	finish
}

# The namespace holding the device goes (wgrs-a, while wgrs-b still
# sends): the device with it, and its port is free again in the sockets'
# namespace. Then wgrs-b.
t_netns_del_device() {
	begin
	transfer
	netns_del_now $A
	released_by_netns_del $A $PORT_A
	netns_del_now $B
	released_by_netns_del $B $PORT_B
	finish
}

# The namespace holding the sockets goes: the devices stay, without
# sockets, and may no longer be configured (CAP_NET_ADMIN over the
# creating namespace, which is gone: EPERM, as tests/check.sh
# creating-netns-gone has it); they are deleted afterwards.
eperm_on_fwmark() { na wg set wga fwmark 0x33 2>&1 | grep -q 'Operation not permitted'; }
t_netns_del_sockets() {
	begin $S
	expect_ok ip netns del $S
	wait_for 60 eperm_on_fwmark || fail "set-device on wga did not fail with EPERM within 60 s of deleting wgrs-s"
	expect_ok na wg show wga
	expect_ok na ip link show wga
	expect_ok nb wg show wgb
	transfer
	expect_ok na ip link del wga
	expect_ok nb ip link del wgb
	finish
}

# wga and wgb go to another namespace and back, five times each; the
# tunnel works afterwards.
t_netns_move() {
	local i
	begin
	expect_ok ip netns add $M
	for i in 1 2 3 4 5; do
		expect_ok na ip link set wga netns $M
		expect_ok ip -n $M link set wga up
		expect_ok ip -n $M link set wga netns $A
		expect_ok na ip addr add 192.168.241.1/24 dev wga
		expect_ok na ip link set wga up
		expect_ok nb ip link set wgb netns $M
		expect_ok ip -n $M link set wgb netns $B
		expect_ok nb ip addr add 192.168.241.2/24 dev wgb
		expect_ok nb ip link set wgb up
	done
	tunnel_works
	transfer
	finish
}

# 100 times down and up (wgb too, every tenth time); the tunnel works
# afterwards.
t_down_up_100() {
	local i t0=$SECONDS
	begin
	for i in $(seq 1 100); do
		na ip link set wga down && na ip link set wga up || fail "wga down/up, round $i"
		if [ $((i % 10)) = 0 ]; then
			nb ip link set wgb down && nb ip link set wgb up || fail "wgb down/up, round $i"
		fi
		# Progress: on the kasan profile this takes some 20 minutes.
		[ $((i % 25)) = 0 ] && echo "     down-up-100: $i rounds in $((SECONDS - t0)) s" >&3
	done
	tunnel_works
	transfer
	finish
}

# wga's peers c (whose initiations arrive all the time) and dead (which
# wga keeps initiating to) are removed and added again, 20 times, then the
# peer the traffic goes to; the tunnel works once it is back.
t_peer_remove() {
	local i
	begin
	for i in $(seq 1 20); do
		expect_ok na wg set wga peer "$PUB_C" remove peer "$PUB_DEAD" remove
		expect_ok na wg set wga peer "$PUB_C" allowed-ips 192.168.242.3/32 endpoint 127.0.0.1:$PORT_C \
			peer "$PUB_DEAD" allowed-ips 10.77.0.0/16 endpoint 127.0.0.1:$PORT_DEAD persistent-keepalive 1
		sleep 0.2
	done
	expect_ok na wg set wga peer "$PUB_B" remove
	sleep 1
	expect_ok na wg set wga peer "$PUB_B" allowed-ips 192.168.241.2/32,fd00::2/128 endpoint 127.0.0.1:$PORT_B
	tunnel_works
	transfer
	finish
}

# wga's private key changes 20 times (to another key, to none, back); the
# tunnel works once it is back.
t_private_key() {
	local i
	begin
	for i in $(seq 1 10); do
		expect_ok na wg set wga private-key "$KEYS/a2"
		sleep 0.2
		[ $((i % 3)) = 0 ] && expect_ok na wg set wga private-key /dev/null
		expect_ok na wg set wga private-key "$KEYS/a"
		sleep 0.2
	done
	tunnel_works
	transfer
	finish
}

# rmmod right after the last device is deleted (ip link del), traffic and
# handshakes still going.
t_rmmod_after_link_del() {
	begin
	transfer
	expect_ok nc ip link del wgc
	expect_ok nb ip link del wgb
	expect_ok na ip link del wga
	unload_within 60
	[ "$UNLOAD_TRIES" = 1 ] || fail "rmmod right after the last ip link del failed; it took $UNLOAD_TRIES tries"
	finish
}

# rmmod right after the devices' namespaces are deleted: the namespaces go
# in the background (cleanup_net), so the module's exit races them.
t_rmmod_after_netns_del() {
	begin
	transfer
	netns_del_now $C
	netns_del_now $B
	netns_del_now $A
	unload_within 60
	finish
}

t_kmemleak() {
	local out
	# Suspects must be at least 5 s old (kmemleak's minimum age); the second
	# scan drops transient ones.
	sleep 6
	echo scan >$KMEMLEAK && sleep 1 && echo scan >$KMEMLEAK || fail "cannot write $KMEMLEAK"
	out=$(cat $KMEMLEAK)
	printf '%s\n' "$out" | head -n 60
	[ -z "$out" ] || fail "kmemleak: $(printf '%s\n' "$out" | grep -c 'unreferenced object') suspects: $(_short "$out")"
}

run_test link-del                  t_link_del
run_test netns-del-device          t_netns_del_device
run_test netns-del-sockets         t_netns_del_sockets
run_test netns-move                t_netns_move
run_test down-up-100               t_down_up_100
run_test peer-remove-handshaking   t_peer_remove
run_test private-key-change        t_private_key
run_test rmmod-after-link-del      t_rmmod_after_link_del
run_test rmmod-after-netns-del     t_rmmod_after_netns_del
if [ -w $KMEMLEAK ]; then
	run_test kmemleak t_kmemleak
elif selected kmemleak; then
	echo "skip kmemleak (not counted): this kernel has no $KMEMLEAK (WGRS_KERNEL_PROFILE=kasan has)"
fi
summary

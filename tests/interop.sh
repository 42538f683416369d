#!/bin/bash
# Interoperation between two drivers, run in both guests of tools/interop:
#   tests/interop.sh ROLE IMPL_A IMPL_B       (ROLE: a or b)
# Each guest has eth0 on one shared network (10.77.0.0/24, fd77::/64) and a
# wg0 (192.168.77.0/24, fd77:77::/64) whose peer is the other guest. Both
# guests run the same tests in the same order and meet at points named
# after them (tests/interop-sync.py), so a test that fails on one side
# also ends on the other.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh

ROLE=$1 IMPL_A=$2 IMPL_B=$3
WGRS_MODULE=${WGRS_MODULE:-wireguard_rs}
# Test keys, not secrets.
KEY_A=gFbE2xtuDh+Mgdf6lhAhce5l9ONKdw42ks6w374e1HA=
KEY_B=qCd2WR0y9A4IDPZ+vgOSQIsqi4Ezwuv/Afr+QuMAtWY=
if [ "$ROLE" = a ]; then
	ME=1 PEER=2 KEY=$KEY_A PEER_KEY=$KEY_B
else
	ME=2 PEER=1 KEY=$KEY_B PEER_KEY=$KEY_A
fi
# The guests meet over IPv6 on eth0, which stays put when they roam.
OTHER=fd77::$PEER
echo "interop: guest ${ROLE^^} runs $WGRS_MODULE (A: $IMPL_A, B: $IMPL_B)"

# meet NAME [PAYLOAD]: waits for the other guest at NAME; prints its payload.
meet() { python3 tests/interop-sync.py "$ROLE" "$OTHER" "$@"; }
on() { [ "$ROLE" = "$1" ]; }
transfer() { wg show wg0 transfer | cut -f2,3 | tr '\t' ' '; }
# The wire (QEMU's UDP sockets on the host) can lose datagrams under load.
# iptables counts the tunnel's datagrams where they leave and enter eth0,
# so that what the wire lost is known to the byte.
count_wire() {
	local t
	for t in iptables ip6tables; do
		$t -w -A INPUT -i eth0 -p udp --dport 51820 && $t -w -A OUTPUT -o eth0 -p udp --sport 51820 || return 1
	done
}
# wire_bytes CHAIN: the UDP payload bytes (WireGuard messages) counted in
# CHAIN, both families: the IP packets' bytes less their IP and UDP headers.
wire_bytes() {
	local v4 v6
	v4=$(iptables -w -L "$1" -v -x -n | awk '/udp.*51820/ { print $2 - 28 * $1; exit }')
	v6=$(ip6tables -w -L "$1" -v -x -n | awk '/udp.*51820/ { print $2 - 48 * $1; exit }')
	echo $((v4 + v6))
}

ip link set lo up
ip link set eth0 up && ip addr add 10.77.0.$ME/24 dev eth0 && ip addr add fd77::$ME/64 dev eth0 nodad ||
	{ echo "interop: FAIL: no eth0"; exit 1; }
count_wire || { echo "interop: FAIL: iptables counters on eth0"; exit 1; }
modprobe "$WGRS_MODULE" || { echo "interop: FAIL: modprobe $WGRS_MODULE"; exit 1; }
ip link add wg0 type wireguard &&
	wg set wg0 private-key <(echo "$KEY") listen-port 51820 \
		peer "$(echo "$PEER_KEY" | wg pubkey)" allowed-ips 192.168.77.$PEER/32,fd77:77::$PEER/128 &&
	ip addr add 192.168.77.$ME/24 dev wg0 && ip addr add fd77:77::$ME/64 dev wg0 nodad &&
	ip link set wg0 up || { echo "interop: FAIL: wg0 setup"; exit 1; }
meet ready >/dev/null || exit 1

# A sets B's endpoint and pings over an IPv4 outer; B learns A's endpoint.
t_a_initiates_v4() {
	on a && expect_ok wg set wg0 peer "$(echo "$PEER_KEY" | wg pubkey)" endpoint 10.77.0.2:51820
	on a && expect_ok ping -c 3 -W 10 192.168.77.2
	meet a-pinged >/dev/null || fail "no meeting"
	expect_ok wg show wg0 endpoints
	on b && expect_match "$T_OUT" $'\t10\\.77\\.0\\.1:51820$' "B's endpoint for A, learned"
	expect_ok wg show wg0 latest-handshakes
	expect_no_match "$T_OUT" $'\t0$' "latest handshake"
}

# Sessions forgotten on both sides (down and up), then B initiates over an
# IPv6 outer, and A learns B's IPv6 endpoint.
t_b_initiates_v6() {
	expect_ok ip link set wg0 down
	expect_ok ip link set wg0 up
	expect_ok ip addr add fd77:77::$ME/64 dev wg0 nodad
	meet reset >/dev/null || fail "no meeting"
	on b && expect_ok wg set wg0 peer "$(echo "$PEER_KEY" | wg pubkey)" endpoint '[fd77::1]:51820'
	on b && expect_ok ping -6 -c 3 -W 10 fd77:77::1
	meet b-pinged >/dev/null || fail "no meeting"
	expect_ok wg show wg0 endpoints
	on a && expect_match "$T_OUT" $'\t\\[fd77::2\\]:51820$' "A's endpoint for B, learned"
	expect_ok ping -c 2 -W 10 192.168.77.$PEER
}

# iperf_to SERVER ADDRESS: 5 s of TCP from the other guest to SERVER (a or
# b), whose iperf3 server listens on ADDRESS.
iperf_to() {
	if on "$1"; then
		iperf3 -s -1 -B "$2" >/dev/null 2>&1 &
		sleep 1
	fi
	meet "iperf-$1" >/dev/null || fail "no meeting"
	on "$1" || expect_ok iperf3 -Z -t 5 -c "$2"
	meet "iperf-$1-done" >/dev/null || fail "no meeting"
}

# Pings and TCP both ways; then, once quiet, each side's sent bytes are the
# other side's received bytes plus what the wire lost, exactly.
t_traffic_counts() {
	local theirs
	expect_ok ping -c 20 -i 0.2 -W 10 192.168.77.$PEER
	expect_ok ping -6 -c 20 -i 0.2 -W 10 fd77:77::$PEER
	iperf_to a 192.168.77.1
	iperf_to b 192.168.77.2
	# Keepalives go out within 10 s of the last data; then nothing moves.
	sleep 15
	meet quiet >/dev/null || fail "no meeting"
	# rx tx (wg0's counts), then the wire's at eth0: in out.
	local -a m t
	m=($(transfer) $(wire_bytes INPUT) $(wire_bytes OUTPUT))
	theirs=$(meet counters "$(IFS=,; echo "${m[*]}")") || fail "no meeting"
	IFS=, read -ra t <<<"$theirs"
	[ "${#m[@]}" = 4 ] && [ "${#t[@]}" = 4 ] || fail "counters: here '${m[*]}', there '$theirs'"
	# What left the other side's eth0 but never entered this one's, and back.
	local lost_here=$((t[3] - m[2])) lost_there=$((m[3] - t[2]))
	note "bytes received and sent: here ${m[0]} ${m[1]}, there ${t[0]} ${t[1]};" \
		"lost on the wire: $lost_here to here, $lost_there to there"
	[ "$lost_here" -ge 0 ] && [ "$lost_there" -ge 0 ] || fail "more arrived than was sent: here ${m[*]}, there ${t[*]}"
	expect_eq "${m[0]}" "$((t[1] - lost_here))" "bytes received here, sent there less the wire's losses"
	expect_eq "${m[1]}" "$((t[0] + lost_there))" "bytes sent here, received there plus the wire's losses"
}

# B moves to another address; A learns it from B's next packet and answers
# there. Then A moves, and B learns.
t_roaming() {
	roam b 10.77.0.2 10.77.0.3 10.77.0.1
	roam a 10.77.0.1 10.77.0.4 10.77.0.3
}

# roam WHO FROM TO PEER_ADDRESS
roam() {
	local who=$1 from=$2 to=$3 peer=$4
	if on "$who"; then
		expect_ok ip addr del "$from/24" dev eth0
		expect_ok ip addr add "$to/24" dev eth0
		expect_ok wg set wg0 peer "$(echo "$PEER_KEY" | wg pubkey)" endpoint "$peer:51820"
		expect_ok ping -c 2 -W 10 192.168.77.$PEER
	fi
	meet "$who-roamed" >/dev/null || fail "no meeting"
	if ! on "$who"; then
		expect_ok wg show wg0 endpoints
		expect_match "$T_OUT" $'\t'"${to//./\\.}"':51820$' "the endpoint for ${who^^} after it moved"
		expect_ok ping -c 2 -W 10 192.168.77.$PEER
	fi
}

# A pings until the session is REKEY_AFTER_TIME (120 s) old and a new
# handshake is made (by B, who initiated the session, when it answers).
t_rekey() {
	meet rekey >/dev/null || fail "no meeting"
	if on a; then
		ping_through_rekey my_handshake ping -i 0.5 -W 10 192.168.77.2
		[ "$REKEY_LATER" -ge $((REKEY_FIRST + 120)) ] ||
			fail "a new handshake $((REKEY_LATER - REKEY_FIRST)) s after the last, before REKEY_AFTER_TIME"
	fi
	meet rekeyed >/dev/null || fail "no meeting"
}
my_handshake() { wg show wg0 latest-handshakes | cut -f2; }

run_test a-initiates-ipv4-outer t_a_initiates_v4
run_test b-initiates-ipv6-outer t_b_initiates_v6
run_test traffic-exact-counts   t_traffic_counts
run_test roaming                t_roaming
run_test rekey-under-traffic    t_rekey
summary

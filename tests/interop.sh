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
OTHER=10.77.0.$PEER
echo "interop: guest ${ROLE^^} runs $WGRS_MODULE (A: $IMPL_A, B: $IMPL_B)"

# meet NAME [PAYLOAD]: waits for the other guest at NAME; prints its payload.
meet() { python3 tests/interop-sync.py "$ROLE" "$OTHER" "$@"; }
on() { [ "$ROLE" = "$1" ]; }
transfer() { wg show wg0 transfer | cut -f2,3 | tr '\t' ' '; }

ip link set lo up
ip link set eth0 up && ip addr add 10.77.0.$ME/24 dev eth0 && ip addr add fd77::$ME/64 dev eth0 nodad ||
	{ echo "interop: FAIL: no eth0"; exit 1; }
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

# Pings and TCP both ways; then, once quiet, each side's sent bytes are the
# other side's received bytes, exactly.
t_traffic_counts() {
	local mine theirs
	expect_ok ping -c 20 -i 0.2 -W 10 192.168.77.$PEER
	expect_ok ping -6 -c 20 -i 0.2 -W 10 fd77:77::$PEER
	if on a; then
		iperf3 -s -1 -B 192.168.77.1 >/dev/null 2>&1 &
		sleep 1
	fi
	meet iperf-a >/dev/null || fail "no meeting"
	on b && expect_ok iperf3 -Z -t 5 -c 192.168.77.1
	meet iperf-b-done >/dev/null || fail "no meeting"
	if on b; then
		iperf3 -s -1 -B 192.168.77.2 >/dev/null 2>&1 &
		sleep 1
	fi
	meet iperf-b >/dev/null || fail "no meeting"
	on a && expect_ok iperf3 -Z -t 5 -c 192.168.77.2
	meet iperf-a-done >/dev/null || fail "no meeting"
	# Keepalives go out within 10 s of the last data; then nothing moves.
	sleep 15
	meet quiet >/dev/null || fail "no meeting"
	mine=$(transfer)
	theirs=$(meet counters "${mine// /,}") || fail "no meeting"
	echo "ours (rx tx): $mine; theirs: ${theirs//,/ }"
	expect_eq "${mine%% *}" "${theirs##*,}" "bytes received here, sent there"
	expect_eq "${mine##* }" "${theirs%%,*}" "bytes sent here, received there"
}

# B moves to another address; A learns it from B's next packet and answers
# there.
t_roaming() {
	if on b; then
		expect_ok ip addr del 10.77.0.2/24 dev eth0
		expect_ok ip addr add 10.77.0.3/24 dev eth0
		expect_ok wg set wg0 peer "$(echo "$PEER_KEY" | wg pubkey)" endpoint 10.77.0.1:51820
		expect_ok ping -c 2 -W 10 192.168.77.1
	fi
	meet roamed >/dev/null || fail "no meeting"
	if on a; then
		expect_ok wg show wg0 endpoints
		expect_match "$T_OUT" $'\t10\\.77\\.0\\.3:51820$' "A's endpoint for B after B moved"
		expect_ok ping -c 2 -W 10 192.168.77.2
	fi
}

# A sends for REKEY_AFTER_TIME and more: a new handshake, and no loss.
t_rekey() {
	local first later
	meet rekey >/dev/null || fail "no meeting"
	if on a; then
		first=$(wg show wg0 latest-handshakes | cut -f2)
		expect_ok ping -q -i 0.5 -c 300 -W 10 192.168.77.2
		expect_match "$T_OUT" ' 0% packet loss' "pings across the rekey"
		later=$(wg show wg0 latest-handshakes | cut -f2)
		echo "handshakes at $first and $later"
		[ "$later" -ge $((first + 120)) ] || fail "no new handshake in 150 s of traffic"
	fi
	meet rekeyed >/dev/null || fail "no meeting"
}

run_test a-initiates-ipv4-outer t_a_initiates_v4
run_test b-initiates-ipv6-outer t_b_initiates_v6
run_test traffic-exact-counts   t_traffic_counts
run_test roaming                t_roaming
run_test rekey-under-traffic    t_rekey
summary

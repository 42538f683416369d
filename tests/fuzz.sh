#!/bin/bash
# Random, mostly malformed netlink requests against a configured device: every
# one must be answered and the device must still work afterwards. The kernel
# must stay quiet (tools/vm-run fails the run on any warning or oops).
set -u
cd "$(dirname "$0")/.." || exit 1
name="netlink fuzz"
fail() { echo "FAIL $name: $*"; ip link del wgfuzz 2>/dev/null; exit 1; }

modprobe "${WGRS_MODULE:-wireguard_rs}" || fail "modprobe failed"
ip link add wgfuzz type wireguard || fail "ip link add failed"
key=$(wg genkey)
wg set wgfuzz private-key <(echo "$key") listen-port 0 \
	peer "$(wg genkey | wg pubkey)" allowed-ips 10.0.0.0/8,fd00::/8 || fail "wg set failed"
ip link set wgfuzz up || fail "ip link set up failed"
out=$(timeout 300 python3 tests/netlink-fuzz.py wgfuzz "${1:-3000}" 2>&1) || fail "$out"
echo "    $out"
wg show wgfuzz >/dev/null || fail "wg show failed after the fuzzing"
ip link del wgfuzz || fail "ip link del failed"
echo "ok   $name"

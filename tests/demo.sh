#!/bin/bash
# A short demo of the module under test ($WGRS_MODULE): load it, configure a
# device with the stock tools, show it, tear it down. Stops at the first
# failing step with a non-zero status.
set -u
WGRS_MODULE=${WGRS_MODULE:-wireguard_rs}
key=$(mktemp /tmp/demo-key.XXXXXX)
peer=$(mktemp /tmp/demo-peer.XXXXXX)

step() { printf '\n== %s\n' "$*"; }
run() {
	printf '$ %s\n' "$*"
	"$@" || { echo "demo: FAILED (status $?): $*"; exit 1; }
}

step "Load $WGRS_MODULE"
run modprobe "$WGRS_MODULE"
run grep -E "^$WGRS_MODULE " /proc/modules
dmesg | grep -E 'WireGuard .* loaded' | tail -n 1 | grep . ||
	{ echo "demo: FAILED: no 'WireGuard ... loaded' banner in dmesg"; exit 1; }

step "Create and configure wg0"
run ip link add wg0 type wireguard
wg genkey >"$key" && wg genkey >"$peer" || { echo "demo: FAILED: wg genkey"; exit 1; }
run wg set wg0 private-key "$key" listen-port 51820 fwmark 0x1234 \
	peer "$(wg pubkey <"$peer")" allowed-ips 10.200.0.2/32 endpoint 127.0.0.1:51821
run ip address add 10.200.0.1/24 dev wg0
run ip link set wg0 up

step "Show it"
run wg show wg0
run ip -d link show wg0

step "Tear down"
run ip link del wg0
run rmmod "$WGRS_MODULE"
rm -f "$key" "$peer"
echo
echo "demo: OK"

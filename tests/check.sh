#!/bin/bash
# The `make check` suite, run as root inside the test VM (tools/vm-run) with
# IMPL=rs|c and WGRS_MODULE=wireguard_rs|wireguard:
#   tools/vm-run tests/check.sh [TEST-GLOB...]
# Every expectation is what the upstream C driver of Linux 7.3 does (IMPL=c
# must pass too); the reasons are in the comments, with the source they come
# from.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib.sh

# Arguments, if any, are globs selecting tests by name (e.g. 'link-*').
test_setup "$@"
case $WGRS_MODULE in
wireguard) OTHER_MODULE=wireguard_rs ;;
*) OTHER_MODULE=wireguard ;;
esac

# genl.py must be readable by nobody (setpriv tests); the repository is not.
install -d -m 755 /tmp/wgrs-genl && install -m 644 tests/genl.py tests/genlc.py /tmp/wgrs-genl/ || exit 1
GENL=/tmp/wgrs-genl/genlc.py
genl() { python3 "$GENL" "$@"; }

KEYS=$(mktemp -d /tmp/wgrs-keys.XXXXXX)
chmod 755 "$KEYS"

# ---- helpers ----------------------------------------------------------------

loaded() { [ -d "/sys/module/$WGRS_MODULE" ]; }
unload() { ! loaded || rmmod "$WGRS_MODULE" || fail "rmmod $WGRS_MODULE failed"; }

# wg_links [NETNS]: names of the wireguard links (the kind line of ip -d -o).
wg_links() {
	ip ${1:+-n "$1"} -d -o link show |
		awk '/\\ +wireguard / { n = $2; sub(/:$/, "", n); sub(/@.*/, "", n); print n }'
}

# newkey NAME: a fresh private key in $KEYS/NAME (base64 on stdout too).
newkey() { wg genkey >"$KEYS/$1" && cat "$KEYS/$1"; }
pubkey() { wg pubkey <"$KEYS/$1"; }
b64hex() { printf '%s' "$1" | base64 -d | od -An -v -tx1 | tr -d ' \n'; }
sysfs() { cat "/sys/class/net/$1/$2"; }
port_bound() { ss ${2:+-N "$2"} -Hnul "sport = :$1" | grep -q .; }
# port_inode PORT: the inode of the IPv4 UDP socket bound to PORT (which
# tells a socket kept from a new one on the same port), or nothing.
port_inode() {
	awk -v p="$(printf '%04X' "$1")" 'NR > 1 { split($2, a, ":"); if (a[2] == p) { print $10; exit } }' /proc/net/udp
}

# expect_genl_batch [RUNNER...] <<EOF
# EXPECTED GENL-ARGS...   (EXPECTED: OK or an errno name; # comments allowed)
# EOF
# Runs all requests through one `genl.py batch` (optionally prefixed by a
# RUNNER such as `unshare -U -r`) and fails listing every mismatch.
expect_genl_batch() {
	local line i r bad= exp=() req=() res=()
	while IFS= read -r line; do
		case $line in '' | '#'*) continue ;; esac
		exp+=("${line%% *}")
		req+=("${line#* }")
	done
	mapfile -t res < <(printf '%s\n' "${req[@]}" | "$@" python3 "$GENL" batch)
	for i in "${!req[@]}"; do
		r=${res[i]:-<nothing>}
		printf '%-12s %-12s %s\n' "${exp[i]}" "${r%% *}" "${req[i]}"
		[ "${r%% *}" = "${exp[i]}" ] || bad+="[${req[i]}] gave ${r%% *}, want ${exp[i]}; "
	done
	[ -z "$bad" ] || fail "$bad"
}

test_cleanup() {
	local ns l
	kill_bg_pids
	for ns in $(ip netns list | awk '$1 ~ /^wgrs-/ { print $1 }'); do ip netns del "$ns"; done
	for l in $(wg_links); do ip link del "$l"; done
	ip link del wgrs-d0 2>/dev/null
	loaded || modprobe "$WGRS_MODULE"
}

# ---- module loading ---------------------------------------------------------

t_autoload_rtnl() {
	unload
	expect_ok ip link add wg0 type wireguard
	loaded || fail "'ip link add ... type wireguard' did not load $WGRS_MODULE (rtnl-link-wireguard alias)"
	[ ! -d "/sys/module/$OTHER_MODULE" ] || fail "$OTHER_MODULE was loaded instead"
	expect_ok lsmod
	expect_match "$T_OUT" "^$WGRS_MODULE " "lsmod"
	expect_ok ip -d link show wg0
	expect_match "$T_OUT" '^ +wireguard ' "ip -d link show wg0"
	expect_ok ip link del wg0
	expect_ok rmmod "$WGRS_MODULE"
}

t_autoload_genl() {
	unload
	# CTRL_CMD_GETFAMILY requests net-pf-16-proto-16-family-wireguard.
	expect_ok genl family
	expect_match "$T_OUT" '^id=[0-9]+ ' "genl.py family"
	loaded || fail "resolving the genl family did not load $WGRS_MODULE"
	unload
	# wg resolves the family before asking for the device.
	expect_fail_errno ENODEV wg show wgrs-none
	loaded || fail "'wg show' did not load $WGRS_MODULE"
	[ ! -d "/sys/module/$OTHER_MODULE" ] || fail "$OTHER_MODULE was loaded instead"
}

banners() { dmesg | grep -cE 'WireGuard .* loaded'; }

t_modprobe() {
	local before after
	unload
	before=$(banners)
	if [ "$IMPL" = rs ]; then
		expect_ok modprobe wireguard-rs
	else
		expect_ok modprobe "$WGRS_MODULE"
	fi
	loaded || fail "/sys/module/$WGRS_MODULE missing after modprobe"
	after=$(banners)
	[ "$after" -gt "$before" ] || fail "no 'WireGuard ... loaded' banner in dmesg ($before before, $after after)"
	dmesg | grep -E 'WireGuard .* loaded' | tail -n 1
	expect_ok modprobe "$WGRS_MODULE"
	expect_ok modinfo -F alias "$WGRS_MODULE"
	expect_match "$T_OUT" '^rtnl-link-wireguard$' "module aliases"
	expect_match "$T_OUT" '^net-pf-16-proto-16-family-wireguard$' "module aliases"
}

# What genetlink's controller reports (net/netlink/genetlink.c ctrl_fill_info):
# version WG_GENL_VERSION 1, no user header, family->maxattr 0 (split ops carry
# their own maxattr), GET = UNS_ADMIN_PERM|CAP_DUMP|CAP_HASPOL = 0x1c and
# SET = UNS_ADMIN_PERM|CAP_DO|CAP_HASPOL = 0x1a.
t_genl_family() {
	expect_ok genl family
	expect_match "$T_OUT" '^id=[0-9]+ version=1 hdrsize=0 maxattr=0$' "family"
	expect_eq "$(printf '%s\n' "$T_OUT" | grep '^op ')" $'op 0 0x1c\nop 1 0x1a' "ops"
}

# ---- rtnl link ---------------------------------------------------------------

t_link_add_del() {
	expect_ok ip link add wg0 type wireguard
	expect_ok ip link add wg1 type wireguard
	expect_fail_errno EEXIST ip link add wg0 type wireguard
	expect_eq "$(wg_links | sort | tr '\n' ' ')" "wg0 wg1 " "wireguard links"
	expect_ok wg show interfaces
	expect_eq "$T_OUT" "wg0 wg1" "wg show interfaces"
	expect_ok ip link del wg1
	expect_fail ip link show wg1
	expect_ok ip link del wg0
	expect_eq "$(wg_links)" "" "wireguard links after delete"
	expect_fail ip link del wg0
	# The MTU given at creation goes through dev_validate_mtu too.
	expect_ok ip link add wg2 mtu 9000 type wireguard
	expect_eq "$(sysfs wg2 mtu)" 9000 "mtu given at creation"
	expect_fail ip link add wg3 mtu 2147483553 type wireguard
	expect_match "$T_OUT" 'mtu greater than device maximum'
	expect_fail ip link show wg3
}

# wg_setup(): ARPHRD_NONE, IFF_POINTOPOINT|IFF_NOARP (0x90), no address,
# mtu 1500 - 80 = 1420, min_mtu left at 0 (no ether_setup), max_mtu
# round_down(INT_MAX, 16) - 80 = 2147483552, devtype "wireguard".
t_link_properties() {
	expect_ok ip link add wg0 type wireguard
	expect_ok ip -d link show wg0
	expect_match "$T_OUT" '^[0-9]+: wg0: <POINTOPOINT,NOARP> mtu 1420 qdisc noop state DOWN ' "ip -d link show"
	expect_match "$T_OUT" '^ +link/none +promiscuity 0 allmulti 0 minmtu 0 maxmtu 2147483552 *$' "ip -d link show"
	expect_match "$T_OUT" '^ +wireguard addrgenmode eui64 ' "ip -d link show"
	expect_eq "$(sysfs wg0 type)" 65534 "type (ARPHRD_NONE)"
	expect_eq "$(sysfs wg0 flags)" 0x90 "flags"
	expect_eq "$(sysfs wg0 addr_len)" 0 "addr_len"
	expect_eq "$(sysfs wg0 mtu)" 1420 "mtu"
	expect_eq "$(sysfs wg0 operstate)" down "operstate"
	expect_eq "$(sysfs wg0 tx_queue_len)" 1000 "tx_queue_len"
	expect_match "$(sysfs wg0 uevent)" '^DEVTYPE=wireguard$' "uevent"
}

t_link_up_down() {
	local port
	expect_ok ip link add wg0 type wireguard
	expect_ok ip link set wg0 up
	expect_eq "$(sysfs wg0 flags)" 0x91 "flags when up"
	expect_eq "$(sysfs wg0 operstate)" unknown "operstate when up"
	expect_ok ip -d link show wg0
	expect_match "$T_OUT" '^[0-9]+: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN ' "ip -d link show"
	# wg_open(): no IPv6 link-local address generation, no ICMP redirects.
	expect_match "$T_OUT" '^ +wireguard addrgenmode none ' "ip -d link show"
	expect_eq "$(cat /proc/sys/net/ipv4/conf/wg0/send_redirects)" 0 "wg0 send_redirects"
	expect_eq "$(cat /proc/sys/net/ipv4/conf/all/send_redirects)" 0 "all send_redirects"
	# listen-port 0 on open binds a random port and reports it.
	expect_ok wg show wg0 listen-port
	port=$T_OUT
	[ "$port" -gt 0 ] 2>/dev/null || fail "listen-port after up is '$port', want a random port"
	port_bound "$port" || fail "port $port is not bound while up"
	expect_ok ip link set wg0 down
	expect_eq "$(sysfs wg0 flags)" 0x90 "flags when down again"
	expect_eq "$(sysfs wg0 operstate)" down "operstate when down again"
	expect_ok ip link show wg0
	expect_match "$T_OUT" '<POINTOPOINT,NOARP> mtu 1420 qdisc noqueue state DOWN ' "ip link show"
	! port_bound "$port" || fail "port $port still bound after down"
	expect_ok ip link set wg0 up
	expect_ok ip link set wg0 down
}

t_link_mtu() {
	local m
	expect_ok ip link add wg0 type wireguard
	# Upstream min_mtu is 0: anything from 0 up to max_mtu is accepted.
	for m in 1280 68 67 0 2147483552 1420; do
		expect_ok ip link set wg0 mtu "$m"
		expect_eq "$(sysfs wg0 mtu)" "$m" "mtu after setting $m"
	done
	expect_ok ip link set wg0 mtu 2147483552
	expect_fail ip link set wg0 mtu 2147483553
	expect_match "$T_OUT" 'mtu greater than device maximum'
	expect_eq "$(sysfs wg0 mtu)" 2147483552 "mtu after a refused change"
	expect_fail ip link set wg0 mtu 4294967295
	expect_ok ip link set wg0 mtu 1420
	expect_ok ip link set wg0 up
	expect_ok ip link set wg0 mtu 1280
	expect_eq "$(sysfs wg0 mtu)" 1280 "mtu changed while up"
}

t_link_netns() {
	local key
	key=$(newkey k1)
	expect_ok ip netns add wgrs-ns1
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/k1" listen-port 51820
	expect_ok ip link set wg0 netns wgrs-ns1
	expect_fail ip link show wg0
	expect_ok ip -n wgrs-ns1 link show wg0
	expect_eq "$(wg_links wgrs-ns1)" wg0 "wireguard links in wgrs-ns1"
	expect_eq "$(wg_links)" "" "wireguard links in the init netns"
	expect_ok ip netns exec wgrs-ns1 wg show wg0 private-key
	expect_eq "$T_OUT" "$key" "private key after the move"
	# The UDP socket lives in the namespace the device was created in.
	expect_ok ip -n wgrs-ns1 link set wg0 up
	port_bound 51820 || fail "port 51820 not bound in the creating (init) netns"
	! port_bound 51820 wgrs-ns1 || fail "port 51820 bound in wgrs-ns1, the device's current netns"
	expect_ok ip netns exec wgrs-ns1 wg show wg0 listen-port
	expect_eq "$T_OUT" 51820 "listen-port in wgrs-ns1"
	# And back (pid 1 lives in the init netns).
	expect_ok ip -n wgrs-ns1 link set wg0 netns 1
	expect_ok ip link show wg0
	expect_ok wg show wg0 private-key
	expect_eq "$T_OUT" "$key" "private key after moving back"
	! port_bound 51820 || fail "port 51820 still bound after moving back (which closes the device)"
	expect_ok ip link set wg0 netns wgrs-ns1
	expect_ok ip -n wgrs-ns1 link set wg0 up
	port_bound 51820 || fail "port 51820 not bound after up in wgrs-ns1 again"
	# Deleting the netns destroys the device in it, which closes its socket.
	expect_ok ip netns del wgrs-ns1
	wait_for 20 eval '! port_bound 51820' || fail "port 51820 still bound 20s after deleting the netns"
	expect_fail ip link show wg0
	expect_eq "$(wg_links)" "" "wireguard links"
}

# wg_netns_exit_rtnl(): when the creating netns goes away the device stays
# (elsewhere) but loses its socket; setting listen-port/fwmark then needs
# CAP_NET_ADMIN over a netns that is gone -> EPERM, opening it -> ENONET.
eperm_on_fwmark() { wg set wg0 fwmark 0x33 2>&1 | grep -q 'Operation not permitted'; }
t_creating_netns_gone() {
	newkey k1 >/dev/null
	expect_ok ip netns add wgrs-a
	expect_ok ip -n wgrs-a link add wg0 type wireguard
	expect_ok ip -n wgrs-a link set wg0 netns 1
	expect_ok ip link show wg0
	expect_ok wg set wg0 fwmark 0x22 listen-port 51821
	expect_ok ip netns del wgrs-a
	wait_for 20 eperm_on_fwmark || fail "setting fwmark did not fail with EPERM within 20s of deleting the creating netns"
	expect_fail_errno EPERM wg set wg0 listen-port 51822
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" 0x22 "fwmark after the refused sets"
	expect_ok wg show wg0 listen-port
	expect_eq "$T_OUT" 51821 "listen-port after the refused sets"
	expect_ok wg set wg0 private-key "$KEYS/k1"
	expect_fail_errno ENONET ip link set wg0 up
}

# ---- genetlink: configuration round trips ------------------------------------

t_wg_show() {
	expect_ok ip link add wg0 type wireguard
	expect_ok wg show wg0
	expect_match "$T_OUT" '^interface: wg0$' "wg show wg0"
	expect_ok wg show wg0 listen-port
	expect_eq "$T_OUT" 0 "listen-port of a new device"
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" off "fwmark of a new device"
	expect_ok wg show wg0 private-key
	expect_eq "$T_OUT" "(none)" "private-key of a new device"
	expect_ok wg show wg0 public-key
	expect_eq "$T_OUT" "(none)" "public-key of a new device"
	expect_ok wg show wg0 peers
	expect_eq "$T_OUT" "" "peers of a new device"
	# (A trailing "." keeps the trailing newlines from $(...).)
	expect_eq "$(wg showconf wg0; echo .)" $'[Interface]\n\n.' "showconf of a new device"
	expect_ok wg show all
	expect_match "$T_OUT" '^interface: wg0$' "wg show all"
}

t_private_key() {
	local key
	key=$(newkey k1)
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/k1"
	expect_ok wg show wg0 private-key
	expect_eq "$T_OUT" "$key" "private-key"
	expect_ok wg show wg0 public-key
	expect_eq "$T_OUT" "$(pubkey k1)" "public-key"
	# Setting the same key again is a no-op (wg_set_device_doit compares it
	# with the stored one first): the whole configuration reads back the same.
	newkey p1 >/dev/null
	expect_ok wg set wg0 listen-port 51820 fwmark 0x7 peer "$(pubkey p1)" allowed-ips 10.0.0.0/24 endpoint 192.0.2.1:1
	expect_ok wg show wg0 dump
	local before=$T_OUT
	expect_eq "$(head -n 1 <<<"$before")" "$key	$(pubkey k1)	51820	0x7" "interface line of the dump before"
	expect_ok wg set wg0 private-key "$KEYS/k1"
	expect_ok wg show wg0 dump
	expect_eq "$T_OUT" "$before" "dump after setting the same key again"
}

# curve25519_clamp_secret(): byte 0 &= 248, byte 31 = (byte 31 & 127) | 64.
t_private_key_clamped() {
	local ff clamped
	ff=$(printf '\xff%.0s' {1..32} | base64)
	clamped=$({ printf '\xf8'; printf '\xff%.0s' {1..30}; printf '\x7f'; } | base64)
	printf '%s\n' "$ff" >"$KEYS/ff"
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/ff"
	expect_ok wg show wg0 private-key
	expect_eq "$T_OUT" "$clamped" "private-key of 32 x 0xff"
	expect_ok wg show wg0 public-key
	expect_eq "$T_OUT" "$(pubkey ff)" "public-key of 32 x 0xff"
}

# An all-zero private key gives no identity: no PRIVATE_KEY/PUBLIC_KEY in dumps.
t_private_key_remove() {
	newkey k1 >/dev/null
	printf '%s\n' "$(head -c 32 /dev/zero | base64)" >"$KEYS/zero"
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/k1"
	expect_ok wg set wg0 private-key "$KEYS/zero"
	expect_ok wg show wg0 private-key
	expect_eq "$T_OUT" "(none)" "private-key after setting zeros"
	expect_ok wg show wg0 public-key
	expect_eq "$T_OUT" "(none)" "public-key after setting zeros"
	expect_ok wg set wg0 private-key "$KEYS/k1"
	expect_ok wg set wg0 private-key /dev/null
	expect_ok wg show wg0 private-key
	expect_eq "$T_OUT" "(none)" "private-key after private-key /dev/null"
	expect_ok genl get --ifname wg0 --order
	expect_eq "$T_OUT" "LISTEN_PORT FWMARK IFINDEX IFNAME" "attributes without a key"
}

# set_port(): while the device is down the port is only stored.
t_listen_port() {
	local ino
	expect_ok ip link add wg0 type wireguard
	expect_ok ip link add wg1 type wireguard
	expect_ok wg set wg0 listen-port 51820
	expect_ok wg show wg0 listen-port
	expect_eq "$T_OUT" 51820 "listen-port"
	! port_bound 51820 || fail "port 51820 bound while the device is down"
	expect_ok wg set wg0 listen-port 65535
	expect_ok wg show wg0 listen-port
	expect_eq "$T_OUT" 65535 "listen-port"
	expect_ok wg set wg0 listen-port 0
	expect_ok wg show wg0 listen-port
	expect_eq "$T_OUT" 0 "listen-port"
	# While up, it binds at once; a port in use gives EADDRINUSE and no change.
	expect_ok wg set wg0 listen-port 51820
	expect_ok ip link set wg0 up
	port_bound 51820 || fail "port 51820 not bound after up"
	expect_ok wg set wg1 listen-port 51823
	expect_ok ip link set wg1 up
	ino=$(port_inode 51823)
	[ -n "$ino" ] || fail "no socket on port 51823"
	expect_fail_errno EADDRINUSE wg set wg1 listen-port 51820
	expect_ok wg show wg1 listen-port
	expect_eq "$T_OUT" 51823 "listen-port after EADDRINUSE"
	expect_eq "$(port_inode 51823)" "$ino" "socket on the old port 51823 after EADDRINUSE"
	expect_ok wg set wg0 listen-port 51824
	port_bound 51824 || fail "port 51824 not bound after changing it while up"
	! port_bound 51820 || fail "old port 51820 still bound"
	expect_ok wg set wg1 listen-port 51820
	expect_ok wg show wg1 listen-port
	expect_eq "$T_OUT" 51820 "listen-port once free"
}

t_fwmark() {
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 fwmark 0x1234
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" 0x1234 "fwmark"
	expect_ok wg set wg0 fwmark 0xffffffff
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" 0xffffffff "fwmark"
	expect_ok wg set wg0 fwmark 0
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" off "fwmark after 0"
	expect_ok wg set wg0 fwmark 77
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" 0x4d "fwmark 77"
	expect_ok wg set wg0 fwmark off
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" off "fwmark after off"
}

# set_peer(): a peer with the device's own public key is silently ignored; a
# new private key whose public key is a peer's removes that peer.
t_peer_vs_own_key() {
	newkey k1 >/dev/null
	newkey k2 >/dev/null
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/k1" peer "$(pubkey k1)" allowed-ips 10.0.0.1/32
	expect_ok wg show wg0 peers
	expect_eq "$T_OUT" "" "peers after adding our own public key"
	expect_ok wg set wg0 peer "$(pubkey k2)" allowed-ips 10.0.0.2/32
	expect_ok wg show wg0 peers
	expect_eq "$T_OUT" "$(pubkey k2)" "peers"
	expect_ok wg set wg0 private-key "$KEYS/k2"
	expect_ok wg show wg0 peers
	expect_eq "$T_OUT" "" "peers after taking the peer's key"
}

# set_port() while up: the same port again returns at once (the same socket
# stays: no rebind); port 0 binds new sockets on a random port
# (wg_socket_init), never the old one, whose sockets are only released once
# the new ones are bound.
t_listen_port_up() {
	local p0 p1 ino
	expect_ok ip link add wg0 type wireguard
	expect_ok ip link set wg0 up
	expect_ok wg show wg0 listen-port
	p0=$T_OUT
	[ "$p0" -gt 0 ] 2>/dev/null || fail "listen-port after up is '$p0'"
	ino=$(port_inode "$p0")
	[ -n "$ino" ] || fail "no socket on port $p0"
	expect_ok wg set wg0 listen-port "$p0"
	expect_eq "$(port_inode "$p0")" "$ino" "socket after setting the same port again"
	expect_ok wg set wg0 listen-port 0
	expect_ok wg show wg0 listen-port
	p1=$T_OUT
	[ "$p1" -gt 0 ] 2>/dev/null || fail "listen-port after setting 0 while up is '$p1'"
	[ "$p1" != "$p0" ] || fail "setting 0 while up kept port $p0"
	port_bound "$p1" || fail "new random port $p1 is not bound"
	! port_bound "$p0" || fail "old port $p0 still bound"
	expect_ok wg set wg0 listen-port 51850
	ino=$(port_inode 51850)
	[ -n "$ino" ] || fail "no socket on port 51850"
	expect_genl_batch <<-EOF
	OK set --ifname wg0 --attr LISTEN_PORT=u16:51850
	EOF
	expect_eq "$(port_inode 51850)" "$ino" "socket on 51850 after setting it again"
}

# wg_set_device_doit() applies the fwmark before the port, and stops at a
# port in use: the fwmark stays applied; REPLACE_PEERS, the private key and
# the peers, which come after the port, are not.
t_eaddrinuse_fwmark() {
	local ino
	newkey k1 >/dev/null
	newkey p1 >/dev/null
	expect_ok ip link add wg0 type wireguard
	expect_ok ip link add wg1 type wireguard
	expect_ok wg set wg0 listen-port 51860 fwmark 0x1 peer "$(pubkey p1)" allowed-ips 10.0.0.0/24
	expect_ok wg set wg1 listen-port 51861
	expect_ok ip link set wg0 up
	expect_ok ip link set wg1 up
	ino=$(port_inode 51860)
	[ -n "$ino" ] || fail "no socket on port 51860"
	expect_genl_batch <<-EOF
	EADDRINUSE set --ifname wg0 --attr FWMARK=u32:0x42 --attr LISTEN_PORT=u16:51861 --attr FLAGS=u32:1 --attr PRIVATE_KEY=b64:$(cat "$KEYS/k1") --attr PEERS={0={PUBLIC_KEY=rep:32:05}}
	EOF
	expect_ok wg show wg0 dump
	expect_eq "$T_OUT" "(none)	(none)	51860	0x42
$(pubkey p1)	(none)	(none)	10.0.0.0/24	0	0	0	off" "configuration after EADDRINUSE"
	expect_eq "$(port_inode 51860)" "$ino" "socket on 51860 after EADDRINUSE"
}

# ---- genetlink: endpoints and values -------------------------------------------

# expect_endpoints <<EOF
# SET WANT [WHAT...]
# EOF
# Sets each ENDPOINT SET (hex) in turn on peer 0x01.. of wg0 over raw
# netlink and reads the endpoint back, all in one python process; the one
# read back must be WANT (hex; "-" for none). Fails listing every mismatch.
expect_endpoints() {
	local line i w d bad= set=() want=() what=() got=()
	while IFS= read -r line; do
		case $line in '' | '#'*) continue ;; esac
		read -r i w d <<<"$line"
		set+=("$i")
		want+=("$w")
		what+=("$d")
	done
	mapfile -t got < <(python3 - "${set[@]}" <<-'EOF'
	import struct, sys
	sys.path.insert(0, 'tests')
	import genl
	sock = genl.open_socket()
	family = struct.unpack('=H', genl.resolve_family(sock, 'wireguard')['FAMILY_ID'])[0]
	name = genl.nla(2, b'wg0\0')
	for endpoint in sys.argv[1:]:
	    peer = genl.nla(1, b'\x01' * 32) + genl.nla(4, bytes.fromhex(endpoint))
	    peers = genl.nla(8 | genl.NLA_F_NESTED, genl.nla(genl.NLA_F_NESTED, peer))
	    try:
	        genl.transact(sock, family, genl.WG_CMD_SET_DEVICE, genl.NLM_F_REQUEST | genl.NLM_F_ACK, name + peers)
	        replies = genl.transact(sock, family, genl.WG_CMD_GET_DEVICE,
	                                genl.NLM_F_REQUEST | genl.NLM_F_ACK | genl.NLM_F_DUMP, name)
	    except genl.KernelError as e:
	        print(genl.ERRNO_NAMES.get(e.err, e.err))
	        continue
	    found = '-'
	    for _, _, _, payload in replies:
	        for atype, value in genl.parse_attrs(payload):
	            if atype & genl.NLA_TYPE_MASK == 8:
	                for _, p in genl.parse_attrs(value):
	                    for t, v in genl.parse_attrs(p):
	                        if t & genl.NLA_TYPE_MASK == 4:
	                            found = v.hex()
	    print(found, flush=True)
	EOF
	)
	for i in "${!set[@]}"; do
		printf '%s\n    -> %s (want %s: %s)\n' "${set[i]}" "${got[i]:-<nothing>}" "${want[i]}" "${what[i]}"
		[ "${got[i]:-}" = "${want[i]}" ] || bad+="${what[i]}: got ${got[i]:-<nothing>}; "
	done
	[ -z "$bad" ] || fail "$bad"
}

# set_peer() takes an endpoint only as a struct sockaddr_in of exactly 16
# bytes with AF_INET, or a sockaddr_in6 of exactly 28 bytes with AF_INET6
# (the policy only asks for at least 16): anything else is ignored and the
# old endpoint kept. The sockaddr is stored and dumped as given, sin_zero
# and flow info included; but wg_socket_set_peer_endpoint() keeps the
# stored one when the new one names the same address (endpoint_eq: family,
# port, address, and for IPv6 the scope id).
t_endpoints() {
	# AF_INET (02 00), port 51820 (ca 6c), 192.0.2.1, then sin_zero.
	local v4=0200ca6cc0000201 v4b=0200ca6dc0000202
	# AF_INET6 (0a 00), port 51820, flow info, 2001:db8::1, scope id.
	local v6=0a00ca6c v6addr=20010db8000000000000000000000001
	local z12=000000000000000000000000 z20=0000000000000000000000000000000000000000
	expect_ok ip link add wg0 type wireguard
	expect_endpoints <<-EOF
	${v4}aabbccddeeff0011            ${v4}aabbccddeeff0011            sin_zero echoed
	${v4}1122334455667788            ${v4}aabbccddeeff0011            the same address with another sin_zero: kept
	${v4b}${z12}                     ${v4}aabbccddeeff0011            AF_INET in 20 bytes: ignored
	${v4b}${z20}                     ${v4}aabbccddeeff0011            AF_INET in 28 bytes: ignored
	0700ca6dc00002020000000000000000 ${v4}aabbccddeeff0011            family 7 in 16 bytes: ignored
	${v4b}0000000000000000            ${v4b}0000000000000000            another address: taken
	${v6}12345678${v6addr}00000000   ${v6}12345678${v6addr}00000000   IPv6 with flow info echoed
	${v6}87654321${v6addr}00000000   ${v6}12345678${v6addr}00000000   the same address with other flow info: kept
	${v6}87654321${v6addr}05000000   ${v6}87654321${v6addr}05000000   another scope id: taken
	${v6}00000000${v6addr}${z12:0:16} ${v6}87654321${v6addr}05000000   AF_INET6 in 32 bytes: ignored
	${v6}00000000${v6addr}000000     ${v6}87654321${v6addr}05000000   AF_INET6 in 27 bytes: ignored
	0a00ca6c00000000${v6addr:0:16}   ${v6}87654321${v6addr}05000000   AF_INET6 in 16 bytes: ignored
	${v4}0000000000000000            ${v4}0000000000000000            IPv4 after IPv6: 16 bytes again
	EOF
	# A v4-mapped address stays an AF_INET6 sockaddr.
	expect_ok wg set wg0 peer AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= endpoint '[::ffff:192.0.2.7]:9'
	expect_ok wg show wg0 endpoints
	expect_eq "$T_OUT" "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=	[::ffff:192.0.2.7]:9" "wg show endpoints"
	expect_ok genl get --ifname wg0
	expect_match "$T_OUT" '^    ENDPOINT len=28: hex:0a0000090000000000000000000000000000ffffc000020700000000$' "v4-mapped endpoint"
}

# Values at the edges, as upstream stores them.
t_peer_values() {
	local p1 zero=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
	newkey p1 >/dev/null
	newkey psk >/dev/null
	p1=$(pubkey p1)
	expect_ok ip link add wg0 type wireguard
	# Persistent keepalive: a u16, all of it; 0 is off.
	expect_ok wg set wg0 peer "$p1" persistent-keepalive 65535
	expect_ok wg show wg0 persistent-keepalive
	expect_eq "$T_OUT" "$p1	65535" "keepalive 65535"
	expect_ok genl set --ifname wg0 --attr "PEERS={0={PUBLIC_KEY=b64:$p1,PERSISTENT_KEEPALIVE_INTERVAL=u16:0}}"
	expect_ok wg show wg0 persistent-keepalive
	expect_eq "$T_OUT" "$p1	off" "keepalive after 0 over netlink"
	expect_ok genl get --ifname wg0
	expect_match "$T_OUT" '^    PERSISTENT_KEEPALIVE_INTERVAL len=2: 0$' "dumped keepalive"
	# A preshared key of zeros is no preshared key.
	expect_ok wg set wg0 peer "$p1" preshared-key "$KEYS/psk"
	expect_ok wg show wg0 preshared-keys
	expect_eq "$T_OUT" "$p1	$(cat "$KEYS/psk")" "preshared key"
	expect_ok wg set wg0 peer "$p1" preshared-key /dev/null
	expect_ok wg show wg0 preshared-keys
	expect_eq "$T_OUT" "$p1	(none)" "preshared key after /dev/null"
	expect_ok wg set wg0 peer "$p1" preshared-key "$KEYS/psk"
	expect_ok genl set --ifname wg0 --attr "PEERS={0={PUBLIC_KEY=b64:$p1,PRESHARED_KEY=rep:32:00}}"
	expect_ok wg show wg0 preshared-keys
	expect_eq "$T_OUT" "$p1	(none)" "preshared key after 32 zero bytes over netlink"
	expect_ok genl get --ifname wg0
	expect_match "$T_OUT" '^    PRESHARED_KEY len=32: hex:0{64}$' "dumped preshared key"
	# A peer whose public key is all zeros is a peer like any other, with
	# or without a private key on the device.
	expect_ok genl set --ifname wg0 --attr "PEERS={0={PUBLIC_KEY=rep:32:00,ALLOWEDIPS={0={FAMILY=u16:2,IPADDR=ip4:10.0.0.0,CIDR_MASK=u8:8}}}}"
	expect_ok wg show wg0 allowed-ips
	expect_eq "$T_OUT" "$p1	(none)
$zero	10.0.0.0/8" "peers with the all-zero public key"
	newkey k1 >/dev/null
	expect_ok wg set wg0 private-key "$KEYS/k1" peer "$zero" remove
	expect_ok genl set --ifname wg0 --attr "PEERS={0={PUBLIC_KEY=rep:32:00}}"
	expect_ok wg show wg0 peers
	expect_eq "$T_OUT" "$p1
$zero" "peers with the all-zero public key and a private key"
}

# An all-zero private key on a fresh device equals the stored (zeroed) one:
# nothing happens, no identity appears.
t_private_key_zero_fresh() {
	expect_ok ip link add wg0 type wireguard
	expect_ok genl set --ifname wg0 --attr PRIVATE_KEY=rep:32:00
	expect_ok genl get --ifname wg0 --order
	expect_eq "$T_OUT" "LISTEN_PORT FWMARK IFINDEX IFNAME" "attributes after a zero key"
	expect_ok wg show wg0 private-key
	expect_eq "$T_OUT" "(none)" "private-key"
	# Any peer may be added (there is no own public key to refuse).
	expect_ok genl set --ifname wg0 --attr PRIVATE_KEY=rep:32:00 --attr "PEERS={0={PUBLIC_KEY=rep:32:09}}"
	expect_ok wg show wg0 peers
	expect_eq "$T_OUT" "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=" "peers"
}

# Attributes that the set policy accepts and wg_set_device_doit()/set_peer()
# never read: the device's PUBLIC_KEY, a peer's LAST_HANDSHAKE_TIME,
# RX_BYTES and TX_BYTES.
t_ignored_attributes() {
	local peer='PUBLIC_KEY=rep:32:01,LAST_HANDSHAKE_TIME=rep:16:ff,RX_BYTES=u64:12345,TX_BYTES=u64:678'
	newkey k1 >/dev/null
	expect_ok ip link add wg0 type wireguard
	expect_ok genl set --ifname wg0 --attr PUBLIC_KEY=rep:32:05
	expect_ok genl get --ifname wg0 --order
	expect_eq "$T_OUT" "LISTEN_PORT FWMARK IFINDEX IFNAME" "attributes after setting only a public key"
	expect_ok wg set wg0 private-key "$KEYS/k1"
	expect_ok genl set --ifname wg0 --attr PUBLIC_KEY=rep:32:05
	expect_ok wg show wg0 public-key
	expect_eq "$T_OUT" "$(pubkey k1)" "public-key after setting another one"
	# On a new peer, then on the existing one.
	expect_ok genl set --ifname wg0 --attr "PEERS={0={$peer}}"
	expect_ok genl set --ifname wg0 --attr "PEERS={0={$peer}}"
	expect_ok genl get --ifname wg0
	expect_match "$T_OUT" '^    LAST_HANDSHAKE_TIME len=16: hex:0{32}$' "last handshake"
	expect_match "$T_OUT" '^    TX_BYTES len=8: 0$' "tx bytes"
	expect_match "$T_OUT" '^    RX_BYTES len=8: 0$' "rx bytes"
	expect_ok wg show wg0 transfer
	expect_eq "$T_OUT" "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=	0	0" "wg show transfer"
}

# ---- genetlink: which device a request names ------------------------------------

# dev_get_by_name() finds alternative names too; IFNAME's policy (a NUL
# within 16 bytes) leaves out the longer ones.
t_altname() {
	expect_ok ip link add wg0 type wireguard
	expect_ok ip link add wgrs-d0 type dummy
	expect_ok ip link property add dev wg0 altname wgrs-alt0
	expect_ok ip link property add dev wg0 altname wgrs-alternative0
	expect_ok ip link property add dev wgrs-d0 altname wgrs-alt1
	expect_genl_batch <<-EOF
	OK          set --ifname wgrs-alt0 --attr FWMARK=u32:0x5
	OK          get --ifname wgrs-alt0
	EOPNOTSUPP  get --ifname wgrs-alt1
	EINVAL      get --ifname wgrs-alternative0
	EOF
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" 0x5 "fwmark set through the altname"
	expect_ok genl get --ifname wgrs-alt0
	expect_match "$T_OUT" '^IFNAME len=4: str:wg0$' "name in a dump asked for by altname"
	expect_ok wg show wgrs-alt0 fwmark
	expect_eq "$T_OUT" 0x5 "wg show by altname"
}

# lookup_interface() looks IFINDEX and IFNAME up in the namespace of the
# requesting socket, whatever other namespaces hold under the same index or
# name. (`ip link add ... index N` pins the indices.)
t_netns_lookup() {
	expect_ok ip netns add wgrs-n1
	expect_ok ip netns add wgrs-n2
	expect_ok ip link add wg0 index 4242 type wireguard
	expect_ok wg set wg0 fwmark 0x1
	expect_ok ip -n wgrs-n1 link add wg0 index 4343 type wireguard
	expect_ok ip -n wgrs-n1 link add wgrs-d0 index 4242 type dummy
	expect_genl_batch <<-EOF
	OK          set --ifindex 4242 --attr FWMARK=u32:0x11
	ENODEV      get --ifindex 4343
	ENODEV      set --ifname wgrs-d0
	EOF
	expect_genl_batch ip netns exec wgrs-n1 <<-EOF
	EOPNOTSUPP  get --ifindex 4242
	EOPNOTSUPP  set --ifname wgrs-d0
	OK          set --ifindex 4343 --attr FWMARK=u32:0x22
	OK          set --ifname wg0 --attr LISTEN_PORT=u16:4343
	EOF
	expect_ok wg show wg0 dump
	expect_eq "$T_OUT" "(none)	(none)	0	0x11" "wg0 of the init namespace"
	expect_ok ip netns exec wgrs-n1 wg show wg0 dump
	expect_eq "$T_OUT" "(none)	(none)	4343	0x22" "wg0 of wgrs-n1"
	expect_ok ip netns exec wgrs-n1 python3 "$GENL" get --ifname wg0
	expect_match "$T_OUT" '^IFINDEX len=4: 4343$' "ifindex in wgrs-n1"
	# A device that moves is found where it is, and only there.
	expect_ok ip link set wg0 netns wgrs-n2
	expect_genl_batch <<-EOF
	ENODEV      get --ifindex 4242
	ENODEV      get --ifname wg0
	EOF
	expect_genl_batch ip netns exec wgrs-n2 <<-EOF
	OK          get --ifindex 4242
	OK          set --ifname wg0 --attr FWMARK=u32:0x33
	EOF
	expect_ok ip netns exec wgrs-n2 wg show wg0 fwmark
	expect_eq "$T_OUT" 0x33 "fwmark of the moved device"
}

# ---- genetlink: GET_DEVICE attribute layout (wg_get_device_dumpit) -----------

t_get_order() {
	newkey k1 >/dev/null
	expect_ok ip link add wg0 type wireguard
	expect_ok genl get --ifname wg0 --order
	expect_eq "$T_OUT" "LISTEN_PORT FWMARK IFINDEX IFNAME" "attributes of a bare device"
	expect_ok wg set wg0 private-key "$KEYS/k1"
	# The PEERS nest is opened and then cancelled when there are no peers.
	expect_ok genl get --ifname wg0 --order
	expect_eq "$T_OUT" "LISTEN_PORT FWMARK IFINDEX IFNAME PRIVATE_KEY PUBLIC_KEY" "attributes with a key"
}

# The whole dump of a known configuration, lengths included.
t_get_tree() {
	local idx priv pub psk peer p2 p3 expected
	priv=$(newkey k1)
	pub=$(pubkey k1)
	newkey psk >/dev/null
	peer=$(newkey p1 >/dev/null; pubkey p1)
	p2=$(newkey p2 >/dev/null; pubkey p2)
	p3=$(newkey p3 >/dev/null; pubkey p3)
	expect_ok ip link add wg0 type wireguard
	idx=$(sysfs wg0 ifindex)
	expect_ok wg set wg0 private-key "$KEYS/k1" listen-port 51820 fwmark 0x20 \
		peer "$peer" preshared-key "$KEYS/psk" endpoint 192.0.2.1:51820 \
		persistent-keepalive 25 allowed-ips 10.1.2.3/24,fd00::1/64
	expect_ok genl get --ifname wg0
	expected="# cmd=0 version=1
LISTEN_PORT len=2: 51820
FWMARK len=4: 32
IFINDEX len=4: $idx
IFNAME len=4: str:wg0
PRIVATE_KEY len=32: hex:$(b64hex "$priv")
PUBLIC_KEY len=32: hex:$(b64hex "$pub")
PEERS len=228: nest
  0 len=224: nest
    PUBLIC_KEY len=32: hex:$(b64hex "$peer")
    PRESHARED_KEY len=32: hex:$(b64hex "$(cat "$KEYS/psk")")
    LAST_HANDSHAKE_TIME len=16: hex:00000000000000000000000000000000
    PERSISTENT_KEEPALIVE_INTERVAL len=2: 25
    TX_BYTES len=8: 0
    RX_BYTES len=8: 0
    PROTOCOL_VERSION len=4: 1
    ENDPOINT len=16: hex:0200ca6cc00002010000000000000000
    ALLOWEDIPS len=68: nest
      0 len=24: nest
        CIDR_MASK len=1: 24
        FAMILY len=2: 2
        IPADDR len=4: hex:0a010200
      0 len=36: nest
        CIDR_MASK len=1: 64
        FAMILY len=2: 10
        IPADDR len=16: hex:fd000000000000000000000000000000"
	expect_eq "$T_OUT" "$expected" "dump of wg0"
	# Peers come in creation order; an IPv6 endpoint is a sockaddr_in6 (28).
	expect_ok wg set wg0 peer "$p2" endpoint '[2001:db8::1]:51820' peer "$p3"
	expect_ok genl get --ifname wg0
	expect_eq "$(printf '%s\n' "$T_OUT" | sed -n 's/^    PUBLIC_KEY len=32: hex://p' | tr '\n' ' ')" \
		"$(b64hex "$peer") $(b64hex "$p2") $(b64hex "$p3") " "peer order"
	expect_match "$T_OUT" '^    ENDPOINT len=28: hex:0a00ca6c0000000020010db800000000000000000000000100000000$' "IPv6 endpoint"
	expect_ok genl get --ifname wg0 --order
	expect_eq "$T_OUT" "LISTEN_PORT FWMARK IFINDEX IFNAME PRIVATE_KEY PUBLIC_KEY PEERS[0[PUBLIC_KEY PRESHARED_KEY LAST_HANDSHAKE_TIME PERSISTENT_KEEPALIVE_INTERVAL TX_BYTES RX_BYTES PROTOCOL_VERSION ENDPOINT ALLOWEDIPS[0[CIDR_MASK FAMILY IPADDR] 0[CIDR_MASK FAMILY IPADDR]]] 0[PUBLIC_KEY PRESHARED_KEY LAST_HANDSHAKE_TIME PERSISTENT_KEEPALIVE_INTERVAL TX_BYTES RX_BYTES PROTOCOL_VERSION ENDPOINT] 0[PUBLIC_KEY PRESHARED_KEY LAST_HANDSHAKE_TIME PERSISTENT_KEEPALIVE_INTERVAL TX_BYTES RX_BYTES PROTOCOL_VERSION]]" "attribute order with peers"
}

# A dump larger than one message (wg_get_device_dumpit/get_peer). Message
# shapes, with D = the device attributes, F = a peer with all its attributes,
# C = a peer continued from the previous message (PUBLIC_KEY and the rest of
# its ALLOWEDIPS only):
# - the first message is D PEERS[F]: peer 1 has too many allowed IPs to fit;
# - ctx->next_peer stays NULL until a peer is complete, so every message that
#   continues peer 1 starts with D again: the second is D PEERS[C];
# - after that, messages are PEERS[C F...] or PEERS[F...], never D again.
t_get_multipart() {
	local conf=$KEYS/big.conf shape bad
	local full='0\[PUBLIC_KEY PRESHARED_KEY LAST_HANDSHAKE_TIME PERSISTENT_KEEPALIVE_INTERVAL TX_BYTES RX_BYTES PROTOCOL_VERSION ALLOWEDIPS\[A?\]\]'
	local cont='0\[PUBLIC_KEY ALLOWEDIPS\[A?\]\]'
	python3 - "$conf" <<-'EOF' || fail "cannot write $conf"
	import base64, sys
	key = lambda i: base64.b64encode(i.to_bytes(32, 'big')).decode()
	with open(sys.argv[1], 'w') as f:
	    f.write('[Interface]\nListenPort = 51820\n')
	    f.write('[Peer]\nPublicKey = %s\nAllowedIPs = %s\n' % (key(1), ', '.join(
	        '10.%d.%d.0/24' % (i // 256, i % 256) for i in range(3000))))
	    for i in range(2, 302):
	        f.write('[Peer]\nPublicKey = %s\nAllowedIPs = 172.16.%d.%d/32\n' % (key(i), i // 256, i % 256))
	EOF
	expect_ok ip link add wg0 type wireguard
	expect_ok wg setconf wg0 "$conf"
	expect_ok genl get --ifname wg0 --order
	expect_eq "$(printf '%s\n' "$T_OUT" | grep -o 'CIDR_MASK' | wc -l)" 3300 "allowed IPs in the dump"
	expect_eq "$(printf '%s\n' "$T_OUT" | grep -o 'PROTOCOL_VERSION' | wc -l)" 301 "complete peers in the dump"
	shape=$(printf '%s\n' "$T_OUT" | sed -E \
		-e 's/0\[CIDR_MASK FAMILY IPADDR\]( 0\[CIDR_MASK FAMILY IPADDR\])*/A/g' \
		-e "s/$full/F/g" -e "s/$cont/C/g" -e 's/F( F)+/F+/g' \
		-e 's/^LISTEN_PORT FWMARK IFINDEX IFNAME /D /')
	printf 'message shapes:\n%s\n' "$shape"
	expect_eq "$(sed -n 1p <<<"$shape")" "D PEERS[F]" "first message"
	expect_eq "$(sed -n 2p <<<"$shape")" "D PEERS[C]" "second message"
	bad=$(tail -n +2 <<<"$shape" | grep -vxE 'D PEERS\[C( F\+?)?\]|PEERS\[(C|F\+?)( F\+?)?\]')
	expect_eq "$bad" "" "messages of unexpected shape"
	bad=$(awk '/^PEERS/ { p = 1 } p && /^D / { print }' <<<"$shape")
	expect_eq "$bad" "" "device attributes after peer 1 was complete"
	expect_ok wg show wg0 allowed-ips
	expect_eq "$(printf '%s\n' "$T_OUT" | wc -l)" 301 "wg show allowed-ips lines"
	expect_eq "$(printf '%s\n' "$T_OUT" | head -n 1 | wc -w)" 3001 "wg show allowed-ips of peer 1 (key + 3000)"
}

# ---- genetlink: errors ---------------------------------------------------------

# Error codes, from drivers/net/wireguard/netlink.c (lookup_interface: EBADR,
# ENODEV, EOPNOTSUPP; set_peer: EINVAL, EPFNOSUPPORT), the generated policies
# (generated/netlink.c) as enforced by lib/nlattr.c under the strict
# validation genetlink uses for split ops, and net/netlink/genetlink.c.
# Note: NLA_POLICY_EXACT_LEN/MIN_LEN are range checks on the length, which fail
# with ERANGE, not EINVAL (nla_validate_range_unsigned).
t_genl_errors() {
	local idx
	expect_ok ip link add wg0 type wireguard
	expect_ok ip link add wgrs-d0 type dummy
	idx=$(sysfs wg0 ifindex)
	expect_genl_batch <<-EOF
	OK          set --ifname wg0
	OK          get --ifname wg0
	OK          set --ifindex $idx
	OK          get --ifindex $idx
	# lookup_interface()
	ENODEV      set --ifname wgrs-none
	ENODEV      get --ifname wgrs-none
	ENODEV      set --ifname 0123456789abcde
	ENODEV      set --ifindex 999999
	ENODEV      get --ifindex 999999
	ENODEV      set --ifindex 0
	EBADR       set
	EBADR       get
	EBADR       set --ifname wg0 --ifindex $idx
	EBADR       get --ifname wg0 --ifindex $idx
	EBADR       set --attr PRIVATE_KEY=rep:32:01
	EOPNOTSUPP  set --ifname wgrs-d0
	EOPNOTSUPP  get --ifname wgrs-d0
	EOPNOTSUPP  set --ifname lo
	EOPNOTSUPP  get --ifindex 1
	# NLA_NUL_STRING, len 15: a NUL within the first 16 bytes, at most 15 chars
	EINVAL      set --ifname 0123456789abcdef
	EINVAL      get --ifname 0123456789abcdef
	EINVAL      set --attr IFNAME=raw:wg0
	EINVAL      get --attr IFNAME=raw:wg0
	EINVAL      set --attr IFNAME=hex:
	# NLA_U32 / NLA_U16 of the wrong size (strict: exact length)
	EINVAL      set --attr IFINDEX=u64:$idx
	EINVAL      get --attr IFINDEX=u16:1
	EINVAL      set --ifname wg0 --attr LISTEN_PORT=u32:1
	EINVAL      set --ifname wg0 --attr LISTEN_PORT=u8:1
	EINVAL      set --ifname wg0 --attr FWMARK=u16:1
	EINVAL      set --ifname wg0 --attr FWMARK=u64:1
	EINVAL      set --ifname wg0 --attr FLAGS=u16:1
	# keys: exact length 32
	ERANGE      set --ifname wg0 --attr PRIVATE_KEY=rep:31:aa
	ERANGE      set --ifname wg0 --attr PRIVATE_KEY=rep:33:aa
	ERANGE      set --ifname wg0 --attr PRIVATE_KEY=hex:
	ERANGE      set --ifname wg0 --attr PUBLIC_KEY=rep:31:aa
	ERANGE      set --ifname wg0 --attr PUBLIC_KEY=rep:33:aa
	# NLA_POLICY_MASK(NLA_U32, 0x1)
	EINVAL      set --ifname wg0 --attr FLAGS=u32:2
	EINVAL      set --ifname wg0 --attr FLAGS=u32:0x80000000
	OK          set --ifname wg0 --attr FLAGS=u32:0
	# types 0 and > maxattr (SET: 8 PEERS, GET: 2 IFNAME) are rejected
	EINVAL      set --ifname wg0 --attr 99=u32:1
	EINVAL      set --ifname wg0 --attr 9=u32:1
	EINVAL      set --ifname wg0 --attr 0=u32:1
	EINVAL      get --ifname wg0 --attr 0=u32:1
	EINVAL      get --ifname wg0 --attr PRIVATE_KEY=rep:32:01
	EINVAL      get --ifname wg0 --attr LISTEN_PORT=u16:1
	# NLA_F_NESTED: required on PEERS, refused elsewhere
	EINVAL      set --ifname wg0 --attr PEERS=noflag{}
	EINVAL      set --ifname wg0 --attr 0x8007=u32:1
	OK          set --ifname wg0 --attr PEERS={}
	# genetlink core: trailing junk, reserved header byte, flags, commands
	EINVAL      set --ifname wg0 --trailing 2
	EINVAL      set --ifname wg0 --reserved 1
	EINVAL      set --ifname wg0 --nlflags 0x405
	EINVAL      get --ifname wg0 --nlflags 0x705
	EOPNOTSUPP  set --ifname wg0 --cmd 2
	EOPNOTSUPP  set --ifname wg0 --nlflags 0x305
	EOPNOTSUPP  get --ifname wg0 --nlflags 0x5
	# peers (policy of the nested array, then set_peer())
	ERANGE      set --ifname wg0 --attr PEERS={0=hex:0000}
	ERANGE      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:31:01}}
	ERANGE      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,PRESHARED_KEY=rep:33:01}}
	ERANGE      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,ENDPOINT=hex:0200}}
	ERANGE      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,LAST_HANDSHAKE_TIME=rep:8:00}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,FLAGS=u32:8}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,PERSISTENT_KEEPALIVE_INTERVAL=u32:1}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,99=u32:1}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,ALLOWEDIPS=noflag{}}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,ALLOWEDIPS={0={FAMILY=u16:2,IPADDR=ip4:10.0.0.1,CIDR_MASK=u8:32,FLAGS=u32:2}}}}
	ERANGE      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,ALLOWEDIPS={0={FAMILY=u16:2,IPADDR=hex:0a00,CIDR_MASK=u8:32}}}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PRESHARED_KEY=rep:32:01}}
	EPFNOSUPPORT set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,PROTOCOL_VERSION=u32:2}}
	OK          set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,PROTOCOL_VERSION=u32:1}}
	OK          set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:02,FLAGS=u32:4}}
	OK          set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:02,FLAGS=u32:1}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,ALLOWEDIPS={0={FAMILY=u16:2,IPADDR=ip4:10.0.0.1,CIDR_MASK=u8:33}}}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,ALLOWEDIPS={0={FAMILY=u16:2,IPADDR=ip4:10.0.0.1}}}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,ALLOWEDIPS={0={FAMILY=u16:10,IPADDR=ip4:10.0.0.1,CIDR_MASK=u8:32}}}}
	EINVAL      set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,ALLOWEDIPS={0={FAMILY=u16:7,IPADDR=ip4:10.0.0.1,CIDR_MASK=u8:32}}}}
	OK          set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:01,ENDPOINT=rep:20:00}}
	EOF
	# Only the peer 0x01.. exists (UPDATE_ONLY did not create 0x02..).
	expect_ok wg show wg0 peers
	expect_eq "$T_OUT" "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" "peers after the error matrix"
}

# A request refused by policy validation changes nothing.
t_failed_set_changes_nothing() {
	local k1 k2 before
	k1=$(newkey k1)
	k2=$(newkey k2)
	newkey p1 >/dev/null
	newkey p2 >/dev/null
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/k1" listen-port 1111 fwmark 0x11 \
		peer "$(pubkey p1)" allowed-ips 10.1.0.0/16 endpoint 192.0.2.1:1 \
		peer "$(pubkey p2)" allowed-ips fd00::/64 persistent-keepalive 5
	expect_ok wg show wg0 dump
	before=$T_OUT
	expect_eq "$(printf '%s\n' "$before" | wc -l)" 3 "lines of the dump before"
	# FLAGS=1 is WGDEVICE_F_REPLACE_PEERS: the peers would go, were it applied.
	expect_genl_batch <<-EOF
	EINVAL set --ifname wg0 --attr PRIVATE_KEY=b64:$k2 --attr LISTEN_PORT=u32:2222
	EINVAL set --ifname wg0 --attr PRIVATE_KEY=b64:$k2 --attr FWMARK=u32:0x22 --attr FLAGS=u32:3
	ERANGE set --ifname wg0 --attr PRIVATE_KEY=b64:$k2 --attr LISTEN_PORT=u16:2222 --attr PEERS={0={PUBLIC_KEY=rep:31:01}}
	EINVAL set --ifname wg0 --attr FLAGS=u32:1 --attr FWMARK=u32:0x22 --attr 99=hex:
	ERANGE set --ifname wg0 --attr FLAGS=u32:1 --attr PEERS={0={PUBLIC_KEY=rep:32:07},1={PUBLIC_KEY=rep:33:07}}
	EOF
	expect_ok wg show wg0 dump
	expect_eq "$T_OUT" "$before" "configuration after the refused requests"
}

# Errors from wg_set_device_doit() itself come after earlier parts of the
# request were applied (upstream applies fwmark, port, key, then peers in
# order, and does not roll back).
t_partial_apply() {
	local k2
	newkey k1 >/dev/null
	k2=$(newkey k2)
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/k1"
	expect_genl_batch <<-EOF
	EINVAL set --ifname wg0 --attr PRIVATE_KEY=b64:$k2 --attr FWMARK=u32:0x22 --attr LISTEN_PORT=u16:2222 --attr PEERS={0={PUBLIC_KEY=rep:32:03},1={PRESHARED_KEY=rep:32:04}}
	EOF
	expect_ok wg show wg0 private-key
	expect_eq "$T_OUT" "$k2" "private-key"
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" 0x22 "fwmark"
	expect_ok wg show wg0 listen-port
	expect_eq "$T_OUT" 2222 "listen-port"
	expect_ok wg show wg0 peers
	expect_eq "$T_OUT" "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=" "peers"
	# A bad allowed IP fails after its peer was created.
	expect_genl_batch <<-EOF
	EINVAL set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:05,ALLOWEDIPS={0={FAMILY=u16:2,IPADDR=ip4:10.0.0.1,CIDR_MASK=u8:32},0={FAMILY=u16:2,IPADDR=ip4:10.0.0.2,CIDR_MASK=u8:40}}}}
	EOF
	expect_ok wg show wg0 allowed-ips
	expect_match "$T_OUT" '^BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=	10\.0\.0\.1/32$' "allowed-ips"
}

# ---- permissions ----------------------------------------------------------------

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all)

# GENL_UNS_ADMIN_PERM: CAP_NET_ADMIN over the user namespace owning the
# device's netns; resolving the family needs nothing.
t_unprivileged() {
	expect_ok ip link add wg0 type wireguard
	expect_fail_errno EPERM unshare -U -r wg show wg0
	expect_fail_errno EPERM unshare -U -r wg set wg0 fwmark 1
	expect_fail_errno EPERM "${NOBODY[@]}" wg show wg0
	expect_fail_errno EPERM "${NOBODY[@]}" wg set wg0 fwmark 1
	expect_genl_batch unshare -U -r <<-EOF
	OK     family
	EPERM  get --ifname wg0
	EPERM  set --ifname wg0
	EPERM  set --ifname wg0 --attr PRIVATE_KEY=rep:32:01
	EPERM  get --ifname wgrs-none
	EOF
	expect_genl_batch "${NOBODY[@]}" <<-EOF
	OK     family
	EPERM  get --ifname wg0
	EPERM  set --ifname wg0 --attr FWMARK=u32:1
	EOF
	expect_ok wg show wg0 fwmark
	expect_eq "$T_OUT" off "fwmark after refused sets"
	expect_ok wg show wg0 private-key
	expect_eq "$T_OUT" "(none)" "private-key after refused sets"
}

# A device moved into a netns owned by an unprivileged user namespace: its
# root may configure it, except listen-port and fwmark, which need
# CAP_NET_ADMIN over the netns that created the device (the init netns).
userns_ready() { [ "$(readlink "/proc/$1/ns/net")" != "$(readlink /proc/self/ns/net)" ]; }
t_userns_owner() {
	local pid
	unshare -U -r -n sleep 600 </dev/null >/dev/null 2>&1 &
	pid=$!
	bg_pid "$pid"
	wait_for 10 userns_ready "$pid" || fail "unshare -U -r -n did not start"
	expect_ok ip link add wg0 type wireguard
	expect_ok ip link set wg0 netns "$pid"
	# The refused request names another key and a peer, which must not
	# be applied: the permission check comes before anything is.
	expect_genl_batch nsenter -t "$pid" -U -n <<-EOF
	OK     get --ifname wg0
	EPERM  set --ifname wg0 --attr LISTEN_PORT=u16:1234
	EPERM  set --ifname wg0 --attr FWMARK=u32:1
	OK     set --ifname wg0 --attr PRIVATE_KEY=rep:32:01
	EPERM  set --ifname wg0 --attr PRIVATE_KEY=rep:32:03 --attr FWMARK=u32:1 --attr PEERS={0={PUBLIC_KEY=rep:32:04}}
	OK     set --ifname wg0 --attr PEERS={0={PUBLIC_KEY=rep:32:02}}
	EOF
	expect_ok nsenter -t "$pid" -n wg show wg0 private-key
	expect_eq "$T_OUT" "AAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAUE=" "private-key (clamped 0x01..)"
	expect_ok nsenter -t "$pid" -n wg show wg0 peers
	expect_eq "$T_OUT" "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=" "peers"
	expect_ok nsenter -t "$pid" -n wg show wg0 fwmark
	expect_eq "$T_OUT" off "fwmark"
	# Real root (init user namespace) may.
	expect_ok nsenter -t "$pid" -n wg set wg0 listen-port 1234 fwmark 1
	expect_ok nsenter -t "$pid" -n wg show wg0 listen-port
	expect_eq "$T_OUT" 1234 "listen-port set by init-namespace root"
	expect_ok nsenter -t "$pid" -n ip link del wg0
}

# python3 -c "$RTNL_DUMP_HAS" HEX...: prints the size of an RTM_GETLINK dump
# (which needs no privilege); exits 0 if its raw bytes hold any of the byte
# strings HEX..., 1 if not.
RTNL_DUMP_HAS='
import socket, struct, sys
keys = [bytes.fromhex(h) for h in sys.argv[1:]]
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
# RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, an empty ifinfomsg.
s.send(struct.pack("=LHHLL", 32, 18, 0x301, 1, 0) + struct.pack("=BBHiII", 0, 0, 0, 0, 0, 0))
data, done = b"", False
while not done:
    buf = s.recv(1 << 16)
    data += buf
    off = 0
    while off + 16 <= len(buf):
        length, kind = struct.unpack_from("=LH", buf, off)
        done |= kind in (2, 3)  # NLMSG_ERROR, NLMSG_DONE
        off += max((length + 3) & ~3, 16)
print("rtnl dump: %d bytes" % len(data))
sys.exit(0 if any(k in data for k in keys) else 1)
'

# The private and preshared keys never reach a caller without
# CAP_NET_ADMIN over the device's netns (upstream: GENL_UNS_ADMIN_PERM on
# get-device too): with both set, every read such a caller can make fails
# with EPERM or shows neither key (base64 or hex), and rtnetlink's link
# dump, which anyone may read, holds neither key's bytes. Root's reads, the
# positive control, show both in the same forms.
t_unprivileged_no_keys() {
	local priv psk hex pat runner
	priv=$(newkey k1)
	psk=$(newkey psk)
	hex="$(b64hex "$priv") $(b64hex "$psk")"
	# As regular expressions: base64 has '+'.
	priv=${priv//+/\\+} psk=${psk//+/\\+}
	pat="$priv|$psk|${hex% *}|${hex#* }"
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/k1" peer "$(newkey k2 >/dev/null; pubkey k2)" \
		preshared-key "$KEYS/psk" allowed-ips 10.0.0.2/32
	expect_ok wg showconf wg0
	expect_match "$T_OUT" "PrivateKey = $priv" "root's showconf"
	expect_match "$T_OUT" "PresharedKey = $psk" "root's showconf"
	expect_ok genl get --ifname wg0
	expect_match "$T_OUT" "PRIVATE_KEY len=32: hex:${hex% *}" "root's get-device"
	expect_match "$T_OUT" "PRESHARED_KEY len=32: hex:${hex#* }" "root's get-device"
	for runner in "unshare -U -r" "${NOBODY[*]}"; do
		# (Word splitting of $runner and $hex is meant.)
		expect_fail_errno EPERM $runner wg show wg0 private-key
		expect_no_match "$T_OUT" "$pat" "$runner wg show wg0 private-key"
		expect_fail_errno EPERM $runner wg show wg0 preshared-keys
		expect_no_match "$T_OUT" "$pat" "$runner wg show wg0 preshared-keys"
		expect_fail_errno EPERM $runner wg showconf wg0
		expect_no_match "$T_OUT" "$pat" "$runner wg showconf wg0"
		run $runner wg show all dump
		expect_no_match "$T_OUT" "$pat" "$runner wg show all dump"
		expect_fail_errno EPERM $runner python3 "$GENL" get --ifname wg0
		expect_no_match "$T_OUT" "$pat" "$runner get-device"
		expect_ok $runner ip -d link show wg0
		expect_no_match "$T_OUT" "$pat" "$runner ip -d link show"
		run $runner python3 -c "$RTNL_DUMP_HAS" $hex
		expect_match "$T_OUT" '^rtnl dump: [0-9]+ bytes' "$runner's rtnl dump"
		[ "$T_RC" = 1 ] || fail "$runner's rtnl link dump holds a key"
	done
	# Nor for root; and the search finds what is there ("wg0\0").
	run python3 -c "$RTNL_DUMP_HAS" $hex
	[ "$T_RC" = 1 ] || fail "root's rtnl link dump holds a key: $T_OUT"
	run python3 -c "$RTNL_DUMP_HAS" 77673000
	[ "$T_RC" = 0 ] || fail "the rtnl dump search does not find the name wg0: $T_OUT"
}

# ---- dumps left unread ------------------------------------------------------------

# conf_300 FILE: 300 peers, a /24 each: a dump of several messages.
conf_300() {
	python3 - "$1" <<-'EOF' || fail "cannot write $1"
	import base64, sys
	key = lambda i: base64.b64encode(i.to_bytes(32, 'big')).decode()
	with open(sys.argv[1], 'w') as f:
	    f.write('[Interface]\nListenPort = 51820\n')
	    for i in range(1, 301):
	        f.write('[Peer]\nPublicKey = %s\nAllowedIPs = 10.%d.%d.0/24\n' % (key(i), i // 256, i % 256))
	EOF
}

# The device is deleted while a dump nobody reads is in progress. Here the
# drivers differ, deliberately. The C driver holds the device from the
# dump's start to its end (wg_get_device_start/done): `ip link del` waits
# until the dump is read or its socket closed (the kernel starts warning
# "waiting for wg0 to become free" after 10 s), and the dump then ends
# normally. Ours names the device instead of holding it (netlink.rs
# DumpCursor): the delete is done at once, and the dump ends with ENODEV;
# no reader can hold up RTNL users. (Bounds: 10 s only tells a hang from a
# slow machine; 3 s for C, whose wait is endless, stays clear of the warning.)
t_dump_unread_del() {
	conf_300 "$KEYS/300.conf"
	expect_ok ip link add wg0 type wireguard
	expect_ok wg setconf wg0 "$KEYS/300.conf"
	expect_eq "$(wg show wg0 peers | wc -l)" 300 "peers"
	if [ "$IMPL" = rs ]; then
		expect_ok python3 tests/dump-hold.py wg0 10 ip link del wg0
		expect_match "$T_OUT" '^cmd: rc=0 in ' "ip link del during the dump"
		expect_match "$T_OUT" '^dump: [0-9]+ messages, then ENODEV$' "the rest of the dump"
	else
		expect_ok python3 tests/dump-hold.py wg0 3 ip link del wg0
		expect_match "$T_OUT" '^cmd: running after 3 s$' "ip link del during the dump"
		expect_match "$T_OUT" '^dump: [0-9]+ messages, then DONE$' "the rest of the dump"
		expect_match "$T_OUT" '^cmd: rc=0 once the dump was read$' "ip link del after the dump"
	fi
	expect_fail ip link show wg0
}

# A dump in progress holds the module: netlink_dump_start() takes a
# reference on the family's module, which `rmmod` refuses to unload ("in
# use") until the dump is read; then it goes, devices and all.
t_dump_unread_rmmod() {
	conf_300 "$KEYS/300.conf"
	expect_ok ip link add wg0 type wireguard
	expect_ok wg setconf wg0 "$KEYS/300.conf"
	expect_fail python3 tests/dump-hold.py wg0 10 rmmod "$WGRS_MODULE"
	expect_match "$T_OUT" "Module $WGRS_MODULE is in use" "rmmod during the dump"
	expect_match "$T_OUT" '^cmd: rc=1 in ' "rmmod during the dump"
	expect_match "$T_OUT" '^dump: [0-9]+ messages, then DONE$' "the rest of the dump"
	loaded || fail "$WGRS_MODULE was unloaded during the dump"
	expect_ok wg show wg0 peers
	expect_eq "$(printf '%s\n' "$T_OUT" | wc -l)" 300 "peers after the refused rmmod"
	expect_ok rmmod "$WGRS_MODULE"
	expect_fail ip link show wg0
}

# ---- beyond the C driver (IMPL=rs only) -------------------------------------------

# `ip link add all type wireguard` fails late: the device is listed, then the
# IPv4/IPv6 notifiers refuse the name "all" and it is unregistered again.
# Meanwhile set-device on "all" can find it. Our state lives until the core
# frees the device, and set-device refuses a device that is not registered:
# so no use-after-free (slab poisoning on the command line turns one into a
# crash), and no set-device succeeds. The C driver frees its state at once
# and, under this race, logs WARNINGs in __netif_napi_del_locked. Raced as
# root, then from an unprivileged user namespace in a network namespace it
# owns: anyone who may create one reaches this path.
t_register_fails_late_race() {
	grep -q 'slub_debug' /proc/cmdline || fail "needs slub_debug on the kernel command line (make check sets it)"
	expect_ok python3 tests/register-race.py 10
	expect_match "$T_OUT" '^newlink: EINVAL=[0-9]+; set: ENODEV=[0-9]+$' "race results as root"
	expect_ok unshare -U -r -n python3 tests/register-race.py 10
	expect_match "$T_OUT" '^newlink: EINVAL=[0-9]+; set: ENODEV=[0-9]+$' "race results in a user namespace"
}

# ---- unload -----------------------------------------------------------------------

t_unload() {
	newkey k1 >/dev/null
	newkey p1 >/dev/null
	expect_ok ip netns add wgrs-ns2
	expect_ok ip link add wg0 type wireguard
	expect_ok ip link add wg1 type wireguard
	expect_ok ip link add wg2 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/k1" listen-port 51830 \
		peer "$(pubkey p1)" allowed-ips 10.9.0.0/24 endpoint 127.0.0.1:51831 persistent-keepalive 1
	expect_ok ip addr add 10.9.0.1/24 dev wg0
	expect_ok ip link set wg0 up
	expect_ok wg set wg1 listen-port 51832
	expect_ok ip link set wg1 up
	expect_ok ip link set wg2 netns wgrs-ns2
	expect_ok ip -n wgrs-ns2 link set wg2 up
	ping -c 1 -W 1 10.9.0.2 >/dev/null 2>&1 # queue a packet, start a handshake
	port_bound 51830 || fail "port 51830 not bound"
	expect_ok rmmod "$WGRS_MODULE"
	! loaded || fail "$WGRS_MODULE still loaded after rmmod"
	expect_eq "$(wg_links)" "" "wireguard links in the init netns"
	expect_eq "$(wg_links wgrs-ns2)" "" "wireguard links in wgrs-ns2"
	expect_fail ip link show wg0
	expect_fail ip -n wgrs-ns2 link show wg2
	! port_bound 51830 || fail "port 51830 still bound after rmmod"
	! port_bound 51832 || fail "port 51832 still bound after rmmod"
	# And it comes back.
	expect_ok modprobe "$WGRS_MODULE"
	expect_ok ip link add wg0 type wireguard
	expect_ok wg set wg0 private-key "$KEYS/k1"
	expect_ok wg show wg0 public-key
	expect_eq "$T_OUT" "$(pubkey k1)" "public-key after reload"
	expect_ok ip link del wg0
	expect_ok rmmod "$WGRS_MODULE"
	expect_ok modprobe "$WGRS_MODULE"
}

# ---- run --------------------------------------------------------------------------

echo "check.sh: IMPL=$IMPL WGRS_MODULE=$WGRS_MODULE kernel $(uname -r)"
run_test autoload-rtnl-link         t_autoload_rtnl
run_test autoload-genl-family       t_autoload_genl
run_test modprobe-banner-aliases    t_modprobe
run_test genl-family-info           t_genl_family
run_test link-add-del               t_link_add_del
run_test link-properties            t_link_properties
run_test link-up-down               t_link_up_down
run_test link-mtu                   t_link_mtu
run_test link-netns                 t_link_netns
run_test creating-netns-gone        t_creating_netns_gone
run_test wg-show                    t_wg_show
run_test private-key                t_private_key
run_test private-key-clamped        t_private_key_clamped
run_test private-key-remove         t_private_key_remove
run_test listen-port                t_listen_port
run_test listen-port-up             t_listen_port_up
run_test eaddrinuse-keeps-fwmark    t_eaddrinuse_fwmark
run_test fwmark                     t_fwmark
run_test endpoints                  t_endpoints
run_test peer-values                t_peer_values
run_test private-key-zero-fresh     t_private_key_zero_fresh
run_test ignored-attributes         t_ignored_attributes
run_test lookup-altname             t_altname
run_test lookup-netns               t_netns_lookup
run_test peer-vs-own-key            t_peer_vs_own_key
run_test get-attribute-order        t_get_order
run_test get-dump-tree              t_get_tree
run_test get-dump-multipart         t_get_multipart
run_test genl-errors                t_genl_errors
run_test failed-set-changes-nothing t_failed_set_changes_nothing
run_test doit-partial-apply         t_partial_apply
run_test unprivileged-eperm         t_unprivileged
run_test userns-owned-netns         t_userns_owner
run_test unprivileged-no-keys       t_unprivileged_no_keys
run_test dump-unread-device-del     t_dump_unread_del
run_test dump-unread-rmmod          t_dump_unread_rmmod
if [ "$IMPL" = rs ]; then
	run_test register-fails-late-race t_register_fails_late_race
else
	echo "skip register-fails-late-race: the C driver WARNs there"
fi
run_test unload                     t_unload
summary

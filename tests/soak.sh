#!/bin/bash
# One boot of `make soak`: the part of the suite that creates UDP sockets
# (the device's, on up and on listen-port changes; userspace ones connected
# over IPv4 and IPv6) and sets IPv4 and IPv6 endpoints. These are the paths
# that flip once-only static keys (udp_ehashfn's net_get_random_once, the
# UDP encap and memalloc-socket keys) early in a boot.
set -u
cd "$(dirname "$0")/.." || exit 1
python3 - <<'PY' || exit 1
import socket
for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.connect((addr, 9))
    s.close()
PY
exec tests/check.sh link-up-down link-netns creating-netns-gone listen-port wg-show get-dump-tree

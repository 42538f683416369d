#!/bin/bash
# One boot of `make soak`: what patches kernel text at run time in our
# tests, made to happen often.
#
# 1. Static-key churn: a socket turns timestamping on and off, 1000 times,
#    pausing after each step so that the deferred work that flips the
#    netstamp_needed_key static branch runs every time, while the other vCPU
#    runs a ping flood through the receive path that executes that branch.
# 2. The part of the suite that creates UDP sockets (the device's, on up and
#    on listen-port changes; userspace ones connected over IPv4 and IPv6)
#    and sets IPv4 and IPv6 endpoints: the paths that flip once-only static
#    keys (udp_ehashfn's net_get_random_once, the UDP encap and memalloc
#    socket keys) early in a boot.
set -u
cd "$(dirname "$0")/.." || exit 1
ping -f -q -w 60 127.0.0.1 >/dev/null 2>&1 &
flood=$!
python3 - <<'PY' || exit 1
import socket, time
SO_TIMESTAMP = 29
start = time.monotonic()
for i in range(1000):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
    time.sleep(0.003)  # the deferred enable runs
    s.close()
    time.sleep(0.003)  # the deferred disable runs
print("static-key churn: 1000 cycles in %.1f s" % (time.monotonic() - start))
for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.connect((addr, 9))
    s.close()
PY
kill "$flood" 2>/dev/null
wait "$flood" 2>/dev/null
exec tests/check.sh link-up-down link-netns creating-netns-gone listen-port wg-show get-dump-tree

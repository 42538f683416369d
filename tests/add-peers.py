#!/usr/bin/env python3
"""Adds many peers to a device quickly, over raw generic netlink.

  add-peers.py IFNAME FIRST COUNT [PER-MESSAGE]

Adds the peers whose public keys are the 32-byte big-endian numbers FIRST to
FIRST + COUNT - 1 (no other attributes), PER-MESSAGE (default, and at most,
1600: an attribute's length is 16 bits) per set-device request, and prints "added COUNT peers in S s (M messages)". On
an error it prints "ERRNO after K messages" (peers of the failing message up
to the failing one are added, as always) and exits 1. Building the requests
here avoids what `wg setconf` costs at this scale: a configuration file,
its parsing and its copy in memory.
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genl  # noqa: E402

WGDEVICE_A_IFNAME, WGDEVICE_A_PEERS, WGPEER_A_PUBLIC_KEY = 2, 8, 1


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    ifname, first, count = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3], 0)
    per = int(sys.argv[4], 0) if len(sys.argv) == 5 else 1600
    if not 0 < per <= 1600:
        print('PER-MESSAGE must be 1 to 1600', file=sys.stderr)
        return 2
    sock = genl.open_socket()
    sock.settimeout(600)
    family = struct.unpack('=H', genl.resolve_family(sock, 'wireguard')['FAMILY_ID'])[0]
    head = genl.nla(WGDEVICE_A_IFNAME, ifname.encode() + b'\0')
    # A peer nest: header (len 40, type 0 | NLA_F_NESTED), then PUBLIC_KEY.
    nest = struct.pack('=HH', 40, genl.NLA_F_NESTED) + struct.pack('=HH', 36, WGPEER_A_PUBLIC_KEY)
    start = time.monotonic()
    messages = 0
    for base in range(first, first + count, per):
        n = min(per, first + count - base)
        peers = b''.join(nest + k.to_bytes(32, 'big') for k in range(base, base + n))
        attrs = head + struct.pack('=HH', 4 + len(peers), WGDEVICE_A_PEERS | genl.NLA_F_NESTED) + peers
        try:
            genl.transact(sock, family, genl.WG_CMD_SET_DEVICE,
                          genl.NLM_F_REQUEST | genl.NLM_F_ACK, attrs)
        except genl.KernelError as e:
            print('%s after %d messages' % (genl.ERRNO_NAMES.get(e.err, e.err), messages))
            return 1
        messages += 1
    print('added %d peers in %.1f s (%d messages)' % (count, time.monotonic() - start, messages))
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""How a get-device dump of a device splits into messages.

  dump-split.py IFNAME SIZE...

For each read size SIZE (bytes; it sets the size of the dump's messages
after the first), one line "read size SIZE: N messages", then one line per
message: its attribute names in order, nests as NAME[...] (`genl.py get
--order`). Each dump reads on a socket of its own, so that no earlier read
sizes its messages. Run with the same configuration against two drivers,
the outputs are equal when their messages end at the same attributes.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genl  # noqa: E402

DUMP_FLAGS = genl.NLM_F_REQUEST | genl.NLM_F_ACK | genl.NLM_F_DUMP
WGDEVICE_A_IFNAME = 2


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ifname, sizes = sys.argv[1], [int(size) for size in sys.argv[2:]]
    ctl = genl.open_socket()
    family = struct.unpack('=H', genl.resolve_family(ctl, 'wireguard')['FAMILY_ID'])[0]
    ctl.close()
    for size in sizes:
        sock = genl.open_socket()
        genl.send_request(sock, family, genl.WG_CMD_GET_DEVICE, DUMP_FLAGS,
                          genl.nla(WGDEVICE_A_IFNAME, ifname.encode() + b'\0'))
        try:
            replies = genl.read_replies(sock, DUMP_FLAGS, bufsize=size)
        except genl.KernelError as e:
            sys.exit('dump-split.py: read size %d: %s' % (size, genl.ERRNO_NAMES.get(e.err, e.err)))
        sock.close()
        print('read size %d: %d messages' % (size, len(replies)))
        for _, _, _, data in replies:
            print(genl.order('device', data))


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Starts a get-device dump, leaves it unread while a command runs, then
reads what is left of it.

  dump-hold.py IFNAME TIMEOUT CMD...

Prints "cmd: rc=N in S s" (rc=timeout if CMD did not end within TIMEOUT
seconds, and it is then killed), then "dump: M messages, then END", END
being DONE, DUMP_INTR (the last message carried NLM_F_DUMP_INTR) or an errno
name. Exits 0 when CMD succeeded in time.
"""
import errno
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genl  # noqa: E402

NLM_F_DUMP_INTR = 0x10


def main():
    ifname, timeout, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    sock = genl.open_socket()
    family = struct.unpack('=H', genl.resolve_family(sock, 'wireguard')['FAMILY_ID'])[0]
    payload = struct.pack('=BBH', genl.WG_CMD_GET_DEVICE, 1, 0) + genl.nla(2, ifname.encode() + b'\0')
    flags = genl.NLM_F_REQUEST | genl.NLM_F_ACK | genl.NLM_F_DUMP
    # Sending runs the dump's first round; later rounds wait for our reads.
    sock.send(struct.pack('=IHHII', 16 + len(payload), family, flags, 7, 0) + payload)

    start = time.monotonic()
    try:
        rc = subprocess.run(cmd, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        rc = 'timeout'
    print('cmd: rc=%s in %.2f s' % (rc, time.monotonic() - start))

    messages, end = 0, None
    while end is None:
        data = sock.recv(1 << 20)
        off = 0
        while off + 16 <= len(data) and end is None:
            mlen, mtype, mflags, _, _ = struct.unpack_from('=IHHII', data, off)
            body = data[off + 16:off + mlen]
            off += (mlen + 3) & ~3
            if mtype in (genl.NLMSG_ERROR, genl.NLMSG_DONE):
                err = -struct.unpack_from('=i', body)[0] if len(body) >= 4 else 0
                if err:
                    end = errno.errorcode.get(err, str(err))
                else:
                    end = 'DUMP_INTR' if mflags & NLM_F_DUMP_INTR else 'DONE'
            else:
                messages += 1
                if mflags & NLM_F_DUMP_INTR:
                    end = 'DUMP_INTR'
    print('dump: %d messages, then %s' % (messages, end))
    return 0 if rc == 0 else 1


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""Starts a get-device dump, leaves it unread while a command runs, then
reads what is left of it.

  dump-hold.py IFNAME TIMEOUT CMD...

Prints "cmd: rc=N in S s" if CMD ended within TIMEOUT seconds; otherwise
"cmd: running after TIMEOUT s" (CMD may be waiting for the dump to go: it is
not killed, which could not work on a task in uninterruptible sleep, nor
help). Then "dump: M messages, then END", END being DONE, DUMP_INTR (the
last message carried NLM_F_DUMP_INTR) or an errno name; and, if CMD was
still running, "cmd: rc=N once the dump was read" when it ends (or "cmd:
still running 60 s after the dump was read"). Exits 0 when CMD succeeded.
"""
import errno
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genl  # noqa: E402


def read_rest(sock):
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
                    end = 'DUMP_INTR' if mflags & genl.NLM_F_DUMP_INTR else 'DONE'
            else:
                messages += 1
                if mflags & genl.NLM_F_DUMP_INTR:
                    end = 'DUMP_INTR'
    return messages, end


def main():
    ifname, timeout, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    sock = genl.open_socket()
    family = struct.unpack('=H', genl.resolve_family(sock, 'wireguard')['FAMILY_ID'])[0]
    payload = struct.pack('=BBH', genl.WG_CMD_GET_DEVICE, 1, 0) + genl.nla(2, ifname.encode() + b'\0')
    flags = genl.NLM_F_REQUEST | genl.NLM_F_ACK | genl.NLM_F_DUMP
    # Sending runs the dump's first round; later rounds wait for our reads.
    sock.send(struct.pack('=IHHII', 16 + len(payload), family, flags, 7, 0) + payload)

    start = time.monotonic()
    proc = subprocess.Popen(cmd)
    try:
        rc = proc.wait(timeout)
        print('cmd: rc=%s in %.2f s' % (rc, time.monotonic() - start))
    except subprocess.TimeoutExpired:
        rc = None
        print('cmd: running after %g s' % timeout)
    sys.stdout.flush()

    messages, end = read_rest(sock)
    print('dump: %d messages, then %s' % (messages, end))
    sock.close()
    if rc is None:
        try:
            rc = proc.wait(60)
            print('cmd: rc=%s once the dump was read' % rc)
        except subprocess.TimeoutExpired:
            print('cmd: still running 60 s after the dump was read')
    return 0 if rc == 0 else 1


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""Races a registration that fails late against set-device on the same name.

  register-race.py SECONDS

`ip link add all type wireguard` always fails, but late: register_netdevice
lists the device, then the IPv4/IPv6 NETDEV_REGISTER notifiers refuse the
name "all" and it is unregistered again. Meanwhile a lookup by name can find
it. One process loops RTM_NEWLINK "all" of kind wireguard, another loops
WG_CMD_SET_DEVICE on ifname "all" with a peer and an allowed IP, for SECONDS.

Prints "newlink: ERRNO=N ... set: ERRNO=N ..." (result histograms) and exits
1 if any set-device succeeded: the device never registered, so none may.
"""
import collections
import errno
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genl  # noqa: E402

NETLINK_ROUTE = 0
RTM_NEWLINK = 16
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND = 3, 18, 1
NAME = 'all'


def newlink_loop(deadline):
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    sock.bind((0, 0))
    attrs = genl.nla(IFLA_IFNAME, NAME.encode() + b'\0')
    attrs += genl.nla(IFLA_LINKINFO | genl.NLA_F_NESTED, genl.nla(IFLA_INFO_KIND, b'wireguard'))
    body = struct.pack('=BxHiII', socket.AF_UNSPEC, 0, 0, 0, 0) + attrs
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
    msg = struct.pack('=IHHII', 16 + len(body), RTM_NEWLINK, flags, 1, 0) + body
    results = collections.Counter()
    while time.monotonic() < deadline:
        sock.send(msg)
        reply = sock.recv(65536)
        err = -struct.unpack_from('=i', reply, 16)[0]
        results[errno.errorcode.get(err, 'OK' if err == 0 else str(err))] += 1
    return results


def set_loop(deadline):
    sock = genl.open_socket()
    family = struct.unpack('=H', genl.resolve_family(sock, 'wireguard')['FAMILY_ID'])[0]
    peer = '{0={PUBLIC_KEY=rep:32:01,ALLOWEDIPS={0={FAMILY=u16:2,IPADDR=ip4:10.0.0.1,CIDR_MASK=u8:32}}}}'
    attrs = genl.nla(2, NAME.encode() + b'\0') + genl.SpecParser('PEERS=' + peer).parse('device')
    results = collections.Counter()
    while time.monotonic() < deadline:
        try:
            genl.transact(sock, family, genl.WG_CMD_SET_DEVICE, NLM_F_REQUEST | NLM_F_ACK, attrs)
            results['OK'] += 1
        except genl.KernelError as e:
            results[errno.errorcode.get(e.err, str(e.err))] += 1
    return results


def histogram(results):
    return ' '.join('%s=%d' % kv for kv in sorted(results.items()))


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20
    deadline = time.monotonic() + seconds
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        os.write(write_end, histogram(newlink_loop(deadline)).encode())
        os._exit(0)
    os.close(write_end)
    sets = set_loop(deadline)
    newlinks = os.read(read_end, 4096).decode()
    os.waitpid(child, 0)
    print('newlink: %s; set: %s' % (newlinks, histogram(sets)))
    return 1 if sets['OK'] else 0


if __name__ == '__main__':
    sys.exit(main())

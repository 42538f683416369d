#!/usr/bin/env python3
# Sends random, mostly malformed set-device and get-device requests to the
# "wireguard" genetlink family: random attribute trees built from the real
# attribute types with random lengths, flags and nesting. Every request must
# be answered (an ack or an errno); the kernel must not complain (tools/vm-run
# fails the run on any warning). Half the requests are well-formed peer and
# allowed-IP updates with random mutations, which reach past the policy
# checks into set_peer. Prints an errno histogram.
#
#   python3 tests/netlink-fuzz.py IFNAME [COUNT [SEED]]
import errno
import os
import random
import socket
import struct
import sys
from collections import Counter

NETLINK_GENERIC = 16
GENL_ID_CTRL = 16
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000
WG_CMD_GET_DEVICE, WG_CMD_SET_DEVICE = 0, 1


def attr(atype, payload):
    data = struct.pack('=HH', 4 + len(payload), atype) + payload
    return data + b'\0' * (-len(data) % 4)


class Genl:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.settimeout(30)
        self.seq = 0

    def request(self, family, cmd, attrs, flags):
        self.seq += 1
        body = struct.pack('=BBH', cmd, 1, 0) + attrs
        self.sock.send(struct.pack('=IHHII', 16 + len(body), family, flags, self.seq, 0) + body)
        # Read until the ack, an error or the end of a dump.
        while True:
            data = self.sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                length, mtype, _, seq, _ = struct.unpack_from('=IHHII', data, off)
                if length < 16:
                    raise SystemExit('bad netlink reply')
                if seq == self.seq:
                    if mtype == NLMSG_ERROR:
                        return -struct.unpack_from('=i', data, off + 16)[0]
                    if mtype == NLMSG_DONE:
                        return 0
                off += (length + 3) & ~3

    def family(self, name):
        attrs = attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b'\0')
        self.seq += 1
        body = struct.pack('=BBH', CTRL_CMD_GETFAMILY, 1, 0) + attrs
        self.sock.send(struct.pack('=IHHII', 16 + len(body), GENL_ID_CTRL, NLM_F_REQUEST, self.seq, 0) + body)
        data = self.sock.recv(65536)
        off = 20
        while off + 4 <= len(data):
            alen, atype = struct.unpack_from('=HH', data, off)
            if atype == CTRL_ATTR_FAMILY_ID:
                return struct.unpack_from('=H', data, off + 4)[0]
            off += (alen + 3) & ~3
        raise SystemExit('family %s not found' % name)


def random_payload(rng):
    kind = rng.randrange(6)
    if kind == 0:
        return b''
    if kind == 1:
        return rng.randbytes(rng.choice([1, 2, 3, 4, 8]))
    if kind == 2:
        return rng.randbytes(rng.choice([15, 16, 17, 27, 28, 29, 31, 32, 33]))
    if kind == 3:
        return struct.pack('=I', rng.choice([0, 1, 2, 3, 7, 8, 0xffffffff, rng.getrandbits(32)]))
    if kind == 4:
        return rng.randbytes(rng.randrange(64))
    return struct.pack('=H', rng.choice([2, 10, 0, 0xffff]))


def random_tree(rng, depth):
    out = b''
    for _ in range(rng.randrange(1, 6)):
        atype = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 99, 0x7fff])
        if depth < 3 and rng.random() < 0.4:
            nested = b''.join(attr(i if rng.random() < 0.8 else rng.randrange(16),
                                   random_tree(rng, depth + 2))
                              for i in range(rng.randrange(4)))
            flag = NLA_F_NESTED if rng.random() < 0.9 else 0
            out += attr(atype | flag, nested)
        else:
            out += attr(atype, random_payload(rng))
    return out


def structured(rng, keys):
    """A mostly well-formed set-device body with peers and allowed IPs, each
    part mutated now and then, over a small pool of public keys so that
    requests update and remove the peers earlier ones created."""
    def maybe(p):
        return rng.random() < p

    peers = b''
    for _ in range(rng.randrange(1, 4)):
        p = attr(1, rng.choice(keys) if maybe(0.95) else rng.randbytes(rng.choice([31, 33])))
        if maybe(0.3):
            p += attr(2, rng.randbytes(32))
        if maybe(0.4):
            p += attr(3, struct.pack('=I', rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 0, 2, 8])))
        if maybe(0.3):
            fam = rng.choice([2, 10, 0, 1])
            p += attr(4, struct.pack('=H', fam) + rng.randbytes(rng.choice([14, 26, 10, 30])))
        if maybe(0.3):
            p += attr(5, struct.pack('=H', rng.getrandbits(16)))
        if maybe(0.7):
            ips = b''
            for _ in range(rng.randrange(1, 8)):
                fam = rng.choice([2, 10]) if maybe(0.95) else rng.choice([0, 3])
                alen = {2: 4, 10: 16}.get(fam, 4) if maybe(0.97) else rng.choice([0, 3, 5, 15, 17])
                ip = b''
                if maybe(0.98):
                    ip += attr(1, struct.pack('=H', fam))
                if maybe(0.98):
                    ip += attr(2, rng.randbytes(alen))
                if maybe(0.98):
                    cidr = rng.randrange(33 if fam == 2 else 129) if maybe(0.95) else rng.choice([33, 129, 255])
                    ip += attr(3, bytes([cidr]))
                if maybe(0.3):
                    ip += attr(4, struct.pack('=I', rng.choice([0, 1, 2])))
                ips += attr(NLA_F_NESTED, ip)
            p += attr(9 | NLA_F_NESTED, ips)
        if maybe(0.1):
            p += attr(10, struct.pack('=I', rng.choice([0, 1, 2])))
        peers += attr(NLA_F_NESTED, p)
    body = b''
    if maybe(0.1):
        body += attr(5, struct.pack('=I', 1))  # WGDEVICE_F_REPLACE_PEERS
    if maybe(0.05):
        body += attr(3, rng.randbytes(32))  # a private key
    return body + attr(8 | NLA_F_NESTED, peers)


def main():
    ifname = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else int.from_bytes(os.urandom(4), 'little')
    rng = random.Random(seed)
    genl = Genl()
    family = genl.family('wireguard')
    name = attr(2, ifname.encode() + b'\0')  # WGDEVICE_A_IFNAME
    keys = [rng.randbytes(32) for _ in range(8)]
    seen = Counter()
    for _ in range(count):
        if rng.random() < 0.5:
            tree = name + structured(rng, keys)
        else:
            tree = random_tree(rng, 0)
            if rng.random() < 0.8:
                tree = name + tree
        if rng.random() < 0.2:
            err = genl.request(family, WG_CMD_GET_DEVICE, tree, NLM_F_REQUEST | NLM_F_DUMP)
        else:
            err = genl.request(family, WG_CMD_SET_DEVICE, tree, NLM_F_REQUEST | NLM_F_ACK)
        seen[errno.errorcode.get(err, 'OK' if err == 0 else str(err))] += 1
    print('seed %d, %d requests: %s' % (seed, count, ', '.join(
        '%s %d' % kv for kv in sorted(seen.items(), key=lambda kv: -kv[1]))))


main()

#!/usr/bin/env python3
"""Turns an interface's offload features on or off, as `ethtool -K` would
(the guest has no ethtool), through the SIOCETHTOOL ioctl:

    ethtool-features.py IFACE NAME=on|off...

NAME is the kernel's name of the feature bit (`rx-gro` for GRO,
`rx-gro-list`, `tx-udp-segmentation`...). Exits 1, saying which, if a
feature is unknown or did not end up as asked.
"""
import array
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSSET_INFO = 0x37
ETHTOOL_GFEATURES = 0x3A
ETHTOOL_SFEATURES = 0x3B
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32


def ioctl(sock, ifname, buf):
    """SIOCETHTOOL on IFNAME with BUF (a bytearray), updated in place."""
    data = array.array("B", buf)
    addr, _ = data.buffer_info()
    ifreq = struct.pack("16sP", ifname.encode(), addr)
    fcntl.ioctl(sock, SIOCETHTOOL, ifreq)
    buf[:] = data.tobytes()


def feature_names(sock, ifname):
    """The names of the feature bits, in bit order."""
    info = bytearray(struct.pack("IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0))
    ioctl(sock, ifname, info)
    count = struct.unpack_from("I", info, 16)[0]
    strings = bytearray(struct.pack("III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count))
    strings += bytes(count * ETH_GSTRING_LEN)
    ioctl(sock, ifname, strings)
    names = []
    for i in range(count):
        raw = strings[12 + i * ETH_GSTRING_LEN:12 + (i + 1) * ETH_GSTRING_LEN]
        names.append(raw.split(b"\0", 1)[0].decode())
    return names


def active(sock, ifname, blocks):
    """The active feature words of IFNAME."""
    buf = bytearray(struct.pack("II", ETHTOOL_GFEATURES, blocks) + bytes(16 * blocks))
    ioctl(sock, ifname, buf)
    # Each block: available, requested, active, never_changed.
    return [struct.unpack_from("IIII", buf, 8 + 16 * b)[2] for b in range(blocks)]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ifname = sys.argv[1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    names = feature_names(sock, ifname)
    blocks = (len(names) + 31) // 32
    valid = [0] * blocks
    requested = [0] * blocks
    wanted = {}
    for arg in sys.argv[2:]:
        name, _, state = arg.partition("=")
        if name not in names or state not in ("on", "off"):
            sys.exit(f"ethtool-features: unknown feature or state: {arg}")
        bit = names.index(name)
        valid[bit // 32] |= 1 << (bit % 32)
        if state == "on":
            requested[bit // 32] |= 1 << (bit % 32)
        wanted[name] = (bit, state == "on")
    buf = bytearray(struct.pack("II", ETHTOOL_SFEATURES, blocks))
    for b in range(blocks):
        buf += struct.pack("II", valid[b], requested[b])
    ioctl(sock, ifname, buf)
    now = active(sock, ifname, blocks)
    for name, (bit, on) in wanted.items():
        if bool(now[bit // 32] & (1 << (bit % 32))) != on:
            sys.exit(f"ethtool-features: {ifname}: {name} is not {'on' if on else 'off'}")


if __name__ == "__main__":
    main()

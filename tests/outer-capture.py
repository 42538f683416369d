#!/usr/bin/env python3
"""Captures WireGuard's outer packets on an interface, as tcpdump would.

    outer-capture.py IFACE SECONDS PORT...

Prints one line per outgoing IPv4 or IPv6 UDP datagram from or to one of
the PORTs, until SECONDS have passed or SIGTERM arrives:

    SPORT DPORT TYPE TOS LEN

TYPE is the first byte of the UDP payload (the WireGuard message type),
TOS the IPv4 TOS byte or the IPv6 traffic class, LEN the UDP payload length.
Outgoing only, so that a packet looped back over `lo` is seen once.
The socket sees every frame on the interface (bulk tunnel traffic of other
tests included) and may fall behind: its buffer is large, and if the kernel
still dropped frames, a last line `dropped N` says so.
"""
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33
SOL_PACKET = 263
PACKET_STATISTICS = 6


def parse(frame):
    """(sport, dport, type, tos, len) of a UDP datagram in an IP frame."""
    version = frame[0] >> 4
    if version == 4:
        ihl = (frame[0] & 0x0F) * 4
        tos, proto = frame[1], frame[9]
        udp = frame[ihl:]
    elif version == 6:
        tos = ((frame[0] & 0x0F) << 4) | (frame[1] >> 4)
        proto = frame[6]
        udp = frame[40:]
    else:
        return None
    if proto != 17 or len(udp) < 9:
        return None
    sport, dport, length = struct.unpack("!HHH", udp[:6])
    return sport, dport, udp[8], tos, length - 8


def main():
    iface, seconds, ports = sys.argv[1], float(sys.argv[2]), {int(p) for p in sys.argv[3:]}
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    # Frames without a link-layer header: IP from the first byte (lo and
    # wg alike).
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    print("capturing", flush=True)
    deadline = time.monotonic() + seconds
    while not stop[0] and time.monotonic() < deadline:
        if not select.select([s], [], [], 0.1)[0]:
            continue
        frame, addr = s.recvfrom(65535)
        if addr[2] != PACKET_OUTGOING:
            continue
        fields = parse(frame)
        if fields and (fields[0] in ports or fields[1] in ports):
            print("%d %d %d 0x%02x %d" % fields, flush=True)
    # struct tpacket_stats: packets, drops (since the socket was made).
    _, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    if drops:
        print("dropped %d" % drops, flush=True)


if __name__ == "__main__":
    main()

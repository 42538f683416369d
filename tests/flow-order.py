#!/usr/bin/env python3
"""UDP flows through a tunnel under a burst: what order they arrive in.

    flow-order.py recv PORT SECONDS
    flow-order.py send ADDR PORT

The sender's flow 0 sends BURSTS bursts of SEGMENTS datagrams of SEGMENT
bytes, each burst one write (UDP_SEGMENT: GSO, so the tunnel gets the
burst at once; with a send buffer that holds them all, so that none
waits for the tunnel), then one small datagram; right after, flows 1 to
SMALL_FLOWS (sockets of their own, so flows of their own) send one small
datagram each. Every datagram starts with its flow and its number in the
flow.

The receiver prints, once SECONDS pass without a datagram, the arrival
order as "FLOW SEQ" lines, then the verdicts the tests read:

    order ok | order broken: FLOW SEQ after SEQ
    lost N of M
    overtook K

"order ok": every flow's datagrams arrived in the order they were sent.
"overtook K": K of the small flows' datagrams arrived before the last
datagram of flow 0's bursts, which was sent before them.
"""
import socket
import struct
import sys

BURSTS = 8
SEGMENTS = 40
SEGMENT = 1380  # + 28 bytes of headers: within the tunnel's MTU of 1420
SMALL = 64
SMALL_FLOWS = 4
UDP_SEGMENT = 103
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
TOTAL = BURSTS * SEGMENTS + 1 + SMALL_FLOWS


def datagram(flow, seq, size):
    return struct.pack("!II", flow, seq) + bytes(size - 8)


def send(addr, port):
    bulk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bulk.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, SEGMENT)
    bulk.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
    small = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SMALL_FLOWS)]
    seq = 0
    for _ in range(BURSTS):
        burst = b"".join(datagram(0, seq + i, SEGMENT) for i in range(SEGMENTS))
        bulk.sendto(burst, (addr, port))
        seq += SEGMENTS
    bulk.sendto(datagram(0, seq, SMALL), (addr, port))
    for flow, s in enumerate(small, 1):
        s.sendto(datagram(flow, 0, SMALL), (addr, port))


def recv(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    s.bind(("0.0.0.0", port))
    print("listening", flush=True)
    arrivals = []
    # No limit until the first datagram; then SECONDS of silence end it.
    while True:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        arrivals.append(struct.unpack("!II", data[:8]))
        s.settimeout(seconds)
    for flow, seq in arrivals:
        print(flow, seq)
    last = {}
    broken = None
    for flow, seq in arrivals:
        if flow in last and seq <= last[flow] and broken is None:
            broken = "order broken: %d %d after %d" % (flow, seq, last[flow])
        last[flow] = seq
    print(broken or "order ok")
    print("lost %d of %d" % (TOTAL - len(arrivals), TOTAL))
    last_bulk = BURSTS * SEGMENTS - 1
    end = next((i for i, (f, q) in enumerate(arrivals) if f == 0 and q == last_bulk), len(arrivals))
    print("overtook %d" % sum(1 for f, _ in arrivals[:end] if f != 0))


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]))
    else:
        recv(int(sys.argv[2]), float(sys.argv[3]))

#!/usr/bin/env python3
"""A meeting point for the two guests of tools/interop.

    interop-sync.py ROLE OTHER NAME [PAYLOAD]

Returns once the other guest has reached the point called NAME too, and
prints the PAYLOAD it brought. Guest a listens on TCP port 7777 (IPv4 and
IPv6), guest b connects to OTHER (retrying until a is there). Gives up
after 300 s.
"""
import socket
import sys
import time

PORT = 7777
TIMEOUT = 300


def exchange(conn, name, payload):
    conn.sendall(("%s %s\n" % (name, payload)).encode())
    line = conn.makefile().readline().strip()
    their_name, _, their_payload = line.partition(" ")
    if their_name != name:
        sys.exit("interop-sync: at %s, the other guest is at %r" % (name, their_name))
    return their_payload


def main():
    role, other, name = sys.argv[1:4]
    payload = sys.argv[4] if len(sys.argv) > 4 else "-"
    deadline = time.monotonic() + TIMEOUT
    if role == "a":
        server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        server.bind(("::", PORT))
        server.listen(1)
        server.settimeout(TIMEOUT)
        conn, _ = server.accept()
    else:
        while True:
            try:
                conn = socket.create_connection((other, PORT), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("interop-sync: guest a never came to %s" % name)
                time.sleep(0.2)
    conn.settimeout(TIMEOUT)
    print(exchange(conn, name, payload))


if __name__ == "__main__":
    main()

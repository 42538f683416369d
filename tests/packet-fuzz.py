#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Packet fuzzer: tests/wgpeer.py throws hostile datagrams at an up wg0 that
has peers and a live session (the namespaces of tests/hostile.py).

    python3 tests/packet-fuzz.py COUNT SEED      (root, in the test VM;
                                                 tests/packet-fuzz.sh runs it)

One seeded sequence (random.Random(SEED)) of COUNT datagrams, each of a
class drawn at random:
  trunc     a valid message of each type (an initiation, a response, a
            cookie reply, a data message), cut short or extended;
  flip      the same with 1-8 bits flipped;
  type      wrong type bytes, or non-zero reserved bytes;
  mac1      garbage of initiation or response size with a valid mac1 (it
            reaches the Diffie-Hellman work, or a cookie reply under load);
  cipher    a data message on the live session's index with garbage
            ciphertext;
  replay    captured valid traffic (our initiations and data messages) again;
  random    random bytes, 0-200 long;
  inner     a valid data message on the live session, with a new counter,
            whose plaintext is a keepalive, too short or not IPv4/IPv6, an
            IPv4 header whose length is too small or too big, a packet from
            outside the peer's allowed IPs, or a good packet.
Every 60 s the session is replaced by a new handshake (a session dies after
REJECT_AFTER_TIME, 180 s). For the authenticated classes the expected change
of wg0's rx counters is what upstream's receive.c counts (rx_packets and
rx_bytes: keepalives, accepted handshakes and delivered packets, by the data
message's length; rx_errors with rx_frame_errors or rx_length_errors for
the dishonest ones); nothing else may count. Afterwards the live session
must still carry traffic both ways, and the counters must add up. Prints the
seed first and in the result line: rerun with it to replay the sequence (the
seed fixes the classes, lengths, bit positions and random bytes; the keys,
and so every authenticated byte, and when the session is replaced differ
from run to run).
"""

import os
import random
import select
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import (  # noqa: E402
    DUT_INNER, PEER_INNER, WAIT, Env, Fail, check, inner, sent_and_seen, teardown)
from wgpeer import (  # noqa: E402
    LEN_COOKIE, LEN_INITIATION, LEN_RESPONSE, MSG_COOKIE, MSG_DATA, MSG_INITIATION, MSG_RESPONSE,
    MAC, index_of, ipv4_udp, mac1_key, msg_type, parse_ipv4_udp)

CLASSES = ["trunc", "flip", "type", "mac1", "cipher", "replay", "random", "inner"]
# Relative weights: the authenticated class costs an AEAD in Python.
WEIGHTS = [3, 3, 2, 1, 2, 2, 3, 2]
ROTATE = 60.0


class Fuzzer:
    def __init__(self, env, seed):
        self.env, self.rng = env, random.Random(seed)
        self.counts = dict.fromkeys(CLASSES, 0)
        self.inner_counts = {}
        # Expected changes of wg0's rx counters and the peer's rx bytes.
        self.want = dict.fromkeys(("packets", "bytes", "errors", "frame_errors", "length_errors"), 0)
        self.peer_rx = 0
        self.captured = []
        self.outstanding = {}
        self.new_session()

    def new_session(self):
        """A new session, confirmed; under load (the mac1 class can put wg0
        there) it takes a cookie reply and a retry with mac2."""
        env = self.env
        self.quiet()
        for _ in range(10):
            time.sleep(0.05)
            ini = env.peer.initiation()
            self.outstanding[ini.index] = ini
            env.ep.send(ini.msg)
            m = env.ep.recv_until(lambda m: msg_type(m) in (MSG_RESPONSE, MSG_COOKIE) and index_of(m) == ini.index,
                                  WAIT)
            if m is None:
                continue
            if msg_type(m) == MSG_COOKIE:
                env.peer.consume_cookie(m, ini.mac1)
                continue
            del self.outstanding[ini.index]
            self.account_packet(LEN_INITIATION)
            s = env.peer.consume_response(ini, m)
            check(s is not None, "the response does not verify")
            break
        else:
            raise Fail("no new session in 10 tries")
        self.session, self.born = s, time.monotonic()
        self.templates = {
            MSG_INITIATION: ini.msg,
            MSG_RESPONSE: m,       # wg0's own response, as if wg0 were an initiator
            MSG_COOKIE: struct.pack("<II", MSG_COOKIE, s.remote_index) + self.rand(LEN_COOKIE - 8),
            MSG_DATA: s.seal(inner("template")),
        }
        # The data template, sent once (it confirms the session), then a
        # marker; both counted.
        self.flush_tap()
        seen = sent_and_seen(env, [self.templates[MSG_DATA]], s, "new session")
        check(seen == ["template"], "a new session delivered %s" % seen)
        self.account_packet(len(self.templates[MSG_DATA]))
        self.account_packet(env.marker_len)
        self.captured = [ini.msg, self.templates[MSG_DATA]]

    def flush_tap(self):
        """Forgets the inner packets wg0 delivered so far (the good ones)."""
        tap = self.env.tap
        while select.select([tap], [], [], 0)[0]:
            tap.recv(65535)

    def forget(self):
        """Reads what wg0 sent back (cookie replies, keepalives, ICMP) and
        forgets it, but for late responses to our initiations (each one an
        initiation wg0 accepted and counted)."""
        self.env.ep.drain()
        for _, m in self.env.ep.log:
            if msg_type(m) == MSG_RESPONSE and index_of(m) in self.outstanding:
                del self.outstanding[index_of(m)]
                self.account_packet(LEN_INITIATION)
        self.env.ep.log.clear()
        self.env.ep.taken.clear()

    def quiet(self, limit=300):
        """Waits until wg0 has sent nothing for 3 s (its handshake queue has
        drained: under load it answers queued initiations with cookie
        replies) and 1 s more (under load lasts a second longer)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            n = len(self.env.ep.log)
            self.env.ep.drain(3)
            if len(self.env.ep.log) == n:
                break
            self.forget()
        time.sleep(1)
        self.forget()

    def account_packet(self, length):
        self.want["packets"] += 1
        self.want["bytes"] += length
        self.peer_rx += length

    def rand(self, n):
        return self.rng.randbytes(n)

    def make(self):
        r = self.rng
        cls = r.choices(CLASSES, WEIGHTS)[0]
        self.counts[cls] += 1
        t = self.templates[r.choice(list(self.templates))]
        if cls == "trunc":
            if r.random() < 0.5:
                return t[:r.randrange(len(t))]
            return t + self.rand(r.randint(1, 64))
        if cls == "flip":
            m = bytearray(t)
            for _ in range(r.randint(1, 8)):
                i = r.randrange(len(m) * 8)
                m[i // 8] ^= 1 << (i % 8)
            return bytes(m)
        if cls == "type":
            m = bytearray(t)
            if r.random() < 0.5:
                m[0] = r.choice([b for b in range(256) if b != m[0]])
            else:
                m[r.randint(1, 3)] = r.randint(1, 255)
            return bytes(m)
        if cls == "mac1":
            size = r.choice([LEN_INITIATION, LEN_RESPONSE])
            body = struct.pack("<I", MSG_INITIATION if size == LEN_INITIATION else MSG_RESPONSE) + self.rand(size - 36)
            return body + MAC(mac1_key(self.env.dut_pub), body) + (self.rand(16) if r.random() < 0.5 else b"\0" * 16)
        if cls == "cipher":
            return struct.pack("<IIQ", MSG_DATA, self.session.remote_index, r.getrandbits(64)) + \
                self.rand(16 + 16 * r.randint(0, 8))
        if cls == "replay":
            return r.choice(self.captured)
        if cls == "random":
            return self.rand(r.randint(0, 200))
        return self.inner()

    def inner(self):
        """An authenticated data message on the live session; accounts for it."""
        r, s = self.rng, self.session
        kind = r.choice(["keepalive", "short", "version", "v4-tot-small", "v4-tot-big", "spoofed", "good"])
        self.inner_counts[kind] = self.inner_counts.get(kind, 0) + 1
        if kind == "keepalive":
            plain = b""
        elif kind == "short":
            plain = bytes([0x45]) + self.rand(r.randint(0, 18))
        elif kind == "version":
            plain = bytes([r.choice([0x00, 0x15, 0x55, 0xf0, 0x65])]) + self.rand(r.randint(19, 60))
            if plain[0] == 0x65:
                plain = plain[:r.randint(20, 39)]   # IPv6 shorter than its header
        elif kind == "v4-tot-small":
            p = bytearray(inner("x"))
            p[2:4] = struct.pack("!H", r.randint(0, 19))
            plain = bytes(p)
        elif kind == "v4-tot-big":
            p = bytearray(inner("y" * r.randint(0, 20)))
            padded = (len(p) + 15) // 16 * 16
            p[2:4] = struct.pack("!H", r.randint(padded + 1, 65535))
            plain = bytes(p)
        elif kind == "spoofed":
            plain = ipv4_udp("10.0.%d.%d" % (r.randint(1, 255), r.randint(0, 255)), DUT_INNER, 4000, 9,
                             self.rand(r.randint(0, 40)))
        else:
            plain = ipv4_udp(PEER_INNER, DUT_INNER, 4000, 9, self.rand(r.randint(0, 40)))
        msg = s.seal(plain, pad=False) if kind in ("short", "version") else s.seal(plain)
        if kind in ("keepalive", "good"):
            self.account_packet(len(msg))
        else:
            self.want["errors"] += 1
            self.want["length_errors" if kind.startswith("v4-tot") else "frame_errors"] += 1
        if r.random() < 0.1:
            self.captured.append(msg)
        return msg

    def run(self, count):
        env = self.env
        start = last = time.monotonic()
        for i in range(count):
            if time.monotonic() - self.born > ROTATE:
                self.new_session()
            env.ep.send(self.make())
            if i % 256 == 0:
                self.forget()
                now = time.monotonic()
                if now - last > 30:
                    print("  %d of %d sent, %.0f s" % (i, count, now - start), flush=True)
                    last = now
        return time.monotonic() - start


def main():
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    print("packet fuzz: seed %d, %d datagrams" % (seed, count), flush=True)
    try:
        env = Env(npeers=3)
        before, peer_before = env.stats(), env.transfer()
        f = Fuzzer(env, seed)
        secs = f.run(count)
        # Let the handshake queue drain, then the live session must work.
        f.quiet()
        f.flush_tap()
        s = f.session
        mark = "after the fuzz"
        msg = s.seal(inner(mark))
        seen = sent_and_seen(env, [msg], s, "after")
        f.account_packet(len(msg))
        f.account_packet(env.marker_len)
        check(seen == [mark], "after the fuzz, the live session delivered %s" % seen)
        env.udp.sendto(b"wg0 after the fuzz", (PEER_INNER, 4000))
        m = env.ep.recv_until(lambda m: s.open(m) is not None and s.open(m)[1] != b"", WAIT)
        check(m is not None and parse_ipv4_udp(s.open(m)[1])[4] == b"wg0 after the fuzz",
              "after the fuzz, wg0 sent nothing on the live session")
        after, peer_after = env.stats(), env.transfer()
        got = {k: after[k] - before[k] for k in f.want}
        print("  classes: %s; authenticated: %s" % (f.counts, f.inner_counts))
        print("  rx counters: expected %s, peer rx %d; got %s, peer rx %d"
              % (f.want, f.peer_rx, got, peer_after - peer_before))
        check(got == f.want and peer_after - peer_before == f.peer_rx, "the counters do not add up")
        check(after["dropped"] == before["dropped"], "rx_dropped moved")
        print("ok   packet fuzz (seed %d, %d datagrams in %.0f s, %.0f/s)" % (seed, count, secs, count / secs))
    except Fail as e:
        print("FAIL packet fuzz (seed %d, %d datagrams): %s" % (seed, count, e), flush=True)
        sys.exit(1)
    finally:
        teardown()


if __name__ == "__main__":
    main()

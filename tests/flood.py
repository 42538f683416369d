#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""An initiation flood for tests/bench.sh (issue 10's fifth metric).

    flood.py prepare DIR --target-pub KEY [--peers N] [--messages M]
        makes N peer keys (DIR/keys, private, base64; their public keys in
        DIR/pubs, for `wg set wg0 peer ...`) and M initiations from them to
        the responder whose public key is KEY (DIR/msgs), timed
    flood.py run DIR --target ADDR:PORT --src-base 10.99.1.0 [--src-count 256]
                 --secs S [--rate R] [--reading-cmd CMD --reading-out FILE [--warmup W]]
        sends DIR/msgs to ADDR:PORT and prints one `flood:` summary line

The flood is what many well-behaved clients at once look like to a
responder: each initiation is valid (mac1, a peer's static key, a TAI64N
timestamp newer than that peer's last), and, once the responder is under
load and answers with cookie replies, each source decrypts its cookie and
adds mac2 from then on, as a real client would. Peers are taken in turn,
so that one peer's initiations are N/rate seconds apart, well over
upstream's 1/INITIATIONS_PER_SECOND (20 ms) for the rates Python reaches;
each peer sends from its own source (one UDP socket bound to each of
src-count consecutive addresses, which the caller has put on the
interface: peer i uses source i mod src-count), which stays below the
ratelimiter's 20 packets/s per address.

Python under TCG makes some 250 initiations/s (tests/wgpeer.py's
initiation(), mostly its AEAD and mac1): fewer than a driver answers. So
the initiations are made beforehand by `prepare` (with wgpeer's
begin_initiation and finish_initiation, on every CPU; two ephemerals per
peer, reused in turn, which a responder cannot tell from fresh ones), each
peer's timestamps 1 ms apart from the time of preparation on. A responder
made afresh with these peers accepts each of them once: the same messages
serve every round and both drivers, as long as each flood gets fresh peers
(bench.sh adds them before and removes them after). During the flood an
initiation costs a sendto, and a BLAKE2s mac2 once its source has a cookie.
Responses are counted, not consumed (that would take two X25519
operations each). A flood that runs out of messages stops sending and says
so (`exhausted`).

`run` prints `flooding at EPOCH-SECONDS:` when the flood starts. After W
seconds it runs CMD (bench.sh's reading of the device's counters; its
output goes to FILE.0) and after S seconds again (FILE.1), each time going
on flooding until CMD exits, so that both readings are taken under the
flood; the window is the time from the first reading's exit to the
second's, which leaves out the start of the flood (the first cookies, the
source addresses' ARP). Then it prints the summary: the window, the
responses received in it (to this flood's indices, with a good mac1; not
decrypted) and per second, then over the whole flood (secs): initiations
sent and per second, responses, responses with a bad mac1, cookie
replies, cookies decrypted, send errors, and the responses of each whole
second.
"""

import argparse
import base64
import errno
import multiprocessing
import os
import select
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wgpeer import (  # noqa: E402
    LEN_COOKIE, LEN_INITIATION, LEN_RESPONSE, MAC, MSG_COOKIE, MSG_RESPONSE, Endpoint, Peer, genkey,
    index_of, mac1_key, msg_type, public, tai64n)

EPHEMERALS = 2


def _initiations(job):
    """Initiations 0..count-1 of one peer, timestamps 1 ms apart from t0."""
    remote_pub, priv, count, t0 = job
    p = Peer(remote_pub, priv)
    begun = [p.begin_initiation() for _ in range(EPHEMERALS)]
    return b"".join(p.finish_initiation(begun[j % EPHEMERALS], tai64n(t0 + j * 1e-3)).msg
                    for j in range(count))


def cmd_prepare(a):
    remote_pub = base64.b64decode(a.target_pub)
    privs = [genkey() for _ in range(a.peers)]
    with open(os.path.join(a.dir, "keys"), "w") as f:
        f.writelines(base64.b64encode(k).decode() + "\n" for k in privs)
    with open(os.path.join(a.dir, "pubs"), "w") as f:
        f.writelines(base64.b64encode(public(k)).decode() + "\n" for k in privs)
    rounds = -(-a.messages // a.peers)
    t = time.monotonic()
    t0 = time.time()
    with multiprocessing.Pool(os.cpu_count()) as pool:
        per_peer = pool.map(_initiations, [(remote_pub, k, rounds, t0) for k in privs])
    # In sending order: round j of peer 0, 1, ..., N-1, then round j + 1.
    L = LEN_INITIATION
    with open(os.path.join(a.dir, "msgs"), "wb") as f:
        for j in range(rounds):
            f.write(b"".join(m[j * L:(j + 1) * L] for m in per_peer))
    print("%d initiations from %d peers prepared in %.1f s"
          % (rounds * a.peers, a.peers, time.monotonic() - t))


def addresses(base, count):
    b = struct.unpack("!I", socket.inet_aton(base))[0]
    return [socket.inet_ntoa(struct.pack("!I", b + i)) for i in range(count)]


def cmd_run(a):
    with open(os.path.join(a.dir, "pubs")) as f:
        mac1_keys = [mac1_key(base64.b64decode(line.strip())) for line in f if line.strip()]
    n = len(mac1_keys)
    with open(os.path.join(a.dir, "msgs"), "rb") as f:
        data = f.read()
    L = LEN_INITIATION
    msgs = [data[i:i + L] for i in range(0, len(data), L)]
    host, port = a.target.rsplit(":", 1)
    target = (host, int(port))
    # Only for consume_cookie, which needs the responder's public key.
    with open(os.path.join(a.dir, "target")) as f:
        cookie_peer = Peer(base64.b64decode(f.read().strip()))
    eps = [Endpoint(addr, 0, target) for addr in addresses(a.src_base, a.src_count)]
    poller = select.epoll()
    by_fd = {}
    for ep in eps:
        ep.sock.setblocking(False)
        poller.register(ep.sock.fileno(), select.EPOLLIN)
        by_fd[ep.sock.fileno()] = ep.sock
    nsrc = len(eps)
    src = [(i % n) % nsrc for i in range(len(msgs))]
    cookie = [None] * nsrc      # per source: (cookie, time received), as Peer.cookie holds it
    pending = {}                # sender index -> (source, mac1, sent with mac2, peer)
    sent = errors = responses = bad = cookies = decrypted = 0
    exhausted = None
    per_second = []
    reading = None
    readings = [a.warmup, a.secs] if a.reading_cmd else []
    marks = []                  # (time, responses) at each reading's exit
    start = time.monotonic()
    print("flooding at %.6f: %d initiations from %d peers ready, %d sources, rate %s"
          % (time.time(), len(msgs), n, nsrc, a.rate or "unlimited"), flush=True)
    end = start + a.secs
    while True:
        now = time.monotonic()
        if reading is None and len(marks) < len(readings) and now >= start + readings[len(marks)]:
            reading = subprocess.Popen(a.reading_cmd, shell=True,
                                       stdout=open("%s.%d" % (a.reading_out, len(marks)), "w"))
        if reading is not None and reading.poll() is not None:
            marks.append((time.monotonic(), responses))
            reading = None
        if now >= end and len(marks) == len(readings):
            break
        if sent >= len(msgs):
            if exhausted is None:
                exhausted = now - start
            time.sleep(0.001)
        elif a.rate and sent >= a.rate * (now - start):
            time.sleep(0.001)
        else:
            for m in msgs[sent:sent + 16]:
                s = src[sent]
                if cookie[s] is not None:
                    m = m[:-16] + MAC(cookie[s][0], m[:-16])
                try:
                    eps[s].sock.sendto(m, target)
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.ENOBUFS):
                        raise
                    errors += 1
                pending[index_of(m)] = (s, m[-32:-16], cookie[s] is not None, sent % n)
                sent += 1
        for fd, _ in poller.poll(0):
            sock = by_fd[fd]
            while True:
                try:
                    m = sock.recv(256)
                except BlockingIOError:
                    break
                entry = pending.pop(index_of(m), None)
                if entry is None:
                    continue
                if msg_type(m) == MSG_RESPONSE and len(m) == LEN_RESPONSE:
                    # Its mac1, keyed with the peer's public key, at least.
                    if m[60:76] != MAC(mac1_keys[entry[3]], m[:60]):
                        bad += 1
                        continue
                    responses += 1
                    sec = int(time.monotonic() - start)
                    per_second.extend([0] * (sec + 1 - len(per_second)))
                    per_second[sec] += 1
                elif msg_type(m) == MSG_COOKIE and len(m) == LEN_COOKIE:
                    cookies += 1
                    s, mac1, had_mac2, _ = entry
                    # Decrypted when the source has no cookie yet, or when an
                    # initiation with our mac2 got one (a new cookie secret).
                    if (cookie[s] is None or had_mac2) and cookie_peer.consume_cookie(m, mac1) is not None:
                        cookie[s] = cookie_peer.cookie
                        decrypted += 1
    secs = time.monotonic() - start
    window = "window=%.2f window_responses/s=%.1f " % (
        marks[-1][0] - marks[0][0], (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])) \
        if len(marks) == 2 else ""
    print("flood: %ssecs=%.2f sent=%d sent/s=%.0f responses=%d bad_responses=%d cookie_replies=%d"
          " cookies_decrypted=%d send_errors=%d exhausted=%s per_second=%s"
          % (window, secs, sent, sent / secs, responses, bad, cookies, decrypted, errors,
             "no" if exhausted is None else "after %.1fs" % exhausted,
             ",".join(map(str, per_second[:int(secs)]))), flush=True)


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("cmd", choices=["prepare", "run"])
    ap.add_argument("dir")
    ap.add_argument("--target-pub")
    ap.add_argument("--peers", type=int, default=256)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--target")
    ap.add_argument("--src-base")
    ap.add_argument("--src-count", type=int, default=256)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--rate", type=float, default=0, help="initiations/s at most (0: as fast as it can)")
    ap.add_argument("--reading-cmd")
    ap.add_argument("--reading-out")
    ap.add_argument("--warmup", type=float, default=1.0)
    a = ap.parse_args()
    if a.cmd == "prepare":
        if not a.target_pub:
            ap.error("prepare needs --target-pub")
        with open(os.path.join(a.dir, "target"), "w") as f:
            f.write(a.target_pub + "\n")
        cmd_prepare(a)
    else:
        if not (a.target and a.src_base):
            ap.error("run needs --target and --src-base")
        if a.reading_cmd and not (a.reading_out and 0 <= a.warmup < a.secs):
            ap.error("--reading-cmd needs --reading-out and a warmup shorter than secs")
        cmd_run(a)


if __name__ == "__main__":
    main()

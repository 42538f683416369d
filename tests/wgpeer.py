#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A scriptable userspace WireGuard peer, for tests.

An independent implementation of WireGuard's handshake (Noise_IKpsk2),
cookie replies and transport messages, written from the WireGuard paper
(sections 5.4 and 6) and the protocol's constants, not from our Rust. It
speaks over an ordinary UDP socket and lets a test build, mangle, replay
and time every message itself: nothing is sent unless the caller says so.

Primitives: hashlib's BLAKE2s (HASH, keyed MAC), hmac over it (HMAC, KDF),
and the `cryptography` package (X25519, ChaCha20-Poly1305). XChaCha20-
Poly1305, which cookie replies use, is HChaCha20 (below, in pure Python)
and ChaCha20-Poly1305 under the derived key.

    python3 tests/wgpeer.py selftest     checks HChaCha20 against the
                                         vector of the XChaCha20 draft and a
                                         handshake of two of these peers

tests/noise-vectors.py uses the same primitives; tests/hostile.py is the
test suite that plays this peer against the module.
"""

import hashlib
import hmac
import os
import select
import socket
import struct
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"

MSG_INITIATION, MSG_RESPONSE, MSG_COOKIE, MSG_DATA = 1, 2, 3, 4
LEN_INITIATION, LEN_RESPONSE, LEN_COOKIE, LEN_DATA_MIN = 148, 92, 64, 32
# Offsets of mac1 and mac2 from the end of a handshake message.
MAC1_END, MAC2_END = -16, None

REKEY_AFTER_MESSAGES = 1 << 60
COUNTER_WINDOW_SIZE = 8192 - 64
REJECT_AFTER_MESSAGES = (1 << 64) - 1 - COUNTER_WINDOW_SIZE - 1
REKEY_AFTER_TIME = 120
REJECT_AFTER_TIME = 180
REKEY_TIMEOUT = 5
KEEPALIVE_TIMEOUT = 10
INITIATIONS_PER_SECOND = 50
COOKIE_SECRET_MAX_AGE = 120
MAX_QUEUED_INCOMING_HANDSHAKES = 4096
# A device is under load while its handshake queue holds at least this many.
UNDER_LOAD_QUEUE_LEN = MAX_QUEUED_INCOMING_HANDSHAKES // 8
RATELIMIT_PACKETS_PER_SECOND = 20
RATELIMIT_BURST = 5
PADDING_MULTIPLE = 16


# --- Primitives --------------------------------------------------------------

def HASH(data):
    return hashlib.blake2s(data, digest_size=32).digest()


def MAC(key, data):
    return hashlib.blake2s(data, digest_size=16, key=key).digest()


def HMAC(key, data):
    return hmac.new(key, data, hashlib.blake2s).digest()


def KDF(n, key, data):
    t0 = HMAC(key, data)
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = HMAC(t0, prev + bytes([i]))
        out.append(prev)
    return out


def _nonce(counter):
    return b"\0" * 4 + struct.pack("<Q", counter)


def AEAD(key, counter, plain, ad):
    return ChaCha20Poly1305(key).encrypt(_nonce(counter), plain, ad)


def AEAD_open(key, counter, sealed, ad):
    """The plaintext, or None when the tag does not verify."""
    try:
        return ChaCha20Poly1305(key).decrypt(_nonce(counter), sealed, ad)
    except InvalidTag:
        return None


def _rotl(v, n):
    return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))


def _quarter_round(x, a, b, c, d):
    x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = _rotl(x[d] ^ x[a], 16)
    x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = _rotl(x[b] ^ x[c], 12)
    x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = _rotl(x[d] ^ x[a], 8)
    x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = _rotl(x[b] ^ x[c], 7)


def hchacha20(key, nonce16):
    """HChaCha20: ChaCha20's 20 rounds over (constants, key, nonce), without
    the final addition; the output is words 0-3 and 12-15."""
    x = list(struct.unpack("<4I", b"expand 32-byte k") + struct.unpack("<8I", key) +
             struct.unpack("<4I", nonce16))
    for _ in range(10):
        _quarter_round(x, 0, 4, 8, 12)
        _quarter_round(x, 1, 5, 9, 13)
        _quarter_round(x, 2, 6, 10, 14)
        _quarter_round(x, 3, 7, 11, 15)
        _quarter_round(x, 0, 5, 10, 15)
        _quarter_round(x, 1, 6, 11, 12)
        _quarter_round(x, 2, 7, 8, 13)
        _quarter_round(x, 3, 4, 9, 14)
    return struct.pack("<8I", *(x[0:4] + x[12:16]))


def XAEAD(key, nonce24, plain, ad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0" * 4 + nonce24[16:], plain, ad)


def XAEAD_open(key, nonce24, sealed, ad):
    sub = hchacha20(key, nonce24[:16])
    try:
        return ChaCha20Poly1305(sub).decrypt(b"\0" * 4 + nonce24[16:], sealed, ad)
    except InvalidTag:
        return None


def clamp(k):
    k = bytearray(k)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    return bytes(k)


def genkey():
    return clamp(os.urandom(32))


def public(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def DH(priv, pub):
    return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub))


TAI64_BASE = 0x400000000000000a


def tai64n(t=None):
    """TAI64N of wall-clock time t (seconds, float; default now)."""
    if t is None:
        t = time.time()
    return struct.pack(">QI", TAI64_BASE + int(t), int((t % 1) * 1e9))


def mac1_key(pub):
    return HASH(LABEL_MAC1 + pub)


def cookie_key(pub):
    return HASH(LABEL_COOKIE + pub)


# --- Inner packets -----------------------------------------------------------

def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_udp(src, dst, sport, dport, payload, ttl=64, ident=0):
    """An IPv4 UDP datagram with both checksums."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    ulen = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = _csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, ident, 0x4000, ttl, 17, 0, s, d)
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return hdr + udp


def parse_ipv4_udp(pkt):
    """(src, dst, sport, dport, payload) of an IPv4 UDP datagram (trailing
    bytes past the IP total length are ignored), or None."""
    if len(pkt) < 28 or pkt[0] >> 4 != 4 or pkt[9] != 17:
        return None
    ihl = (pkt[0] & 15) * 4
    total = struct.unpack("!H", pkt[2:4])[0]
    sport, dport, ulen = struct.unpack("!HHH", pkt[ihl:ihl + 6])
    payload = pkt[ihl + 8:ihl + ulen]
    if total > len(pkt) or ihl + ulen > total:
        return None
    return socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20]), sport, dport, payload


# --- Messages ---------------------------------------------------------------

class Session:
    """One side's transport keys: send with send_key to remote_index, receive
    with recv_key on local_index."""

    def __init__(self, local_index, remote_index, send_key, recv_key, initiator):
        self.local_index, self.remote_index = local_index, remote_index
        self.send_key, self.recv_key = send_key, recv_key
        self.initiator = initiator
        self.send_counter = 0

    def seal(self, inner, counter=None, pad=True):
        """A data message carrying inner (padded to 16 bytes unless pad is
        False); the counter is the next one unless given."""
        if counter is None:
            counter = self.send_counter
            self.send_counter += 1
        if pad and len(inner) % PADDING_MULTIPLE:
            inner += b"\0" * (PADDING_MULTIPLE - len(inner) % PADDING_MULTIPLE)
        return struct.pack("<IIQ", MSG_DATA, self.remote_index, counter) + AEAD(self.send_key, counter, inner, b"")

    def open(self, msg):
        """(counter, plaintext) of a data message for this session, or None."""
        if len(msg) < LEN_DATA_MIN:
            return None
        typ, idx, counter = struct.unpack("<IIQ", msg[:16])
        if typ != MSG_DATA or idx != self.local_index:
            return None
        plain = AEAD_open(self.recv_key, counter, msg[16:], b"")
        return None if plain is None else (counter, plain)


class Initiation:
    """A handshake initiation we made, and what finishing it needs."""

    def __init__(self, msg, index, ck, h, e_priv, mac1):
        self.msg, self.index, self.ck, self.h, self.e_priv, self.mac1 = msg, index, ck, h, e_priv, mac1


def msg_type(msg):
    return struct.unpack("<I", msg[:4])[0] if len(msg) >= 4 else None


def index_of(msg):
    """The index a message is addressed to (responses, cookie replies and data
    messages), or the sender index of an initiation."""
    t = msg_type(msg)
    if t == MSG_RESPONSE and len(msg) >= 12:
        return struct.unpack("<I", msg[8:12])[0]
    if t in (MSG_INITIATION, MSG_COOKIE, MSG_DATA) and len(msg) >= 8:
        return struct.unpack("<I", msg[4:8])[0]
    return None


class Peer:
    """Our side of a WireGuard peering with a responder whose static public key
    is remote_pub. Holds no socket: messages are bytes in and out."""

    def __init__(self, remote_pub, private=None, psk=None):
        self.priv = private or genkey()
        self.pub = public(self.priv)
        self.remote_pub = remote_pub
        self.psk = psk or b"\0" * 32
        self.cookie = None          # (cookie, time received) from a cookie reply
        self.last_mac1 = None       # the mac1 of the last handshake message made
        self.latest_timestamp = b"\0" * 12  # of initiations we accepted

    @staticmethod
    def new_index():
        return struct.unpack("<I", os.urandom(4))[0]

    def add_macs(self, body):
        """body + mac1 + mac2 (mac2 from the cookie, if there is one, else zeros)."""
        mac1 = MAC(mac1_key(self.remote_pub), body)
        self.last_mac1 = mac1
        mac2 = MAC(self.cookie[0], body + mac1) if self.cookie else b"\0" * 16
        return body + mac1 + mac2

    def initiation(self, timestamp=None, index=None, e_priv=None):
        """A fresh handshake initiation (an Initiation; .msg is the bytes)."""
        return self.finish_initiation(self.begin_initiation(e_priv), timestamp, index)

    def begin_initiation(self, e_priv=None):
        """The part of an initiation that depends on neither time nor index:
        the ephemeral and static keys (both X25519 operations). Opaque, and
        reusable: finish_initiation turns it into initiations, each with its
        own timestamp and index (a flooder precomputes these; the same
        ephemeral in several initiations is what no real client does, and
        what a responder cannot tell)."""
        e_priv = e_priv or genkey()
        e_pub = public(e_priv)
        ck = HASH(CONSTRUCTION)
        h = HASH(HASH(ck + IDENTIFIER) + self.remote_pub)
        (ck,) = KDF(1, ck, e_pub)
        h = HASH(h + e_pub)
        ck, k = KDF(2, ck, DH(e_priv, self.remote_pub))
        enc_static = AEAD(k, 0, self.pub, h)
        h = HASH(h + enc_static)
        ck, k = KDF(2, ck, DH(self.priv, self.remote_pub))
        return e_priv, e_pub + enc_static, ck, h, k

    def finish_initiation(self, begun, timestamp=None, index=None):
        """An Initiation from begin_initiation's result: the timestamp, the
        index and the macs (mac2 from self.cookie, if any)."""
        e_priv, head, ck, h, k = begun
        index = self.new_index() if index is None else index
        enc_ts = AEAD(k, 0, timestamp or tai64n(), h)
        h = HASH(h + enc_ts)
        msg = self.add_macs(struct.pack("<II", MSG_INITIATION, index) + head + enc_ts)
        return Initiation(msg, index, ck, h, e_priv, self.last_mac1)

    def consume_response(self, ini, msg):
        """The Session a response to Initiation ini completes, or None (wrong
        size, type, index, mac1 or tag)."""
        if len(msg) != LEN_RESPONSE or msg_type(msg) != MSG_RESPONSE:
            return None
        r_index, i_index = struct.unpack("<II", msg[4:12])
        if i_index != ini.index or msg[60:76] != MAC(mac1_key(self.pub), msg[:60]):
            return None
        e_r = msg[12:44]
        ck, h = ini.ck, ini.h
        (ck,) = KDF(1, ck, e_r)
        h = HASH(h + e_r)
        (ck,) = KDF(1, ck, DH(ini.e_priv, e_r))
        (ck,) = KDF(1, ck, DH(self.priv, e_r))
        ck, tau, k = KDF(3, ck, self.psk)
        h = HASH(h + tau)
        if AEAD_open(k, 0, msg[44:60], h) is None:
            return None
        send, recv = KDF(2, ck, b"")
        return Session(ini.index, r_index, send, recv, True)

    def consume_initiation(self, msg, index=None):
        """(response bytes, Session) answering an initiation from the remote
        side, or None if it does not verify (mac1, tags, static key, an old
        timestamp)."""
        if len(msg) != LEN_INITIATION or msg_type(msg) != MSG_INITIATION:
            return None
        if msg[116:132] != MAC(mac1_key(self.pub), msg[:116]):
            return None
        i_index = struct.unpack("<I", msg[4:8])[0]
        e_i = msg[8:40]
        ck = HASH(CONSTRUCTION)
        h = HASH(HASH(ck + IDENTIFIER) + self.pub)
        (ck,) = KDF(1, ck, e_i)
        h = HASH(h + e_i)
        ck, k = KDF(2, ck, DH(self.priv, e_i))
        s_i = AEAD_open(k, 0, msg[40:88], h)
        if s_i != self.remote_pub:
            return None
        h = HASH(h + msg[40:88])
        ck, k = KDF(2, ck, DH(self.priv, s_i))
        ts = AEAD_open(k, 0, msg[88:116], h)
        if ts is None or ts <= self.latest_timestamp:
            return None
        self.latest_timestamp = ts
        h = HASH(h + msg[88:116])
        e_priv = genkey()
        e_r = public(e_priv)
        index = self.new_index() if index is None else index
        (ck,) = KDF(1, ck, e_r)
        h = HASH(h + e_r)
        (ck,) = KDF(1, ck, DH(e_priv, e_i))
        (ck,) = KDF(1, ck, DH(e_priv, s_i))
        ck, tau, k = KDF(3, ck, self.psk)
        h = HASH(h + tau)
        enc_nothing = AEAD(k, 0, b"", h)
        msg = self.add_macs(struct.pack("<III", MSG_RESPONSE, index, i_index) + e_r + enc_nothing)
        recv, send = KDF(2, ck, b"")
        return msg, Session(index, i_index, send, recv, False)

    def consume_cookie(self, msg, mac1=None):
        """Decrypts a cookie reply to the message whose mac1 is given (default:
        the last one made) and keeps the cookie for mac2; the cookie, or None."""
        if len(msg) != LEN_COOKIE or msg_type(msg) != MSG_COOKIE:
            return None
        cookie = XAEAD_open(cookie_key(self.remote_pub), msg[8:32], msg[32:64], mac1 or self.last_mac1)
        if cookie is not None:
            self.cookie = (cookie, time.monotonic())
        return cookie


# --- A socket ---------------------------------------------------------------

class Endpoint:
    """A UDP socket with a queue of what it received, for tests: recv_until
    waits for a message a predicate accepts, keeping the others."""

    def __init__(self, addr, port=0, remote=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, port))
        self.remote = remote
        self.log = []   # (time, bytes) of what was received and not taken, in order
        self.taken = {}  # id(message) -> time received, for what recv_until returned
        self.clock = time.monotonic  # what stamps the log

    def send(self, msg, remote=None):
        self.sock.sendto(msg, remote or self.remote)

    def drain(self, seconds=0.0):
        """Reads what arrives for SECONDS (or what is already there)."""
        deadline = time.monotonic() + seconds
        while True:
            left = max(0.0, deadline - time.monotonic())
            if not select.select([self.sock], [], [], left)[0]:
                return
            data, _ = self.sock.recvfrom(65535)
            self.log.append((self.clock(), data))

    def recv_until(self, pred, seconds):
        """The first message received (now or before) that pred accepts, and
        removes it from the log; None after SECONDS."""
        deadline = time.monotonic() + seconds
        while True:
            for i, (t, m) in enumerate(self.log):
                if pred(m):
                    del self.log[i]
                    self.taken[id(m)] = t
                    return m
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            data, _ = self.sock.recvfrom(65535)
            self.log.append((self.clock(), data))

    def log_time(self, msg):
        """The time (by self.clock) at which a message recv_until returned arrived."""
        return self.taken[id(msg)]

    def seen(self, pred):
        return [m for _, m in self.log if pred(m)]


def selftest():
    # draft-irtf-cfrg-xchacha-03, section 2.2.1.
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    want = bytes.fromhex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
    assert hchacha20(key, nonce) == want, "HChaCha20 vector"
    # The initiation of tests/noise-vectors.py (VEC_INITIATION), which the
    # module's fixed-vector self-test also produces.
    ini = Peer(public(clamp(bytes(range(0x20, 0x40)))), clamp(bytes(range(0x00, 0x20)))).initiation(
        timestamp=struct.pack(">QI", TAI64_BASE + 1767225600, 3 << 24), index=0x3c2b1a09,
        e_priv=clamp(bytes(range(0x40, 0x60))))
    assert ini.msg.hex() == (
        "01000000091a2b3c79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88c"
        "c846ec89af85a51af0225eb421886af8f54fb31289d49dcd82b0f6f3279d40d7"
        "cff913fece0c64ad226eef3320755b393b72f16842c8d7ee78a74e9372396282"
        "8cf4ecc183f4dbcd0bc4e450a18d828f8f11af6793b11a7e15560bda693bcfd8"
        "a755c41200000000000000000000000000000000"), "initiation vector"
    a_priv, b_priv = genkey(), genkey()
    a, b = Peer(public(b_priv), a_priv), Peer(public(a_priv), b_priv)
    ini = a.initiation()
    resp, s_b = b.consume_initiation(ini.msg)
    s_a = a.consume_response(ini, resp)
    assert s_a and s_b.open(s_a.seal(b"hello"))[1].rstrip(b"\0") == b"hello"
    assert s_a.open(s_b.seal(b"back"))[1].rstrip(b"\0") == b"back"
    assert b.consume_initiation(ini.msg) is None, "replayed initiation accepted"
    k = os.urandom(32)
    n = os.urandom(24)
    assert XAEAD_open(k, n, XAEAD(k, n, b"cookie", b"ad"), b"ad") == b"cookie"
    print("wgpeer selftest: ok")


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["selftest"]:
        selftest()
    else:
        sys.exit(__doc__)

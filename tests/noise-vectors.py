#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Fixed test vectors for the WireGuard handshake, computed independently of
# our Rust code: from the WireGuard paper (section 5.4) and protocol page,
# with Python's hashlib (BLAKE2s), hmac (HMAC-BLAKE2s) and the
# `cryptography` package (X25519, ChaCha20-Poly1305), through the primitives
# of tests/wgpeer.py. Runs on the host:
#
#   python3 tests/noise-vectors.py
#
# and prints the vectors as Rust constants, pasted into
# src/selftest/noise.rs (the fixed-vector self-test feeds the same keys,
# ephemerals, timestamp, indices and preshared key to our implementation
# and compares every byte).

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The primitives and constants are the test peer's (tests/wgpeer.py).
from wgpeer import (CONSTRUCTION, IDENTIFIER, LABEL_MAC1, AEAD, DH, HASH, KDF,  # noqa: E402
                    MAC, clamp, public)


# The fixed inputs (the self-test uses the same).
S_priv_i = clamp(bytes(range(0x00, 0x20)))
S_priv_r = clamp(bytes(range(0x20, 0x40)))
E_priv_i = clamp(bytes(range(0x40, 0x60)))
E_priv_r = clamp(bytes(range(0x60, 0x80)))
PSK = bytes(range(0x80, 0xa0))
# TAI64N of 2026-01-01T00:00:00Z plus 3 * 2^24 ns (a multiple of 2^24, as
# our rounding leaves them).
TIMESTAMP = struct.pack(">QI", 0x400000000000000a + 1767225600, 3 << 24)
I_i = 0x3c2b1a09
I_r = 0x8f7e6d5c

S_pub_i, S_pub_r = public(S_priv_i), public(S_priv_r)
E_pub_i, E_pub_r = public(E_priv_i), public(E_priv_r)

# Initiation.
C = HASH(CONSTRUCTION)
H = HASH(C + IDENTIFIER)
H = HASH(H + S_pub_r)
(C,) = KDF(1, C, E_pub_i)
H = HASH(H + E_pub_i)
C, k = KDF(2, C, DH(E_priv_i, S_pub_r))
enc_static = AEAD(k, 0, S_pub_i, H)
H = HASH(H + enc_static)
C, k = KDF(2, C, DH(S_priv_i, S_pub_r))
enc_timestamp = AEAD(k, 0, TIMESTAMP, H)
H = HASH(H + enc_timestamp)
initiation = struct.pack("<II", 1, I_i) + E_pub_i + enc_static + enc_timestamp
initiation += MAC(HASH(LABEL_MAC1 + S_pub_r), initiation) + b"\0" * 16
assert len(initiation) == 148

# Response.
(C,) = KDF(1, C, E_pub_r)
H = HASH(H + E_pub_r)
(C,) = KDF(1, C, DH(E_priv_r, E_pub_i))
(C,) = KDF(1, C, DH(E_priv_r, S_pub_i))
C, tau, k = KDF(3, C, PSK)
H = HASH(H + tau)
enc_nothing = AEAD(k, 0, b"", H)
H = HASH(H + enc_nothing)
response = struct.pack("<III", 2, I_r, I_i) + E_pub_r + enc_nothing
response += MAC(HASH(LABEL_MAC1 + S_pub_i), response) + b"\0" * 16
assert len(response) == 92

# Transport keys: the initiator sends with the first.
T_send_i, T_recv_i = KDF(2, C, b"")

# The first two data messages from the initiator: a keepalive (counter 0),
# then 16 bytes of payload (counter 1).
PAYLOAD = b"WireGuard vector"
data0 = struct.pack("<IIQ", 4, I_r, 0) + AEAD(T_send_i, 0, b"", b"")
data1 = struct.pack("<IIQ", 4, I_r, 1) + AEAD(T_send_i, 1, PAYLOAD, b"")


def rust(name, data):
    h = data.hex()
    chunks = "".join('\n    "%s",' % h[i:i + 64] for i in range(0, len(h), 64))
    return "const %s: [u8; %d] = hex(concat!(%s\n));" % (name, len(data), chunks)


print("// Produced by tests/noise-vectors.py (Python hashlib, hmac and the")
print("// `cryptography` package), independently of our implementation.")
for name, value in [
    ("VEC_INITIATION", initiation),
    ("VEC_RESPONSE", response),
    ("VEC_T_SEND_I", T_send_i),
    ("VEC_T_RECV_I", T_recv_i),
    ("VEC_DATA0", data0),
    ("VEC_DATA1", data1),
]:
    print(rust(name, value))

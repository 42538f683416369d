#!/usr/bin/env python3
"""Generate a WireGuard configuration (wg setconf format) with many peers, fast.

  gen-config.py --peers 100000 --allowed-ips 2 [-o FILE]

writes an [Interface] section with a PrivateKey (random, clamped, as `wg
genkey` makes them) and N [Peer] sections, each with a random PublicKey
(base64 of 32 random bytes; it need not be a valid curve point) and
--allowed-ips distinct host prefixes, alternating IPv4 /32 and IPv6 /128:
prefix j of peer i uses the number n = i * ceil(K / 2) + j // 2 + 1,
  IPv4: 10.0.0.0 + n       /32   (n < 2**24)
  IPv6: fd00::<n>          /128
so every prefix is distinct within the file.

Options:
  --peers N           number of [Peer] sections (default 1)
  --allowed-ips K     prefixes per peer (default 2: one /32, one /128)
  --private-key KEY   use this base64 private key instead of a random one
  --no-private-key    leave PrivateKey out of [Interface]
  --listen-port P     add ListenPort = P to [Interface]
  --preshared-keys    give every peer a random PresharedKey
  --seed S            deterministic keys (random.Random(S)) instead of os.urandom
  --empty             only the [Interface] section (same private key logic)
  -o FILE             write to FILE instead of stdout
"""
import argparse
import base64
import ipaddress
import os
import random
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--peers', type=int, default=1)
    ap.add_argument('--allowed-ips', type=int, default=2)
    ap.add_argument('--private-key')
    ap.add_argument('--no-private-key', action='store_true')
    ap.add_argument('--listen-port', type=int)
    ap.add_argument('--preshared-keys', action='store_true')
    ap.add_argument('--seed')
    ap.add_argument('--empty', action='store_true')
    ap.add_argument('-o', '--output')
    args = ap.parse_args()

    per_family = (args.allowed_ips + 1) // 2
    if args.peers * per_family >= 1 << 24:
        ap.error('too many prefixes for 10.0.0.0/8')

    if args.seed is not None:
        rng = random.Random(args.seed)
        randbytes = rng.randbytes
    else:
        randbytes = os.urandom

    def b64(raw):
        return base64.b64encode(raw).decode()

    out = ['[Interface]']
    if not args.no_private_key:
        if args.private_key:
            out.append('PrivateKey = ' + args.private_key)
        else:
            key = bytearray(randbytes(32))
            key[0] &= 248
            key[31] = (key[31] & 127) | 64
            out.append('PrivateKey = ' + b64(bytes(key)))
    if args.listen_port is not None:
        out.append('ListenPort = %d' % args.listen_port)

    if not args.empty:
        # One big random blob, sliced: much faster than one call per key.
        per_peer = 64 if args.preshared_keys else 32
        blob = randbytes(per_peer * args.peers)
        v4_base = int(ipaddress.IPv4Address('10.0.0.0'))
        for i in range(args.peers):
            out.append('')
            out.append('[Peer]')
            out.append('PublicKey = ' + b64(blob[i * per_peer:i * per_peer + 32]))
            if args.preshared_keys:
                out.append('PresharedKey = ' + b64(blob[i * per_peer + 32:i * per_peer + 64]))
            if args.allowed_ips > 0:
                ips = []
                for j in range(args.allowed_ips):
                    n = i * per_family + j // 2 + 1
                    if j % 2 == 0:
                        v = v4_base + n
                        ips.append('%d.%d.%d.%d/32' % (v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255))
                    else:
                        ips.append('fd00::%x/128' % n if n < 0x10000 else
                                   'fd00::%x:%x/128' % (n >> 16, n & 0xffff))
                out.append('AllowedIPs = ' + ', '.join(ips))
    text = '\n'.join(out) + '\n'
    if args.output:
        with open(args.output, 'w') as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""Tells whether a dump of a device under churn is a coherent snapshot.

  dump-coherent.py CONF CHURN-KEY wg FILE   # FILE: output of `wg show IF dump`
  dump-coherent.py CONF CHURN-KEY raw IF    # a get-device dump of IF, made here,
                                            # slowly (a pause between its rounds)

CONF is the configuration (wg setconf format, one AllowedIPs line per peer)
of the stable peers; one of them at a time may be missing (it is being
removed and added back), and the peer CHURN-KEY (base64) may be there or
not. Coherent: no peer twice, no unknown peer, at most one stable peer
missing, every stable peer with exactly its prefixes, CHURN-KEY with two.
Prints one line: "coherent" or "incoherent: REASON", followed by
" DUMP_INTR" if the raw dump was flagged; then "peers: S stable, churning
peer: yes|no". Exits 0 if the
dump is coherent or flagged (an incoherent dump must be flagged), else 1.
"""
import base64
import ipaddress
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genl  # noqa: E402

# Seconds to wait after each read of the raw dump.
PAUSE = 0.05


def prefix(text):
    return str(ipaddress.ip_network(text.strip(), strict=False))


def stable_peers(conf):
    peers, key = {}, None
    for line in open(conf):
        name, _, value = line.partition('=')
        name, value = name.strip(), value.strip()
        if name == 'PublicKey':
            key = value
            peers[key] = set()
        elif name == 'AllowedIPs' and key:
            peers[key] |= {prefix(p) for p in value.split(',') if p.strip()}
    return peers


def from_wg(path):
    """[(key, [prefixes])] of `wg show IF dump` output"""
    out = []
    for line in open(path).read().splitlines()[1:]:
        fields = line.split('\t')
        ips = [] if fields[3] == '(none)' else [prefix(p) for p in fields[3].split(',')]
        out.append((fields[0], ips))
    return out, False


def raw_dump(ifname):
    """The payloads of a get-device dump, read slowly: in small rounds (the
    size of our reads sets the size of the next round, within netlink's
    bounds) and with a pause after each read, so that changes have a chance
    to land between the rounds. Returns (payloads, flagged?)."""
    family = int.from_bytes(genl.resolve_family(genl.open_socket(), 'wireguard')['FAMILY_ID'],
                            sys.byteorder)
    # A socket of its own: netlink sizes a dump's messages by the largest
    # read the socket has seen, and resolve_family's was large.
    sock = genl.open_socket()
    sock.settimeout(20)
    flags = genl.NLM_F_REQUEST | genl.NLM_F_ACK | genl.NLM_F_DUMP
    genl.send_request(sock, family, genl.WG_CMD_GET_DEVICE, flags, genl.nla(2, ifname.encode() + b'\0'))
    replies = genl.read_replies(sock, flags, bufsize=8192, pause=PAUSE)
    return [reply[3] for reply in replies], replies.intr


def from_raw(ifname):
    """[(key, [prefixes])] of a get-device dump, continued peers joined"""
    payloads, intr = raw_dump(ifname)
    out = []
    for payload in payloads:
        for atype, peers in genl.parse_attrs(payload):
            if atype & genl.NLA_TYPE_MASK != 8:
                continue
            for _, peer in genl.parse_attrs(peers):
                attrs = {t & genl.NLA_TYPE_MASK: v for t, v in genl.parse_attrs(peer)}
                key = base64.b64encode(attrs.get(1, b'')).decode()
                ips = []
                for _, ip in genl.parse_attrs(attrs.get(9, b'')):
                    a = {t & genl.NLA_TYPE_MASK: v for t, v in genl.parse_attrs(ip)}
                    addr = ipaddress.ip_address(a.get(2, b''))
                    ips.append(str(ipaddress.ip_network('%s/%d' % (addr, a.get(3, b'\0')[0]))))
                # A peer continued from the previous message (no
                # PROTOCOL_VERSION) adds to the entry before it.
                if 10 not in attrs and out and out[-1][0] == key:
                    out[-1][1].extend(ips)
                else:
                    out.append((key, ips))
    return out, intr


def problem(dump, stable, churn):
    seen = set()
    for key, ips in dump:
        if key in seen:
            return 'peer %s twice' % key
        seen.add(key)
        if key == churn:
            if len(ips) != 2:
                return 'the churning peer has %d prefixes' % len(ips)
        elif key not in stable:
            return 'unknown peer %s' % key
        elif set(ips) != stable[key] or len(ips) != len(stable[key]):
            return 'peer %s has %d prefixes, not its %d' % (key, len(ips), len(stable[key]))
    missing = len(set(stable) - seen)
    if missing > 1:
        return '%d stable peers missing' % missing
    return None


def main():
    if len(sys.argv) != 5 or sys.argv[3] not in ('wg', 'raw'):
        print(__doc__, file=sys.stderr)
        return 2
    conf, churn, mode, arg = sys.argv[1:]
    stable = stable_peers(conf)
    dump, intr = from_wg(arg) if mode == 'wg' else from_raw(arg)
    bad = problem(dump, stable, churn)
    print(('incoherent: %s' % bad if bad else 'coherent') + (' DUMP_INTR' if intr else ''))
    keys = {key for key, _ in dump}
    print('peers: %d stable, churning peer: %s' % (len(keys & set(stable)), 'yes' if churn in keys else 'no'))
    return 0 if intr or not bad else 1


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""Removes one peer between the first and the second round of a get-device
dump, and prints what the dump then shows.

  dump-race.py IFNAME WHICH

A reference dump of IFNAME, undisturbed, numbers the peers in dump order and
tells which peers the first message holds. Then a second dump starts (sending
the request runs its first round), a set-device on another socket removes the
peer WHICH names, and the rest of the dump is read. WHICH is one of
  none       change nothing (the control: the dump must be consistent)
  noop       a set-device without attributes (bumps the device's generation)
  first      peer 0, complete in the first message
  last-done  the last peer complete in the first message (upstream's cursor,
             ctx->next_peer)
  cut        the peer the first message ends in, cut short (ours: where the
             dump resumes)
  after-cut  the peer after it, not dumped yet
  last       the last peer
  all        every peer (WGDEVICE_F_REPLACE_PEERS without peers)

Output, with peers as reference indices, "N<" a peer cut short at the end of
a message, "N+" a continued peer (public key and allowed IPs only), "A-B" a
run of complete peers:
  reference: M messages; first: 0-3 4<
  removed: 4                       (or "nothing", "all")
  rest: 4+ 5-59                    (the peers after the first message, or "(none)")
  flag: DUMP_INTR                  (or "none": no message and no NLMSG_DONE flagged)
  ips: as before                   (or which peers' allowed IPs, all parts of
                                    the dump put together, differ: "5 (0 of 24)")
The dump's socket resolves nothing itself and is fresh, so that the first
round gets the default message size (NLMSG_GOODSIZE) every time. Exits 0
unless something failed (2: the setup does not allow the scenario).
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genl  # noqa: E402

WGDEVICE_A_IFNAME, WGDEVICE_A_FLAGS, WGDEVICE_A_PEERS = 2, 5, 8
WGPEER_A_PUBLIC_KEY, WGPEER_A_FLAGS, WGPEER_A_ALLOWEDIPS = 1, 3, 9
WGPEER_A_PROTOCOL_VERSION = 10
WGDEVICE_F_REPLACE_PEERS, WGPEER_F_REMOVE_ME = 1, 1


def peers_of(payload):
    """[(public key, complete?, [allowed IP nests])] of one message"""
    out = []
    for atype, value in genl.parse_attrs(payload):
        if atype & genl.NLA_TYPE_MASK != WGDEVICE_A_PEERS:
            continue
        for _, peer in genl.parse_attrs(value):
            attrs = {t & genl.NLA_TYPE_MASK: v for t, v in genl.parse_attrs(peer)}
            ips = [v for _, v in genl.parse_attrs(attrs.get(WGPEER_A_ALLOWEDIPS, b''))]
            out.append((attrs.get(WGPEER_A_PUBLIC_KEY), WGPEER_A_PROTOCOL_VERSION in attrs, ips))
    return out


DUMP_FLAGS = genl.NLM_F_REQUEST | genl.NLM_F_ACK | genl.NLM_F_DUMP


def start_dump(family, ifname):
    sock = genl.open_socket()
    sock.settimeout(20)
    genl.send_request(sock, family, genl.WG_CMD_GET_DEVICE, DUMP_FLAGS,
                      genl.nla(WGDEVICE_A_IFNAME, ifname.encode() + b'\0'))
    return sock


def read_dump(sock):
    """([peers_of(message)], flagged?)"""
    replies = genl.read_replies(sock, DUMP_FLAGS, bufsize=1 << 16)
    return [peers_of(reply[3]) for reply in replies], replies.intr


def show(entries, index):
    """Entries as "0-3 4< 4+ 5-9": runs of complete peers, cut and continued ones."""
    words, run = [], None

    def flush():
        if run:
            words.append('%d' % run[0] if run[0] == run[1] else '%d-%d' % run)

    for i, (key, complete, cut) in enumerate(entries):
        n = index.get(key, -1)
        if complete and not cut and run and n == run[1] + 1:
            run = (run[0], n)
            continue
        flush()
        run = None
        if complete and not cut:
            run = (n, n)
        else:
            words.append('%d%s' % (n, '<' if cut else '+'))
    flush()
    return ' '.join(words) or '(none)'


def entries_of(messages):
    """[(key, complete, cut short)] over messages: a peer is cut short when
    the next message continues it."""
    flat = []
    for m, peers in enumerate(messages):
        for p, (key, complete, _) in enumerate(peers):
            nxt = None
            if p == len(peers) - 1 and m + 1 < len(messages) and messages[m + 1]:
                nxt = messages[m + 1][0]
            cut = nxt is not None and nxt[0] == key and not nxt[1]
            flat.append((key, complete, cut))
    return flat


def joined(entries):
    """Entries with every cut peer and its continuation made one (the
    message boundaries after the first are of no interest)."""
    out = []
    for key, complete, cut in entries:
        if out and out[-1][2] and out[-1][0] == key and not complete:
            out[-1] = (key, out[-1][1], False)
        else:
            out.append((key, complete, cut))
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    ifname, which = sys.argv[1], sys.argv[2]
    ctl = genl.open_socket()
    family = struct.unpack('=H', genl.resolve_family(ctl, 'wireguard')['FAMILY_ID'])[0]

    ref, ref_intr = read_dump(start_dump(family, ifname))
    if ref_intr:
        print('the reference dump was flagged: something else changes the device', file=sys.stderr)
        return 1
    keys, ips = [], {}
    for peers in ref:
        for key, _, part in peers:
            if key not in ips:
                keys.append(key)
                ips[key] = []
            ips[key] += part
    index = {key: i for i, key in enumerate(keys)}
    ref_entries = entries_of(ref)
    first = ref_entries[:len(ref[0])]
    print('reference: %d messages; first: %s' % (len(ref), show(first, index)))
    done = [index[k] for k, complete, cut in first if complete and not cut]
    cut = [index[k] for k, _, c in first if c]
    if len(ref) < 3 or len(done) < 2 or not cut or cut[0] + 2 >= len(keys):
        print('the configuration does not make a first message of complete '
              'peers ending in a cut one, with more after it', file=sys.stderr)
        return 2
    target = {'none': None, 'noop': None, 'all': None, 'first': 0, 'last-done': done[-1],
              'cut': cut[0], 'after-cut': cut[0] + 1, 'last': len(keys) - 1}
    if which not in target:
        print('unknown WHICH %r' % which, file=sys.stderr)
        return 2

    sock = start_dump(family, ifname)
    change = genl.nla(WGDEVICE_A_IFNAME, ifname.encode() + b'\0')
    if which == 'all':
        change += genl.nla(WGDEVICE_A_FLAGS, struct.pack('=I', WGDEVICE_F_REPLACE_PEERS))
    elif target[which] is not None:
        peer = genl.nla(WGPEER_A_PUBLIC_KEY, keys[target[which]]) + \
            genl.nla(WGPEER_A_FLAGS, struct.pack('=I', WGPEER_F_REMOVE_ME))
        change += genl.nla(WGDEVICE_A_PEERS | genl.NLA_F_NESTED, genl.nla(genl.NLA_F_NESTED, peer))
    if which != 'none':
        genl.transact(ctl, family, genl.WG_CMD_SET_DEVICE, genl.NLM_F_REQUEST | genl.NLM_F_ACK, change)
    messages, intr = read_dump(sock)
    print('removed: %s' % {'none': 'nothing', 'noop': 'nothing', 'all': 'all'}.get(which, target[which]))

    entries = entries_of(messages)
    if not messages or messages[0] != ref[0]:
        print('the first message differs from the reference one', file=sys.stderr)
        return 1
    print('rest: %s' % show(joined(entries[len(messages[0]):]), index))
    print('flag: %s' % ('DUMP_INTR' if intr else 'none'))
    seen = {}
    for peers in messages:
        for key, _, part in peers:
            seen.setdefault(key, []).extend(part)
    bad = ['%d (%d of %d)' % (index.get(k, -1), len(v), len(ips.get(k, [])))
           for k, v in seen.items() if v != ips.get(k)]
    print('ips: %s' % (', '.join(bad) if bad else 'as before'))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except genl.KernelError as e:
        print('kernel error %s' % genl.ERRNO_NAMES.get(e.err, e.err), file=sys.stderr)
        sys.exit(1)

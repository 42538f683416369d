#!/usr/bin/env python3
"""Differential fuzzer for the "wireguard" generic netlink family, with the
C driver as its oracle.

  netlink-fuzz.py run SEED COUNT LOG      runs the sequence of SEED (COUNT
                                          wireguard requests, plus device
                                          operations) against the driver that
                                          is loaded; one JSON record per
                                          answer into LOG
  netlink-fuzz.py compare RS_LOG C_LOG    compares two runs of one sequence:
                                          prints every divergence and the
                                          summary line; exit 1 on a divergence
                                          or a misclassified answer
  netlink-fuzz.py volume SEED COUNT [SECS] the volume mode (below): the
                                          sequence of SEED in the volume mix
                                          on the driver that is loaded, no
                                          oracle, no log; exit 1 on a failure;
                                          SECS: stop sending after that long
  netlink-fuzz.py serve KEEP              (internal) a sender in another
                                          process: unprivileged, or in a user
                                          namespace

tests/fuzz.sh runs one seed on wireguard_rs and then on the C wireguard.ko in
one boot, and compares; tests/fuzz-genl.sh (make fuzz-genl) runs the volume
mode.

The sequence
------------
A pure function of the seed: nothing in it depends on an answer, so both
drivers get byte-identical requests. The generator keeps a model of the
devices (which exist, where, under which name, up or down) built from its own
operations only, and aims its requests with it. It sends:

- set-device (about 2/3): lookup by ifname or ifindex (sometimes both,
  neither, a stale name, lo, a dummy device or a bogus index), private keys,
  listen ports, fwmarks, REPLACE_PEERS, and peers with keys from a small pool
  (so that requests update and remove the peers of earlier ones), preshared
  keys, peer flags, endpoints (sin_zero and flowinfo bytes included), keepalive,
  protocol versions and allowed IPs from a small, overlapping prefix space.
  The pools hold the devices' own keys: a peer may carry the device's public
  key, and a private key may turn an existing peer into the device itself.
  Now and then a bulk request gives one peer hundreds of allowed IPs, so that
  dumps split inside a peer;
- get-device dumps (about 1/5), read to the end;
- interleaved dumps: a dump read part of the way, then set-device on the
  same device or device operations (delete, move to the other namespace,
  rename, up, down, recreate), then read to the end or abandoned;
- device operations over rtnetlink: create (with fixed ifindexes, so that
  both runs see the same numbers), delete, up, down, rename, and moves
  between the initial namespace and one owned by an unprivileged user
  namespace;
- senders: root in either namespace, root of that user namespace (allowed in
  its namespace except listen-port and fwmark on a device created outside it),
  root of a user namespace in the initial netns, and nobody;
- about 1 request in 8 with a policy violation (wrong lengths, unknown types,
  NLA_F_NESTED misuse, reserved flag bits, bad strings, short array elements,
  junk in nests), 1 in 20 a random attribute tree, and about 1 in 8 with odd
  netlink framing (no NLM_F_ACK, no NLM_F_REQUEST, NLM_F_ECHO, reserved or
  dump flags, another command, genlmsghdr.reserved, trailing bytes, a
  truncated genl header).

Dumps are read one message at a time with a minimal receive buffer, so that
every round is the kernel's default NLMSG_GOODSIZE and no round starts before
the previous message is read: message boundaries, and where a change lands
in a dump, are the same in both runs.

Reaching the handlers (measured)
--------------------------------
Every request is classified before it is sent by an exact model of what the
genetlink core does first (af_netlink netlink_rcv_skb, genetlink
genl_family_rcv_msg and genl_start, lib/nlattr.c validation under the
family's policies, which both drivers share): "skip" (no NLM_F_REQUEST),
"core" with the errno and extack the core will answer, or "handler". Each
answer is then checked against that prediction: a core rejection must come
back with exactly its errno and an extack message (or none, for the checks
that set none), and an answer to a request predicted to reach the handler
must be one the core cannot give (no ERANGE, no extack message: the policy
checks always set one, the handlers of both drivers never). A mismatch in either
direction counts as misclassified and fails the run, so the share of requests
"reaching the handlers" is the model's count, confirmed by every answer of
both drivers. As a model-free lower bound the summary also gives the share
whose answer only a handler gives (success, a dump message, or an errno the
core never returns, such as ENODEV, EBADR or EPFNOSUPPORT).

The oracle
----------
For every answer: the errno (and whether there was an answer), and for dumps
every message, canonicalised (attribute tree with flags; listen ports in the
ephemeral range, which port 0 picks at random, read as EPH), up to the first
message flagged NLM_F_DUMP_INTR (what follows is inconsistent by definition:
userspace retries), plus that flag's position and how the dump ended. At the
end of a run, each device's full dump and `wg showconf` output (ephemeral
port normalised), and wgfz* links found away from their slot's ifindex.
Extack texts are shown but compared only as information (the errno is the
contract). ALLOWLIST holds the known, deliberate differences, each with its
reason; `compare` also says how often the (uncompared) dump tails after
NLM_F_DUMP_INTR differed.

A divergence is printed with the request as a genl.py command line (rebuilt
from the seed: the runs do not log them), the sender, both answers and the
first difference. The logs hold one JSON record per answer.

The volume mode
---------------
The differential mode sends about 11 requests/s per driver under TCG: a
million would take some 40 hours. Where its time goes (measured in the VM,
500 requests): the generator and the model (about 2 and 1 ms per request;
the bulk requests, with hundreds of allowed IPs, are most of that by a
profile), canonicalising dump messages for the comparison (12 ms per
message), the JSON log (1 ms per record), device operations over rtnetlink
(35 ms each, 170 for a delete, which waits for RCU), senders in helper
processes (12-16 ms each: a pipe and a second python), and a new socket per
dump (9 ms more for R1, whose socket is opened in the other netns).

The volume mode (`volume SEED COUNT`) runs the same generator on our driver
alone, in FAST_MIX: every kind of step stays, the slow ones rarer (device
operations 0.15% of the draws, interleaved dumps 0.2%, bulk requests 0.15%,
senders in helper processes a sixth as often, the root of the user
namespace a thirteenth). Every answer is still judged by the model of the
core, as above: a misclassified answer fails the run and is printed with
its genl.py command line. Nothing else is compared, and there is no log:
class Tally keeps the statistics as it goes. At the end: the wgfz
devices found in each netns must be those the generator's model holds; each
device's dump (read whole, message by message) must parse, name the device
in its first message, and render (showconf(): wireguard-tools' parse and
output) as `wg showconf` prints it; and each device, reconfigured with `wg
setconf`, must carry a ping through a handshake with a fresh device (created
in the netns of its sockets and put in the other one). It prints the
command, model, mutation and framing mix, the errno histogram, the rate and
the seed; the same SEED sends the same requests again.

Its speed (under TCG, 2 vCPUs, the debug kernel): the generator runs in a
child process, on the other vCPU, and hands over encoded and classified
requests (Req.prepare) through a pipe; runs of requests from one local
sender go out in one send (do_many: the kernel handles them in turn, as if
sent one by one), whole dumps reuse one socket per sender, and dump
messages are kept as their flags only. About 220 requests/s on a quiet host
(20,000 in 90 s; a million, then, in about 75 minutes), 120-180 beside
other VMs. What bounds it is the sending process (the generator keeps
ahead of it): measured one request per send, a set-device cost it about 2
ms of system time (1.8 ms even when the core rejects it: a debug kernel
with lockdep, under TCG; more when it waits for RCU), 1.2 ms of user time
to send and read, and 0.6 ms to tally the answer. Batching the sends (with a
cheaper tally) took the rate from 151 to 216/s (seed 1, 5000 requests).
"""
import base64
import difflib
import errno
import json
import os
import pickle
import random
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genl  # noqa: E402

NETLINK_ROUTE, NETLINK_GENERIC = 0, 16
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
F_REQUEST, F_MULTI, F_ACK, F_ECHO, F_DUMP_INTR = 0x1, 0x2, 0x4, 0x8, 0x10
F_ROOT, F_MATCH = 0x100, 0x200
F_DUMP = F_ROOT | F_MATCH
F_EXCL, F_CREATE = 0x200, 0x400
NLA_F_NESTED, NLA_F_BYTEORDER = 0x8000, 0x4000
TYPE_MASK = 0x3fff
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
CMD_GET, CMD_SET = 0, 1
DO_FLAGS = F_REQUEST | F_ACK
DUMP_FLAGS = F_REQUEST | F_ACK | F_DUMP

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
IFLA_IFNAME, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 18, 28
IFLA_INFO_KIND = 1
IFF_UP = 1

NSLOTS = 4
INDEX0 = 1000          # device slot k has ifindex INDEX0 + k, in both runs
DUMMY_INDEX, DUMMY_NAME = 1100, 'fzdummy'
EPHEMERAL = 32768      # ports from here on are the kernel's random picks
PORTS = [0, 20000, 20001, 20002, 20003]

E = errno
# What the core itself can answer; anything else comes from a handler.
CORE_ERRNOS = {E.EINVAL, E.ERANGE, E.EOPNOTSUPP, E.EPERM, E.EBUSY, E.ENOENT}


def ename(err):
    return 'OK' if err == 0 else genl.ERRNO_NAMES.get(err, str(err))


# ---- X25519 (RFC 7748), for the devices' own public keys ---------------------

P25519 = 2 ** 255 - 19


def clamp(key):
    k = bytearray(key)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    return bytes(k)


def x25519_base(key):
    """The public key of private key `key` (None for the all-zero key, which
    the kernel's curve25519_generate_public refuses)."""
    if key == bytes(32):
        return None
    k = int.from_bytes(clamp(key), 'little')
    x1, x2, z2, x3, z3, swap = 9, 1, 0, 9, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = x2 + z2, x2 - z2
        aa, bb = a * a, b * b
        e = aa - bb
        c, d = x3 + z3, x3 - z3
        da, cb = d * a, c * b
        x3 = (da + cb) ** 2 % P25519
        z3 = x1 * (da - cb) ** 2 % P25519
        x2 = aa * bb % P25519
        z2 = e * (aa + 121665 * e) % P25519
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P25519 - 2, P25519) % P25519).to_bytes(32, 'little')


# ---- attribute trees -------------------------------------------------------------
# A node is ['b', type, payload] or ['n', type, [children], junk]; type
# includes the NLA_F_* flags; junk is bytes after the children, inside the nest.

def leaf(atype, payload):
    return ['b', atype, payload]


def nest(atype, kids, flag=True, junk=b''):
    return ['n', atype | (NLA_F_NESTED if flag else 0), kids, junk]


def u8(v):
    return struct.pack('=B', v)


def u16(v):
    return struct.pack('=H', v)


def u32(v):
    return struct.pack('=I', v)


def u64(v):
    return struct.pack('=Q', v)


def encode(node):
    if node[0] == 'b':
        return genl.nla(node[1], node[2])
    return genl.nla(node[1], b''.join(encode(k) for k in node[2]) + node[3])


def spec(node, level):
    """The node in genl.py's --attr syntax."""
    atype = node[1]
    flags = atype & ~TYPE_MASK
    base = atype & TYPE_MASK
    entry = genl.SCHEMA.get(level, {}).get(base)
    if node[0] == 'n' and not node[3] and not flags & NLA_F_BYTEORDER:
        name = entry[0] if entry else str(base)
        sub = genl.child_level(level, base) or 'unknown'
        inner = ','.join(spec(k, sub) for k in node[2])
        return '%s=%s{%s}' % (name, '' if flags & NLA_F_NESTED else 'noflag', inner)
    if node[0] == 'n':
        payload = b''.join(encode(k) for k in node[2]) + node[3]
    else:
        payload = node[2]
    name = entry[0] if entry and not flags else (str(base) if not flags else hex(atype))
    kind = entry[1] if entry else 'bin'
    fmt = {'u8': '=B', 'u16': '=H', 'u32': '=I', 'u64': '=Q'}.get(kind)
    if fmt and len(payload) == struct.calcsize(fmt):
        return '%s=%s:%d' % (name, kind, struct.unpack(fmt, payload)[0])
    if kind == 'str' and re.fullmatch(rb'[A-Za-z0-9_.-]*\0', payload):
        return '%s=str:%s' % (name, payload[:-1].decode())
    return '%s=hex:%s' % (name, payload.hex())


def unencode(data):
    """Nodes that encode() turns into `data` again: nests where the payload
    is attributes and nothing else, leaves elsewhere."""
    out = []
    for raw, payload in nla_iter(data)[0]:
        kids = unencode(payload) if raw & NLA_F_NESTED else None
        if kids and b''.join(encode(k) for k in kids) == payload:
            out.append(nest(raw, kids))
        else:
            out.append(leaf(raw, payload))
    return out


def walk(nodes, level, parent=None):
    """(node, its list, its level) for every node of the tree"""
    for node in nodes:
        yield node, nodes, level
        if node[0] == 'n':
            sub = genl.child_level(level, node[1] & TYPE_MASK) or 'unknown'
            yield from walk(node[2], sub, node)


class Req:
    """One wireguard genetlink request."""

    def __init__(self, cmd, attrs, flags, sender):
        self.cmd, self.attrs, self.flags, self.sender = cmd, attrs, flags, sender
        self.reserved, self.trailing, self.short = 0, 0, False
        self.tags = []  # what the generator meant, for the statistics
        self._body = None
        self.pred = None  # predict(), when prepare() made it ahead

    def prepare(self):
        """Encodes and classifies the request ahead of its sending, and drops
        the tree (the volume mode's generator process hands it on)."""
        self.body()
        self.pred = predict(self)
        if not self.short:
            self.attrs = None

    def body(self):
        """The genl header and attributes (encoded once: a request is not
        changed after the generator has handed it out)."""
        if self._body is None:
            if self.short:
                self._body = struct.pack('=BB', self.cmd, 1)
            else:
                self._body = (struct.pack('=BBH', self.cmd, 1, self.reserved) +
                              b''.join(encode(a) for a in self.attrs) + b'\0' * self.trailing)
        return self._body

    def message(self, family, seq):
        return nlmsg(family, self.flags, seq, self.body())

    def is_dump(self):
        return bool(self.flags & F_REQUEST) and self.flags & F_DUMP == F_DUMP

    def cmdline(self):
        """A genl.py command line sending the same bytes (as the sender)."""
        op = 'get' if self.cmd == CMD_GET else 'set'
        words = ['python3', 'tests/genl.py', op]
        attrs = self.attrs
        if attrs is None:  # prepared: the tree again, from the bytes
            attrs = unencode(self.body()[4:len(self.body()) - self.trailing])
        for a in attrs:
            words += ['--attr', spec(a, 'device')]
        if self.cmd not in (CMD_GET, CMD_SET):
            words += ['--cmd', str(self.cmd)]
        if self.flags != (DUMP_FLAGS if op == 'get' else DO_FLAGS):
            words += ['--nlflags', hex(self.flags)]
        if self.reserved:
            words += ['--reserved', str(self.reserved)]
        if self.trailing:
            words += ['--trailing', str(self.trailing)]
        line = ' '.join(shlex.quote(w) for w in words)
        if self.short:
            line += '  # with the genl header cut to 2 bytes (not expressible in genl.py)'
        return SENDER_PREFIX[self.sender] + line


SENDER_PREFIX = {
    'R0': '',
    'R1': '[root in the userns-owned netns] ',
    'U1': '[unshare -U -r -n, in its own netns] ',
    'U0': 'unshare -U -r ',
    'N0': 'setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all ',
}
# Whether the sender holds CAP_NET_ADMIN over its socket's netns.
PRIVILEGED = {'R0': True, 'R1': True, 'U1': True, 'U0': False, 'N0': False}


# ---- a model of the genetlink core's checks -------------------------------------

U8, U16, U32, U64, NUL, BIN, NARR = 'u8', 'u16', 'u32', 'u64', 'nul', 'bin', 'narr'
FIXED = {U8: 1, U16: 2, U32: 4, U64: 8}
# (maxtype, {type: entry}): drivers/net/wireguard/generated/netlink.c
AIP_POL = (4, {1: {'t': U16}, 2: {'t': BIN, 'min': 4}, 3: {'t': U8},
               4: {'t': U32, 'mask': 0x1}})
PEER_POL = (10, {1: {'t': BIN, 'min': 32, 'max': 32}, 2: {'t': BIN, 'min': 32, 'max': 32},
                 3: {'t': U32, 'mask': 0x7}, 4: {'t': BIN, 'min': 16}, 5: {'t': U16},
                 6: {'t': BIN, 'min': 16, 'max': 16}, 7: {'t': U64}, 8: {'t': U64},
                 9: {'t': NARR, 'pol': AIP_POL}, 10: {'t': U32}})
GET_POL = (2, {1: {'t': U32}, 2: {'t': NUL, 'len': 15}})
SET_POL = (8, {1: {'t': U32}, 2: {'t': NUL, 'len': 15}, 3: {'t': BIN, 'min': 32, 'max': 32},
               4: {'t': BIN, 'min': 32, 'max': 32}, 5: {'t': U32, 'mask': 0x1},
               6: {'t': U16}, 7: {'t': U32}, 8: {'t': NARR, 'pol': PEER_POL}})


def nla_iter(data):
    """nla_for_each_attr: [(raw type, payload)] and the bytes left over."""
    out, pos, rem = [], 0, len(data)
    while rem >= 4:
        nlen, raw = struct.unpack_from('=HH', data, pos)
        if nlen < 4 or nlen > rem:
            break
        out.append((raw, data[pos + 4:pos + nlen]))
        step = (nlen + 3) & ~3
        pos, rem = pos + step, rem - step
    return out, rem


def model_parse(data, pol, depth=0):
    """__nla_validate_parse under NL_VALIDATE_STRICT: None, or (errno,
    extack message set)."""
    maxtype, table = pol
    if depth >= 10:
        return (E.EINVAL, True)
    attrs, rem = nla_iter(data)
    for raw, payload in attrs:
        atype = raw & TYPE_MASK
        if atype == 0 or atype > maxtype:
            return (E.EINVAL, True)
        err = model_nla(raw, payload, table[atype], depth)
        if err:
            return err
    if rem > 0:
        return (E.EINVAL, True)
    return None


def model_nla(raw, payload, pe, depth):
    """validate_nla"""
    kind, n = pe['t'], len(payload)
    if kind in FIXED and n != FIXED[kind]:
        return (E.EINVAL, True)
    if kind == NARR and not raw & NLA_F_NESTED:
        return (E.EINVAL, True)
    if kind != NARR and raw & NLA_F_NESTED:
        return (E.EINVAL, True)
    if kind == NUL:
        minlen = min(n, pe['len'] + 1)
        if not minlen or b'\0' not in payload[:minlen]:
            return (E.EINVAL, True)
        if (n - 1 if payload[-1] == 0 else n) > pe['len']:
            return (E.ERANGE, True)
    elif kind == NARR and n:
        if n < 4:
            return (E.ERANGE, True)
        # nla_validate_array: no trailing check, empty elements skipped,
        # element types and flags not looked at.
        for _, element in nla_iter(payload)[0]:
            if not element:
                continue
            if len(element) < 4:
                return (E.ERANGE, True)
            err = model_parse(element, pe['pol'], depth + 1)
            if err:
                return err
    if 'mask' in pe and int.from_bytes(payload, 'little') & ~pe['mask']:
        return (E.EINVAL, True)
    if n < pe.get('min', 0) or n > pe.get('max', n):
        return (E.ERANGE, True)
    return None


def predict(req):
    """Where the core leaves a request: ('skip',), ('core', errno, has
    extack message) or ('handler',)."""
    if not req.flags & F_REQUEST:
        return ('skip',)
    body = req.body()
    if len(body) < 4:
        return ('core', E.EINVAL, False)
    if req.reserved:
        return ('core', E.EINVAL, True)
    flags = req.flags
    dump = flags & F_DUMP == F_DUMP
    if dump:
        flags &= ~F_DUMP
    if flags & ~(F_REQUEST | F_ACK | F_ECHO):
        return ('core', E.EINVAL, True)
    if (req.cmd, dump) == (CMD_GET, True):
        pol = GET_POL
    elif (req.cmd, dump) == (CMD_SET, False):
        pol = SET_POL
    else:
        return ('core', E.EOPNOTSUPP, False)
    if not PRIVILEGED[req.sender]:
        return ('core', E.EPERM, False)
    err = model_parse(body[4:], pol)
    if err:
        return ('core',) + err
    return ('handler',)


def confirm(req, pred, ans):
    """Whether the answer is what the prediction allows."""
    if pred[0] == 'skip':
        return ans['end'] == ('ERROR' if req.flags & F_ACK else 'NONE') and ans['err'] == 0
    if pred[0] == 'core':
        return (ans['end'] == 'ERROR' and ans['err'] == pred[1] and
                bool(ans['msg']) == pred[2])
    # Neither driver's handlers set an extack message (C's set_peer parses
    # its nests with a NULL extack).
    return ans['err'] != E.ERANGE and not ans['msg']


def handler_only(req, ans):
    """An answer that only a handler gives (model-free)."""
    if not req.flags & F_REQUEST:
        return False
    if ans.get('msgs') or ans['end'] == 'DONE':
        return True
    if ans['err'] == 0:
        return True
    return ans['err'] not in CORE_ERRNOS


# ---- netlink I/O -------------------------------------------------------------------

def nlmsg(mtype, flags, seq, body):
    return struct.pack('=IHHII', 16 + len(body), mtype, flags, seq, 0) + body


def pad4(data):
    return data + b'\0' * (-len(data) % 4)


def split_msgs(data):
    off = 0
    while off + 16 <= len(data):
        mlen, mtype, mflags, mseq, _ = struct.unpack_from('=IHHII', data, off)
        if mlen < 16:
            break
        yield mtype, mflags, mseq, data[off + 16:off + mlen]
        off += (mlen + 3) & ~3


def nl_socket(proto, tiny_rcvbuf=False):
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    if tiny_rcvbuf:
        # The minimum: one dump round at a time (netlink_recvmsg only runs
        # the next round once the queue is below half of it).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.bind((0, 0))
    sock.settimeout(120)
    for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
        sock.setsockopt(SOL_NETLINK, opt, 1)
    return sock


def terminal(mtype, mflags, body):
    err, msg = genl.error_from(body, mflags, done=(mtype == NLMSG_DONE))
    return {'end': 'ERROR' if mtype == NLMSG_ERROR else 'DONE', 'err': -err, 'msg': msg}


def do_raw(sock, msg, seq):
    """Sends one request followed by an NLMSG_NOOP with NLM_F_ACK, so that
    the end of the answer is known even when there is none (no NLM_F_ACK, or
    no NLM_F_REQUEST). Returns {'end': ERROR|DONE|NONE, 'err', 'msg',
    'replies'}."""
    return do_many(sock, [(msg, seq)])[0]


def do_many(sock, batch):
    """do_raw() for several requests [(message, seq)] in one send: the
    kernel handles the messages of one send in turn, as if sent one by one
    (netlink_rcv_skb); one NLMSG_NOOP after the last ends them all. The
    answers, in order."""
    last = batch[-1][1]
    sock.send(b''.join(pad4(msg) for msg, _ in batch) +
              nlmsg(NLMSG_NOOP, F_REQUEST | F_ACK, last + 1, b''))
    ans, replies, synced = {seq: None for _, seq in batch}, Counter(), False
    while not synced or any(ans[seq] is None for seq in replies):
        for mtype, mflags, mseq, body in split_msgs(sock.recv(1 << 16)):
            if mseq == last + 1 and mtype == NLMSG_ERROR:
                synced = True
            elif mseq not in ans:
                continue
            elif mtype in (NLMSG_ERROR, NLMSG_DONE):
                ans[mseq] = terminal(mtype, mflags, body)
            else:
                replies[mseq] += 1
    out = []
    for _, seq in batch:
        one = ans[seq] or {'end': 'NONE', 'err': 0, 'msg': None}
        one['replies'] = replies[seq]
        out.append(one)
    return out


def canon_attrs(level, data):
    out = []
    for raw, value in genl.parse_attrs(data):
        atype = raw & TYPE_MASK
        name = genl.attr_name(level, atype)
        if raw & ~TYPE_MASK:
            name += '/%x' % (raw & ~TYPE_MASK)
        sub = genl.child_level(level, atype)
        if sub:
            out.append('%s[%s]' % (name, canon_attrs(sub, value)))
        elif (level, atype) == ('device', 6) and len(value) == 2 and \
                struct.unpack('=H', value)[0] >= EPHEMERAL:
            out.append(name + '=EPH')
        else:
            out.append('%s=%s' % (name, value.hex()))
    return ' '.join(out)


def canon(mflags, body):
    """A dump message as compared: flags, genl header and attribute tree."""
    cmd, version = struct.unpack_from('=BB', body) if len(body) >= 2 else (-1, -1)
    return 'flags=%x cmd=%d v=%d %s' % (mflags, cmd, version, canon_attrs('device', body[4:]))


def flags_only(mflags, body):
    """What the volume mode keeps of a dump message: canon() cut to its flags
    (the attribute tree is parsed at the end, for the final state only)."""
    return 'flags=%x' % mflags


KEEP = {'canon': canon, 'flags': flags_only}


class Dump:
    """A dump on a socket of its own, read one message at a time."""

    def __init__(self, msg, seq, keep=canon, sock=None):
        self.sock = sock or nl_socket(NETLINK_GENERIC, tiny_rcvbuf=True)
        self.seq, self.keep = seq, keep
        self.ended = None
        self.sock.send(msg)

    def read(self, limit=None):
        """Up to `limit` socket reads (all, if None): ([canonical
        messages], the end or None)."""
        msgs, reads, peek = [], 0, bytearray(16)
        while self.ended is None and (limit is None or reads < limit):
            # Peek the length, then read exactly that: the receive size sets
            # the next round's buffer, and at most NLMSG_GOODSIZE keeps it at
            # the default (a larger one is a best-effort allocation).
            n = self.sock.recv_into(peek, 16, socket.MSG_PEEK | socket.MSG_TRUNC)
            data = self.sock.recv(max(n, 16))
            reads += 1
            for mtype, mflags, mseq, body in split_msgs(data):
                if mseq != self.seq:
                    continue
                if mtype in (NLMSG_ERROR, NLMSG_DONE):
                    self.ended = terminal(mtype, mflags, body)
                else:
                    msgs.append(self.keep(mflags, body))
        return msgs, self.ended

    def close(self):
        self.sock.close()


def dump_all(msg, seq, keep=canon, sock=None):
    """A whole dump, on a socket of its own or on `sock`, which is left open
    for the next one."""
    dump = Dump(msg, seq, keep, sock)
    try:
        msgs, end = dump.read()
    finally:
        if sock is None:
            dump.close()
    return dict(end, msgs=msgs)


def resolve(sock):
    return struct.unpack('=H', genl.resolve_family(sock, 'wireguard')['FAMILY_ID'])[0]


# ---- rtnetlink ------------------------------------------------------------------------

class Rtnl:
    def __init__(self):
        self.sock = nl_socket(NETLINK_ROUTE)
        self.seq = 0

    def request(self, mtype, flags, index, attrs=b'', ifflags=0, change=0):
        """errno (0 for success) and the reply messages"""
        self.seq += 1
        body = struct.pack('=BxHiII', socket.AF_UNSPEC, 0, index, ifflags, change) + attrs
        self.sock.send(nlmsg(mtype, flags | F_REQUEST | F_ACK, self.seq, body))
        replies = []
        while True:
            for mtype_, _, mseq, body in split_msgs(self.sock.recv(1 << 16)):
                if mseq != self.seq:
                    continue
                if mtype_ == NLMSG_ERROR:
                    return -struct.unpack_from('=i', body)[0], replies
                replies.append(body)

    def create(self, index, name, kind='wireguard'):
        info = genl.nla(IFLA_LINKINFO | NLA_F_NESTED, genl.nla(IFLA_INFO_KIND, kind.encode()))
        return self.request(RTM_NEWLINK, F_CREATE | F_EXCL, index,
                            genl.nla(IFLA_IFNAME, name.encode() + b'\0') + info)[0]

    def delete(self, index):
        return self.request(RTM_DELLINK, 0, index)[0]

    def set_up(self, index, up):
        return self.request(RTM_NEWLINK, 0, index, ifflags=IFF_UP if up else 0, change=IFF_UP)[0]

    def rename(self, index, name):
        return self.request(RTM_NEWLINK, 0, index, genl.nla(IFLA_IFNAME, name.encode() + b'\0'))[0]

    def move(self, index, nsfd):
        return self.request(RTM_NEWLINK, 0, index, genl.nla(IFLA_NET_NS_FD, u32(nsfd)))[0]

    def name(self, index):
        err, replies = self.request(RTM_GETLINK, 0, index)
        for body in replies:
            for atype, value in genl.parse_attrs(body[16:]):
                if atype == IFLA_IFNAME:
                    return value.rstrip(b'\0').decode()
        return None

    def links(self):
        """[(ifindex, name)] of every link in the socket's netns"""
        self.seq += 1
        body = struct.pack('=BxHiII', socket.AF_UNSPEC, 0, 0, 0, 0)
        self.sock.send(nlmsg(RTM_GETLINK, F_REQUEST | F_DUMP, self.seq, body))
        out = []
        while True:
            for mtype, _, mseq, body in split_msgs(self.sock.recv(1 << 16)):
                if mseq != self.seq:
                    continue
                if mtype in (NLMSG_DONE, NLMSG_ERROR):
                    return out
                index = struct.unpack_from('=i', body, 4)[0]
                for atype, value in genl.parse_attrs(body[16:]):
                    if atype == IFLA_IFNAME:
                        out.append((index, value.rstrip(b'\0').decode()))

    def close(self):
        self.sock.close()


def in_netns(nsfd, fn):
    """fn() with this thread in netns `nsfd` (sockets keep the netns they were
    opened in)."""
    own = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        os.setns(nsfd, os.CLONE_NEWNET)
        return fn()
    finally:
        os.setns(own, os.CLONE_NEWNET)
        os.close(own)


# ---- senders in other processes ------------------------------------------------------

def serve(keep):
    """A sender in another process: one JSON request per stdin line."""
    sock = nl_socket(NETLINK_GENERIC)
    print(json.dumps({'family': resolve(sock)}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        msg = bytes.fromhex(req['msg'])
        if req['dump']:
            ans = dump_all(msg, req['seq'], KEEP[keep])
        else:
            ans = do_raw(sock, msg, req['seq'])
        print(json.dumps(ans), flush=True)


class Remote:
    def __init__(self, prefix, keep='canon'):
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        self.proc = subprocess.Popen(prefix + [sys.executable, os.path.abspath(__file__), 'serve',
                                               keep],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     text=True, cwd='/')
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit('netlink-fuzz: helper %s did not start' % ' '.join(prefix))
        self.family = json.loads(line)['family']
        self.seq = 0

    def send(self, req, family):
        self.seq += 2
        msg = req.message(family, self.seq)
        self.proc.stdin.write(json.dumps({'msg': msg.hex(), 'seq': self.seq,
                                          'dump': req.is_dump()}) + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit('netlink-fuzz: a helper died')
        return json.loads(line)

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Local:
    def __init__(self, nsfd=None, keep='canon', dump_sock=False):
        """`dump_sock`: whole dumps on one socket, opened once (a dump read to
        its end leaves nothing behind on it), rather than one each."""
        self.nsfd, self.keep = nsfd, KEEP[keep]
        self.sock = self.opened(lambda: nl_socket(NETLINK_GENERIC))
        self.dump_sock = dump_sock and self.opened(
            lambda: nl_socket(NETLINK_GENERIC, tiny_rcvbuf=True))
        self.seq = 0

    def opened(self, fn):
        return fn() if self.nsfd is None else in_netns(self.nsfd, fn)

    def next_seq(self):
        self.seq += 2
        return self.seq

    def send(self, req, family):
        seq = self.next_seq()
        if req.is_dump() and self.dump_sock:
            return dump_all(req.message(family, seq), seq, self.keep, self.dump_sock)
        if req.is_dump():
            return self.opened(lambda: dump_all(req.message(family, seq), seq, self.keep))
        return do_raw(self.sock, req.message(family, seq), seq)

    def send_many(self, reqs, family):
        """Requests that are not dumps, in one send (do_many)."""
        batch = [(req.message(family, seq), seq) for req, seq in
                 ((req, self.next_seq()) for req in reqs)]
        return do_many(self.sock, batch)

    def dump(self, req, family):
        seq = self.next_seq()
        return self.opened(lambda: Dump(req.message(family, seq), seq, self.keep))

    def stop(self):
        self.sock.close()
        if self.dump_sock:
            self.dump_sock.close()


# ---- the generator --------------------------------------------------------------------

class Slot:
    """The generator's idea of device slot k (from its own operations only)."""

    def __init__(self, k):
        self.k, self.index = k, INDEX0 + k
        self.exists, self.ns, self.up, self.renamed = False, 0, False, False
        self.home = 0  # the netns it was created in, which holds its sockets

    @property
    def name(self):
        return 'wgfz%d%s' % (self.k, 'r' if self.renamed else '')


# The mix of steps: cumulative thresholds of the draw in Gen.steps (device
# operations, interleaved dumps, get-device, bulk set-device; set-device for
# the rest), the share of interleaved dumps preceded by a bulk request, and
# the senders' shares in Gen.sender. DIFF is the differential mode's; FAST,
# the volume mode's, keeps every kind of step but makes the slow ones rare:
# device operations over rtnetlink (a delete or a netns move waits for RCU:
# 35-170 ms each under TCG), bulk requests (hundreds of allowed IPs to encode,
# model and insert, and every later dump of the device longer), and the
# senders in helper processes (a pipe and a second python per request).
DIFF_MIX = {'link': 0.06, 'dumpx': 0.11, 'get': 0.30, 'bulk': 0.33, 'dumpx-bulk': 0.8,
            'nobody': 0.025, 'userns': 0.05, 'userns-root': 0.4}
FAST_MIX = {'link': 0.0015, 'dumpx': 0.0035, 'get': 0.1935, 'bulk': 0.195, 'dumpx-bulk': 0.2,
            'nobody': 0.004, 'userns': 0.008, 'userns-root': 0.03}


class Gen:
    """Steps, a pure function of the seed (and of the mix):
      ('req', Req)                           one request
      ('link', op, slot, ns, arg)            a device operation
      ('dumpx', Req, reads, [steps], abandon, slot)  an interleaved dump
    """

    def __init__(self, seed, mix=DIFF_MIX):
        self.mix = mix
        self.rng = r = random.Random(seed)
        keys = [r.randbytes(32) for _ in range(3)]
        # Private keys: none (all zero), three keys, the first one clamped
        # (the same identity in other bytes), and now and then a fresh one.
        self.private_keys = [bytes(32)] + keys + [clamp(keys[0])]
        # Peer keys: the devices' possible public keys, others, and zero.
        self.peer_keys = [x25519_base(k) for k in keys] + \
            [r.randbytes(32) for _ in range(12)] + [bytes(32)]
        self.slots = [Slot(k) for k in range(NSLOTS)]

    def p(self, prob):
        return self.rng.random() < prob

    def choice(self, seq):
        return self.rng.choice(seq)

    # -- targets and senders

    def slot(self, existing=0.92):
        live = [s for s in self.slots if s.exists]
        if live and self.p(existing):
            return self.choice(live)
        return self.choice(self.slots)

    def sender(self, slot):
        x = self.rng.random()
        if x < self.mix['nobody']:
            return 'N0'
        if x < self.mix['userns']:
            return 'U0'
        ns = slot.ns if slot.exists else self.rng.randrange(2)
        if self.p(0.04):
            ns = 1 - ns
        if ns == 1 and self.p(self.mix['userns-root']):
            return 'U1'
        return 'R%d' % ns

    def ifname(self, name):
        payload = name.encode() + b'\0'
        if self.p(0.04):  # bytes after the NUL, within IFNAMSIZ
            payload += self.rng.randbytes(self.rng.randrange(1, 16 - len(payload) + 1))
        return leaf(2, payload)

    def lookup(self, slot):
        x = self.rng.random()
        if x < 0.55:
            return [self.ifname(slot.name)]
        if x < 0.85:
            return [leaf(1, u32(slot.index))]
        if x < 0.88:
            return self.shuffled([leaf(1, u32(slot.index)), self.ifname(slot.name)])
        if x < 0.90:
            return []
        if x < 0.93:
            return [self.choice([self.ifname('lo'), self.ifname(DUMMY_NAME), leaf(1, u32(1)),
                                 leaf(1, u32(DUMMY_INDEX))])]
        if x < 0.97:
            other = self.choice(self.slots)
            names = ['wgfz%d' % other.k, 'wgfz%dr' % other.k, 'wgfz9', '']
            return [self.ifname(self.choice(names))]
        return [leaf(1, u32(self.choice([0, 999, INDEX0 + NSLOTS, 0x7fffffff, 0xffffffff])))]

    def shuffled(self, items):
        self.rng.shuffle(items)
        return items

    # -- set-device bodies

    def endpoint(self):
        r = self.rng
        x = r.random()
        # Few addresses, so that peers get the same endpoint again, in other
        # sin_zero or sin6_flowinfo bytes (upstream keeps the old ones).
        if x < 0.5:
            tail = bytes(8) if self.p(0.5) else r.randbytes(8)
            body = u16(socket.AF_INET) + struct.pack('!H', self.choice([51820, 51820, 1])) + \
                bytes([192, 0, 2, self.choice([1, 2])]) + tail
        elif x < 0.9:
            addr = bytes.fromhex('20010db8') + bytes(11) + bytes([self.choice([1, 2])])
            flowinfo = 0 if self.p(0.5) else r.getrandbits(32)
            scope = self.choice([0, 0, 1, INDEX0])
            port = self.choice([51820, 51820, 2])
            body = u16(socket.AF_INET6) + struct.pack('!HI', port, flowinfo) + addr + u32(scope)
        else:  # not an endpoint: upstream ignores it
            body = self.choice([u16(socket.AF_INET) + r.randbytes(18),
                                u16(socket.AF_INET6) + r.randbytes(self.choice([14, 24, 30])),
                                u16(0) + r.randbytes(14), u16(socket.AF_INET) + r.randbytes(26)])
        return leaf(4, body)

    def allowedip(self):
        r = self.rng
        fam = socket.AF_INET if self.p(0.55) else socket.AF_INET6
        if fam == socket.AF_INET:
            addr = bytes([10, self.choice([0, 1, 2]), self.choice([0, 1, 128, 255]),
                          self.choice([0, 1, 2, 128, 255])])
            cidr = self.choice([0, 1, 8, 16, 24, 25, 30, 31, 32, 32, r.randrange(33)])
        else:
            addr = bytes([0xfd, 0, 0, self.choice([0, 1, 2])]) + bytes(10) + \
                bytes([self.choice([0, 1, 0x80]), self.choice([0, 1, 2, 255])])
            cidr = self.choice([0, 8, 48, 64, 96, 120, 127, 128, 128, r.randrange(129)])
        if self.p(0.03):
            fam = self.choice([0, 1, 3, 0xffff])
        if self.p(0.03):
            addr = self.choice([addr[:4], bytes(16), r.randbytes(self.choice([5, 8, 15, 17, 20]))])
        if self.p(0.03):
            cidr = self.choice([33, 64, 129, 255])
        kids = []
        if self.p(0.98):
            kids.append(leaf(1, u16(fam)))
        if self.p(0.98):
            kids.append(leaf(2, addr))
        if self.p(0.98):
            kids.append(leaf(3, u8(cidr)))
        if self.p(0.25):
            kids.append(leaf(4, u32(self.choice([0, 1, 1]))))
        if self.p(0.08):
            self.rng.shuffle(kids)
        return nest(0 if self.p(0.9) else r.randrange(1, 8), kids, flag=self.p(0.97))

    def peer(self):
        r = self.rng
        kids = []
        if self.p(0.96):
            kids.append(leaf(1, self.choice(self.peer_keys)))
        if self.p(0.2):
            kids.append(leaf(2, bytes(32) if self.p(0.3) else r.randbytes(32)))
        if self.p(0.35):
            kids.append(leaf(3, u32(self.choice([0, 1, 2, 4, 6, 2, 4, 3, 5, 7]))))
        if self.p(0.3):
            kids.append(self.endpoint())
        if self.p(0.2):
            kids.append(leaf(5, u16(self.choice([0, 1, 25, 65535]))))
        if self.p(0.04):
            kids.append(leaf(6, r.randbytes(16)))
        if self.p(0.04):
            kids.append(leaf(self.choice([7, 8]), u64(r.getrandbits(64))))
        if self.p(0.08):
            kids.append(leaf(10, u32(self.choice([1, 1, 1, 0, 2]))))
        if self.p(0.6):
            kids.append(nest(9, [self.allowedip() for _ in range(r.randrange(7))]))
        if self.p(0.1):
            self.rng.shuffle(kids)
        return nest(0 if self.p(0.9) else r.randrange(1, 8), kids, flag=self.p(0.97))

    def set_attrs(self, slot, found=False):
        r = self.rng
        attrs = self.lookup_good(slot) if found else self.lookup(slot)
        if self.p(0.25):
            key = self.choice(self.private_keys) if self.p(0.92) else r.randbytes(32)
            attrs.append(leaf(3, key))
        if self.p(0.12):
            attrs.append(leaf(6, u16(self.choice(PORTS))))
        if self.p(0.12):
            attrs.append(leaf(7, u32(self.choice([0, 1, 0x1234, 0xffffffff, r.getrandbits(32)]))))
        if self.p(0.06):
            attrs.append(leaf(5, u32(self.choice([0, 0, 1]))))  # REPLACE_PEERS
        if self.p(0.03):
            attrs.append(leaf(4, r.randbytes(32)))
        if self.p(0.85):
            attrs.append(nest(8, [self.peer() for _ in range(r.randrange(5))]))
        if self.p(0.1):
            self.rng.shuffle(attrs)
        if attrs and self.p(0.03):
            attrs.append(self.choice(attrs))
        return attrs

    def bulk_attrs(self, slot):
        """One peer with hundreds of allowed IPs: dumps split inside it."""
        r = self.rng
        ips = []
        for _ in range(r.randrange(100, 400)):
            if self.p(0.5):
                ips.append(nest(0, [leaf(1, u16(socket.AF_INET)),
                                    leaf(2, bytes([10, 200, r.randrange(4), r.randrange(256)])),
                                    leaf(3, u8(32))]))
            else:
                ips.append(nest(0, [leaf(1, u16(socket.AF_INET6)),
                                    leaf(2, bytes.fromhex('fd000200') + bytes(10) + r.randbytes(2)),
                                    leaf(3, u8(128))]))
        peer = [leaf(1, self.choice(self.peer_keys)), nest(9, ips)]
        if self.p(0.3):
            peer.append(leaf(3, u32(2)))  # REPLACE_ALLOWEDIPS
        return [self.ifname(slot.name), nest(8, [nest(0, peer)])]

    # -- malformations

    def random_tree(self, depth=0):
        r = self.rng
        out = []
        for _ in range(r.randrange(1, 6)):
            atype = self.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 99, 0x3fff])
            if depth < 3 and self.p(0.4):
                kids = [nest(i if self.p(0.8) else r.randrange(16), self.random_tree(depth + 2),
                             flag=self.p(0.9)) for i in range(r.randrange(4))]
                out.append(nest(atype, kids, flag=self.p(0.9)))
            else:
                out.append(leaf(atype, self.choice([
                    b'', r.randbytes(self.choice([1, 2, 3, 4, 8])),
                    r.randbytes(self.choice([15, 16, 17, 31, 32, 33])),
                    u32(self.choice([0, 1, 2, 7, 8, 0xffffffff])), r.randbytes(r.randrange(64)),
                    u16(self.choice([2, 10, 0, 0xffff]))])))
        return out

    def mutate(self, attrs, maxtype):
        """One change, most of them against the policy; predict() tells.
        Returns its kind, for the statistics."""
        r = self.rng
        nodes = list(walk(attrs, 'device'))
        what = r.randrange(10)
        if what == 0 or not nodes:  # an unknown type somewhere
            where = self.choice([attrs] + [n[2] for n, _, _ in nodes if n[0] == 'n'])
            where.insert(r.randrange(len(where) + 1),
                         leaf(self.choice([0, maxtype + 1, 11, 99, 0x3fff]), u32(1)))
            return 'unknown-type'
        node, parent, level = self.choice(nodes)
        if what == 1 and node[0] == 'b':  # wrong length
            payload = node[2]
            node[2] = self.choice([payload[:-1], payload + b'\0', b'', payload + bytes(4),
                                   payload[:len(payload) // 2]])
            return 'length'
        if what == 2:  # NLA_F_NESTED flipped
            node[1] ^= NLA_F_NESTED
            return 'nested-flag'
        if what == 3:  # NLA_F_NET_BYTEORDER (not validated)
            node[1] |= NLA_F_BYTEORDER
            return 'byteorder-flag'
        if what == 4 and node[0] == 'b' and len(node[2]) == 4:  # reserved flag bits
            node[2] = u32(self.choice([0x8, 0x10, 0x80000000, 0xffffffff]))
            return 'flag-bits'
        if what == 5 and node[0] == 'n':  # a short or empty array element
            node[2].insert(r.randrange(len(node[2]) + 1),
                           leaf(0, self.choice([b'', b'\0', b'\0\0', b'\0\0\0'])))
            return 'short-element'
        if what == 6 and node[0] == 'n':  # junk after the children
            node[3] = r.randbytes(r.randrange(1, 8))
            return 'nest-junk'
        if what == 7:  # a name without NUL, too long, or with a long tail
            attrs.append(leaf(2, self.choice([b'wgfz0', b'0123456789abcdef\0',
                                              b'wgfz0\0' + bytes(11) + b'x\0', b'\0'])))
            return 'bad-name'
        if what == 8:  # a duplicate
            parent.insert(r.randrange(len(parent) + 1), node)
            return 'duplicate'
        parent.remove(node)
        return 'removed'

    def frame(self, req):
        """Odd netlink framing: flags, command, reserved, trailing bytes.
        Returns its kind, for the statistics."""
        r = self.rng
        what = r.randrange(12)
        dump = req.flags & F_DUMP
        if what == 0:
            req.flags &= ~F_ACK
            return 'no-ack'
        if what == 1:
            req.flags |= F_ECHO
            return 'echo'
        if what == 2:
            req.flags &= ~F_REQUEST
            return 'no-request'
        if what == 3:
            req.flags &= ~(F_REQUEST | F_ACK)
            return 'no-request-no-ack'
        if what == 4:
            req.flags |= self.choice([F_MULTI, F_DUMP_INTR, 0x20, 0x400, 0x800, 0x1000])
            return 'odd-flag'
        if what == 5:
            req.flags ^= F_DUMP if self.p(0.7) else self.choice([F_ROOT, F_MATCH])
            return 'dump-flags'
        if what == 6:
            req.cmd = self.choice([2, 3, 0xff, CMD_SET if dump else CMD_GET])
            return 'command'
        if what == 7:
            req.reserved = self.choice([1, 0x8000])
            return 'genl-reserved'
        if what in (8, 9):
            req.trailing = r.randrange(1, 8)
            return 'trailing'
        if what == 10:
            req.short = True
            return 'short-header'
        req.flags = F_REQUEST | (F_ACK if self.p(0.5) else 0) | (dump or 0)
        return 'flags-reset'

    # -- steps

    def set_req(self, slot=None, sender=None, clean=False):
        """`clean`: well-formed, and aimed at the device where it is."""
        slot = slot or self.slot()
        sender = sender or self.sender(slot)
        tags = []
        if not clean and self.p(0.05):
            attrs = self.random_tree()
            if self.p(0.8):
                attrs = self.lookup(slot) + attrs
            tags.append('random-tree')
        else:
            attrs = self.set_attrs(slot, found=clean)
            # The devices' own public keys are only ever peers' keys.
            if any(kid[0] == 'b' and kid[1] == 1 and kid[2] in self.peer_keys[:3]
                   for a in attrs if a[0] == 'n' and a[1] & TYPE_MASK == 8
                   for peer in a[2] for kid in peer[2]):
                tags.append('device-key-as-peer')
            if any(a[0] == 'b' and a[1] == 3 for a in attrs):
                tags.append('private-key')
        req = Req(CMD_SET, attrs, DO_FLAGS, sender)
        if not clean and self.p(0.12):
            tags += ['mutated', 'mutation:' + self.mutate(req.attrs, SET_POL[0])]
        if not clean and self.p(0.12):
            tags += ['framing', 'framing:' + self.frame(req)]
        req.tags = tags
        return req

    def get_req(self, slot=None, sender=None, clean=False):
        slot = slot or self.slot()
        sender = sender or self.sender(slot)
        req = Req(CMD_GET, self.lookup(slot), DUMP_FLAGS if self.p(0.9) else F_REQUEST | F_DUMP,
                  sender)
        if not clean and self.p(0.12):
            req.tags += ['mutated', 'mutation:' + self.mutate(req.attrs, GET_POL[0])]
        if not clean and self.p(0.1):
            req.tags += ['framing', 'framing:' + self.frame(req)]
        return req

    def link(self, slot=None, ops=None):
        s = slot or self.choice(self.slots)
        if not s.exists:
            ns = 0 if self.p(0.7) else 1
            s.exists, s.ns, s.up, s.renamed, s.home = True, ns, False, False, ns
            return ('link', 'create', s.k, ns, s.name)
        op = self.choice(ops or ['delete', 'up', 'up', 'down', 'move', 'rename', 'create'])
        ns = s.ns
        if op == 'create':  # exists already: EEXIST
            return ('link', 'create', s.k, ns, s.name)
        if op == 'delete':
            s.exists = False
        elif op in ('up', 'down'):
            s.up = op == 'up'
        elif op == 'move':
            s.ns, s.up = 1 - ns, False
        elif op == 'rename':
            s.renamed = not s.renamed
        return ('link', op, s.k, ns, s.name)

    def dumpx(self, s=None):
        live = [s for s in self.slots if s.exists]
        if not live:
            return self.link()
        s = s or self.choice(live)
        req = Req(CMD_GET, self.lookup_good(s), DUMP_FLAGS, 'R%d' % s.ns)
        inner = []
        for _ in range(self.rng.randrange(1, 4)):
            x = self.rng.random()
            if not s.exists or x < 0.1:
                inner.append(('req', self.set_req(self.choice(self.slots), clean=True)))
            elif x < 0.6:
                inner.append(('req', self.set_req(s, 'R%d' % s.ns, clean=True)))
            elif x < 0.7:
                inner.append(self.link(s, ['delete']))
            elif x < 0.8:
                inner.append(self.link(s, ['move']))
            elif x < 0.9:
                inner.append(self.link(s, ['rename', 'up', 'down']))
            else:
                inner.append(('req', self.get_req(s, 'R%d' % s.ns, clean=True)))
            if not s.exists and self.p(0.5):
                inner.append(self.link(s))  # recreated: same index and name
        return ('dumpx', req, self.choice([0, 0, 0, 1, 1, 2]), inner, self.p(0.15), s.k)

    def bulk(self, slot):
        req = Req(CMD_SET, self.bulk_attrs(slot), DO_FLAGS, 'R%d' % slot.ns)
        req.tags = ['bulk']
        return ('req', req)

    def lookup_good(self, slot):
        if self.p(0.5):
            return [leaf(2, slot.name.encode() + b'\0')]
        return [leaf(1, u32(slot.index))]

    def steps(self, count):
        """Yields steps until `count` requests were generated."""
        made = 0
        # A start that gives the dumps something to say.
        for k in range(3):
            yield self.link(self.slots[k])
        mix = self.mix
        while made < count:
            x = self.rng.random()
            if x < mix['link']:
                yield self.link()
                continue
            if x < mix['dumpx']:
                live = [s for s in self.slots if s.exists]
                target = self.choice(live) if live else None
                if target and self.p(mix['dumpx-bulk']):
                    # Enough for several messages, so that the dump is
                    # still running when the change comes.
                    yield self.bulk(target)
                    made += 1
                step = self.dumpx(target)
                if step[0] == 'dumpx':
                    made += 1 + sum(1 for st in step[3] if st[0] == 'req')
                yield step
                continue
            if x < mix['get']:
                step = ('req', self.get_req())
            elif x < mix['bulk']:
                step = self.bulk(self.slot())
            else:
                step = ('req', self.set_req())
            made += 1
            yield step


# ---- the runner --------------------------------------------------------------------

class Runner:
    """The differential mode's run: every answer into a JSON log."""
    mix, keep, dump_sock = DIFF_MIX, 'canon', False

    def __init__(self, seed, count, log=None):
        self.seed, self.count = seed, count
        self.start = time.monotonic()
        self.log = log and open(log, 'w')
        self.ns_fd = [os.open('/proc/self/ns/net', os.O_RDONLY), None]
        self.remotes = {}
        self.remotes['U1'] = Remote(['unshare', '-U', '-r', '-n'], self.keep)
        self.userns_pid = self.remotes['U1'].proc.pid
        self.ns_fd[1] = os.open('/proc/%d/ns/net' % self.userns_pid, os.O_RDONLY)
        self.remotes['U0'] = Remote(['unshare', '-U', '-r'], self.keep)
        self.remotes['N0'] = Remote(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
                                     '--inh-caps=-all', '--bounding-set=-all'], self.keep)
        self.local = {'R0': Local(None, self.keep, self.dump_sock),
                      'R1': Local(self.ns_fd[1], self.keep, self.dump_sock)}
        self.rtnl = [Rtnl(), in_netns(self.ns_fd[1], Rtnl)]
        self.family = resolve(self.local['R0'].sock)
        self.index = 0
        err = self.rtnl[0].create(DUMMY_INDEX, DUMMY_NAME, 'dummy')
        if err:
            raise SystemExit('netlink-fuzz: cannot create %s: %s' % (DUMMY_NAME, ename(err)))

    def record(self, what, req=None, **fields):
        """One record of the run; `req` is the request answered, if any."""
        fields.update(i=self.index, what=what, t=round(time.monotonic() - self.start, 3))
        self.log.write(json.dumps(fields) + '\n')

    def send(self, req):
        sender = self.local.get(req.sender) or self.remotes[req.sender]
        pred = req.pred or predict(req)
        ans = sender.send(req, self.family)
        return pred, ans

    def request(self, req, j=0):
        """Sends request `j` of the current step (the command line is not
        logged: `compare` rebuilds the sequence from the seed for the
        requests it reports)."""
        pred, ans = self.send(req)
        self.answered(req, pred, ans, j)

    def answered(self, req, pred, ans, j=0):
        self.record('dump' if req.is_dump() else 'do', req, j=j, sender=req.sender,
                    cmd=req.cmd, pred=pred[0], perr=pred[1] if pred[0] == 'core' else None,
                    confirmed=confirm(req, pred, ans), handler_only=handler_only(req, ans),
                    ans=ans, tags=req.tags)

    def link(self, step, pending=None):
        _, op, k, ns, name = step
        index, rtnl = INDEX0 + k, self.rtnl[ns]
        if op == 'create':
            err = rtnl.create(index, name)
        elif op == 'delete' and pending is not None:
            # A dump may hold the device (the C driver does): delete from a
            # thread, go on once the device is unlisted, and record the
            # result when the dump is over.
            self.delete_async(ns, index, pending)
            return
        elif op == 'delete':
            err = rtnl.delete(index)
        elif op in ('up', 'down'):
            err = rtnl.set_up(index, op == 'up')
        elif op == 'move':
            err = rtnl.move(index, self.ns_fd[1 - ns])
        else:  # rename: `name` is the new one
            err = rtnl.rename(index, name)
        self.record('link', op=op, slot=k, ns=ns, err=err)

    def delete_async(self, ns, index, pending):
        rtnl = in_netns(self.ns_fd[ns], Rtnl) if ns else Rtnl()
        result = []
        thread = threading.Thread(target=lambda: result.append(rtnl.delete(index)))
        thread.start()
        deadline = time.monotonic() + 60
        while thread.is_alive() and self.rtnl[ns].name(index) is not None and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        pending.append((thread, result, rtnl, ns))

    def dumpx(self, step):
        _, req, reads, inner, abandon, slot = step
        dump = self.local[req.sender].dump(req, self.family)
        first, end = dump.read(reads)
        self.record('dump-open', ans=dict(end or {}, msgs=first))
        pending, tags = [], []
        for j, sub in enumerate(inner, 1):
            if sub[0] == 'req':
                self.request(sub[1], j)
                continue
            if sub[1] in ('delete', 'move') and sub[2] == slot:
                tags = ['device-gone']
            self.link(sub, pending)
        rest = []
        if not abandon:
            rest, end = dump.read()
        dump.close()
        # The request is judged on the whole of what was read.
        whole = dict(end or {'end': 'NONE', 'err': 0, 'msg': None}, msgs=first + rest)
        pred = req.pred or predict(req)
        self.record('dump-abandon' if abandon else 'dump-more', req, j=0, tags=tags,
                    sender=req.sender, cmd=req.cmd, pred=pred[0],
                    perr=pred[1] if pred[0] == 'core' else None,
                    confirmed=confirm(req, pred, whole), handler_only=handler_only(req, whole),
                    ans=dict(end or {}, msgs=rest))
        for thread, result, rtnl, ns in pending:
            thread.join(120)
            self.record('link', op='delete', ns=ns, err=result[0] if result else 'HANG')
            rtnl.close()

    def final(self):
        """Every device's dump and `wg showconf`, then the teardown."""
        for ns in (0, 1):
            # Devices away from their slot's ifindex (none are expected).
            self.record('final-links', ns=ns, links=sorted(
                (index, name) for index, name in self.rtnl[ns].links()
                if name.startswith('wgfz') and index != INDEX0 + int(name[4])))
            for k in range(NSLOTS):
                index = INDEX0 + k
                name = self.rtnl[ns].name(index)
                if name is None:
                    self.record('final', ns=ns, slot=k, ans=None)
                    continue
                req = Req(CMD_GET, [leaf(1, u32(index))], DUMP_FLAGS, 'R%d' % ns)
                dump = self.local[req.sender].send(req, self.family)
                cmd = ['wg', 'showconf', name]
                if ns:
                    cmd = ['nsenter', '--net=/proc/%d/ns/net' % self.userns_pid] + cmd
                conf = subprocess.run(cmd, capture_output=True, text=True)
                text = re.sub(r'(?m)^(ListenPort = )(\d+)$',
                              lambda m: m.group(1) + ('EPH' if int(m.group(2)) >= EPHEMERAL
                                                      else m.group(2)),
                              conf.stdout + conf.stderr)
                self.record('final', ns=ns, slot=k, name=name, ans=dump, conf=text)

    def teardown(self):
        for ns in (0, 1):
            for index, name in self.rtnl[ns].links():
                if name.startswith('wgfz') or name == DUMMY_NAME:
                    self.rtnl[ns].delete(index)
        for remote in self.remotes.values():
            remote.stop()
        for local in self.local.values():
            local.stop()
        for rtnl in self.rtnl:
            rtnl.close()
        if self.log:
            self.log.close()

    def steps(self):
        self.gen = Gen(self.seed, self.mix)
        return self.gen.steps(self.count)

    def run(self):
        for step in self.steps():
            self.index += 1
            if step[0] == 'req':
                self.request(step[1])
            elif step[0] == 'batch':
                self.batch(step[1])
            elif step[0] == 'link':
                self.link(step)
            else:
                self.dumpx(step)
        self.index += 1
        self.final()
        self.record('end', seconds=round(time.monotonic() - self.start, 1))
        self.teardown()


# ---- the volume mode ----------------------------------------------------------------------

def showconf(bodies):
    """What `wg showconf` prints for a device, from the messages of its dump
    (genl header and attributes): wireguard-tools' parse (ipc-linux.h: a
    peer continued in the next message is joined to it; a preshared key of
    zeros is none) and its output (showconf.c; getnameinfo's numeric form of
    an endpoint, with %scope after an IPv6 address whose scope id is set)."""
    dev, peers = {3: None, 6: 0, 7: 0}, []
    for body in bodies:
        for atype, value in genl.parse_attrs(body[4:]):
            atype &= TYPE_MASK
            if atype in (6, 7):
                dev[atype] = int.from_bytes(value, 'little')
            elif atype == 3 and len(value) == 32:
                dev[3] = value
            elif atype == 8:
                for _, data in genl.parse_attrs(value):
                    peer = {1: None, 2: None, 4: None, 5: 0, 9: []}
                    for ptype, pval in genl.parse_attrs(data):
                        ptype &= TYPE_MASK
                        if ptype in (1, 2) and len(pval) == 32:
                            peer[ptype] = pval if ptype == 1 or any(pval) else None
                        elif ptype == 4:
                            peer[4] = pval
                        elif ptype == 5:
                            peer[5] = struct.unpack('=H', pval)[0]
                        elif ptype == 9:
                            for _, aip in genl.parse_attrs(pval):
                                a = {t & TYPE_MASK: v for t, v in genl.parse_attrs(aip)}
                                fam = socket.AF_INET if len(a[2]) == 4 else socket.AF_INET6
                                peer[9].append('%s/%d' % (socket.inet_ntop(fam, a[2]), a[3][0]))
                    if peers and peers[-1][1] == peer[1]:
                        peers[-1][9] += peer[9]
                    else:
                        peers.append(peer)
    b64 = lambda key: base64.b64encode(key).decode()
    out = ['[Interface]']
    if dev[6]:
        out.append('ListenPort = %d' % dev[6])
    if dev[7]:
        out.append('FwMark = 0x%x' % dev[7])
    if dev[3]:
        out.append('PrivateKey = ' + b64(dev[3]))
    out.append('')
    for n, peer in enumerate(peers):
        out += ['[Peer]', 'PublicKey = ' + b64(peer[1])]
        if peer[2]:
            out.append('PresharedKey = ' + b64(peer[2]))
        if peer[9]:
            out.append('AllowedIPs = ' + ', '.join(peer[9]))
        ep = peer[4]
        if ep and len(ep) == 16 and struct.unpack_from('=H', ep)[0] == socket.AF_INET:
            out.append('Endpoint = %s:%d' % (socket.inet_ntop(socket.AF_INET, ep[4:8]),
                                              struct.unpack_from('!H', ep, 2)[0]))
        elif ep and len(ep) == 28 and struct.unpack_from('=H', ep)[0] == socket.AF_INET6:
            scope = struct.unpack_from('=I', ep, 24)[0]
            out.append('Endpoint = [%s%s]:%d' % (socket.inet_ntop(socket.AF_INET6, ep[8:24]),
                                                 '%%%d' % scope if scope else '',
                                                 struct.unpack_from('!H', ep, 2)[0]))
        if peer[5]:
            out.append('PersistentKeepalive = %d' % peer[5])
        if n + 1 < len(peers):
            out.append('')
    return '\n'.join(out) + '\n'


class Volume(Runner):
    """The volume mode: our driver alone, no log. Every answer is still
    judged by the model of the core (a misclassified one fails the run and
    is printed with its genl.py command line); at the end the devices must
    be where the generator put them, each one's dump must parse and say what
    `wg showconf` says, and each must still carry a ping through a
    handshake with a fresh device."""
    mix, keep, dump_sock = FAST_MIX, 'flags', True
    PROGRESS = 50000
    BATCH = 100        # steps per pickle through the pipe
    BATCH_SEND = 16    # requests per send at most

    def __init__(self, seed, count, budget=None):
        """`budget`: seconds of sending at most; the run then stops at the end
        of a batch, having sent the first requests of the sequence."""
        super().__init__(seed, count)
        self.budget, self.stopped = budget, False
        self.tally = Tally()
        self.failures = []
        self.next_progress = self.PROGRESS
        self.peers, self.agreed, self.worked = 0, 0, 0  # the final checks

    def fail(self, text):
        self.failures.append(text)
        if len(self.failures) <= 20:
            print(text, flush=True)

    def record(self, what, req=None, **fields):
        if what in ('final', 'final-links', 'end', 'dump-open'):
            return
        fields.update(i=self.index, what=what)
        self.tally.add(fields)
        if what == 'link' and fields['err'] == 'HANG':
            # A device's deletion, from a thread during an interleaved dump,
            # that did not return in 120 s (the thread cannot be stopped:
            # the process may then not exit either).
            self.fail('HANG step %d: deleting a device (netns %d) did not return in 120 s' % (
                self.index, fields['ns']))
            # The blocked tasks' stacks, into the kernel log.
            try:
                with open('/proc/sysrq-trigger', 'w') as f:
                    f.write('w')
            except OSError:
                pass
        if 'pred' in fields and not fields['confirmed']:
            if len(self.failures) < 20:
                misclassified(fields, 'wireguard_rs', req.cmdline())
            self.failures.append('misclassified')
        if self.tally.reqs >= self.next_progress:
            self.next_progress += self.PROGRESS
            secs = time.monotonic() - self.start
            print('    progress: %d requests in %.0f s (%.0f/s), %d failures' % (
                self.tally.reqs, secs, self.tally.reqs / secs, len(self.failures)), flush=True)

    def steps(self):
        """The generator runs in a child process, on the other vCPU: it makes,
        encodes and classifies the steps (Req.prepare) while this process
        sends them, and hands them over in batches through a pipe, each with
        its model of the devices (the slots) after it, for the final checks."""
        started = time.monotonic()
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.close(rfd)
                with os.fdopen(wfd, 'wb') as out:
                    gen, batch = Gen(self.seed, self.mix), []
                    for step in gen.steps(self.count):
                        for req in step_reqs(step):
                            req.prepare()
                        batch.append(step)
                        if len(batch) == self.BATCH:
                            pickle.dump((batch, gen.slots), out, pickle.HIGHEST_PROTOCOL)
                            batch = []
                    pickle.dump((batch, gen.slots), out, pickle.HIGHEST_PROTOCOL)
                status = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        os.close(wfd)
        with os.fdopen(rfd, 'rb') as inp:
            while True:
                try:
                    batch, slots = pickle.load(inp)
                except EOFError:
                    break
                yield from self.batched(batch)
                self.slots = slots
                if self.budget and time.monotonic() - started > self.budget:
                    self.stopped = True
                    os.kill(pid, signal.SIGKILL)
                    break
        status = os.waitpid(pid, 0)[1]
        if (status and not self.stopped) or not hasattr(self, 'slots'):
            raise SystemExit('netlink-fuzz: the generator process failed')

    def batched(self, steps):
        """The steps, with runs of requests that are not dumps from one
        sender in this process joined into ('batch', [Req]) steps."""
        run = []
        for step in steps:
            req = step[1] if step[0] == 'req' else None
            joins = req is not None and req.sender in self.local and not req.is_dump()
            if run and (not joins or req.sender != run[0].sender or
                        len(run) == self.BATCH_SEND):
                yield ('batch', run) if len(run) > 1 else ('req', run[0])
                run = []
            if joins:
                run.append(req)
            else:
                yield step
        if run:
            yield ('batch', run) if len(run) > 1 else ('req', run[0])

    def batch(self, reqs):
        """Sends a batch: one step number per request, as unbatched."""
        self.index -= 1
        for req, ans in zip(reqs, self.local[reqs[0].sender].send_many(reqs, self.family)):
            self.index += 1
            self.answered(req, req.pred, ans)

    def run(self):
        started = time.monotonic()
        super().run()
        return started

    def final(self):
        self.loop_end = time.monotonic()
        live = {(s.ns, s.index): s for s in self.slots if s.exists}
        self.ns_cmd(1, 'ip', 'link', 'set', 'lo', 'up')  # for the endpoints on 127.0.0.1
        for ns in (0, 1):
            found = {index: name for index, name in self.rtnl[ns].links()
                     if name.startswith('wgfz')}
            want = {s.index: s.name for (sns, _), s in live.items() if sns == ns}
            if found != want:
                self.fail('FINAL netns %d holds the wgfz devices %s, the generator expects %s' % (
                    ns, sorted(found.items()), sorted(want.items())))
        for (ns, index), slot in sorted(live.items()):
            self.check_conf(slot)
        for (ns, index), slot in sorted(live.items()):
            self.check_works(slot)

    def ns_cmd(self, ns, *cmd, stdin=None):
        """A command in netns `ns`"""
        cmd = list(cmd)
        if ns:
            cmd = ['nsenter', '--net=/proc/%d/ns/net' % self.userns_pid] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, input=stdin)

    def check_conf(self, slot):
        """The device's dump parses, and says what `wg showconf` says."""
        req = Req(CMD_GET, [leaf(1, u32(slot.index))], DUMP_FLAGS, 'R%d' % slot.ns)
        seq = self.local[req.sender].next_seq()
        ans = self.local[req.sender].opened(
            lambda: dump_all(req.message(self.family, seq), seq, lambda f, b: b))
        if ans['end'] != 'DONE' or ans['err']:
            self.fail('FINAL dump of %s: %s' % (slot.name, show({'what': 'dump', 'ans': ans})))
            return
        want = {1: u32(slot.index), 2: slot.name.encode() + b'\0'}
        for n, body in enumerate(ans['msgs']):
            # The first message names the device, the others may.
            head = {t & TYPE_MASK: v for t, v in genl.parse_attrs(body[4:]) if t & TYPE_MASK < 3}
            if head != (want if n == 0 else {k: want[k] for k in head}):
                self.fail('FINAL dump of %s: message %d names %s' % (slot.name, n, head))
                return
        try:
            ours = showconf(ans['msgs'])
        except (KeyError, IndexError, struct.error, ValueError) as err:
            self.fail('FINAL dump of %s does not parse: %r' % (slot.name, err))
            return
        conf = self.ns_cmd(slot.ns, 'wg', 'showconf', slot.name)
        self.peers += ours.count('[Peer]')
        if conf.returncode or conf.stdout != ours:
            diff = difflib.unified_diff(ours.splitlines(), (conf.stdout + conf.stderr).splitlines(),
                                        'dump', 'wg showconf', lineterm='')
            self.fail('FINAL %s: its dump and `wg showconf` differ:\n%s' % (
                slot.name, '\n'.join('      ' + line for line in diff)))
        else:
            self.agreed += 1

    def check_works(self, slot):
        """The device, reconfigured with `wg setconf`, carries a ping through a
        handshake with a fresh device: created in the netns that holds the
        device's sockets (so that 127.0.0.1 reaches both), and moved, if it
        must, so that the two are in different netns."""
        ns, fresh_index, fresh = slot.ns, INDEX0 + 10, 'wgfzlive'
        other = 1 - ns
        err = self.rtnl[slot.home].create(fresh_index, fresh)
        if not err and slot.home != other:
            err = self.rtnl[slot.home].move(fresh_index, self.ns_fd[other])
        if err:
            self.fail('FINAL cannot create %s beside %s: %s' % (fresh, slot.name, ename(err)))
            return
        keys = [clamp(bytes([1 + slot.k]) * 32), clamp(bytes([0x41 + slot.k]) * 32)]
        pubs = [x25519_base(k) for k in keys]
        net = '10.99.%d.' % slot.k
        ends = [(ns, slot.name, 31001 + slot.k), (other, fresh, 31010)]
        problems = []
        for me, (where, name, port) in enumerate(ends):
            peer_port = ends[1 - me][2]
            conf = ('[Interface]\nPrivateKey = %s\nListenPort = %d\nFwMark = off\n\n'
                    '[Peer]\nPublicKey = %s\nEndpoint = 127.0.0.1:%d\nAllowedIPs = %s%d/32\n' % (
                        base64.b64encode(keys[me]).decode(), port,
                        base64.b64encode(pubs[1 - me]).decode(), peer_port, net, 2 - me))
            for result in (self.ns_cmd(where, 'wg', 'setconf', name, '/dev/stdin', stdin=conf),
                           self.ns_cmd(where, 'ip', 'addr', 'add', '%s%d/24' % (net, 1 + me),
                                       'dev', name),
                           self.ns_cmd(where, 'ip', 'link', 'set', name, 'up')):
                if result.returncode:
                    problems.append('%s: %s' % (' '.join(result.args[-4:]), result.stderr.strip()))
        if not problems:
            ping = self.ns_cmd(ns, 'ping', '-c', '1', '-w', '20', net + '2')
            if ping.returncode:
                problems.append('no ping through %s: %s' % (slot.name, ping.stdout.strip()[-300:]))
        self.rtnl[other].delete(fresh_index)
        if problems:
            self.fail('FINAL %s no longer works: %s' % (slot.name, '; '.join(problems)))
        else:
            self.worked += 1

    def summary(self, started):
        t = self.tally
        loop = self.loop_end - started
        for line in t.lines():
            print('    ' + line)
        n = t.reqs or 1
        print('    reached the handlers: %d/%d = %.1f%% (predicted by the model of the core, '
              'confirmed by every answer); answered as only a handler answers: %.1f%%' % (
                  t.handler, t.reqs, 100.0 * t.handler / n, 100.0 * t.only / n))
        print('    final state: %d devices with %d peers; the dump agreed with `wg showconf` for '
              '%d, %d carried a ping; %.0f s from the start to the end of the checks' % (
                  sum(1 for s in self.slots if s.exists), self.peers, self.agreed, self.worked,
                  time.monotonic() - self.start))
        if self.stopped:
            print('    stopped after its budget of %d s: the first %d requests of %d '
                  '(N=%d with this seed sends them again)' % (
                      self.budget, t.reqs, self.count, t.reqs))
        print('seed %d, %d requests in %.0f s (%.0f/s), %.1f%% reached the handlers, '
              'histogram: %s; %s' % (
                  self.seed, t.reqs, loop, t.reqs / loop, 100.0 * t.handler / n, counts(t.hist),
                  'failures %d' % len(self.failures) if self.failures else 'no failure'))
        return 1 if self.failures else 0


# ---- statistics ------------------------------------------------------------------------

def histogram_key(rec):
    ans = rec['ans']
    if rec['what'] == 'dump-abandon':
        return 'ABANDONED'
    if ans.get('end', 'NONE') == 'NONE' and rec['what'] == 'do':
        return 'NOREPLY'
    return ename(ans.get('err') or 0)


def counts(counter):
    return ', '.join('%s %d' % kv for kv in counter.most_common()) or 'none'


class Tally:
    """What a run sent and got, gathered one record at a time (the volume
    mode keeps no log): for `compare`, over our driver's records, and for
    the volume mode as it goes."""

    def __init__(self):
        self.reqs, self.handler, self.only, self.misclassified = 0, 0, 0, 0
        self.hist, self.tags, self.senders = Counter(), Counter(), Counter()
        self.kinds, self.model = Counter(), Counter()
        self.plain, self.multi, self.ends, self.intr, self.gone, self.abandoned = 0, 0, 0, 0, 0, 0
        self.links, self.link_errs = Counter(), Counter()

    def add(self, rec):
        what = rec['what']
        if what == 'link':
            self.links[rec['op']] += 1
            if rec['err'] != 0:
                err = ename(rec['err']) if isinstance(rec['err'], int) else rec['err']
                self.link_errs[(rec['op'], err)] += 1
            return
        if 'pred' not in rec:
            return
        self.reqs += 1
        ans = rec['ans']
        self.handler += rec['pred'] == 'handler' and rec['confirmed']
        self.only += rec['handler_only']
        self.misclassified += not rec['confirmed']
        self.hist[histogram_key(rec)] += 1
        self.tags.update(rec.get('tags', []))
        self.senders[rec['sender']] += 1
        self.kinds[(rec.get('cmd'), what == 'do')] += 1
        self.model[(rec['pred'], rec.get('perr'))] += 1
        if what == 'dump':
            self.plain += 1
            self.multi += len(ans.get('msgs', [])) > 1
        elif what in ('dump-more', 'dump-abandon'):
            self.ends += 1
            self.intr += intr_at(ans.get('msgs', [])) is not None
            self.gone += bool(rec.get('tags'))
            self.abandoned += what == 'dump-abandon'

    def lines(self):
        """What was sent, the device operations and the mix, in lines."""
        tags = self.tags
        kinds = lambda prefix: Counter({t[len(prefix):]: n for t, n in tags.items()
                                        if t.startswith(prefix)})
        commands = Counter({'%s %s' % ({CMD_GET: 'get', CMD_SET: 'set'}.get(cmd, 'cmd %s' % cmd),
                                       'do' if do else 'dump'): n
                            for (cmd, do), n in self.kinds.items()})
        model = Counter({pred + (' ' + ename(err) if err else ''): n
                         for (pred, err), n in self.model.items()})
        return [
            'requests: %d do, %d plain dumps (%d over several messages), %d dumps read part-way '
            'and resumed (%d interrupted by a change, %d lost their device) or abandoned (%d); '
            '%d bulk, %d with a policy mutation, %d with odd framing, %d random trees; '
            '%d with a device key as a peer key, %d setting a private key; senders %s' % (
                sum(n for (_, do), n in self.kinds.items() if do),
                self.plain, self.multi, self.ends, self.intr, self.gone, self.abandoned,
                tags['bulk'], tags['mutated'], tags['framing'], tags['random-tree'],
                tags['device-key-as-peer'], tags['private-key'], dict(self.senders)),
            'device operations: %s; failed: %s' % (
                ', '.join('%s %d' % kv for kv in sorted(self.links.items())),
                ', '.join('%s %s %d' % (op, err, n)
                          for (op, err), n in sorted(self.link_errs.items())) or 'none'),
            'mix: commands %s; the core model: %s; mutations: %s; framing: %s' % (
                counts(commands), counts(model), counts(kinds('mutation:')),
                counts(kinds('framing:'))),
        ]


def misclassified(rec, impl, cmdline):
    print('MISCLASSIFIED step %d (%s) on %s: predicted %s, answered %s' % (
        rec['i'], rec['what'], impl, rec['pred'], show(rec)))
    print('    request: %s' % cmdline)


# ---- the comparison --------------------------------------------------------------------

def intr_at(msgs):
    for pos, msg in enumerate(msgs):
        if int(msg.split(' ', 1)[0][len('flags='):], 16) & F_DUMP_INTR:
            return pos
    return None


def answer(rec):
    """What is compared of a record."""
    what, ans = rec['what'], rec.get('ans')
    if what == 'link':
        return {'err': rec['err']}
    if what == 'final-links':
        return {'links': rec['links']}
    if what == 'final':
        return {'dump': ans and answer({'what': 'dump', 'ans': ans}), 'conf': rec.get('conf')}
    if what in ('end',):
        return None
    if ans is None:
        return None
    out = {'end': ans.get('end'), 'err': ans.get('err')}
    if 'msgs' in ans:
        msgs = ans['msgs']
        cut = intr_at(msgs)
        out['msgs'] = msgs if cut is None else msgs[:cut]
        out['intr_at'] = cut
    if 'replies' in ans:
        out['replies'] = ans['replies']
    return out


def gone_prefix(rs, c):
    a, b = answer(rs), answer(c)
    return (a['err'] == E.ENODEV and a['end'] == 'DONE' and b['err'] == 0 and
            b['msgs'][:len(a['msgs'])] == a['msgs'])


# Known, deliberate differences of ours from the C driver: (name, reason,
# predicate over the two records of one step).
ALLOWLIST = [
    ('dump-device-gone',
     'a dump whose device is deleted (or moved to another netns) between two '
     'rounds ends with ENODEV for us: the dump names its device by ifindex and '
     'instance and holds no reference (src/netlink.rs DumpCursor); the C driver '
     'holds one until the dump ends (netlink.c wg_get_device_start/_done) and '
     'finishes it from the unlisted device, while `ip link del` waits for the reader',
     lambda rs, c: (rs['what'] == 'dump-more' and 'device-gone' in rs.get('tags', []) and
                    gone_prefix(rs, c))),
]


def short(value, width=400):
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= width else text[:width] + '...'


def show(rec):
    ans = rec.get('ans')
    if rec['what'] == 'link':
        return ename(rec['err']) if isinstance(rec['err'], int) else rec['err']
    if rec['what'] == 'final':
        return 'device %s' % ('absent' if ans is None else 'present')
    if rec['what'] == 'final-links':
        return 'wgfz* links off their slot index: %s' % json.dumps(rec['links'])
    if ans is None:
        return 'nothing'
    text = '%s %s' % (ans.get('end', 'NONE'), ename(ans.get('err') or 0))
    if ans.get('msg'):
        text += ' (extack: %s)' % ans['msg']
    return text


def window(x, y):
    """Both strings around their first difference."""
    pos = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
    lo = max(0, pos - 160)
    cut = lambda t: ('...' if lo else '') + t[lo:pos + 240] + ('...' if len(t) > pos + 240 else '')
    return '\n      ours: %s\n      C:    %s' % (cut(x), cut(y))


def describe_msgs(x, y):
    x, y = x or [], y or []
    for pos in range(max(len(x), len(y))):
        mx = x[pos] if pos < len(x) else '<none>'
        my = y[pos] if pos < len(y) else '<none>'
        if mx != my:
            return 'message %d of %d/%d:%s' % (pos, len(x), len(y), window(mx, my))
    return None


def describe(rs, c):
    """The first difference between two answers, for a report."""
    a, b = answer(rs), answer(c)
    for key in ('end', 'err', 'replies', 'intr_at'):
        if a.get(key) != b.get(key):
            return '%s: %s vs %s' % (key, short(a.get(key)), short(b.get(key)))
    if a.get('conf') != b.get('conf'):
        diff = difflib.unified_diff((a.get('conf') or '').splitlines(),
                                    (b.get('conf') or '').splitlines(), 'ours', 'C', lineterm='')
        return 'wg showconf:\n' + '\n'.join('      ' + line for line in diff)
    if a.get('dump') != b.get('dump'):
        x, y = a.get('dump') or {}, b.get('dump') or {}
        return 'final dump: ' + (describe_msgs(x.get('msgs'), y.get('msgs')) or
                                 '%s vs %s' % (short(x), short(y)))
    return describe_msgs(a.get('msgs'), b.get('msgs')) or 'differs'


def step_reqs(step):
    """The requests of a step"""
    if step[0] == 'req':
        return [step[1]]
    if step[0] == 'dumpx':
        return [step[1]] + [sub[1] for sub in step[3] if sub[0] == 'req']
    return []


def rebuild(seed, count):
    """(step, j) -> Req, numbered as Runner numbers them"""
    out = {}
    for i, step in enumerate(Gen(seed).steps(count), 1):
        if step[0] == 'req':
            out[(i, 0)] = step[1]
        elif step[0] == 'dumpx':
            out[(i, 0)] = step[1]
            for j, sub in enumerate(step[3], 1):
                if sub[0] == 'req':
                    out[(i, j)] = sub[1]
    return out


def compare(rs_log, c_log):
    rs = [json.loads(line) for line in open(rs_log)]
    c = [json.loads(line) for line in open(c_log)]
    info = open(rs_log + '.seed').read() if os.path.exists(rs_log + '.seed') else ''
    found = re.search(r'seed (\d+) count (\d+)', info)
    seed = found.group(1) if found else '?'
    requests = {}

    def request_line(rec):
        if 'j' not in rec or not found:
            return None
        if not requests:
            requests.update(rebuild(int(found.group(1)), int(found.group(2))))
        req = requests.get((rec['i'], rec['j']))
        return req.cmdline() if req else None

    divergences, allowed, extack_only, wrong = 0, Counter(), 0, 0
    if len(rs) != len(c) or [(r['i'], r['what']) for r in rs] != [(r['i'], r['what']) for r in c]:
        print('FAIL the two runs did not record the same steps (%d and %d records)' % (
            len(rs), len(c)))
        return 1
    for a, b in zip(rs, c):
        for rec, impl in ((a, 'wireguard_rs'), (b, 'C wireguard')):
            if 'pred' in rec and not rec['confirmed']:
                wrong += 1
                misclassified(rec, impl, request_line(rec))
        if answer(a) == answer(b):
            ma, mb = (a.get('ans') or {}), (b.get('ans') or {})
            if isinstance(ma, dict) and isinstance(mb, dict) and ma.get('msg') != mb.get('msg'):
                extack_only += 1
            continue
        hit = next((name for name, _, match in ALLOWLIST if match(a, b)), None)
        if hit:
            allowed[hit] += 1
            continue
        divergences += 1
        print('DIVERGENCE at step %d (%s%s):' % (a['i'], a['what'],
                                                ', sender ' + a['sender'] if 'sender' in a else ''))
        if request_line(a):
            print('    request: %s' % request_line(a))
        if a['what'] == 'link':
            print('    device operation: %s slot %d (ifindex %d) in netns %d' % (
                a['op'], a.get('slot', -1), INDEX0 + a.get('slot', 0), a['ns']))
        if a['what'] == 'final':
            print('    final state of %s (netns %d)' % (a.get('name'), a['ns']))
        print('    wireguard_rs: %s' % show(a))
        print('    C wireguard:  %s' % show(b))
        print('    first difference: %s' % describe(a, b))

    tally = Tally()
    for r in rs:
        tally.add(r)
    reached = sum(1 for r, o in zip(rs, c) if 'pred' in r and r['pred'] == 'handler'
                  and r['confirmed'] and o['confirmed'])
    # After NLM_F_DUMP_INTR the content is not compared; say how often it
    # differed anyway (upstream ends a dump whose last peer was removed).
    tails = sum(1 for a, b in zip(rs, c) if a['what'] == 'dump-more' and
                a['ans'].get('msgs') != b['ans'].get('msgs') and
                answer(a) == answer(b))
    secs = [r['seconds'] for r in (rs[-1], c[-1]) if r['what'] == 'end']
    n = tally.reqs or 1
    for line in tally.lines():
        print(line)
    print('reached the handlers: %d/%d = %.1f%% (predicted by the model of the core, confirmed by '
          'every answer of both drivers); answered as only a handler answers: %.1f%%' % (
              reached, tally.reqs, 100.0 * reached / n, 100.0 * tally.only / n))
    print('not compared: %d dump tails after NLM_F_DUMP_INTR differed; %d answers differed only '
          'in the extack text; run times %s s (ours, C)' % (
              tails, extack_only, ', '.join(str(x) for x in secs) or '?'))
    print('seed %s, %d requests, %.1f%% reached the handlers, histogram: %s; divergences %d%s%s' % (
        seed, tally.reqs, 100.0 * reached / n, counts(tally.hist), divergences,
        ' (allowlisted: %s)' % ', '.join('%s %d' % kv for kv in sorted(allowed.items()))
        if allowed else '', ', MISCLASSIFIED %d' % wrong if wrong else ''))
    return 1 if divergences or wrong else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == 'serve':
        serve(sys.argv[2])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == 'run':
        seed, count, log = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        with open(log + '.seed', 'w') as f:
            f.write('seed %d count %d\n' % (seed, count))
        Runner(seed, count, log).run()
        return 0
    if len(sys.argv) in (4, 5) and sys.argv[1] == 'volume':
        seed, count = int(sys.argv[2]), int(sys.argv[3])
        runner = Volume(seed, count, int(sys.argv[4]) if len(sys.argv) == 5 else None)
        return runner.summary(runner.run())
    if len(sys.argv) == 4 and sys.argv[1] == 'compare':
        return compare(sys.argv[2], sys.argv[3])
    print(__doc__.split('\n\n')[1], file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())

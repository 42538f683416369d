#!/usr/bin/env python3
"""Minimal raw generic-netlink client for the "wireguard" family (stdlib only).

Usage:
  genl.py family [--name NAME]
      Resolve a family with CTRL_CMD_GETFAMILY (this autoloads its module) and
      print "id=N version=V hdrsize=H maxattr=M", then "op CMD 0xFLAGS" lines.
  genl.py set [--ifname NAME] [--ifindex N] [--attr SPEC]... [raw options]
      WG_CMD_SET_DEVICE as a "do" request with NLM_F_ACK.
  genl.py get [--ifname NAME] [--ifindex N] [--attr SPEC]... [--order] [raw options]
      WG_CMD_GET_DEVICE as a dump. Prints every reply message as an attribute
      tree ("NAME len=L: VALUE", indented), or with --order one line per
      message holding the attribute names in order, nests as NAME[...]
      (NAME(noflag)[...] if NLA_F_NESTED is missing), e.g.
        LISTEN_PORT FWMARK IFINDEX IFNAME PRIVATE_KEY PUBLIC_KEY PEERS[0[...]]
      If any message of the dump, or its NLMSG_DONE, carries NLM_F_DUMP_INTR
      (the device changed while it was dumped), a last line "DUMP_INTR"
      follows (the exit status stays 0).
  genl.py batch < FILE
      One request per input line, written as the arguments of the commands
      above (shell quoting, e.g. "set --ifname wg0 --attr FLAGS=u32:2"); prints
      one line per request: "OK" (plus the --order output, if asked, and
      "DUMP_INTR" if the dump was flagged) or the errno name. Saves the interpreter start-up per request (slow in TCG).

Raw options (to build malformed requests): --cmd N, --nlflags N (replace the
netlink flags), --reserved N (genlmsghdr.reserved), --trailing N (N junk bytes
after the attributes, counted in nlmsg_len).

SPEC is TYPE=VALUE. TYPE is an attribute name of the current nesting level
(device: IFINDEX IFNAME PRIVATE_KEY PUBLIC_KEY FLAGS LISTEN_PORT FWMARK PEERS;
inside PEERS[n]: PUBLIC_KEY PRESHARED_KEY FLAGS ENDPOINT
PERSISTENT_KEEPALIVE_INTERVAL LAST_HANDSHAKE_TIME RX_BYTES TX_BYTES ALLOWEDIPS
PROTOCOL_VERSION; inside ALLOWEDIPS[n]: FAMILY IPADDR CIDR_MASK FLAGS) or a
number (e.g. 99, 0, 0x8005). VALUE is one of
  u8:N u16:N u32:N u64:N    native-endian integers (N decimal or 0x..)
  str:TEXT                  TEXT plus a NUL;   raw:TEXT  TEXT without NUL
  hex:HEX   b64:BASE64      bytes ("hex:" is an empty payload)
  rep:N:HH                  N bytes of value 0xHH (e.g. rep:31:aa)
  ip4:A.B.C.D  ip6:ADDR     4 / 16 address bytes
  in4:A.B.C.D:PORT  in6:[ADDR]:PORT   struct sockaddr_in / sockaddr_in6
  {SPEC,SPEC,...}           nested attributes, NLA_F_NESTED set
  noflag{SPEC,...}          nested attributes without NLA_F_NESTED
Example: --attr 'PEERS={0={PUBLIC_KEY=rep:32:01,ALLOWEDIPS={0={FAMILY=u16:2,IPADDR=ip4:10.0.0.1,CIDR_MASK=u8:32}}}}'

Exit status: 0 on success; 1 when the kernel answered with an error, whose
symbolic errno (e.g. ENODEV) is printed on stdout (the extack message, if any,
on stderr); 2 on usage errors; 3 when the kernel did not answer. For batch,
the worst status of its requests.
"""
import argparse
import base64
import errno
import shlex
import socket
import struct
import time
import sys

NETLINK_GENERIC = 16
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT, NLM_F_MATCH = 0x100, 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff
NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS = 1, 2
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
CTRL_ATTR = {1: 'FAMILY_ID', 2: 'FAMILY_NAME', 3: 'VERSION', 4: 'HDRSIZE',
             5: 'MAXATTR', 6: 'OPS'}
WG_CMD_GET_DEVICE, WG_CMD_SET_DEVICE = 0, 1

# Attribute schema per nesting level: type -> (name, kind, child level).
SCHEMA = {
    'device': {1: ('IFINDEX', 'u32', None), 2: ('IFNAME', 'str', None),
               3: ('PRIVATE_KEY', 'bin', None), 4: ('PUBLIC_KEY', 'bin', None),
               5: ('FLAGS', 'u32', None), 6: ('LISTEN_PORT', 'u16', None),
               7: ('FWMARK', 'u32', None), 8: ('PEERS', 'nest', 'peers')},
    'peer': {1: ('PUBLIC_KEY', 'bin', None), 2: ('PRESHARED_KEY', 'bin', None),
             3: ('FLAGS', 'u32', None), 4: ('ENDPOINT', 'bin', None),
             5: ('PERSISTENT_KEEPALIVE_INTERVAL', 'u16', None),
             6: ('LAST_HANDSHAKE_TIME', 'bin', None),
             7: ('RX_BYTES', 'u64', None), 8: ('TX_BYTES', 'u64', None),
             9: ('ALLOWEDIPS', 'nest', 'allowedips'),
             10: ('PROTOCOL_VERSION', 'u32', None)},
    'allowedip': {1: ('FAMILY', 'u16', None), 2: ('IPADDR', 'bin', None),
                  3: ('CIDR_MASK', 'u8', None), 4: ('FLAGS', 'u32', None)},
}
# Array levels: every element (whatever its type) is a nest of this level.
ARRAYS = {'peers': 'peer', 'allowedips': 'allowedip'}


def child_level(level, atype):
    """Level of the children of attribute `atype` at `level`, or None."""
    if level in ARRAYS:
        return ARRAYS[level]
    entry = SCHEMA.get(level, {}).get(atype)
    return entry[2] if entry else None


def attr_name(level, atype):
    if level in ARRAYS:
        return str(atype)
    entry = SCHEMA[level].get(atype)
    return entry[0] if entry else str(atype)


def nla(atype, payload):
    hdr = struct.pack('=HH', 4 + len(payload), atype)
    return hdr + payload + b'\0' * (-len(payload) % 4)


# ---- attribute SPEC parser -------------------------------------------------

class SpecError(Exception):
    pass


def parse_type(level, text):
    try:
        return int(text, 0)
    except ValueError:
        pass
    if level in SCHEMA:
        for atype, (name, _, _) in SCHEMA[level].items():
            if name == text.upper():
                return atype
    raise SpecError('unknown attribute name %r at level %s' % (text, level))


def parse_scalar(text):
    kind, sep, arg = text.partition(':')
    if not sep:
        raise SpecError('bad value %r (want KIND:VALUE)' % text)
    if kind in ('u8', 'u16', 'u32', 'u64'):
        return struct.pack({'u8': '=B', 'u16': '=H', 'u32': '=I', 'u64': '=Q'}[kind], int(arg, 0))
    if kind == 'str':
        return arg.encode() + b'\0'
    if kind == 'raw':
        return arg.encode()
    if kind == 'hex':
        return bytes.fromhex(arg)
    if kind == 'b64':
        return base64.b64decode(arg, validate=True)
    if kind == 'rep':
        count, _, byte = arg.partition(':')
        return bytes([int(byte or '0', 16)]) * int(count, 0)
    if kind == 'ip4':
        return socket.inet_pton(socket.AF_INET, arg)
    if kind == 'ip6':
        return socket.inet_pton(socket.AF_INET6, arg)
    if kind == 'in4':
        addr, _, port = arg.rpartition(':')
        return struct.pack('=H', socket.AF_INET) + struct.pack('!H', int(port)) + \
            socket.inet_pton(socket.AF_INET, addr) + b'\0' * 8
    if kind == 'in6':
        addr, _, port = arg.rpartition(':')
        return struct.pack('=H', socket.AF_INET6) + struct.pack('!HI', int(port), 0) + \
            socket.inet_pton(socket.AF_INET6, addr.strip('[]')) + struct.pack('=I', 0)
    raise SpecError('unknown value kind %r' % kind)


class SpecParser:
    def __init__(self, text):
        self.s, self.i = text, 0

    def peek(self):
        return self.s[self.i] if self.i < len(self.s) else ''

    def spec(self, level):
        """TYPE=VALUE -> encoded attribute"""
        eq = self.s.find('=', self.i)
        if eq < 0:
            raise SpecError('missing "=" in %r' % self.s[self.i:])
        atype = parse_type(level, self.s[self.i:eq])
        self.i = eq + 1
        if self.s.startswith('{', self.i) or self.s.startswith('noflag{', self.i):
            flag = NLA_F_NESTED
            if self.s.startswith('noflag', self.i):
                flag, self.i = 0, self.i + len('noflag')
            self.i += 1  # '{'
            sub = child_level(level, atype & NLA_TYPE_MASK) or 'unknown'
            payload = b''
            while self.peek() != '}':
                if not self.peek():
                    raise SpecError('missing "}"')
                payload += self.spec(sub)
                if self.peek() == ',':
                    self.i += 1
            self.i += 1  # '}'
            return nla(atype | flag, payload)
        end = self.i
        while end < len(self.s) and self.s[end] not in ',}':
            end += 1
        value, self.i = self.s[self.i:end], end
        return nla(atype, parse_scalar(value))

    def parse(self, level):
        out = self.spec(level)
        if self.i != len(self.s):
            raise SpecError('junk after attribute: %r' % self.s[self.i:])
        return out


# ---- netlink I/O -----------------------------------------------------------

class KernelError(Exception):
    def __init__(self, err, msg=None):
        super().__init__(err)
        self.err, self.msg = err, msg


def open_socket():
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    sock.bind((0, 0))
    sock.settimeout(10)
    for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
        try:
            sock.setsockopt(SOL_NETLINK, opt, 1)
        except OSError:
            pass
    return sock


def parse_attrs(data):
    """[(raw type incl. flags, payload)]"""
    out, off = [], 0
    while off + 4 <= len(data):
        alen, atype = struct.unpack_from('=HH', data, off)
        if alen < 4 or off + alen > len(data):
            break
        out.append((atype, data[off + 4:off + alen]))
        off += (alen + 3) & ~3
    return out


def error_from(payload, nlflags, done=False):
    """(errno, extack message) of an NLMSG_ERROR or NLMSG_DONE payload"""
    err = struct.unpack_from('=i', payload)[0] if len(payload) >= 4 else 0
    msg = None
    if err and nlflags & NLM_F_ACK_TLVS:
        if done:
            off = 4
        else:
            orig_len = struct.unpack_from('=I', payload, 4)[0]
            off = 4 + (16 if nlflags & NLM_F_CAPPED else orig_len)
        for atype, value in parse_attrs(payload[off:]):
            if atype == NLMSGERR_ATTR_MSG:
                msg = value.rstrip(b'\0').decode(errors='replace')
    return err, msg


class Replies(list):
    """The (cmd, version, nlflags, attrs payload) replies of a request, and
    whether any of them or the closing NLMSG_DONE had NLM_F_DUMP_INTR."""
    intr = False


def send_request(sock, family, cmd, nlflags, attrs, reserved=0, trailing=0, seq=1):
    payload = struct.pack('=BBH', cmd, 1, reserved) + attrs + b'\0' * trailing
    sock.send(struct.pack('=IHHII', 16 + len(payload), family, nlflags, seq, 0) + payload)


def read_replies(sock, nlflags, seq=1, bufsize=1 << 20, pause=0):
    """The Replies to the request sent with NLFLAGS and SEQ, read BUFSIZE
    bytes at a time (which sets the size of a dump's next message) with a
    pause of PAUSE seconds after each read. Raises KernelError on an
    NLMSG_ERROR/NLMSG_DONE error."""
    replies = Replies()
    buf = bytearray(bufsize)
    while True:
        n, _, flags, _ = sock.recvmsg_into([buf])
        data = memoryview(buf)[:n]
        if flags & socket.MSG_TRUNC:
            # The rest of the message is lost: fail rather than misread.
            raise SystemExit('genl.py: a reply longer than the %d-byte read' % bufsize)
        off = 0
        while off + 16 <= len(data):
            mlen, mtype, mflags, mseq, _ = struct.unpack_from('=IHHII', data, off)
            if mlen < 16:
                raise SystemExit('genl.py: malformed reply')
            body = data[off + 16:off + mlen]
            off += (mlen + 3) & ~3
            if mtype in (NLMSG_ERROR, NLMSG_DONE):
                body = bytes(body)
            if mseq != seq:
                continue
            if mflags & NLM_F_DUMP_INTR:
                replies.intr = True
            if mtype == NLMSG_ERROR:
                err, msg = error_from(body, mflags)
                if err:
                    raise KernelError(-err, msg)
                return replies  # ACK
            if mtype == NLMSG_DONE:
                err, msg = error_from(body, mflags, done=True)
                if err:
                    raise KernelError(-err, msg)
                return replies
            gcmd, gver, _ = struct.unpack_from('=BBH', body)
            replies.append((gcmd, gver, mflags, bytes(body[4:])))
            if not (mflags & NLM_F_MULTI) and not (nlflags & NLM_F_ACK):
                return replies
        if pause:
            time.sleep(pause)


def transact(sock, family, cmd, nlflags, attrs, reserved=0, trailing=0):
    """Send one request; return its Replies.
    Raises KernelError on an NLMSG_ERROR/NLMSG_DONE error."""
    send_request(sock, family, cmd, nlflags, attrs, reserved, trailing)
    return read_replies(sock, nlflags)


def resolve_family(sock, name):
    replies = transact(sock, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_REQUEST,
                       nla(2, name.encode() + b'\0'))
    info = {}
    for atype, value in parse_attrs(replies[0][3]):
        info[CTRL_ATTR.get(atype & NLA_TYPE_MASK, atype)] = value
    return info


# ---- output ----------------------------------------------------------------

def decode(level, atype, value):
    kind = SCHEMA.get(level, {}).get(atype, (None, 'bin', None))[1]
    fmt = {'u8': '=B', 'u16': '=H', 'u32': '=I', 'u64': '=Q'}.get(kind)
    if fmt and len(value) == struct.calcsize(fmt):
        return str(struct.unpack(fmt, value)[0])
    if kind == 'str' and value.endswith(b'\0'):
        return 'str:' + value[:-1].decode(errors='replace')
    return 'hex:' + value.hex()


def print_tree(level, data, indent, out):
    for raw, value in parse_attrs(data):
        atype = raw & NLA_TYPE_MASK
        sub = child_level(level, atype)
        name = attr_name(level, atype)
        if sub:
            flag = '' if raw & NLA_F_NESTED else ' (noflag)'
            out.append('%s%s len=%d: nest%s' % ('  ' * indent, name, len(value), flag))
            print_tree(sub, value, indent + 1, out)
        else:
            out.append('%s%s len=%d: %s' % ('  ' * indent, name, len(value), decode(level, atype, value)))


def order(level, data):
    words = []
    for raw, value in parse_attrs(data):
        atype = raw & NLA_TYPE_MASK
        sub = child_level(level, atype)
        name = attr_name(level, atype)
        if sub:
            flag = '' if raw & NLA_F_NESTED else '(noflag)'
            words.append('%s%s[%s]' % (name, flag, order(sub, value)))
        else:
            words.append(name)
    return ' '.join(words)


ERRNO_NAMES = dict(errno.errorcode)
ERRNO_NAMES.update({errno.EOPNOTSUPP: 'EOPNOTSUPP', errno.EAGAIN: 'EAGAIN'})


def make_parser():
    ap = argparse.ArgumentParser(prog='genl.py', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('op', choices=('family', 'set', 'get', 'batch'))
    ap.add_argument('--name', default='wireguard', help='family name (default wireguard)')
    ap.add_argument('--ifname')
    ap.add_argument('--ifindex', type=lambda s: int(s, 0))
    ap.add_argument('--attr', action='append', default=[], metavar='SPEC')
    ap.add_argument('--order', action='store_true')
    ap.add_argument('--cmd', type=lambda s: int(s, 0))
    ap.add_argument('--nlflags', type=lambda s: int(s, 0))
    ap.add_argument('--reserved', type=lambda s: int(s, 0), default=0)
    ap.add_argument('--trailing', type=int, default=0)
    return ap


def request(args):
    """Run one family/set/get request; return (exit status, output lines)."""
    attrs = b''
    try:
        if args.ifindex is not None:
            attrs += nla(1, struct.pack('=I', args.ifindex))
        if args.ifname is not None:
            attrs += nla(2, args.ifname.encode() + b'\0')
        for spec in args.attr:
            attrs += SpecParser(spec).parse('device')
    except (SpecError, ValueError) as e:
        print('genl.py: %s' % e, file=sys.stderr)
        return 2, []

    out = []
    sock = open_socket()
    try:
        info = resolve_family(sock, args.name)
        if args.op == 'family':
            u32 = lambda k: struct.unpack('=I', info[k])[0] if k in info else None
            out.append('id=%d version=%s hdrsize=%s maxattr=%s' % (
                struct.unpack('=H', info['FAMILY_ID'])[0], u32('VERSION'),
                u32('HDRSIZE'), u32('MAXATTR')))
            for _, op in parse_attrs(info.get('OPS', b'')):
                fields = {t & NLA_TYPE_MASK: struct.unpack('=I', v)[0] for t, v in parse_attrs(op)}
                out.append('op %d 0x%x' % (fields.get(1, -1), fields.get(2, 0)))
            return 0, out
        family = struct.unpack('=H', info['FAMILY_ID'])[0]
        if args.op == 'set':
            cmd, nlflags = WG_CMD_SET_DEVICE, NLM_F_REQUEST | NLM_F_ACK
        else:
            cmd, nlflags = WG_CMD_GET_DEVICE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP
        if args.cmd is not None:
            cmd = args.cmd
        if args.nlflags is not None:
            nlflags = args.nlflags
        replies = transact(sock, family, cmd, nlflags, attrs, args.reserved, args.trailing)
    except KernelError as e:
        if e.msg:
            print('genl.py: kernel says: %s' % e.msg, file=sys.stderr)
        return 1, [ERRNO_NAMES.get(e.err, str(e.err))]
    except socket.timeout:
        print('genl.py: no answer from the kernel', file=sys.stderr)
        return 3, []
    finally:
        sock.close()
    for gcmd, gver, mflags, data in replies:
        if args.order:
            out.append(order('device', data))
        else:
            out.append('# cmd=%d version=%d' % (gcmd, gver))
            print_tree('device', data, 0, out)
    if replies.intr:
        out.append('DUMP_INTR')
    return 0, out


def batch(parser):
    """One request per stdin line (shell-quoted arguments, as on the command
    line); print one result line per request: "OK", "OK <--order output>" or
    the errno name. Lines that are empty or start with # are skipped."""
    worst = 0
    for line in sys.stdin:
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        try:
            args = parser.parse_args(shlex.split(line))
        except SystemExit:
            print('USAGE')
            worst = 2
            continue
        rc, out = request(args)
        if rc == 0:
            if not args.order:
                out = out[-1:] if out[-1:] == ['DUMP_INTR'] else []
            print(' '.join(['OK'] + out))
        else:
            print(out[0] if out else 'ERROR%d' % rc)
            worst = max(worst, rc)
        sys.stdout.flush()
    return worst


def main():
    parser = make_parser()
    args = parser.parse_args()
    if args.op == 'batch':
        return batch(parser)
    rc, out = request(args)
    for line in out:
        print(line)
    return rc


if __name__ == '__main__':
    sys.exit(main())

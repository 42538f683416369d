#!/usr/bin/env python3
"""Systematic allocation-failure injection with fail-nth (kasan kernel profile).

  fault-inject.py setconf IFNAME PEERS [--check-every K] [--c-partial-ok] [--log FILE]
                  [--progress-fd FD]   (a line every 100 points, on FD)
                  [--requests A-B]     (sweep only requests A to B, from 1)
  fault-inject.py newlink IFNAME [--log FILE]
  fault-inject.py privkey IFNAME OLD_B64 NEW_B64 PEER_CMD [--log FILE]
  fault-inject.py arm MODULE        (prints the module's text range; sets the
                                     stack filter of failslab and fail_page_alloc)

Needs CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAULT_INJECTION_DEBUG_FS
and CONFIG_FAULT_INJECTION_STACKTRACE_FILTER, and debugfs mounted.

Both capabilities are set up alike: ignore-gfp-wait N (sleeping allocations
fail too; failslab's default Y would exempt every GFP_KERNEL one), verbose 0
(the sweeps turn it to 2 while they run: see "Stacks"), probability 0 (nothing fails but through
fail-nth), and require-start/require-end on the module's code (its ELF
executable sections, placed where /sys/module/M/sections says): only an
allocation with a frame of the module on the stack (depth 32) can fail,
and fail-nth counts only those. So "injection point N" is the module's
N-th allocation (slab or page) in the operation, wherever in the kernel
the allocation itself happens (register_netdevice under our newlink, say).

The sweep writes N to /proc/thread-self/fail-nth right before the
operation's first system call and reads it back after its last: 0 means the
N-th allocation was failed, a positive value that the operation made fewer
than N (then it must have succeeded, and the sweep ends: the operation has
N - 1 points). N goes 1, 2, ... so every point is failed once.

Points move. The N-th allocation is not the same one from run to run: the
count includes allocations that only happen sometimes, depending on state
other tasks and deferred work leave behind (a new slab page when the CPU's
slabs are used up, which frees by RCU callbacks of the previous run's
device decide; percpu chunks that a worker populates in the background;
debugobjects' pool refills; kmemleak's and KASAN's stack depot metadata).
Most of those ask for __GFP_NOWARN and, when failed, end in a success with
nothing lost. So the sweep is not an exhaustive enumeration: between two
consecutive N the operation may gain or lose a few allocations, and one
allocation may be failed twice or never. newlink measures its points 10
times without injection first, to show how much they vary.

Stacks. Every injected failure not asked for with __GFP_NOWARN prints
its stack (verbose 2, unlimited); the sweeps read it from /dev/kmsg, give it
in a violation, and log every point with it (--log FILE). One error other
than ENOMEM is accepted in newlink, and only with its stack: EINVAL when
the failed allocation is dev_set_name()'s in netdev_register_kobject(),
which ignores that ENOMEM, so that device_add() refuses the nameless
device with EINVAL (net/core/net-sysfs.c, drivers/base/core.c). That is
the core's, reached by any driver's register_netdevice().

setconf: the requests `wg setconf` sends for PEERS peers (PEERS > 0), packed
as wg packs them (at most 4096 bytes a message; the first one with the private
key and REPLACE_PEERS), each peer with REPLACE_ALLOWEDIPS, a /32 and a /128,
and, by turns, an endpoint, a preshared key and a keepalive. Like wg it stops
at the first request that fails. After each injected failure it expects:
  - the error to be ENOMEM (or ENOBUFS, netlink's own), or, if the request
    succeeded despite the fault, the request's peers all fully there;
  - in the dump: every peer of the earlier requests fully there, none of the
    later ones, and each peer of the failing request either absent or
    complete: public key, all its allowed IPs and nothing else, endpoint,
    keepalive, preshared key ("a half-built peer" otherwise; the C driver is
    allowed it with --c-partial-ok: it adds allowed IPs one by one);
  - a request without injection to still work (the next step's).
Since the requests before the failing one are deterministic and already
applied, the sweep does not redo them for each N: it keeps them, removes the
failing request's peers (REMOVE_ME, no injection) and retries the request
with the next N; the point numbers are counted over the whole operation.
The full dump is checked at every step of the first and last request and
every K-th step otherwise (--check-every, default 1).
--requests A-B sweeps only those requests (a long sweep split over several
runs); the others are applied without injection, in order, with their
allocations counted (fail-nth set beyond reach), so that point numbers
stay those of the whole operation.

newlink: RTM_NEWLINK of a "wireguard" link IFNAME. After each injected
failure: an error (ENOMEM/ENOBUFS, or the core's EINVAL above) and no IFNAME
left, or success and a device that answers WG_CMD_GET_DEVICE; the device is
deleted before the next step.

Prints one line per operation: points, how the failures ended, violations;
exits 1 on any violation. Requires root.
"""
import errno
import os
import random
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genl  # noqa: E402

DBG = '/sys/kernel/debug'
CAPS = ('failslab', 'fail_page_alloc')
OK_ERRS = (errno.ENOMEM, errno.ENOBUFS)

# WireGuard genetlink attributes
D_IFNAME, D_PRIVATE_KEY, D_FLAGS, D_PEERS = 2, 3, 5, 8
P_PUBLIC_KEY, P_PSK, P_FLAGS, P_ENDPOINT, P_KEEPALIVE, P_ALLOWEDIPS = 1, 2, 3, 4, 5, 9
A_FAMILY, A_IPADDR, A_CIDR = 1, 2, 3
F_REPLACE_PEERS = 1
PF_REMOVE_ME, PF_REPLACE_ALLOWEDIPS = 1, 2


def nla(t, payload):
    return genl.nla(t, payload)


def nest(t, payload):
    return genl.nla(t | genl.NLA_F_NESTED, payload)


def wr(path, value):
    with open(path, 'w') as f:
        f.write(str(value))


# ---- fault injection set-up -------------------------------------------------

def text_range(module):
    """[start, end) over the module's executable sections."""
    path = os.popen('modinfo -n %s' % module).read().strip()
    with open(path, 'rb') as f:
        elf = f.read()
    shoff, = struct.unpack_from('<Q', elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', elf, 0x3a)

    def sh(i):
        return struct.unpack_from('<IIQQQQIIQQ', elf, shoff + i * shentsize)
    stroff = sh(shstrndx)[4]
    lo, hi = None, None
    for i in range(shnum):
        name_off, _, flags, _, _, size, _, _, _, _ = sh(i)
        if not flags & 0x4 or not size:  # SHF_EXECINSTR
            continue
        name = elf[stroff + name_off:elf.index(b'\0', stroff + name_off)].decode()
        if name.startswith('.init'):
            continue  # freed after the module's init, and placed apart
        try:
            addr = int(open('/sys/module/%s/sections/%s' % (module, name)).read(), 16)
        except OSError:
            continue
        lo = addr if lo is None else min(lo, addr)
        hi = addr + size if hi is None else max(hi, addr + size)
    if lo is None or lo == 0:
        raise SystemExit('fault-inject.py: no text range for %s (is it loaded? are '
                         'section addresses readable?)' % module)
    return lo, hi


def arm(module):
    lo, hi = text_range(module)
    for cap in CAPS:
        d = '%s/%s' % (DBG, cap)
        wr(d + '/probability', 0)
        wr(d + '/verbose', 0)
        wr(d + '/task-filter', 'N')
        wr(d + '/ignore-gfp-wait', 'N')
        wr(d + '/times', -1)
        wr(d + '/interval', 1)
        wr(d + '/stacktrace-depth', 32)
        wr(d + '/require-start', lo)
        wr(d + '/require-end', hi)
        wr(d + '/reject-start', 0)
        wr(d + '/reject-end', 0)
    wr(DBG + '/fail_page_alloc/ignore-gfp-highmem', 'N')
    wr(DBG + '/fail_page_alloc/min-order', 0)
    return lo, hi


class Faults:
    """The stacks of the failures fail-nth injects. With verbose 2 (and no
    rate limit) should_fail_ex prints "FAULT_INJECTION: forcing a failure"
    and a stack dump for each, unless the allocation has __GFP_NOWARN (the
    nested, optional ones: slab's higher-order try, kmemleak's and the
    stack depot's metadata, debugobjects' pool); read() takes them from
    /dev/kmsg after each point. Logs every point to LOG (a file) when given."""

    def __init__(self, log=None):
        for cap in CAPS:
            wr('%s/%s/verbose' % (DBG, cap), 2)
            wr('%s/%s/verbose_ratelimit_interval_ms' % (DBG, cap), 0)
        self.fd = os.open('/dev/kmsg', os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)
        self.log = open(log, 'w') if log else None

    def close(self):
        for cap in CAPS:
            wr('%s/%s/verbose' % (DBG, cap), 0)
        os.close(self.fd)
        if self.log:
            self.log.close()

    def read(self):
        """[(capability, [function, ...])]: the failures injected since the
        last call, each with its stack from the allocator's caller up
        (offsets dropped, Rust names shortened)."""
        dumps, cur = [], None
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:  # overwritten before we read it
                dumps.append(('(lost)', []))
                cur = None
                continue
            text = rec.decode(errors='replace').split(';', 1)[-1].split('\n')[0]
            if text.startswith('FAULT_INJECTION: forcing'):
                m = re.search(r'name (\w+)', text)
                cur = (m.group(1) if m else '?', [])
                dumps.append(cur)
            elif cur is not None and '</TASK>' in text:
                cur = None
            elif cur is not None:
                m = re.match(r'\s*(\? )?([\w.$]+)\+0x', text)
                if m and not m.group(1):
                    cur[1].append(short_symbol(m.group(2)))
        return [(cap, frames_above_allocator(frames)) for cap, frames in dumps]

    def log_point(self, n, end, dumps):
        """Point N ended in END, with the failures DUMPS (from read())."""
        if self.log:
            what = '; '.join('%s: %s' % (cap, ' < '.join(fr[:12])) for cap, fr in dumps)
            self.log.write('point %d: %s: %s\n' % (n, end, what or 'no dump (a __GFP_NOWARN allocation)'))
            self.log.flush()


# Frames of the allocators and of fault injection itself, below the caller
# that asked for memory.
ALLOC_FRAMES = re.compile(
    r'^(dump_stack.*|should_fail.*|fail_dump|__should_fail.*|.*kmalloc.*|kmem_cache_alloc.*|'
    r'slab_alloc.*|__slab_alloc.*|___slab_alloc.*|allocate_slab|new_slab|alloc_slab_page|'
    r'.*alloc_pages.*|get_page_from_freelist|prepare_alloc_pages.*|alloc_pages_bulk.*|'
    r'__vmalloc.*|vmalloc.*|__get_vm_area.*|alloc_vmap_area|kvmalloc.*|__kvmalloc.*|'
    r'kvzalloc.*|kzalloc.*|kstrdup.*|kmemdup.*|kvasprintf.*|kasprintf.*|krealloc.*|'
    r'pcpu_.*|__alloc_percpu.*|alloc_percpu.*|folio_alloc.*|__folio_alloc.*)$')


def frames_above_allocator(frames):
    for i, f in enumerate(frames):
        if not ALLOC_FRAMES.match(f):
            return frames[max(i - 1, 0):]
    return frames


def short_symbol(sym):
    """A Rust v0 symbol as its identifiers but the crates' (a::b::c, the
    path then the generic arguments), others as they are."""
    if not sym.startswith('_R'):
        return sym
    sym = re.sub(r'Cs[0-9A-Za-z]+_', 'C', sym)  # crates' disambiguators
    idents, i = [], 0
    while i < len(sym):
        m = re.match(r'\d+', sym[i:])
        if not m:
            i += 1
            continue
        j, n = i + m.end(), int(m.group())
        ident = sym[j:j + n].lstrip('_')  # "_" separates a leading digit
        if n and j + n <= len(sym) and re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', ident):
            idents.append(ident)
            i = j + n
        else:
            i = j
    idents = [i for i in idents if i not in ('wireguard_rs', 'kernel', 'core', 'alloc', 'pin_init')]
    return '::'.join(idents) if idents else sym


def describe(dumps):
    if not dumps:
        return 'no stack (a __GFP_NOWARN allocation)'
    return '; '.join('%s at %s' % (cap, ' < '.join(fr[:10])) for cap, fr in dumps)


def kobject_name_point(dumps):
    """Whether the injected failure is the one the core turns into EINVAL:
    netdev_register_kobject() ignores dev_set_name()'s ENOMEM, and
    device_add() then refuses the nameless device with EINVAL."""
    return len(dumps) == 1 and all(f in dumps[0][1] for f in (
        'kobject_set_name_vargs', 'dev_set_name', 'netdev_register_kobject'))


# fail-nth beyond any operation's count of allocations: counts them, fails none.
UNREACHED = 1 << 30


class FailNth:
    def __init__(self):
        self.fd = os.open('/proc/thread-self/fail-nth', os.O_RDWR)

    def set(self, n):
        os.pwrite(self.fd, str(n).encode(), 0)

    def left(self):
        return int(os.pread(self.fd, 32, 0).decode().strip() or 0)


# ---- setconf -----------------------------------------------------------------

class Peer:
    def __init__(self, i, rng):
        self.i = i
        self.key = rng.randbytes(32)
        self.psk = rng.randbytes(32) if i % 2 == 0 else None
        self.port = 10000 + i if i % 3 != 2 else None
        self.keepalive = 25 if i % 4 == 1 else 0
        self.ips = {(socket.AF_INET, socket.inet_pton(socket.AF_INET, '10.%d.%d.%d' % (
                        (i + 1) >> 16 & 255, (i + 1) >> 8 & 255, (i + 1) & 255)), 32),
                    (socket.AF_INET6, socket.inet_pton(socket.AF_INET6, 'fd00::%x' % (i + 1)), 128)}

    def attrs(self):
        a = nla(P_PUBLIC_KEY, self.key) + nla(P_FLAGS, struct.pack('=I', PF_REPLACE_ALLOWEDIPS))
        if self.psk:
            a += nla(P_PSK, self.psk)
        if self.port:
            a += nla(P_ENDPOINT, struct.pack('=HH4s8x', socket.AF_INET, socket.htons(self.port),
                                             socket.inet_aton('127.0.0.1')))
        if self.keepalive:
            a += nla(P_KEEPALIVE, struct.pack('=H', self.keepalive))
        ips = b''
        for j, (fam, addr, cidr) in enumerate(sorted(self.ips)):
            ips += nest(j, nla(A_FAMILY, struct.pack('=H', fam)) + nla(A_IPADDR, addr) +
                        nla(A_CIDR, struct.pack('=B', cidr)))
        return a + nest(P_ALLOWEDIPS, ips)


def setconf_messages(ifname, peers, privkey):
    """[(attrs, [Peer])]: wg's packing, 4096 bytes a message at most."""
    msgs = []
    head0 = nla(D_IFNAME, ifname.encode() + b'\0') + nla(D_PRIVATE_KEY, privkey) + \
        nla(D_FLAGS, struct.pack('=I', F_REPLACE_PEERS))
    head = nla(D_IFNAME, ifname.encode() + b'\0')
    cur, cur_peers, body = head0, [], b''
    for p in peers:
        pn = nest(len(cur_peers), p.attrs())
        if cur_peers and 16 + 4 + len(cur) + 4 + len(body) + len(pn) > 4096:
            msgs.append((cur + nest(D_PEERS, body), cur_peers))
            cur, cur_peers, body = head, [], b''
            pn = nest(0, p.attrs())
        body += pn
        cur_peers.append(p)
    msgs.append((cur + nest(D_PEERS, body), cur_peers))
    return msgs


def dump(sock, family, ifname):
    """{pubkey: {'psk','port','keepalive','ips'}}"""
    replies = genl.transact(sock, family, genl.WG_CMD_GET_DEVICE,
                            genl.NLM_F_REQUEST | genl.NLM_F_DUMP,
                            nla(D_IFNAME, ifname.encode() + b'\0'))
    out = {}
    for _, _, _, payload in replies:
        for t, v in genl.parse_attrs(payload):
            if t & genl.NLA_TYPE_MASK != D_PEERS:
                continue
            for _, pv in genl.parse_attrs(v):
                a = {t2 & genl.NLA_TYPE_MASK: v2 for t2, v2 in genl.parse_attrs(pv)}
                key = a.get(P_PUBLIC_KEY)
                st = out.setdefault(key, {'psk': None, 'port': None, 'keepalive': 0, 'ips': set()})
                if P_PSK in a and a[P_PSK] != bytes(32):
                    st['psk'] = a[P_PSK]
                if P_ENDPOINT in a and len(a[P_ENDPOINT]) >= 4:
                    st['port'] = socket.ntohs(struct.unpack_from('=H', a[P_ENDPOINT], 2)[0])
                if P_KEEPALIVE in a:
                    st['keepalive'] = struct.unpack('=H', a[P_KEEPALIVE])[0]
                for _, ipv in genl.parse_attrs(a.get(P_ALLOWEDIPS, b'')):
                    ia = {t3 & genl.NLA_TYPE_MASK: v3 for t3, v3 in genl.parse_attrs(ipv)}
                    st['ips'].add((struct.unpack('=H', ia[A_FAMILY])[0], ia[A_IPADDR],
                                   ia[A_CIDR][0]))
    return out


def complete(p, st):
    return (st['ips'] == p.ips and st['psk'] == p.psk and st['port'] == p.port and
            st['keepalive'] == p.keepalive)


def cmd_setconf(ifname, npeers, check_every, partial_ok, log=None, swept=None):
    rng = random.Random(7)
    peers = [Peer(i, rng) for i in range(npeers)]
    msgs = setconf_messages(ifname, peers, rng.randbytes(32))
    first, last = swept or (1, len(msgs))
    if not 1 <= first <= last <= len(msgs):
        print('--requests %d-%d: the operation has requests 1-%d' % (first, last, len(msgs)))
        return 2
    sock = genl.open_socket()
    sock.settimeout(300)
    family = struct.unpack('=H', genl.resolve_family(sock, 'wireguard')['FAMILY_ID'])[0]
    fn = FailNth()
    faults = Faults(log)
    req = genl.NLM_F_REQUEST | genl.NLM_F_ACK
    ifattr = nla(D_IFNAME, ifname.encode() + b'\0')
    by_key = {p.key: p for p in peers}
    violations, ends = [], {}
    partial = 0
    base = steps = checks = swept_points = 0

    def violation(text):
        violations.append(text)
        print('VIOLATION: ' + text, flush=True)

    def failed_uninjected(m, err):
        violation('request %d failed (%s) without an injected fault' % (
            m + 1, genl.ERRNO_NAMES.get(err, err)))
        faults.close()
        return report('setconf', base, swept_points, steps, checks, ends, violations, partial)

    def check(applied, failing, point, allow_partial):
        """The dump against: requests < APPLIED fully there; of request
        FAILING (or None), each peer absent or complete; nothing else."""
        nonlocal partial, checks
        checks += 1
        state = dump(sock, family, ifname)
        before = {p.key for mm in range(applied) for p in msgs[mm][1]}
        mine = {p.key for p in msgs[failing][1]} if failing is not None else set()
        for k, st in state.items():
            p = by_key.get(k)
            if p is None:
                violation('point %d: an unknown peer in the dump' % point)
            elif k in before:
                if not complete(p, st):
                    violation('point %d: peer %d (an earlier request) is not complete' % (point, p.i))
            elif k in mine:
                if not complete(p, st):
                    if allow_partial:
                        partial += 1
                    else:
                        violation('point %d: peer %d half-built: %d of 2 allowed IPs (%d in all), '
                                  'psk %s, endpoint %s, keepalive %s' % (
                                      point, p.i, len(st['ips'] & p.ips), len(st['ips']),
                                      st['psk'] == p.psk, st['port'] == p.port,
                                      st['keepalive'] == p.keepalive))
            else:
                violation('point %d: peer %d of a later request is in the dump' % (point, p.i))
        missing = before - set(state)
        if missing:
            violation('point %d: %d peers of the earlier requests are missing' % (point, len(missing)))
        return state

    def undo(m):
        """Back to "requests < m applied": remove request m's peers (and,
        for the first request, the private key it set)."""
        body = b''.join(nest(j, nla(P_PUBLIC_KEY, p.key) + nla(P_FLAGS, struct.pack('=I', PF_REMOVE_ME)))
                        for j, p in enumerate(msgs[m][1]))
        attrs = ifattr + nest(D_PEERS, body)
        if m == 0:
            attrs = ifattr + nla(D_PRIVATE_KEY, bytes(32)) + nla(D_FLAGS, struct.pack('=I', F_REPLACE_PEERS))
        genl.transact(sock, family, genl.WG_CMD_SET_DEVICE, req, attrs)

    undo(0)
    for m, (attrs, mpeers) in enumerate(msgs):
        if not first <= m + 1 <= last:
            fn.set(UNREACHED)
            try:
                genl.transact(sock, family, genl.WG_CMD_SET_DEVICE, req, attrs)
            except genl.KernelError as e:
                return failed_uninjected(m, e.err)
            made = UNREACHED - fn.left()
            fn.set(0)
            base += made
            print('request %d of %d: %d peers, %d points, not swept' % (
                m + 1, len(msgs), len(mpeers), made), flush=True)
            continue
        n = 1
        while True:
            fn.set(n)
            err = 0
            try:
                genl.transact(sock, family, genl.WG_CMD_SET_DEVICE, req, attrs)
            except genl.KernelError as e:
                err = e.err
            left = fn.left()
            fn.set(0)
            steps += 1
            if left != 0:
                # Not injected: request m makes n - 1 allocations.
                if err:
                    return failed_uninjected(m, err)
                base += n - 1
                swept_points += n - 1
                break
            point = base + n
            if point % 100 == 0:
                progress('setconf: %d points swept, request %d of %d, %d violations' % (
                    point, m + 1, len(msgs), len(violations)))
            name = genl.ERRNO_NAMES.get(err, str(err)) if err else 'success'
            dumps = faults.read()
            faults.log_point(point, name, dumps)
            ends[name] = ends.get(name, 0) + 1
            if err and err not in OK_ERRS:
                violation('point %d: error %s, not ENOMEM; injected: %s' % (point, name, describe(dumps)))
            if not err or m == 0 or m == len(msgs) - 1 or steps % check_every == 0:
                state = check(m, m, point, partial_ok and bool(err))
                if not err:
                    bad = [p.i for p in mpeers if p.key not in state or not complete(p, state[p.key])]
                    if bad:
                        violation('point %d: the request succeeded but %d of its peers are not '
                                  'fully there (a silent half job)' % (point, len(bad)))
            try:
                undo(m)
            except genl.KernelError as e:
                violation('point %d: undoing the request then failed: %s' % (
                    point, genl.ERRNO_NAMES.get(e.err, e.err)))
            n += 1
        print('request %d of %d: %d peers, %d points' % (m + 1, len(msgs), len(mpeers), n - 1), flush=True)
    faults.close()
    state = check(len(msgs), None, base, False)
    done = sum(1 for p in peers if p.key in state and complete(p, state[p.key]))
    if done != len(peers):
        violation('after the sweep: %d of %d peers complete' % (done, len(peers)))
    what = 'setconf of %d peers in %d requests' % (npeers, len(msgs))
    if (first, last) != (1, len(msgs)):
        what += ', requests %d-%d swept' % (first, last)
    return report(what, base, swept_points, steps, checks, ends, violations, partial)


PROGRESS_FD = None


def progress(text):
    """A line for whoever watches a long sweep, on the descriptor that
    --progress-fd named (the caller's output, while it keeps ours)."""
    if PROGRESS_FD is not None:
        os.write(PROGRESS_FD, ('[%s] %s\n' % (time.strftime('%H:%M:%S'), text)).encode())


def report(what, points, swept, steps, checks, ends, violations, partial):
    scope = 'all swept' if swept == points else '%d of them swept' % swept
    print('%s: %d injection points, %s (%d runs, %d dumps checked); injected failures '
          'ended: %s; partially applied peers (allowed for C): %d; violations: %d' % (
              what, points, scope, steps, checks,
              ', '.join('%s %d' % kv for kv in sorted(ends.items())) or 'none',
              partial, len(violations)))
    return 1 if violations else 0


# ---- privkey ----------------------------------------------------------------

def device_public_key(sock, family, ifname):
    replies = genl.transact(sock, family, genl.WG_CMD_GET_DEVICE,
                            genl.NLM_F_REQUEST | genl.NLM_F_DUMP,
                            nla(D_IFNAME, ifname.encode() + b'\0'))
    for _, _, _, payload in replies:
        for t, v in genl.parse_attrs(payload):
            if t & genl.NLA_TYPE_MASK == 4:  # WGDEVICE_A_PUBLIC_KEY
                return v
    return None


def cmd_privkey(ifname, old_b64, new_b64, peer_cmd, log=None):
    """Sweeps a set-device of the private key alone on IFNAME (which has a
    working tunnel to a peer, and OLD as its key). After each injected
    failure the tunnel must work with the public key the dump shows: PEER_CMD
    (a shell command, {} for the base64 public key) points the other end at
    it, then a ping must pass. Then OLD is put back."""
    import base64
    import subprocess
    sock = genl.open_socket()
    family = struct.unpack('=H', genl.resolve_family(sock, 'wireguard')['FAMILY_ID'])[0]
    fn = FailNth()
    req = genl.NLM_F_REQUEST | genl.NLM_F_ACK
    ifattr = nla(D_IFNAME, ifname.encode() + b'\0')
    old, new = base64.b64decode(old_b64), base64.b64decode(new_b64)
    faults = Faults(log)
    violations, ends = [], {}

    def works(pub):
        subprocess.run(peer_cmd.replace('{}', base64.b64encode(pub).decode()), shell=True, check=True)
        for _ in range(30):
            if subprocess.run(['ping', '-c', '1', '-W', '2', '10.200.0.2'],
                              stdout=subprocess.DEVNULL).returncode == 0:
                return True
        return False

    old_pub = device_public_key(sock, family, ifname)
    n = 1
    while True:
        fn.set(n)
        err = 0
        try:
            genl.transact(sock, family, genl.WG_CMD_SET_DEVICE, req, ifattr + nla(D_PRIVATE_KEY, new))
        except genl.KernelError as e:
            err = e.err
        left = fn.left()
        fn.set(0)
        if left != 0:
            if err:
                violations.append('no injection, yet %s' % err)
            break
        name = genl.ERRNO_NAMES.get(err, str(err)) if err else 'success'
        dumps = faults.read()
        faults.log_point(n, name, dumps)
        ends[name] = ends.get(name, 0) + 1
        if err and err not in OK_ERRS:
            violations.append('point %d: error %s, not ENOMEM; injected: %s' % (n, name, describe(dumps)))
        pub = device_public_key(sock, family, ifname)
        print('point %d: %s; the dump shows the %s public key' % (
            n, name, 'old' if pub == old_pub else 'new'), flush=True)
        if not works(pub):
            violations.append('point %d: %s, the dump shows the %s key, and a peer using it gets '
                              'no answer' % (n, name, 'old' if pub == old_pub else 'new'))
        genl.transact(sock, family, genl.WG_CMD_SET_DEVICE, req, ifattr + nla(D_PRIVATE_KEY, old))
        if not works(old_pub):
            violations.append('point %d: the old key put back, no answer' % n)
        n += 1
    faults.close()
    for v in violations:
        print('VIOLATION: ' + v)
    return report('private key', n - 1, n - 1, n, n - 1, ends, violations, 0)


# ---- newlink -----------------------------------------------------------------

RTM_NEWLINK, RTM_DELLINK = 16, 17
IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND = 3, 18, 1


def rtnl(sock, mtype, flags, attrs):
    body = struct.pack('=BxHiII', 0, 0, 0, 0, 0) + attrs
    sock.send(struct.pack('=IHHII', 16 + len(body), mtype, flags, 1, 0) + body)
    while True:
        data = sock.recv(65536)
        off = 0
        while off + 16 <= len(data):
            mlen, t, _, seq, _ = struct.unpack_from('=IHHII', data, off)
            if t == genl.NLMSG_ERROR:
                return -struct.unpack_from('=i', data, off + 16)[0]
            off += (mlen + 3) & ~3


def cmd_newlink(ifname, log=None):
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    sock.bind((0, 0))
    sock.settimeout(60)
    gsock = genl.open_socket()
    family = struct.unpack('=H', genl.resolve_family(gsock, 'wireguard')['FAMILY_ID'])[0]
    name = nla(IFLA_IFNAME, ifname.encode() + b'\0')
    new = name + nest(IFLA_LINKINFO, nla(IFLA_INFO_KIND, b'wireguard\0'))
    fn = FailNth()
    faults = Faults(log)
    violations, ends = [], {}
    flags = genl.NLM_F_REQUEST | genl.NLM_F_ACK | 0x400 | 0x200  # CREATE | EXCL
    # How many points the operation has, run after run without injection:
    # not a constant (see the module's documentation, "Points move").
    counts = []
    for _ in range(10):
        fn.set(1 << 30)
        err = rtnl(sock, RTM_NEWLINK, flags, new)
        counts.append((1 << 30) - fn.left())
        fn.set(0)
        rtnl(sock, RTM_DELLINK, genl.NLM_F_REQUEST | genl.NLM_F_ACK, name)
        if err:
            violations.append('no injection, yet error %s' % err)
    print('newlink without injection, 10 runs: %s points' % ' '.join(map(str, counts)), flush=True)
    n = 1
    while True:
        fn.set(n)
        err = rtnl(sock, RTM_NEWLINK, flags, new)
        left = fn.left()
        fn.set(0)
        exists = os.path.exists('/sys/class/net/' + ifname)
        if left != 0:
            if err or not exists:
                violations.append('no injection, yet error %s / device %s' % (err, exists))
            rtnl(sock, RTM_DELLINK, genl.NLM_F_REQUEST | genl.NLM_F_ACK, name)
            break
        ename = genl.ERRNO_NAMES.get(err, str(err)) if err else 'success'
        dumps = faults.read()
        if err == errno.EINVAL and kobject_name_point(dumps):
            ename = 'EINVAL (core: dev_set_name)'
        faults.log_point(n, ename, dumps)
        ends[ename] = ends.get(ename, 0) + 1
        if err:
            if err not in OK_ERRS and not ename.startswith('EINVAL (core'):
                violations.append('point %d: error %s, not ENOMEM; injected: %s' % (
                    n, ename, describe(dumps)))
            if exists:
                violations.append('point %d: %s, but %s exists' % (n, ename, ifname))
        else:
            if not exists:
                violations.append('point %d: success, but no %s' % (n, ifname))
            else:
                try:
                    genl.transact(gsock, family, genl.WG_CMD_GET_DEVICE,
                                  genl.NLM_F_REQUEST | genl.NLM_F_DUMP,
                                  nla(D_IFNAME, ifname.encode() + b'\0'))
                except genl.KernelError as e:
                    violations.append('point %d: created, but get-device fails: %s' % (n, e.err))
        if exists:
            e = rtnl(sock, RTM_DELLINK, genl.NLM_F_REQUEST | genl.NLM_F_ACK, name)
            if e:
                violations.append('point %d: deleting %s failed: %s' % (n, ifname, e))
        n += 1
    faults.close()
    for v in violations:
        print('VIOLATION: ' + v)
    return report('newlink', n - 1, n - 1, n, n - 1, ends, violations, 0)


def opt_log(a):
    return a[a.index('--log') + 1] if '--log' in a else None


def main():
    global PROGRESS_FD
    a = sys.argv[1:]
    if '--progress-fd' in a:
        PROGRESS_FD = int(a[a.index('--progress-fd') + 1])
    if not a:
        print(__doc__, file=sys.stderr)
        return 2
    if a[0] == 'arm' and len(a) == 2:
        lo, hi = arm(a[1])
        print('%s text %#x-%#x (%d bytes)' % (a[1], lo, hi, hi - lo))
        return 0
    if a[0] == 'setconf' and len(a) >= 3:
        k = int(a[a.index('--check-every') + 1]) if '--check-every' in a else 1
        swept = None
        if '--requests' in a:
            lo, _, hi = a[a.index('--requests') + 1].partition('-')
            swept = (int(lo), int(hi or lo))
        return cmd_setconf(a[1], int(a[2]), k, '--c-partial-ok' in a, opt_log(a), swept)
    if a[0] == 'privkey' and len(a) in (5, 7):
        return cmd_privkey(a[1], a[2], a[3], a[4], opt_log(a))
    if a[0] == 'newlink' and len(a) in (2, 4):
        return cmd_newlink(a[1], opt_log(a))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())

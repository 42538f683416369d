# kmemleak helpers for the VM tests (the kasan kernel profile has kmemleak,
# with its automatic scan off). Source it, or run it:
#
#   bash tests/kmemleak.sh clear             forget what is unreferenced now
#   bash tests/kmemleak.sh check MODULE...   scan; fail on a report about MODULE
#
#   kmemleak_available   whether /sys/kernel/debug/kmemleak is there (mounts
#                        debugfs if needed)
#   kmemleak_clear       marks every object unreferenced now as reported, so
#                        that a later check sees only what leaked after it
#                        (call it before the modules under test are loaded)
#   kmemleak_check MODULE...
#                        scans twice, 5 s apart (an object must be found
#                        unreferenced by two scans to be reported), then
#                        prints one line per report and the whole of each
#                        report that is about one of the MODULEs: a
#                        backtrace frame in it ("[MODULE]"), or a frame in
#                        module space that no longer resolves to a symbol
#                        (a module unloaded since: kmemleak symbolises at
#                        read time). Returns 1 if there is such a report.
#                        The whole output is kept in /wgrs/kmemleak.N.txt
#                        (the VM's run directory) when writable.
# A report about other code is printed as a summary line only (its text
# would match tools/vm-run's splat patterns): kmemleak has false positives
# in the rest of the kernel, and they are not ours to judge.

KMEMLEAK=/sys/kernel/debug/kmemleak

kmemleak_available() {
	[ -e $KMEMLEAK ] || mountpoint -q /sys/kernel/debug ||
		mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	[ -w $KMEMLEAK ]
}

kmemleak_clear() {
	echo clear >$KMEMLEAK
}

kmemleak_check() {
	local out n=1 rc
	kmemleak_available || { echo "kmemleak: not available in this kernel"; return 0; }
	echo scan >$KMEMLEAK
	sleep 5
	echo scan >$KMEMLEAK
	while [ -e "/wgrs/kmemleak.$n.txt" ]; do n=$((n + 1)); done
	out=$(mktemp /tmp/kmemleak.XXXXXX)
	cat $KMEMLEAK >"$out"
	[ -w /wgrs ] && cp "$out" "/wgrs/kmemleak.$n.txt"
	python3 - "$out" "$@" <<'PY'
import re, sys
path, mods = sys.argv[1], sys.argv[2:]
text = open(path, errors='replace').read()
reports = [r for r in re.split(r'(?m)^(?=unreferenced object)', text) if r.strip()]
unresolved = re.compile(r'^\s+(\[<[0-9a-f]+>\]\s+)?0xffffffff[a-f][0-9a-f]{7}\s*$', re.M)
ours = 0
for r in reports:
    head = r.splitlines()[0]
    size = re.search(r'\(size (\d+)\)', head)
    frames = [l.strip() for l in r.splitlines() if re.match(r'\s+(\[<|[a-z_0-9.]+\+0x|0x)', l)
              and 'hex dump' not in l]
    frames = [f for f in frames if not re.match(r'^[0-9a-f]{2}( [0-9a-f]{2})+', f)]
    about = any('[%s]' % m in r for m in mods) or unresolved.search(r)
    if about:
        ours += 1
        print('kmemleak: a report about %s:' % '/'.join(mods))
        print(r.rstrip())
    else:
        # Not the splat wording: a summary line only.
        print('kmemleak: other code (size %s): %s' % (size.group(1) if size else '?',
              ' < '.join(f.split(' ')[-1] for f in frames[:4] if 'kmemleak' not in f)))
print('kmemleak: %d reports, %d about %s' % (len(reports), ours, '/'.join(mods)))
sys.exit(1 if ours else 0)
PY
	rc=$?
	rm -f "$out"
	return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case ${1:-} in
	clear) kmemleak_available && kmemleak_clear ;;
	check) shift; kmemleak_check "$@" ;;
	*) echo "usage: $0 clear | check MODULE..." >&2; exit 2 ;;
	esac
fi

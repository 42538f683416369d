#!/bin/bash
# Differential netlink fuzzing, with the C driver as the oracle: one seeded
# sequence of COUNT wireguard requests (plus device operations, dumps read
# part-way, other senders; see tests/netlink-fuzz.py) runs on wireguard_rs,
# then on the C wireguard.ko, in this boot; every answer and the final state
# (dumps and `wg showconf`) are compared. A divergence that is not on the
# allowlist, or an answer the genetlink core model did not predict, fails.
# The kernel must stay quiet (tools/vm-run fails the run on any splat).
#
#   tools/vm-run tests/fuzz.sh [COUNT [SEED]]     (default: 800, a random seed)
#
# Ends with one result line: the seed (rerun with it to reproduce), the
# count, the share of requests that reached the handlers, the errno
# histogram and the divergences; the lines before it say what was sent, and
# show each divergence with a genl.py command line and both answers. After a
# failure the logs are in build/vm/<run>/fuzz/ on the host (compare them
# again with `python3 tests/netlink-fuzz.py compare rs.log c.log`).
set -u
cd "$(dirname "$0")/.." || exit 1
count=${1:-800}
seed=${2:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
name="netlink differential fuzz"
fail() { echo "FAIL $name (seed $seed, $count requests): $*"; exit 1; }

unload() {
	local m
	for m in wireguard_rs wireguard; do
		[ ! -d "/sys/module/$m" ] || rmmod "$m" || return 1
	done
}

# The helpers run as nobody and in user namespaces: they need a readable copy.
dir=$(mktemp -d /tmp/wgrs-fuzz.XXXXXX)
chmod 755 "$dir"
install -m 644 tests/netlink-fuzz.py tests/genl.py "$dir/" || fail "install failed"
# Logs on tmpfs (the 9p share is slow in small writes and reads); on a
# failure they are copied where the host finds them: build/vm/<run>/fuzz.
logs=$dir
keep() {
	[ -d /wgrs ] && mkdir -p /wgrs/fuzz && cp "$logs"/*.log* /wgrs/fuzz/ &&
		echo "    logs: build/vm/<run>/fuzz/ on the host"
}
# Where the time goes, for the summary: "phase N s" words.
times=
t0=$(date +%s)
lap() { local now; now=$(date +%s); times+="${times:+, }$1 $((now - t0)) s"; t0=$now; }
unload || fail "cannot unload the modules"
for impl in rs c; do
	[ $impl = rs ] && module=wireguard_rs || module=wireguard
	modprobe "$module" || fail "modprobe $module failed"
	lap "load $impl"
	timeout 1200 python3 "$dir/netlink-fuzz.py" run "$seed" "$count" "$logs/$impl.log" ||
		{ keep; fail "the run on $module failed"; }
	lap "run $impl"
	rmmod "$module" || fail "rmmod $module failed"
	lap "unload $impl"
done
out=$(python3 "$dir/netlink-fuzz.py" compare "$logs/rs.log" "$logs/c.log")
rc=$?
lap compare
echo "    times: $times"
printf '%s\n' "$out" | sed '$d; s/^/    /'
result=$(printf '%s\n' "$out" | tail -n 1)
[ $rc = 0 ] || { keep; fail "$result"; }
echo "ok   $name: $result"

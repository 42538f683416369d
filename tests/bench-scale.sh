#!/bin/bash
# Scale benchmark: 100,000 peers x 2 allowed IPs (a /32 and a /128 each),
# ours (wireguard_rs) against the C driver (wireguard), in one VM boot.
# Numbers are printed, never asserted.
#
#   make bench-scale [PEERS=N] [PERF=1 | COUNT=1]     on the bench kernel profile
#   tools/vm-run tests/bench-scale.sh [PEERS [IMPLS [PERF | count]]]
#
# PEERS defaults to $BENCH_PEERS or 100000, IMPLS to $BENCH_IMPLS or "rs c"
# (vm-run does not pass the host's environment into the guest: use the
# arguments there, e.g. `tools/vm-run tests/bench-scale.sh 2000`). IMPL only
# decides which module is blacklisted for autoloading; both are loaded here by
# explicit modprobe, one at a time.
#
# Memory: in Linux 7.3 the C driver uses threaded NAPI (device.c
# netif_threaded_enable), so every peer has its own "napi/wg0-N" kthread: a
# task_struct (slab), a kernel stack (KernelStack, not slab) and a pid. The
# script raises kernel.pid_max and kernel.threads-max so that 100,000 of them
# fit (the default pid_max of 32768 makes the C driver's setconf, and every
# fork, fail at about 32,000 peers); the C driver then needs more than the
# 4 GiB that VM_MEM=4096 gives, hence 8192 above.
#
# For each implementation: modprobe, create wg0, then the wall time of
#   setconf  `wg setconf wg0 cfg` (private key + N peers)
#   dump     `wg show wg0 dump > /dev/null`, and then the same dump read by
#            build/dump-count (tests/dump-count.c, built by make
#            bench-scale), which only receives and counts the messages (its
#            own time from request to NLMSG_DONE, 1 MiB reads), so that
#            neither wg's formatting nor an interpreter hides the kernel's
#            cost; five of each, the median
#   first handshake  with the N peers in place, a peer added on wg1 (in
#            another namespace) and pinged: the first ping's round trip,
#            which carries the handshake. Ours computes a peer's
#            static-static Curve25519 result at its first handshake, C when
#            the peer is added (in setconf). Median of 5 rounds, each with
#            the peer added anew and both sides' sessions forgotten.
#   profile  with PERF (a perf binary, see tools/perf), ten more counting
#            dumps, sampled on every CPU; the top kernel symbols of both
#            drivers are printed after the table; with `count` in its place
#            (make bench-scale COUNT=1, under tools/tcg-count's plugin), the
#            ten dumps run in a window of instruction counts, for
#            `tools/tcg-count report`: instructions per peer dumped
#   remove   `wg setconf wg0 empty.conf` (private key only: replaces all peers)
# and kernel memory per peer from slab accounting: /proc/meminfo Slab and,
# if readable, the sum over /proc/slabinfo of active_objs * objsize, each
# read after drop_caches and a pause for RCU frees, before and after setconf
# (and after the removal, to show what is left). Percpu from /proc/meminfo
# is reported too (per-peer percpu allocations are not slab).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/perf-top.sh
. tests/tcg-count.sh

DUMP_COUNT=build/dump-count
[ -x "$DUMP_COUNT" ] || { echo "bench-scale.sh: no $DUMP_COUNT: make bench-scale builds it"; exit 1; }
N=${1:-${BENCH_PEERS:-100000}}
IMPLS=${2:-${BENCH_IMPLS:-rs c}}
PERF=${3:-}
D=$(mktemp -d /tmp/wgrs-bench.XXXXXX)
declare -A R

now() { date +%s.%N; }
# median5 V1..V5: the median of five values, or nothing unless there are five.
median5() { [ $# = 5 ] && printf '%s\n' "$@" | sort -g | sed -n 3p; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
meminfo_kb() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
slabinfo_bytes() {
	[ -r /proc/slabinfo ] || { echo n/a; return; }
	awk 'NR > 2 { s += $2 * $4 } END { printf "%.0f\n", s }' /proc/slabinfo
}
settle() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep "${BENCH_SETTLE:-2}"
	echo 3 >/proc/sys/vm/drop_caches
}
# per_peer BEFORE AFTER SCALE: (AFTER - BEFORE) * SCALE / N, or n/a.
per_peer() {
	case "$1$2" in *n/a*) echo n/a; return ;; esac
	awk -v a="$1" -v b="$2" -v s="$3" -v n="$N" 'BEGIN { v = (b - a) * s / n; if (v > -0.5 && v < 0.5) v = 0; printf "%.0f", v }'
}
unload_all() {
	local m
	for m in wireguard_rs wireguard; do
		[ -d "/sys/module/$m" ] && rmmod "$m"
	done
	return 0
}
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

hung_task_timeout=$(cat /proc/sys/kernel/hung_task_timeout_secs)
# One kthread and one pid per peer for the C driver (threaded NAPI).
sysctl -qw kernel.pid_max=4194304 || true
sysctl -qw kernel.threads-max=4000000 || true
if [ -n "$PERF" ] && [ "$PERF" != count ]; then
	"$PERF" --version >/dev/null 2>&1 || { log "perf=$PERF does not run"; exit 1; }
	sysctl -qw kernel.kptr_restrict=0 kernel.perf_event_paranoid=-1
fi
log "pid_max $(cat /proc/sys/kernel/pid_max), threads-max $(cat /proc/sys/kernel/threads-max)"
log "generating $N peers x 2 allowed IPs"
t0=$(now)
python3 tests/gen-config.py --peers "$N" --allowed-ips 2 -o "$D/cfg" || { echo "gen-config.py failed"; exit 1; }
priv=$(sed -n 's/^PrivateKey = //p' "$D/cfg")
printf '[Interface]\nPrivateKey = %s\n' "$priv" >"$D/empty.conf"
log "generated in $(sub "$t0" "$(now)") s ($(wc -c <"$D/cfg") bytes)"

# first_handshake IMPL: the "first handshake" row (see above), in ms.
first_handshake() {
	local impl=$1 round key1 pub0 pub1 rtt rtts=()
	key1=$(wg genkey) pub1=$(wg pubkey <<<"$key1") pub0=$(wg pubkey <<<"$priv")
	ip netns add wgrs-hs && ip link add wg1 type wireguard && ip link set wg1 netns wgrs-hs &&
		ip netns exec wgrs-hs wg set wg1 private-key <(echo "$key1") listen-port 20002 &&
		ip -n wgrs-hs addr add 10.99.0.2/24 dev wg1 && ip -n wgrs-hs link set wg1 up &&
		wg set wg0 listen-port 20001 && ip addr add 10.99.0.1/24 dev wg0 && ip link set wg0 up || {
		log "$impl: first handshake: setup failed"
		ip netns del wgrs-hs 2>/dev/null
		return
	}
	for round in 1 2 3 4 5; do
		wg set wg0 peer "$pub1" remove
		wg set wg0 peer "$pub1" allowed-ips 10.99.0.2/32 endpoint 127.0.0.1:20002
		ip -n wgrs-hs link set wg1 down && ip -n wgrs-hs link set wg1 up
		ip netns exec wgrs-hs wg set wg1 peer "$pub0" allowed-ips 10.99.0.1/32 endpoint 127.0.0.1:20001
		rtt=$(ping -n -c 1 -W 10 10.99.0.2 | sed -nE 's/.*time=([0-9.]+) ms.*/\1/p')
		[ -n "$rtt" ] && rtts+=("$rtt")
	done
	if [ ${#rtts[@]} = 5 ]; then
		R[$impl.handshake]=$(median5 "${rtts[@]}")
		log "$impl: first handshake ${rtts[*]} ms, median ${R[$impl.handshake]}"
	else
		log "$impl: first handshake: only ${#rtts[@]} of 5 pings answered"
	fi
	wg set wg0 peer "$pub1" remove
	ip link set wg0 down
	ip netns del wgrs-hs
}

bench_one() {
	local impl=$1 module=$2 t m0 s0 p0 k0 f0 m1 s1 p1 k1 f1 m2 s2 p2 k2 f2 peers
	log "== $impl ($module)"
	# The C driver holds RTNL through the whole setconf and removal, about
	# 15 minutes each at 100,000 peers, and the hung-task detector reports
	# whoever waits for RTNL meanwhile (an addrconf worker): off for C only.
	if [ "$impl" = c ]; then
		echo 0 >/proc/sys/kernel/hung_task_timeout_secs
	else
		echo "$hung_task_timeout" >/proc/sys/kernel/hung_task_timeout_secs
	fi
	unload_all
	if ! modprobe "$module"; then
		log "$impl: modprobe $module failed: n/a"
		return
	fi
	if ! ip link add wg0 type wireguard; then
		log "$impl: ip link add failed: n/a"
		unload_all
		return
	fi
	settle
	m0=$(meminfo_kb Slab) s0=$(slabinfo_bytes) p0=$(meminfo_kb Percpu)
	k0=$(meminfo_kb KernelStack) f0=$(meminfo_kb MemFree)

	t=$(now)
	if ! wg setconf wg0 "$D/cfg"; then
		log "$impl: wg setconf failed: n/a"
		ip link del wg0
		unload_all
		return
	fi
	R[$impl.setconf]=$(sub "$t" "$(now)")
	peers=$(wg show wg0 peers | wc -l)
	log "$impl: setconf ${R[$impl.setconf]} s, $peers peers"
	[ "$peers" = "$N" ] || log "$impl: note: $peers peers configured, not $N"

	settle
	m1=$(meminfo_kb Slab) s1=$(slabinfo_bytes) p1=$(meminfo_kb Percpu)
	k1=$(meminfo_kb KernelStack) f1=$(meminfo_kb MemFree)
	R[$impl.mem]=$(per_peer "$m0" "$m1" 1024)
	R[$impl.slabinfo]=$(per_peer "$s0" "$s1" 1)
	R[$impl.percpu]=$(per_peer "$p0" "$p1" 1024)
	R[$impl.kstack]=$(per_peer "$k0" "$k1" 1024)
	R[$impl.memfree]=$(per_peer "$f1" "$f0" 1024)
	log "$impl: Slab $m0 -> $m1 kB, slabinfo $s0 -> $s1 B, Percpu $p0 -> $p1 kB, KernelStack $k0 -> $k1 kB, MemFree $f0 -> $f1 kB"
	# The biggest caches, to see where the memory goes.
	[ -r /proc/slabinfo ] && awk 'NR > 2 { print $2 * $4, $1, $2, $4 }' /proc/slabinfo | sort -nr | head -n 8 |
		awk '{ printf "    slab %-26s %9d x %6d B = %8.1f MiB\n", $2, $3, $4, $1 / 1048576 }'

	# Five of each; single dumps vary by a third from one to the next.
	local dumps=() raws=() out round
	for round in 1 2 3 4 5; do
		t=$(now)
		wg show wg0 dump >/dev/null && dumps+=("$(sub "$t" "$(now)")")
		# The kernel's side alone: a client that only receives and counts.
		out=$("$DUMP_COUNT" wg0) &&
			raws+=("$(printf '%s\n' "$out" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')")
	done
	R[$impl.dump]=$(median5 "${dumps[@]}")
	R[$impl.dumpraw]=$(median5 "${raws[@]}")
	log "$impl: dump (wg show dump) ${dumps[*]} s, median ${R[$impl.dump]:-n/a}"
	log "$impl: dump (counting client: ${out:-failed}) ${raws[*]} s, median ${R[$impl.dumpraw]:-n/a}"
	if [ "$PERF" = count ]; then
		# Ten dumps; the client takes the snapshots itself, after its start-up.
		local n
		n=$(count_begin)
		"$DUMP_COUNT" -s -n 10 wg0 >"$D/counted"
		count_end "$n" "$([ "$impl" = rs ] && echo ours || echo C)" "ten counting dumps of $N peers" \
			"$(awk '$1 == "sync" { t[++k] = $2 } END { printf "%.2f", t[2] - t[1] }' "$D/counted")" &&
			count_work "$n" $((10 * N)) peer
	elif [ -n "$PERF" ]; then
		"$PERF" record -q -e cpu-clock -a -g -o "$D/perf.data" -- \
			"$DUMP_COUNT" -n 10 wg0 >/dev/null 2>"$D/perf.err" &&
			perf_top "$D/perf.data" "== profile: $impl, ten counting dumps (cpu-clock, all CPUs, self time)" \
				>>"$D/profiles" || log "$impl: perf record failed: $(tail -n 1 "$D/perf.err")"
	fi

	first_handshake "$impl"

	t=$(now)
	if wg setconf wg0 "$D/empty.conf"; then
		R[$impl.remove]=$(sub "$t" "$(now)")
		log "$impl: remove ${R[$impl.remove]} s, $(wg show wg0 peers | wc -l) peers left"
	else
		log "$impl: removing the peers failed"
	fi

	settle
	m2=$(meminfo_kb Slab) s2=$(slabinfo_bytes) p2=$(meminfo_kb Percpu)
	k2=$(meminfo_kb KernelStack) f2=$(meminfo_kb MemFree)
	R[$impl.left]=$(per_peer "$m0" "$m2" 1024)
	log "$impl: after removal: Slab $m2 kB, slabinfo $s2 B, Percpu $p2 kB, KernelStack $k2 kB, MemFree $f2 kB"

	ip link del wg0
	unload_all
}

for impl in $IMPLS; do
	case $impl in
	rs) bench_one rs wireguard_rs ;;
	c) bench_one c wireguard ;;
	*) log "unknown implementation $impl" ;;
	esac
done

cell() { printf '%s' "${R[$1]:-n/a}"; }
ratio() {
	local a=${R[rs.$1]:-n/a} b=${R[c.$1]:-n/a}
	case "$a$b" in *n/a*) echo n/a; return ;; esac
	awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) { print "n/a"; exit } v = a / b; if (v > -0.005 && v < 0.005) v = 0; printf "%.2f\n", v }'
}
row() { printf '%-38s | %12s | %12s | %s\n' "$1" "$(cell "rs.$2")" "$(cell "c.$2")" "$(ratio "$2")"; }

echo
echo "scale benchmark: $N peers x 2 allowed IPs ($(nproc) vCPUs, $(meminfo_kb MemTotal) kB RAM)"
printf '%-38s | %12s | %12s | %s\n' metric ours C "ratio (ours/C)"
printf '%-38s-+-%12s-+-%12s-+-%s\n' -------------------------------------- ------------ ------------ --------------
row "setconf seconds" setconf
row "dump seconds (wg show dump, median of 5)" dump
row "dump seconds (counting client, median of 5)" dumpraw
row "remove seconds" remove
row "first handshake ms (median of 5)" handshake
row "memory bytes/peer (meminfo Slab)" mem
row "memory bytes/peer (slabinfo)" slabinfo
row "percpu bytes/peer (meminfo)" percpu
row "kernel stack bytes/peer (meminfo)" kstack
row "MemFree decrease bytes/peer (approx.)" memfree
row "Slab left after removal bytes/peer" left
[ -s "$D/profiles" ] && { echo; cat "$D/profiles"; }

rm -rf "$D"
exit 0

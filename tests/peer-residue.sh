#!/bin/bash
# Where the slab left after removing every peer goes, and whether it is a
# cache or a leak (the scale benchmark's "Slab left after removal" row).
#
#   tools/vm-run tests/peer-residue.sh [PEERS [ROUNDS]]
#
# For $IMPL's module: create wg0, then ROUNDS times (default 2) set PEERS
# peers (default 5000) x 2 allowed IPs with `wg setconf` and remove them all
# (setconf of the private key alone). After each removal, and after deleting
# wg0 and unloading the module, it prints the slab held per cache against
# the start (/proc/slabinfo active_objs x objsize, after drop_caches and a
# pause for RCU frees), in bytes per peer; after the first removal also
# after shrinking every cache (/sys/kernel/slab/*/shrink). A cache keeps what it held after
# the first round and does not grow in the second; a leak grows by the same
# amount each round and survives the unload. With slub_debug=U on the
# command line it prints the allocation sites, with our module in them, of
# what the biggest residues hold. After the first removal it also prints
# the total about 30 and 60 s later: what still goes down was deferred
# (RCU callbacks, workers), not leaked. On a kernel with kmemleak it scans after
# the last removal (module loaded) and after the unload, and prints the
# reports that mention the module (or, after the unload, a frame in module
# space that no longer resolves); any such report fails the script.
# Numbers are printed, not asserted.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/kmemleak.sh

N=${1:-5000}
ROUNDS=${2:-2}
D=$(mktemp -d /tmp/wgrs-residue.XXXXXX)
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
settle() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep "${SETTLE:-6}"
	echo 3 >/proc/sys/vm/drop_caches
}
snap() { awk 'NR > 2 { print $1, $2, $4 }' /proc/slabinfo >"$D/$1"; }
# diff A B: per-cache growth from snapshot A to B, biggest first.
diff_snaps() {
	awk -v n="$N" 'NR == FNR { a[$1] = $2 * $3; next }
		{ d = $2 * $3 - a[$1]; t += d; if (d != 0) printf "%d %s %d %d\n", d, $1, $2, $3 }
		END { printf "%d TOTAL 0 0\n", t }' "$D/$1" "$D/$2" | sort -nr |
	awk -v n="$N" '$2 == "TOTAL" { tot = $1; next } NR <= 9 { printf "    %-28s %+10d B (%+8.1f B/peer; %d objs x %d B now)\n", $2, $1, $1 / n, $3, $4 }
		END { printf "    %-28s %+10d B (%+8.1f B/peer)\n", "total", tot, tot / n }'
}
# alloc_sites CACHE: the allocation sites of CACHE's live objects that
# mention a wireguard module (slub_debug=U only).
alloc_sites() {
	local f=/sys/kernel/slab/$1/alloc_calls
	[ -r "$f" ] || return 0
	grep -i wireguard "$f" 2>/dev/null | head -n 5 | sed "s/^/      $1: /"
}
top_caches() { awk 'NR == FNR { a[$1] = $2 * $3; next } { d = $2 * $3 - a[$1]; if (d > 0) print d, $1 }' "$D/$1" "$D/$2" | sort -nr | head -n 6 | awk '{ print $2 }'; }

rc=0
kmemleak_available && kmemleak_clear
modprobe "$WGRS_MODULE" || { echo "modprobe $WGRS_MODULE failed"; exit 1; }
ip link add wg0 type wireguard || exit 1
python3 tests/gen-config.py --peers "$N" --allowed-ips 2 --seed 1 -o "$D/cfg" || exit 1
priv=$(sed -n 's/^PrivateKey = //p' "$D/cfg")
printf '[Interface]\nPrivateKey = %s\n' "$priv" >"$D/empty"
wg setconf wg0 "$D/empty" || exit 1
settle
snap s0
log "$IMPL ($WGRS_MODULE): $N peers x 2 allowed IPs, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
	wg setconf wg0 "$D/cfg" || { echo "setconf failed"; rc=1; break; }
	log "round $r: $(wg show wg0 peers | wc -l) peers set"
	wg setconf wg0 "$D/empty" || { echo "removal failed"; rc=1; break; }
	settle
	snap "r$r"
	log "round $r: $(wg show wg0 peers | wc -l) peers left; slab against the start, ${SETTLE:-6} s after the removal:"
	diff_snaps s0 "r$r"
	if [ "$r" = 1 ]; then
		# Still going down later: frees deferred (RCU callbacks, workers),
		# not a leak.
		for w in 30 60; do
			sleep $((w - ${SETTLE:-6} - (w == 60 ? 24 : 0)))
			echo 3 >/proc/sys/vm/drop_caches
			snap "r1-$w"
			log "round 1, about $w s after the removal:"
			diff_snaps s0 "r1-$w" | tail -n 1
		done
	fi
	if [ "$r" = 1 ]; then
		for c in $(top_caches s0 r1); do alloc_sites "$c"; done
		# What a cache keeps for itself: free objects in the CPUs'
		# slabs and sheaves count as active in slabinfo until a
		# shrink flushes them (kmem_cache_shrink).
		for f in /sys/kernel/slab/*/shrink; do echo 1 >"$f" 2>/dev/null; done
		snap r1-shrink
		log "round 1, after shrinking every cache:"
		diff_snaps s0 r1-shrink
	fi
done
if kmemleak_available; then
	log "kmemleak, module loaded, wg0 with no peers:"
	kmemleak_check "$WGRS_MODULE" || rc=1
fi
ip link del wg0
settle
snap dev
log "wg0 deleted; slab against the start:"
diff_snaps s0 dev
rmmod "$WGRS_MODULE"
settle
snap unl
log "$WGRS_MODULE unloaded; slab against the start:"
diff_snaps s0 unl
if kmemleak_available; then
	log "kmemleak, module unloaded:"
	kmemleak_check "$WGRS_MODULE" || rc=1
fi
rm -rf "$D"
exit $rc

#!/bin/bash
# make check-debug: the whole make check suite (tests/suite.sh) on the kasan
# kernel profile (KASAN, UBSAN, kmemleak, DEBUG_PAGEALLOC, fault injection,
# lockdep), then a kmemleak scan with every module unloaded. tools/vm-run
# fails the run on any splat (KASAN and UBSAN reports included); a kmemleak
# report about our module ($WGRS_MODULE), or about any module unloaded by
# then (its frames no longer resolve), fails it here. Prints the time each
# part took: exec is slow under KASAN in TCG.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/kmemleak.sh

kmemleak_available || { echo "no kmemleak: not the kasan kernel profile"; exit 1; }
# Forget what boot left unreferenced: only what the suite leaks counts.
kmemleak_clear
start=$SECONDS
bash tests/suite.sh "$@"
rc=$?
echo "--- the suite: status $rc, $((SECONDS - start)) s"
for m in wireguard_rs wireguard; do
	[ -d "/sys/module/$m" ] && rmmod "$m"
done
t=$SECONDS
kmemleak_check "$WGRS_MODULE" || rc=1
echo "--- kmemleak: $((SECONDS - t)) s"
echo "check-debug: status $rc, $((SECONDS - start)) s in all"
exit $rc

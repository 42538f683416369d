#!/bin/bash
# The `make check` suite, in one VM boot: the in-kernel self-tests, the
# device and netlink tests, the control-plane tests, our data-plane tests,
# the kernel's own WireGuard selftest (netns.sh, unmodified; one test), a
# differential netlink fuzz run against the C driver (tests/fuzz.sh), dumps
# whose messages must split where the C driver's do (tests/dump-split.sh), the
# volume netlink fuzz of 20,000 requests at our module alone
# (tests/fuzz-genl.sh), the hostile-peer tests (tests/hostile.sh) and a
# packet fuzz of 20,000 datagrams (tests/packet-fuzz.sh).
# Prints each suite's lines and a line with its counts and time, then the
# total as "N passed, M failed"; exits non-zero on failure.
#
#   tests/suite.sh [NAME...]     only the suites named (e.g. "control
#                                kselftest"), in the order given
set -u
cd "$(dirname "$0")/.." || exit 1

all=(selftests check control dataplane kselftest fuzz dump-split fuzz-genl hostile packet-fuzz)
[ $# -gt 0 ] || set -- "${all[@]}"
suites=()
for name in "$@"; do
	[[ " ${all[*]} " == *" $name "* ]] || { echo "no suite named $name (the suites: ${all[*]})"; exit 2; }
	suites+=("tests/$name.sh")
done

passed=0
failed=0
for suite in "${suites[@]}"; do
	echo "=== $suite"
	start=$SECONDS
	log=$(mktemp /tmp/suite.XXXXXX)
	bash "$suite" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -n "$counts" ]; then
		p=${counts%% passed*}
		f=${counts#*passed, }
		f=${f%% failed*}
	else
		# A suite without a summary line counts as one test.
		p=$((rc == 0)) f=$((rc != 0))
	fi
	# A suite that died on its own still fails.
	[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
	echo "--- $suite: $p passed, $f failed, $((SECONDS - start)) s"
	passed=$((passed + p))
	failed=$((failed + f))
	# Leave no module behind for the next suite.
	for m in wireguard_rs wireguard; do
		[ -d "/sys/module/$m" ] && rmmod "$m"
	done
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

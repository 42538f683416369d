# Helpers for the in-VM test scripts. Source it; do not run it.
#
#   test_setup [TEST-GLOB...]
#       The start of a script: IMPL, WGRS_MODULE, umask 077, T_ONLY.
#   run_test NAME FUNC [ARGS...]
#       (skipped, uncounted, unless NAME matches a glob in T_ONLY, when set)
#       Runs FUNC in a subshell with its output captured. The first failing
#       expect_*/fail ends the test. Prints "ok   NAME (N s)" or
#       "FAIL NAME (N s): reason"
#       followed by the tail of the test's output. If a function named
#       test_cleanup exists it is run after every test (outside the subshell).
#   selected NAME
#       Whether NAME is to run (no T_ONLY, or a glob in it matches NAME).
#   bg_pid PID
#       Remembers a background process of a test; kill_bg_pids (for
#       test_cleanup) kills what was remembered.
#   vm_fork
#       Plays a VM fork, as vmgenid reports one (tests/kmod/vmfork_trigger):
#       the kernel's vmfork notifiers have run when it returns.
#   ping_through_rekey HANDSHAKE_CMD PING_CMD...
#       Runs PING_CMD (a ping without a count) until the output of
#       HANDSHAKE_CMD (a peer's latest handshake, in seconds) changes, or
#       for 180 s, and 5 s more; sets REKEY_FIRST and REKEY_LATER. Fails
#       unless there was a new handshake and every ping but, at most, the
#       one in flight when it was stopped was answered.
#   summary
#       Prints "N passed, M failed" on a line of its own; returns 1 if any
#       test failed.

# Two WireGuard devices, for the data-plane scripts (they set A, B, PORT_A,
# PORT_B, and KEYS, a directory with the private keys a and b):
#   pub NAME
#       The public key of $KEYS/NAME.
#   pair [NS_A NS_B PORT_A PORT_B [NS_SOCK]]
#       wga (192.168.241.1, fd00::1) in NS_A and wgb (.2, ::2) in NS_B (new
#       namespaces), up, each the other's peer with an endpoint on 127.0.0.1;
#       no handshake yet. The devices are created in NS_SOCK (the initial
#       namespace by default, or an existing one), so that their UDP sockets
#       live there and meet over its lo.
#
# Inside a test:
#   fail REASON                  end the test as failed
#   note TEXT                    a line printed under the test's "ok" line
#   expect_ok CMD...             CMD must succeed; its stdout+stderr is left in $T_OUT
#   expect_fail CMD...           CMD must fail; output in $T_OUT
#   expect_fail_errno ERRNO CMD...
#                                CMD must fail and report ERRNO, either as the
#                                symbolic name (genl.py prints e.g. "ENODEV")
#                                or as strerror text (wg prints "No such device")
#   expect_eq ACTUAL EXPECTED [WHAT]
#   expect_match TEXT REGEX [WHAT]     (grep -E, multi-line TEXT)
#   expect_no_match TEXT REGEX [WHAT]
#   wait_for SECONDS CMD...      poll CMD every 0.1s until it succeeds (0) or time is up (1)
#   run CMD...                   run CMD without judging it: $T_OUT, $T_RC

T_ONLY=()     # name patterns (globs); when set, run_test runs only matching tests

# test_setup [TEST-GLOB...]: the start of a test script: the driver under test
# (IMPL rs or c, module WGRS_MODULE), files private to root (keys), and the
# tests named on its command line.
test_setup() {
	IMPL=${IMPL:-rs}
	WGRS_MODULE=${WGRS_MODULE:-wireguard_rs}
	umask 077
	[ $# -eq 0 ] || T_ONLY=("$@")
}
T_PASSED=0
T_FAILED=0
T_FAILED_NAMES=()
T_DIR=$(mktemp -d /tmp/wgrs-tests.XXXXXX)
T_OUT=
T_RC=0

note() { printf '%s\n' "$*" >>"$T_DIR/notes"; }

fail() {
	printf '%s\n' "$*" >"$T_DIR/reason"
	exit 1
}

_cmdline() { local IFS=' '; printf '%s' "$*"; }

# Output is shortened to its first lines, on one line, for the reason.
_short() { printf '%s' "$1" | head -n 5 | tr '\n' '|' | cut -c1-300; }

run() {
	T_OUT=$("$@" 2>&1)
	T_RC=$?
	printf '$ %s  [rc=%d]\n%s\n' "$(_cmdline "$@")" "$T_RC" "$T_OUT"
	return 0
}

expect_ok() {
	run "$@"
	[ "$T_RC" = 0 ] || fail "'$(_cmdline "$@")' failed (rc=$T_RC): $(_short "$T_OUT")"
}

expect_fail() {
	run "$@"
	[ "$T_RC" != 0 ] || fail "'$(_cmdline "$@")' succeeded but should have failed: $(_short "$T_OUT")"
}

_strerror() { python3 -c 'import errno, os, sys; print(os.strerror(getattr(errno, sys.argv[1])))' "$1"; }

expect_fail_errno() {
	local want=$1 text
	shift
	text=$(_strerror "$want") || fail "unknown errno name $want"
	run "$@"
	[ "$T_RC" != 0 ] || fail "'$(_cmdline "$@")' succeeded but should have failed with $want: $(_short "$T_OUT")"
	if ! printf '%s\n' "$T_OUT" | grep -qw -- "$want" &&
	   ! printf '%s\n' "$T_OUT" | grep -qF -- "$text"; then
		fail "'$(_cmdline "$@")' failed, but not with $want ($text): $(_short "$T_OUT")"
	fi
}

expect_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: got '$(_short "$1")', expected '$(_short "$2")'"
}

expect_match() {
	printf '%s\n' "$1" | grep -qE -- "$2" || fail "${3:-output} does not match /$2/: $(_short "$1")"
}

expect_no_match() {
	! printf '%s\n' "$1" | grep -qE -- "$2" || fail "${3:-output} unexpectedly matches /$2/: $(_short "$1")"
}

wait_for() {
	local deadline=$(( $(date +%s%N) / 1000000 + ${1%.*} * 1000 ))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $(( $(date +%s%N) / 1000000 )) -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# selected NAME: whether NAME is to run (T_ONLY is empty, or a glob in it
# matches NAME).
selected() {
	local pat
	[ ${#T_ONLY[@]} -eq 0 ] && return 0
	for pat in "${T_ONLY[@]}"; do
		# shellcheck disable=SC2053
		[[ $1 == $pat ]] && return 0
	done
	return 1
}

run_test() {
	local name=$1 rc reason start=$SECONDS
	shift
	selected "$name" || return 0
	rm -f "$T_DIR/reason" "$T_DIR/notes"
	( "$@" ) </dev/null >"$T_DIR/log" 2>&1
	rc=$?
	if [ $rc = 0 ]; then
		printf 'ok   %s (%d s)\n' "$name" $((SECONDS - start))
		[ -f "$T_DIR/notes" ] && sed 's/^/     /' "$T_DIR/notes"
		T_PASSED=$((T_PASSED + 1))
	else
		reason=$(cat "$T_DIR/reason" 2>/dev/null) || reason="exited with status $rc"
		printf 'FAIL %s (%d s): %s\n' "$name" $((SECONDS - start)) "$reason"
		tail -n 25 "$T_DIR/log" | cut -c1-300 | sed 's/^/    | /'
		T_FAILED=$((T_FAILED + 1))
		T_FAILED_NAMES+=("$name")
	fi
	if declare -F test_cleanup >/dev/null; then
		test_cleanup >"$T_DIR/cleanup.log" 2>&1
	fi
	return 0
}

bg_pid() { echo "$1" >>"$T_DIR/bgpids"; }

kill_bg_pids() {
	local pid
	[ -f "$T_DIR/bgpids" ] || return 0
	while read -r pid; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done <"$T_DIR/bgpids"
	rm -f "$T_DIR/bgpids"
}

vm_fork() {
	local seen out
	seen=$(dmesg | grep -c 'crng reseeded due to virtual machine fork')
	# Fails with EAGAIN once it has done its work (see the module). By
	# name: tools/vm-run installs the profile's build of tests/kmod.
	out=$(modprobe vmfork_trigger 2>&1)
	case $out in
	*'Resource temporarily unavailable'*) ;;
	*) echo "vm_fork: modprobe vmfork_trigger did not do its work: ${out:-no output}"; return 1 ;;
	esac
	[ "$(dmesg | grep -c 'crng reseeded due to virtual machine fork')" -gt "$seen" ] ||
		{ echo "vm_fork: the kernel saw no VM fork"; return 1; }
}

ping_through_rekey() {
	local handshake=$1 pid sent got log=$T_DIR/rekey-ping
	shift
	REKEY_FIRST=$($handshake)
	"$@" >"$log" 2>&1 &
	pid=$!
	wait_for 180 eval '[ "$($handshake)" != "$REKEY_FIRST" ]'
	REKEY_LATER=$($handshake)
	sleep 5
	kill -INT $pid
	wait $pid
	tail -n 3 "$log"
	note "handshakes at $REKEY_FIRST and $REKEY_LATER (+$((REKEY_LATER - REKEY_FIRST)) s)," \
		"$(grep -E 'packets transmitted' "$log")"
	[ "$REKEY_LATER" != "$REKEY_FIRST" ] || fail "no new handshake in 180 s of traffic"
	read -r sent got < <(sed -nE 's/^([0-9]+) packets transmitted, ([0-9]+) received.*/\1 \2/p' "$log")
	[ -n "$sent" ] && [ "$got" -ge $((sent - 1)) ] ||
		fail "pings across the rekey: ${got:-none} of ${sent:-?} answered"
}

summary() {
	[ "$T_FAILED" = 0 ] || printf 'failed tests: %s\n' "${T_FAILED_NAMES[*]}"
	printf '%d passed, %d failed\n' "$T_PASSED" "$T_FAILED"
	# A selection that matched nothing tested nothing: not a pass.
	if [ $((T_PASSED + T_FAILED)) = 0 ] && [ ${#T_ONLY[@]} -gt 0 ]; then
		printf 'no test matched: %s\n' "${T_ONLY[*]}"
		return 1
	fi
	[ "$T_FAILED" = 0 ]
}

pub() { wg pubkey <"$KEYS/$1"; }

pair() {
	local a=${1:-$A} b=${2:-$B} pa=${3:-$PORT_A} pb=${4:-$PORT_B} sock=${5:-} ns
	local in=()
	[ -n "$sock" ] && in=(ip netns exec "$sock")
	ip netns add "$a" && ip netns add "$b" || fail "ip netns add"
	"${in[@]}" ip link set lo up
	# Created here, so that their sockets live here and meet over lo.
	"${in[@]}" ip link add "$a-wg" type wireguard && "${in[@]}" ip link add "$b-wg" type wireguard ||
		fail "ip link add"
	"${in[@]}" ip link set "$a-wg" netns "$a" name wga && "${in[@]}" ip link set "$b-wg" netns "$b" name wgb ||
		fail "ip link set netns"
	ip netns exec "$a" wg set wga private-key "$KEYS/a" listen-port "$pa" \
		peer "$(pub b)" allowed-ips 192.168.241.2/32,fd00::2/128 endpoint "127.0.0.1:$pb" ||
		fail "wg set wga"
	ip netns exec "$b" wg set wgb private-key "$KEYS/b" listen-port "$pb" \
		peer "$(pub a)" allowed-ips 192.168.241.1/32,fd00::1/128 endpoint "127.0.0.1:$pa" ||
		fail "wg set wgb"
	ip -n "$a" addr add 192.168.241.1/24 dev wga && ip -n "$a" addr add fd00::1/64 dev wga &&
		ip -n "$b" addr add 192.168.241.2/24 dev wgb && ip -n "$b" addr add fd00::2/64 dev wgb ||
		fail "ip addr add"
	for ns in "$a:wga" "$b:wgb"; do
		ip -n "${ns%:*}" link set lo up && ip -n "${ns%:*}" link set "${ns#*:}" up ||
			fail "link up in ${ns%:*}"
	done
}

#!/bin/bash
# Run the upstream WireGuard selftest, unmodified, against $WGRS_MODULE:
#   $KSRC/tools/testing/selftests/wireguard/netns.sh
# Its output goes to the console and to /tmp/netns.log; at the end we report
# how many "[+]" steps ran and, on failure, the last one, and a table of
# netns.sh's sections (its top-level comments, "# Test ...") with each one's
# result and time, from a timestamped xtrace of the script. Exits with
# netns.sh's status.
set -u
KSRC=${KSRC:-/usr/src/linux}
WGRS_MODULE=${WGRS_MODULE:-wireguard_rs}
script=$KSRC/tools/testing/selftests/wireguard/netns.sh
log=/tmp/netns.log

[ -f "$script" ] || { echo "kselftest: FAIL: $script not found"; exit 1; }
# Load it explicitly: netns.sh would autoload through "ip link add", but then
# a module that fails to load would look like a failing first step.
modprobe "$WGRS_MODULE" || { echo "kselftest: FAIL: modprobe $WGRS_MODULE failed"; exit 1; }

cd /tmp || exit 1
# The trace goes to its own file (fd 7), so netns.sh's output is as without
# it; BASH_ENV sets the trace prefix, because bash does not take PS4 from the
# environment as root: time, caller lines, functions, line.
trace=/tmp/netns.trace
env=/tmp/netns.ps4
echo 'PS4='"'"'+$EPOCHREALTIME|${BASH_LINENO[*]}|${FUNCNAME[*]}|$LINENO| '"'" >"$env"
exec 7>"$trace"
# stdin stays the VM's never-ending FIFO: netns.sh sleeps with `read -t`.
BASH_ENV=$env BASH_XTRACEFD=7 bash -x "$script" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
exec 7>&-

# Step lines are "[+] ..." (in colour). netns.sh's EXIT trap prints steps of
# its own, starting with "NS0: ip link del dev wg0", which the test proper
# never runs; count only the steps before it.
read -r steps last < <(sed 's/\x1b\[[0-9;]*m//g; s/\r$//' "$log" | awk '
	/^\[\+\] NS0: ip link del dev wg0$/ { exit }
	/^\[\+\] / { n++; line = substr($0, 5) }
	END { print n + 0, line }')
if [ "$rc" = 0 ]; then
	echo "kselftest: PASS ($steps steps; last: $last)"
else
	echo "kselftest: FAIL after $steps steps; last step: $last (netns.sh exit status $rc)"
fi

# A traced command belongs to the section of its top-level line: its own
# line at top level, else the line that called the outermost function. The
# EXIT trap's cleanup is a section of its own.
echo "kselftest: netns.sh sections (result, seconds):"
awk -v rc="$rc" '
	# Pass 1, the script: each line gets the title of the comment block
	# that last began at column 0 after the header comment.
	FNR == NR {
		if ($0 ~ /^# / && !in_comment && code)
			title = substr($0, 3)
		in_comment = ($0 ~ /^#/)
		code = code || ($0 !~ /^#/ && $0 != "")
		section[FNR] = title == "" ? "setup" : title
		next
	}
	# Pass 2, the trace: "+TIME|CALLER LINES|FUNCTIONS|LINE| command".
	/^\++[0-9]/ {
		split($0, f, "|")
		n = split(f[2], callers, " ")
		name = section[n >= 2 ? callers[n - 1] : f[4]]
		if (f[3] ~ /(^| )cleanup( |$)/ || $0 ~ /\| cleanup$/)
			name = "cleanup (EXIT trap)"
		if (name != current) {
			order[++count] = name
			start[count] = substr(f[1], 2) + 0
			current = name
		}
		last = substr(f[1], 2) + 0
	}
	END {
		for (i = 1; i <= count; i++) {
			end = i < count ? start[i + 1] : last
			# On failure, set -e stopped the script in the last section
			# before the cleanup.
			failed = rc != 0 && (i == count - (order[count] ~ /^cleanup/))
			printf "  %-4s %6.1f  %s\n", failed ? "FAIL" : "ok", end - start[i], order[i]
		}
	}' "$script" "$trace"

# netns.sh's last check reads the kernel log with a 0.1 s timeout per record,
# so on a starved guest it can stop early and find objects "merely created".
# After a failure, count again over the whole log, without timeouts: an
# object created more often than destroyed (the EXIT trap's deletions count
# too by now) was never destroyed; none means the check had read too little.
if [ "$rc" != 0 ]; then
	declare -A created destroyed
	while read -r line; do
		[[ $line =~ .*(wg[0-9]+:\ [A-Z][a-z]+\ ?[0-9]*)\ .*(created|destroyed).* ]] || continue
		if [ "${BASH_REMATCH[2]}" = created ]; then
			created["${BASH_REMATCH[1]}"]=$((${created["${BASH_REMATCH[1]}"]:-0} + 1))
		else
			destroyed["${BASH_REMATCH[1]}"]=$((${destroyed["${BASH_REMATCH[1]}"]:-0} + 1))
		fi
	done < <(dmesg)
	left=()
	for object in "${!created[@]}"; do
		[ "${created[$object]}" -gt "${destroyed[$object]:-0}" ] && left+=("$object")
	done
	echo "kselftest: objects in the whole kernel log: ${#created[@]} created, ${#left[@]} never destroyed${left[*]:+: ${left[*]:0:10}}"
fi
exit "$rc"

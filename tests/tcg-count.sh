# Windows of tools/tcg-count's instruction counts, for the benchmarks (sourced).
# Its QEMU plugin snapshots the guest kernel's counters each time the guest
# calls sync(2); a window is the stretch between two snapshots, recorded in
# /wgrs/tcg-count.windows for `tools/tcg-count report`: "N NAME LABEL",
# "N secs S" and "N work AMOUNT UNIT" for the window between snapshots N and
# N+1.

count_snapshots() { find /wgrs -maxdepth 1 -name 'tcg-count.[0-9]*' | wc -l; }

# count_begin: the number of the window the next sync opens; keeps the
# symbols of the kernel and of the modules loaded now for it.
count_begin() {
	local n=$(($(count_snapshots) + 1))
	cat /proc/kallsyms >"/wgrs/kallsyms.$n"
	echo "$n"
}

# count_end N NAME LABEL SECS: records window N, if both its snapshots were
# taken (else says so and fails).
count_end() {
	if [ "$(count_snapshots)" != $(($1 + 1)) ]; then
		echo "count: no snapshots taken (is tools/tcg-count's plugin loaded?)" >&2
		return 1
	fi
	printf '%s\n' "$1 $2 $3" "$1 secs $4" >>/wgrs/tcg-count.windows
}

# count_work N AMOUNT UNIT: the work done in window N.
count_work() { echo "$1 work $2 $3" >>/wgrs/tcg-count.windows; }

# count_window NAME LABEL CMD...: runs CMD in a window of its own and
# records it; COUNTED is then its number (empty if it failed).
count_window() {
	local name=$1 label=$2 n t0 t1
	shift 2
	COUNTED=
	n=$(count_begin)
	t0=$(date +%s.%N)
	sync
	"$@"
	sync
	t1=$(date +%s.%N)
	count_end "$n" "$name" "$label" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" &&
		COUNTED=$n
}

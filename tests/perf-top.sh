# perf_top DATA TITLE: the top kernel symbols of a `perf record -e cpu-clock
# -a` profile, as shares of the busy samples (the idle loop's are left out),
# under a title line saying how busy the CPUs were. Sourced by the benchmarks.
perf_top() {
	"$PERF" report -i "$1" --stdio --no-children --sort sym -g none 2>/dev/null |
		awk -v title="$2" '
		$1 ~ /%$/ && $2 == "[k]" || $2 == "[.]" {
			p = $1; sub(/%/, "", p); sym = $3
			if (sym ~ /^(pv_native_safe_halt|default_idle|cpuidle_idle_call|do_idle|native_safe_halt|acpi_idle_do_entry)$/) { idle += p; next }
			n++; s[n] = sym; v[n] = p; busy += p
		}
		END {
			printf "%s: %.0f%% busy\n", title, busy
			for (i = 1; i <= n && i <= 25; i++)
				if (busy > 0 && v[i] / busy >= 0.01) printf "  %5.1f%%  %s\n", v[i] / busy * 100, s[i]
		}'
}

# perf_tasks DATA: the same profile's samples by task, kernel and user time
# together, idle included (swapper), as shares of all samples: one line,
# kernel threads grouped by kind (kworker/0:1 and kworker/1:2 are kworker).
perf_tasks() {
	"$PERF" report -i "$1" --stdio --no-children --sort comm -g none 2>/dev/null |
		awk '
		$1 ~ /%$/ && NF >= 2 {
			p = $1; sub(/%/, "", p); comm = $2
			sub(/\/.*/, "", comm)
			if (!(comm in v)) order[++n] = comm
			v[comm] += p
		}
		END {
			line = "  by task:"
			for (k = 1; k <= n; k++) {
				best = 0
				for (i = 1; i <= n; i++)
					if (!(order[i] in done) && (best == 0 || v[order[i]] > v[order[best]])) best = i
				if (best == 0 || v[order[best]] < 0.5) break
				done[order[best]] = 1
				line = line sprintf(" %s %.1f%%", order[best], v[order[best]])
			}
			print line
		}'
}

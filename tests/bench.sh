#!/bin/bash
# Performance benchmark (issue 10): our module (wireguard_rs) against the C
# driver (wireguard), the same workloads in one VM boot. Numbers are
# printed, never asserted.
#
#   make bench [QUICK=1]       on the bench kernel profile (see the Makefile)
#   tools/vm-run tests/bench.sh [quick] [rounds=N] [secs=S] [topos="lo veth"] [impls="rs c"]
#                              [work="tcp1 tcpn udp ping flood"] [flood_rate=R] [perf=PATH]
#                              [perf_hz=F] [count=1] [params="P=V ..."] [baseline="P=V ..."]
#
# perf_hz: perf's sampling rate (its default, 4000 Hz, takes a large share
# of a TCG guest's CPU time and distorts what it measures).
# count=1 (make bench COUNT=1, under tools/tcg-count's QEMU plugin): round 1
# of each driver runs each workload between two snapshots of the plugin's
# instruction counters, which sync(2) takes; tools/tcg-count report reads
# them, with the work done in each window, from the run's directory.
# params: module parameters for ours. baseline: the C column is ours again,
# loaded with these parameters in place of the C driver: a same-boot A/B of
# one of our parameters (e.g. baseline="debug=1").
#
# Rounds. The two modules cannot be loaded at once: each round loads ours,
# runs everything, unloads it, then does the same with the C driver (A B A
# B ...), ROUNDS rounds (default 3; `quick`: 1). Each cell of the table is
# the median over the rounds; the spread is (max - min) / median per driver.
#
# Topologies (wg0 in namespace wgbench-a, 192.168.241.1, and wg0 in
# wgbench-b, .2, each the other's only peer; default MTU 1420):
#   lo    netns.sh's: both wg0 are created in the initial namespace and moved,
#         so that their UDP sockets stay there and meet over its loopback;
#   veth  a veth pair between the two namespaces (10.10.0.1 and .2), each
#         wg0 created in its own namespace, its socket on the veth.
#
# Workloads, each for S seconds (default 10; `quick`: 3), from wgbench-a to
# wgbench-b through the tunnel, with a fresh iperf3 server for each:
#   TCP 1 stream      iperf3 -t S: Mbit/s received;
#   TCP N streams     iperf3 -P N, N = the number of vCPUs;
#   UDP 64 B          iperf3 -u -b 0 -l 64: datagrams per second the
#                     receiving iperf3 got (the receiving wg0's own count of
#                     packets is printed beside it, as a check);
#   ping under load   ping -i 0.01 for S seconds while an iperf3 TCP stream
#                     runs: the median and the 99th percentile (nearest rank)
#                     of the round-trip times, in microseconds;
#   initiation flood  (last: it leaves wg0's handshake queue full) a third
#                     namespace, wgbench-f, joined by a veth pair to the
#                     namespace of wgbench-b's UDP socket (the initial one
#                     for lo), with FLOOD_SRC addresses 10.99.1.0... on its
#                     end, floods wgbench-b's wg0 for S seconds, at
#                     FLOOD_RATE (flood_rate=R; 0: as fast as it can), with
#                     handshake initiations from FLOOD_PEERS peers, one
#                     source address each (tests/flood.py: keys and
#                     initiations prepared once per run, the same for both
#                     drivers; the peers added to wg0 with `wg set` before
#                     each flood and removed after it): valid ones, each
#                     source decrypting its cookie reply and adding mac2
#                     once wg0 is under load, as real clients would.
#                     Meanwhile wgbench-a pings wgbench-b through the tunnel
#                     every 50 ms. Handshakes/s: the responses wg0 sent to
#                     the flood peers (their tx bytes / 92, a count both
#                     drivers keep) per second, from 1 s into the flood to
#                     its end S s later (read by the flooder while it
#                     floods); also the flooder's initiations/s sent, the
#                     responses and cookie replies it received, and the
#                     ping's loss.
# The ceiling. With tcp1 in the work, each slot also measures, over a bare
# veth pair (MTU 1420, no tunnel; the driver loaded but unused), what a
# tunnel's packets cost besides the crypto, and from it estimates the most
# a tunnel could carry on these vCPUs: TCP 1 stream (what the inner TCP
# costs: its segments are as large as through the tunnel, which
# segments them and merges them again with GRO), and UDP 1392 B datagrams
# at full rate (the outer path: one UDP datagram per MTU-sized packet each
# way). Each costs, per Mbit/s, its busy share of all vCPUs over its
# throughput; the crypto costs one encryption and one decryption per byte
# at the AEAD limit:
#   ceiling = NCPU / (tcp_busy * NCPU / tcp + udp_busy * NCPU / udp + 2 / aead)
# in Mbit/s. It leaves out the queues, the wakeups and the per-packet work of
# the tunnel itself, and counts iperf3's copies twice: an estimate, not a
# bound. "ceiling / AEAD limit" is where "TCP 1 stream / AEAD limit" would
# stand if the tunnel cost nothing but its crypto and its outer packets.
#
# The AEAD limit, measured in each round with each driver loaded (the same
# library both times: the two figures show how steady the machine was):
# tests/kmod/aead_bench.ko times lib/crypto's chacha20poly1305_encrypt() over
# 1420-byte buffers on one CPU, in MB/s (and 64-byte buffers per second).
# "TCP 1 stream / AEAD limit" divides each round's single-stream throughput
# by that round's AEAD limit (in Mbit/s): 1.0 would be a tunnel as fast as
# one CPU can encrypt. The "vCPUs busy" rows give the share of all vCPUs'
# time that was not idle while iperf3 ran (/proc/stat): near 100, the run
# was bound by the CPUs, which both ends of the tunnel share here. The
# "context switches" rows divide the machine's context switches during the
# client's run (/proc/stat) by the work done: mostly wakeups of workers and
# of the iperf3 processes. The UDP line of the log also gives the
# datagrams/s sent and where the missing ones were dropped.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/perf-top.sh
. tests/tcg-count.sh

ROUNDS=3 SECS=10 TOPOS="lo veth" IMPLS="rs c" AEAD_MS=1000 MODE=full PERF= PERF_HZ= COUNT= WORK="tcp1 tcpn udp ping flood"
PARAMS= BASELINE=
# Twice what a responder on these vCPUs answers on a fast host (some 1200
# handshakes/s on an EPYC host, 650 on a Xeon one): a flood at 1000/s left
# wg0 idle on the former.
FLOOD_RATE=2000
# The bare veth of the ceiling: the tunnel's MTU, and UDP payloads that fill it.
BARE_MTU=1420 BARE_UDP=$((BARE_MTU - 28))
for arg; do
	case $arg in
	quick) ROUNDS=1 SECS=3 AEAD_MS=500 MODE=quick ;;
	full) ;;
	rounds=[1-9]*) ROUNDS=${arg#*=} ;;
	secs=[1-9]*) SECS=${arg#*=} ;;
	topos=*) TOPOS=${arg#*=} ;;
	impls=*) IMPLS=${arg#*=} ;;
	perf=?*) PERF=${arg#*=} ;;
	perf_hz=[1-9]*) PERF_HZ=${arg#*=} ;;
	count=1) COUNT=1 ;;
	work=?*) WORK=${arg#*=} ;;
	flood_rate=[0-9]*) FLOOD_RATE=${arg#*=} ;;
	params=*) PARAMS=${arg#*=} ;;
	baseline=?*) BASELINE=${arg#*=} ;;
	*) echo "usage: tests/bench.sh [quick] [rounds=N] [secs=S] [topos=\"lo veth\"] [impls=\"rs c\"] [work=\"tcp1 tcpn udp ping flood\"] [flood_rate=R] [perf=PATH] [perf_hz=F] [count=1] [params=\"P=V ...\"] [baseline=\"P=V ...\"]" >&2; exit 2 ;;
	esac
done

# What the C column runs: the C driver, or ours with the baseline's parameters.
C_MODULE=wireguard C_NAME=C
[ -n "$BASELINE" ] && C_MODULE=wireguard_rs C_NAME=base

NCPU=$(nproc)
A=wgbench-a B=wgbench-b F=wgbench-f
FLOOD_PEERS=256 FLOOD_SRC=256
PORT_A=51820 PORT_B=51821
IP_A=192.168.241.1 IP_B=192.168.241.2
D=$(mktemp -d /tmp/wgrs-bench.XXXXXX)
umask 077
wg genkey >"$D/a" && wg genkey >"$D/b" || { echo "wg genkey failed"; exit 1; }
PUB_A=$(wg pubkey <"$D/a") PUB_B=$(wg pubkey <"$D/b")
declare -A V # V[IMPL.METRIC]: the values of the rounds, space-separated
START=$SECONDS

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
na() { ip netns exec $A "$@"; }
nb() { ip netns exec $B "$@"; }
add() { V[$1]="${V[$1]:-}${V[$1]:+ }$2"; }
module_of() { case $1 in rs) echo wireguard_rs ;; c) echo "$C_MODULE" ;; esac; }
params_of() { case $1 in rs) echo "$PARAMS" ;; c) echo "$BASELINE" ;; esac; }

unload_all() {
	local m i
	for m in wireguard_rs wireguard; do
		[ -d "/sys/module/$m" ] || continue
		# A device's last references can outlive its deletion briefly.
		for i in $(seq 100); do
			rmmod "$m" 2>/dev/null && break
			sleep 0.2
		done
		[ -d "/sys/module/$m" ] && { log "rmmod $m failed: $(lsmod | grep "^$m ")"; return 1; }
	done
	return 0
}

# ---- the AEAD limit -------------------------------------------------------------

# aead_run LEN MSECS: the line tests/kmod/aead_bench.ko printed, if any.
aead_run() {
	local before
	before=$(dmesg | grep -c 'aead_bench: len=')
	# Fails with EAGAIN by design, once it has printed its line.
	modprobe aead_bench len="$1" msecs="$2" 2>"$D/aead.err"
	dmesg | grep 'aead_bench: len=' | tail -n +$((before + 1)) | tail -n 1
}

aead() {
	local impl=$1 line mbs bps
	line=$(aead_run 1420 "$AEAD_MS")
	mbs=$(printf '%s\n' "$line" | sed -n 's|.* MB/s=\([0-9.]*\) .*|\1|p')
	line=$(aead_run 64 "$AEAD_MS")
	bps=$(printf '%s\n' "$line" | sed -n 's|.* buffers/s=\([0-9]*\) .*|\1|p')
	if [ -z "$mbs" ]; then
		log "  AEAD limit: n/a ($(grep -v 'Resource temporarily unavailable' "$D/aead.err" | head -n 1))"
		return
	fi
	add "$impl.aead" "$mbs"
	[ -n "$bps" ] && add "$impl.aead64" "$bps"
	AEAD_NOW=$mbs
	log "  AEAD limit (1 CPU): $mbs MB/s at 1420 B ($(awk -v m="$mbs" 'BEGIN { printf "%.0f", m * 8 }') Mbit/s), ${bps:-n/a} buffers/s at 64 B"
}

# ceiling IMPL: the runs without a tunnel, and the ceiling (see above).
ceiling() {
	local impl=$1 tcp tcp_busy udp udp_busy
	topo_up bare || { log "  bare veth: setup failed, skipped"; topo_down; return; }
	measure "$impl" bare tcpbare "TCP 1 stream without a tunnel" Mbit/s
	measure "$impl" bare udpmtu "UDP $BARE_UDP B without a tunnel" datagrams/s -u -b 0 -l $BARE_UDP
	topo_down
	tcp=$(last "$impl.tcpbare.bare") tcp_busy=$(last "$impl.tcpbare.busy.bare")
	udp=$(last "$impl.udpmtu.bare") udp_busy=$(last "$impl.udpmtu.busy.bare")
	[ -n "$tcp" ] && [ -n "$udp" ] && [ -n "${AEAD_NOW:-}" ] || return 0
	add "$impl.ceil" "$(awk -v n="$NCPU" -v t="$tcp" -v tb="$tcp_busy" -v u="$udp" -v ub="$udp_busy" \
		-v a="$AEAD_NOW" -v len=$BARE_UDP 'BEGIN {
		a *= 8; u *= len * 8 / 1e6
		c = n / (tb / 100 * n / t + ub / 100 * n / u + 2 / a); printf "%.3f", c / a }')"
	log "  ceiling of a tunnel here: $(last "$impl.ceil") of the AEAD limit"
}
last() { local v=${V[$1]:-}; echo "${v##* }"; }

# ---- topologies -----------------------------------------------------------------

topo_up() {
	local topo=$1 ep_a ep_b i
	ip netns add $A && ip netns add $B || return 1
	ip -n $A link set lo up && ip -n $B link set lo up || return 1
	case $topo in
	lo)
		ip link set lo up
		ip link add wgbench-a type wireguard && ip link add wgbench-b type wireguard &&
			ip link set wgbench-a netns $A name wg0 && ip link set wgbench-b netns $B name wg0 || return 1
		ep_a=127.0.0.1:$PORT_A ep_b=127.0.0.1:$PORT_B
		;;
	veth)
		ip -n $A link add veth0 type veth peer name veth0 netns $B &&
			ip -n $A addr add 10.10.0.1/24 dev veth0 && ip -n $B addr add 10.10.0.2/24 dev veth0 &&
			ip -n $A link set veth0 up && ip -n $B link set veth0 up &&
			ip -n $A link add wg0 type wireguard && ip -n $B link add wg0 type wireguard || return 1
		ep_a=10.10.0.1:$PORT_A ep_b=10.10.0.2:$PORT_B
		;;
	bare)
		# No tunnel: the tunnel's addresses on a veth pair of its MTU.
		ip -n $A link add veth0 mtu $BARE_MTU type veth peer name veth0 mtu $BARE_MTU netns $B &&
			ip -n $A addr add $IP_A/24 dev veth0 && ip -n $B addr add $IP_B/24 dev veth0 &&
			ip -n $A link set veth0 up && ip -n $B link set veth0 up || return 1
		na ping -n -c 1 -W 5 $IP_B >/dev/null 2>&1
		return
		;;
	*) log "unknown topology $topo"; return 1 ;;
	esac
	na wg set wg0 private-key "$D/a" listen-port $PORT_A \
		peer "$PUB_B" allowed-ips $IP_B/32 endpoint "$ep_b" &&
		nb wg set wg0 private-key "$D/b" listen-port $PORT_B \
			peer "$PUB_A" allowed-ips $IP_A/32 endpoint "$ep_a" &&
		ip -n $A addr add $IP_A/24 dev wg0 && ip -n $B addr add $IP_B/24 dev wg0 &&
		ip -n $A link set wg0 up && ip -n $B link set wg0 up || return 1
	# The first handshake, before anything is timed.
	for i in 1 2 3 4 5; do
		na ping -n -c 1 -W 5 $IP_B >/dev/null 2>&1 && return 0
	done
	log "  no answer through the tunnel"
	return 1
}

topo_down() {
	ip -n $A link del wg0 2>/dev/null
	ip -n $B link del wg0 2>/dev/null
	ip link del wgbench-a 2>/dev/null
	ip link del wgbench-b 2>/dev/null
	ip netns del $A 2>/dev/null
	ip netns del $B 2>/dev/null
	return 0
}

# ---- profiles -------------------------------------------------------------------

# profiled IMPL WHAT CMD...: runs CMD; with perf=PATH, in the first round,
# samples every CPU (cpu-clock: TCG has no PMU) for most of CMD's time and
# keeps perf's report of the top kernel symbols for the end of the output;
# the whole reports, each hot symbol with its callers and each function with
# its callees' time included, go to the run's directory (tools/vm-run's
# /wgrs) as perf-IMPL-WHAT.txt.
profiled() {
	local impl=$1 what=$2 rec
	shift 2
	if [ -n "$COUNT" ] && [ "$round" = 1 ]; then
		count_window "$(impl_name "$impl")" "$what" "$@"
		return
	fi
	if [ -z "$PERF" ] || [ "$round" != 1 ]; then
		"$@"
		return
	fi
	(sleep 1; exec "$PERF" record -q -e cpu-clock ${PERF_HZ:+-F $PERF_HZ} -a -g -o "$D/perf.data" -- sleep $((SECS > 3 ? SECS - 2 : 1))) \
		>"$D/perf.err" 2>&1 &
	rec=$!
	"$@"
	wait $rec
	{
		perf_top "$D/perf.data" "== profile: $(impl_name "$impl"), $what (cpu-clock, all CPUs, self time)"
		perf_tasks "$D/perf.data"
	} >>"$D/profiles" || true
	[ -w /wgrs ] && {
		"$PERF" report -i "$D/perf.data" --stdio --no-children --sort sym -g graph,0.5,callee --percent-limit 0.5
		"$PERF" report -i "$D/perf.data" --stdio --children --sort sym -g none --percent-limit 1
	} >"/wgrs/perf-$impl-$(echo "$what" | tr -c 'A-Za-z0-9\n' -).txt" 2>/dev/null
}
impl_name() { case $1 in rs) echo ours ;; c) echo "$C_NAME" ;; esac; }

# ---- workloads ------------------------------------------------------------------

server_start() {
	local i
	nb iperf3 -s -1 >"$D/server.log" 2>&1 &
	SERVER=$!
	for i in $(seq 50); do
		nb ss -Hltn 'sport = :5201' | grep -q LISTEN && return 0
		sleep 0.1
	done
	log "  the iperf3 server did not start: $(head -n 2 "$D/server.log")"
	return 1
}
server_stop() {
	kill "$SERVER" 2>/dev/null
	wait "$SERVER" 2>/dev/null
}

# client NAME ARGS...: an iperf3 client in $A against the server in $B, its
# JSON in $D/NAME.json.
client() {
	local name=$1
	shift
	na timeout $((SECS + 60)) iperf3 -c $IP_B -J "$@" >"$D/$name.json" 2>"$D/$name.err"
}

# jget tcp FILE | jget udp FILE LEN | jget udp-sent FILE LEN: Mbit/s received,
# datagrams/s received, or datagrams/s sent.
jget() {
	python3 - "$@" <<'EOF'
import json, sys
mode, path = sys.argv[1], sys.argv[2]
try:
    d = json.load(open(path))
except Exception as e:
    sys.exit("unreadable iperf3 output (%s)" % e)
if "error" in d:
    sys.exit("iperf3: " + d["error"])
e = d["end"]
if mode == "tcp":
    print("%.1f" % (e["sum_received"]["bits_per_second"] / 1e6))
elif mode == "udp-sent":
    s = e.get("sum_sent") or e["sum"]
    print("%.0f" % (s["bytes"] / int(sys.argv[3]) / s["seconds"]))
else:
    size = int(sys.argv[3])
    r = e.get("sum_received")
    if r and r.get("seconds"):
        print("%.0f" % (r["bytes"] / size / r["seconds"]))
    else:  # older iperf3: one UDP summary, with the receiver's counts
        s = e["sum"]
        print("%.0f" % ((s["packets"] - s["lost_packets"]) / s["seconds"]))
EOF
}

# cpu_ticks: "busy total" jiffies over all CPUs, from /proc/stat (idle and
# iowait are not busy).
cpu_ticks() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

# context_switches: the machine's context switches since boot (/proc/stat).
context_switches() { awk '$1 == "ctxt" { print $2 }' /proc/stat; }

# measure IMPL TOPO KEY LABEL UNIT CLIENT-ARGS...
measure() {
	local impl=$1 topo=$2 key=$3 label=$4 unit=$5 mode=tcp len=64 v t0 t1 cs0 cs1
	shift 5
	COUNTED=
	case " $* " in *" -u "*) mode=udp ;; esac
	[[ " $* " =~ \ -l\ ([0-9]+)\  ]] && len=${BASH_REMATCH[1]}
	server_start || return
	t0=$(cpu_ticks) cs0=$(context_switches)
	profiled "$impl" "$label ($topo)" client "$key" -t "$SECS" "$@"
	t1=$(cpu_ticks) cs1=$(context_switches)
	server_stop
	if v=$(jget $mode "$D/$key.json" "$len" 2>"$D/jget.err"); then
		add "$impl.$key.$topo" "$v"
		# How busy the vCPUs were: what bounds a run that keeps them all busy.
		add "$impl.$key.busy.$topo" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {
			split(a, x, " "); split(b, y, " ")
			printf "%.0f", (y[2] > x[2]) ? (y[1] - x[1]) / (y[2] - x[2]) * 100 : 0 }')"
		# Wakeups, roughly: the context switches of the whole machine per
		# unit of work (datagram or Mbit), over the client's run.
		add "$impl.$key.cs.$topo" "$(awk -v n=$((cs1 - cs0)) -v v="$v" -v s="$SECS" 'BEGIN {
			printf "%.2f", (v > 0) ? n / s / v : 0 }')"
		log "  $topo: $label $v $unit"
		[ -n "${COUNTED:-}" ] && count_work "$COUNTED" $(awk -v v="$v" -v s="$SECS" -v m=$mode 'BEGIN {
			if (m == "udp") printf "%.0f datagram", v * s; else printf "%.1f MB", v * s / 8 }')
		COUNTED=
		[ "$key" = tcp1 ] && [ -n "${AEAD_NOW:-}" ] &&
			add "$impl.frac.$topo" "$(awk -v t="$v" -v a="$AEAD_NOW" 'BEGIN { printf "%.3f", t / (a * 8) }')"
	else
		log "  $topo: $label n/a: $(head -c 300 "$D/jget.err") $(head -c 200 "$D/$key.err")"
	fi
}

# udp_rcvbuf_errors: UDP datagrams dropped for a full receive buffer, in $B.
udp_rcvbuf_errors() {
	nb awk '$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1; next }
		$1 == "Udp:" { print $c }' /proc/net/snmp
}

udp() {
	local impl=$1 topo=$2 rx0 rx1 txd0 txd1 rbe0 rbe1 sent
	rx0=$(nb cat /sys/class/net/wg0/statistics/rx_packets)
	txd0=$(na cat /sys/class/net/wg0/statistics/tx_dropped)
	rbe0=$(udp_rcvbuf_errors)
	measure "$impl" "$topo" udp "UDP 64 B" "datagrams/s received" -u -b 0 -l 64
	rx1=$(nb cat /sys/class/net/wg0/statistics/rx_packets)
	txd1=$(na cat /sys/class/net/wg0/statistics/tx_dropped)
	rbe1=$(udp_rcvbuf_errors)
	# Where the datagrams the receiver missed went: what bounds the rate.
	sent=$(jget udp-sent "$D/udp.json" 64 2>/dev/null) || sent=
	log "    (sent ${sent:-?} datagrams/s;" \
		"wg0 in $B received $(( (rx1 - rx0) / SECS )) packets/s over the whole run;" \
		"dropped: $((txd1 - txd0)) by wg0 in $A, $((rbe1 - rbe0)) for a full receive buffer in $B)"
	if [ -n "$sent" ]; then
		add "$impl.udpsent.$topo" "$sent"
		add "$impl.udprbe.$topo" "$(( (rbe1 - rbe0) / SECS ))"
	fi
}

latency() {
	local impl=$1 topo=$2 bulk stats
	server_start || return
	na timeout $((SECS + 60)) iperf3 -c $IP_B -t $((SECS + 2)) -J >"$D/bulk.json" 2>&1 &
	bulk=$!
	sleep 1
	profiled "$impl" "ping under load ($topo)" na ping -n -i 0.01 -w "$SECS" $IP_B >"$D/ping.txt" 2>&1
	wait $bulk
	server_stop
	# median p99 count, in microseconds
	stats=$(sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' "$D/ping.txt" | sort -g | awk '
		{ a[NR] = $1 * 1000 }
		END {
			if (NR == 0) exit 1
			m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			i = int(0.99 * NR); if (i < 0.99 * NR) i++
			printf "%.0f %.0f %d\n", m, a[i], NR
		}') || { log "  $topo: ping under load: no replies ($(tail -n 2 "$D/ping.txt" | tr '\n' ' '))"; return; }
	set -- $stats
	add "$impl.lat50.$topo" "$1"
	add "$impl.lat99.$topo" "$2"
	log "  $topo: ping under load: median $1 us, p99 $2 us ($3 replies; $(grep -o '[0-9]* packets transmitted' "$D/ping.txt"))"
}

# flood_hs FILE: the handshake responses wg0 in $B sent to the flood peers,
# from `wg show wg0 transfer` in FILE: their tx bytes (all but wgbench-a's
# peer's) / 92, the size of a response, the only thing sent to them.
flood_hs() {
	awk -v a="$PUB_A" '$1 != a { t += $3 } END { printf "%d\n", t / 92 }' "$1"
}

flood() {
	local impl=$1 topo=$2 ip_s=(ip) i pid n0 n1 out v loss secs snap= reading cookies
	rm -f "$D"/flood.reading.*
	[ "$topo" = veth ] && ip_s=(ip -n $B)
	ip netns add $F && ip -n $F link set lo up &&
		"${ip_s[@]}" link add wgbench-f type veth peer name fl0 netns $F &&
		"${ip_s[@]}" addr add 10.99.0.1/16 dev wgbench-f && "${ip_s[@]}" link set wgbench-f up &&
		for i in $(seq 0 $((FLOOD_SRC - 1))); do
			echo "addr add 10.99.$((1 + i / 256)).$((i % 256))/16 dev fl0"
		done | ip -n $F -batch - && ip -n $F link set fl0 up &&
		nb wg set wg0 $(sed 's/^/peer /' "$D/flood/pubs") ||
		{ log "  $topo: flood setup failed"; flood_down "$topo"; return; }
	# The flooder reads the device's counters itself, 1 s into the flood
	# and at its end, while it goes on: S seconds between the two. When
	# counting, each reading also takes a snapshot, so that the counted
	# window is the measured one.
	reading="ip netns exec $B wg show wg0 transfer"
	if [ -n "$COUNT" ] && [ "$round" = 1 ]; then
		snap=$(count_begin)
		reading="sync; $reading"
	fi
	ip netns exec $F python3 tests/flood.py run "$D/flood" --target 10.99.0.1:$PORT_B \
		--src-base 10.99.1.0 --src-count $FLOOD_SRC --secs $((SECS + 1)) --rate $FLOOD_RATE \
		--reading-cmd "$reading" --reading-out "$D/flood.reading" --warmup 1 \
		>"$D/flood.out" 2>&1 &
	pid=$!
	for i in $(seq 600); do
		grep -q '^flooding' "$D/flood.out" && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q '^flooding' "$D/flood.out"; then
		log "  $topo: the flooder did not start: $(head -c 300 "$D/flood.out")"
		wait $pid
		flood_down "$topo"
		return
	fi
	if [ -n "$snap" ]; then
		na ping -n -i 0.05 -w "$SECS" $IP_B >"$D/fping.txt" 2>&1
	else
		profiled "$impl" "initiation flood ($topo)" na ping -n -i 0.05 -w "$SECS" $IP_B >"$D/fping.txt" 2>&1
	fi
	wait $pid
	out=$(grep '^flood:' "$D/flood.out")
	secs=$(sed -n 's/.* window=\([0-9.]*\) .*/\1/p' <<<"$out")
	if [ -z "$secs" ] || [ ! -s "$D/flood.reading.0" ] || [ ! -s "$D/flood.reading.1" ]; then
		log "  $topo: the flooder failed: $(tail -c 300 "$D/flood.out")"
	else
		n0=$(flood_hs "$D/flood.reading.0") n1=$(flood_hs "$D/flood.reading.1")
		v=$(awk -v n=$((n1 - n0)) -v t="$secs" 'BEGIN { printf "%.1f", n / t }')
		add "$impl.hs.$topo" "$v"
		add "$impl.fsent.$topo" "$(sed -n 's|.* sent/s=\([0-9]*\).*|\1|p' <<<"$out")"
		add "$impl.fresp.$topo" "$(sed -n 's|.* window_responses/s=\([0-9.]*\).*|\1|p' <<<"$out")"
		cookies=$(sed -n 's|.* cookie_replies=\([0-9]*\).*|\1|p' <<<"$out")
		add "$impl.cookies.$topo" "$cookies"
		log "  $topo: initiation flood: $v handshakes/s ($((n1 - n0)) responses sent by wg0 in the $secs s from 1 s into the flood to its end; $n1 in all)"
		[ -n "$snap" ] && count_end "$snap" "$(impl_name "$impl")" "initiation flood ($topo)" "$secs" &&
			count_work "$snap" $((n1 - n0)) handshake
		log "    $(sed -n 's/^flooding at [0-9.]*: //p' "$D/flood.out")"
		log "    $out"
		[ "$cookies" = 0 ] &&
			log "    warning: wg0 was never under load (no cookie reply): this measured an idle responder; raise flood_rate"
	fi
	loss=$(grep -o '[0-9.]*% packet loss' "$D/fping.txt" | cut -d% -f1)
	if [ -n "$loss" ]; then
		add "$impl.floss.$topo" "$loss"
		log "    ping from $A during the flood: $(grep 'packets transmitted' "$D/fping.txt")"
	else
		log "    ping from $A during the flood: $(tail -n 2 "$D/fping.txt" | tr '\n' ' ')"
	fi
	flood_down "$topo"
}

flood_down() {
	nb wg set wg0 $(sed 's/^/peer /; s/$/ remove/' "$D/flood/pubs") 2>/dev/null
	ip netns del $F 2>/dev/null
	return 0
}

workloads() {
	local impl=$1 topo=$2 work
	for work in $WORK; do
		case $work in
		tcp1) measure "$impl" "$topo" tcp1 "TCP 1 stream" Mbit/s ;;
		tcpn) measure "$impl" "$topo" tcpn "TCP $NCPU streams" Mbit/s -P "$NCPU" ;;
		udp) udp "$impl" "$topo" ;;
		ping) latency "$impl" "$topo" ;;
		flood) flood "$impl" "$topo" ;;
		*) log "  unknown workload $work" ;;
		esac
	done
}

slot() {
	local round=$1 impl=$2 module params topo
	module=$(module_of "$impl") params=$(params_of "$impl")
	unload_all || return
	# shellcheck disable=SC2086 # the parameters are words
	if ! modprobe "$module" $params; then
		log "round $round/$ROUNDS $impl: modprobe $module $params failed"
		return
	fi
	log "round $round/$ROUNDS: $impl ($module $params)"
	AEAD_NOW=
	aead "$impl"
	case " $WORK " in *" tcp1 "*) ceiling "$impl" ;; esac
	for topo in $TOPOS; do
		if topo_up "$topo"; then
			workloads "$impl" "$topo"
		else
			log "  $topo: setup failed, skipped"
		fi
		topo_down
	done
	unload_all
}

# ---- the machine ----------------------------------------------------------------

accel=${WGRS_ACCEL:-}
if [ -z "$accel" ]; then
	dmesg | grep -q 'Hypervisor detected: KVM' && accel=kvm || accel="tcg?"
fi
debug=
[ -e /proc/lockdep ] && debug=" - DEBUG KERNEL (lockdep on): numbers distorted, use make bench"
simd=$(grep -m1 '^flags' /proc/cpuinfo | grep -ow 'ssse3\|avx2\|avx512f' | tr '\n' ' ')
MACHINE="$NCPU vCPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); SIMD: ${simd:-none}), ${accel^^}, $(( $(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo) / 1024 )) MiB; kernel $(uname -r), profile ${WGRS_KERNEL_PROFILE:-?}$debug; host: ${WGRS_HOST_CPU:-?}"

log "bench ($MODE): rounds $ROUNDS, $SECS s per workload, topologies: $TOPOS, drivers: $IMPLS"
log "machine: $MACHINE"
case " $WORK " in *" flood "*)
	# Enough initiations for each flood and its readings (3000/s unpaced).
	mkdir "$D/flood" && out=$(python3 tests/flood.py prepare "$D/flood" --target-pub "$PUB_B" \
		--peers $FLOOD_PEERS --messages $(( (FLOOD_RATE > 0 ? FLOOD_RATE : 3000) * (SECS + 6) )) 2>&1) ||
		{ log "tests/flood.py prepare failed: $out"; exit 1; }
	log "flood: $out; flood rate: $( ((FLOOD_RATE)) && echo "$FLOOD_RATE initiations/s" || echo unlimited)" ;;
esac
if [ -n "$PERF" ]; then
	"$PERF" --version >/dev/null 2>&1 || { log "perf=$PERF does not run"; exit 1; }
	sysctl -qw kernel.kptr_restrict=0 kernel.perf_event_paranoid=-1
	log "profiling round 1 with $PERF"
fi
unload_all
for round in $(seq "$ROUNDS"); do
	for impl in $IMPLS; do
		slot "$round" "$impl"
	done
done

# ---- the table ------------------------------------------------------------------

# stats VALUES: "median min max count", or nothing.
stats() {
	[ -n "$1" ] || return 0
	printf '%s\n' $1 | sort -g | awk '
		{ a[NR] = $1 }
		END {
			if (NR == 0) exit
			m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			print m, a[1], a[NR], NR
		}'
}
cell() { # cell IMPL KEY FMT
	local s
	s=$(stats "${V[$1.$2]:-}")
	[ -n "$s" ] && awk -v m="${s%% *}" -v f="$3" 'BEGIN { printf f, m }' || printf 'n/a'
}
spread() { # spread IMPL KEY: "x%" of (max - min) / median, or "n=1"
	local s
	s=$(stats "${V[$1.$2]:-}")
	[ -n "$s" ] || { printf -- '-'; return; }
	set -- $s
	if [ "$4" -lt 2 ]; then printf 'n=1'; return; fi
	awk -v m="$1" -v lo="$2" -v hi="$3" 'BEGIN { if (m == 0) printf "n/a"; else printf "%.0f%%", (hi - lo) / m * 100 }'
}
ratio() { # ratio KEY
	local a b
	a=$(stats "${V[rs.$1]:-}") b=$(stats "${V[c.$1]:-}")
	[ -n "$a" ] && [ -n "$b" ] || { printf 'n/a'; return; }
	awk -v a="${a%% *}" -v b="${b%% *}" 'BEGIN { if (b == 0) printf "n/a"; else printf "%.2f", a / b }'
}
ahead() { # ahead KEY BETTER: "k/n", the rounds in which ours beat C's run of the same round
	local better=$2
	awk -v a="${V[rs.$1]:-}" -v b="${V[c.$1]:-}" -v better="$better" 'BEGIN {
		n = split(a, x, " "); m = split(b, y, " "); if (m < n) n = m
		if (n == 0) { printf "-"; exit }
		for (i = 1; i <= n; i++) k += (better == "lower") ? (x[i] < y[i]) : (x[i] > y[i])
		printf "%d/%d", k, n
	}'
}
row() { # row LABEL KEY FMT [lower]: lower when a lower figure is better
	printf '%-44s | %10s | %10s | %6s | %5s | ours %s, %s %s\n' "$1" "$(cell rs "$2" "$3")" \
		"$(cell c "$2" "$3")" "$(ratio "$2")" "$(ahead "$2" "${4:-higher}")" "$(spread rs "$2")" "$C_NAME" "$(spread c "$2")"
}

echo
echo "raw values, one per round (ours = rs):"
for k in $(printf '%s\n' "${!V[@]}" | sort); do
	printf '  %-16s %s\n' "$k" "${V[$k]}"
done
echo
echo "bench ($MODE): median of $ROUNDS round(s), $SECS s per workload; spread = (max - min) / median;"
echo "higher is better but for ping and loss (lower is better); ahead = rounds in which ours beat C's"
echo "run of the same round"
echo "machine: $MACHINE"
[ -n "$BASELINE" ] && echo "C column: the baseline, ours loaded with $BASELINE (ours: ${PARAMS:-default parameters})"
printf '%-44s | %10s | %10s | %6s | %5s | %s\n' metric ours "$C_NAME" "ours/$C_NAME" ahead spread
printf '%s\n' "---------------------------------------------+------------+------------+--------+-------+---------------------"
for topo in $TOPOS; do
	row "TCP 1 stream, Mbit/s ($topo)" "tcp1.$topo" '%.1f'
	row "TCP $NCPU streams, Mbit/s ($topo)" "tcpn.$topo" '%.1f'
	row "UDP 64 B, datagrams/s received ($topo)" "udp.$topo" '%.0f'
	row "  sent into the tunnel, datagrams/s ($topo)" "udpsent.$topo" '%.0f'
	row "  lost at the receiving socket (full), /s ($topo)" "udprbe.$topo" '%.0f' lower
	row "ping under load, median us ($topo)" "lat50.$topo" '%.0f' lower
	row "ping under load, p99 us ($topo)" "lat99.$topo" '%.0f' lower
	row "TCP 1 stream / AEAD limit ($topo)" "frac.$topo" '%.3f'
	row "  vCPUs busy during TCP 1 stream, % ($topo)" "tcp1.busy.$topo" '%.0f'
	row "  vCPUs busy during UDP 64 B, % ($topo)" "udp.busy.$topo" '%.0f'
	row "  context switches per Mbit, TCP 1 stream ($topo)" "tcp1.cs.$topo" '%.2f' lower
	row "  context switches per datagram, UDP 64 B ($topo)" "udp.cs.$topo" '%.2f' lower
	row "handshakes/s under flood ($topo)" "hs.$topo" '%.1f'
	row "  flooder: responses/s received ($topo)" "fresp.$topo" '%.1f'
	row "  flooder: initiations/s sent ($topo)" "fsent.$topo" '%.0f'
	row "  cookie replies under flood ($topo)" "cookies.$topo" '%.0f'
	row "data stream alive under flood, loss % ($topo)" "floss.$topo" '%.1f' lower
done
row "TCP 1 stream without a tunnel, Mbit/s (veth)" tcpbare.bare '%.1f'
row "  vCPUs busy during it, %" tcpbare.busy.bare '%.0f'
row "UDP $BARE_UDP B without a tunnel, datagrams/s (veth)" udpmtu.bare '%.0f'
row "  vCPUs busy during it, %" udpmtu.busy.bare '%.0f'
row "ceiling of a tunnel / AEAD limit (estimate)" ceil '%.3f'
row "AEAD limit, MB/s (1 CPU, 1420 B)" aead '%.1f'
row "AEAD, buffers/s (1 CPU, 64 B)" aead64 '%.0f'
[ -s "$D/profiles" ] && { echo; cat "$D/profiles"; }
log "bench done in $((SECONDS - START)) s"
rm -rf "$D"
exit 0

#!/bin/bash
# Dumps split as the C driver's do, with it as the oracle: one seeded
# configuration (300 peers with 0-60 allowed IPs each, IPv4 and IPv6 of
# random lengths, no, an IPv4 or an IPv6 endpoint, a preshared key or none,
# a keepalive or none) is set on wireguard_rs, then on the C wireguard.ko,
# in this boot, and dumped with reads of 4, 8, 16 and 32 KiB, which size
# the messages (tests/dump-split.py). Every message must end at the same
# attribute for both: inside a peer's allowed IPs, or before a peer that
# did not fit at all.
#
#   tools/vm-run tests/dump-split.sh [SEED]     (default: a random seed)
set -u
cd "$(dirname "$0")/.." || exit 1
seed=${1:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
name="dump splits as the C driver's"
fail() { echo "FAIL $name (seed $seed): $*"; exit 1; }
sizes=(4096 8192 16384 32768)
dir=$(mktemp -d /tmp/wgrs-split.XXXXXX)

unload() {
	local m
	for m in wireguard_rs wireguard; do
		[ ! -d "/sys/module/$m" ] || rmmod "$m" || return 1
	done
}

python3 - "$seed" "$dir/wg0.conf" <<'EOF' || fail "generator failed"
import base64, random, sys
rng = random.Random(int(sys.argv[1]))
key = lambda: base64.b64encode(bytes(rng.randrange(256) for _ in range(32))).decode()
lines = ['[Interface]', 'PrivateKey = ' + key(), 'ListenPort = 51820']
for n in range(300):
    lines += ['[Peer]', 'PublicKey = ' + key()]
    if rng.random() < 0.5:
        lines.append('PresharedKey = ' + key())
    endpoint = rng.choice([None, '192.0.2.%d:%d' % (n % 250 + 1, 1000 + n), '[2001:db8::%x]:%d' % (n + 1, 1000 + n)])
    if endpoint:
        lines.append('Endpoint = ' + endpoint)
    if rng.random() < 0.3:
        lines.append('PersistentKeepalive = %d' % rng.randrange(1, 100))
    # Unique prefixes: the peer's number in the address, the prefix's
    # number in the last part.
    for i in range(rng.randrange(61)):
        if rng.random() < 0.5:
            lines.append('AllowedIPs = 10.%d.%d.0/%d' % (n // 256, n % 256, rng.randrange(24, 33)))
        else:
            lines.append('AllowedIPs = fd00:%x::%x/128' % (n, i))
open(sys.argv[2], 'w').write('\n'.join(lines) + '\n')
EOF

unload || fail "cannot unload the modules"
for impl in rs c; do
	[ $impl = rs ] && module=wireguard_rs || module=wireguard
	modprobe "$module" || fail "modprobe $module failed"
	ip link add wg0 type wireguard || fail "$impl: ip link add failed"
	wg setconf wg0 "$dir/wg0.conf" || fail "$impl: wg setconf failed"
	python3 tests/dump-split.py wg0 "${sizes[@]}" >"$dir/$impl.txt" || fail "$impl: dump failed"
	ip link del wg0
	rmmod "$module" || fail "rmmod $module failed"
done

# The lines of each size and the messages each size gave (ours).
counts=$(awk '/^read size/ { printf "%s%s KiB: %s", sep, $3 / 1024, $4; sep = ", " }' "$dir/rs.txt")
if ! cmp -s "$dir/rs.txt" "$dir/c.txt"; then
	diff "$dir/rs.txt" "$dir/c.txt" | cut -c1-200 | head -n 20
	fail "the messages differ (ours <, C >; messages: $counts)"
fi
grep -q '^read size 4096: [0-9]\{2,\} messages$' "$dir/rs.txt" || fail "too few messages to compare ($counts)"
echo "ok   $name: seed $seed, $(grep -c 'PEERS\[' "$dir/rs.txt") messages with peers; messages per read size: $counts"

# Shared helpers for the build tools. Source it; do not run it.
#
# Everything expensive lives in a machine-wide cache ($WGRS_CACHE), keyed by
# a hash of the inputs that produce it, so that any clone on this machine
# reuses it and a change of input rebuilds only what depends on it.

set -euo pipefail

WGRS_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WGRS_TOP=$(dirname "$WGRS_TOOLS")
WGRS_CACHE=${WGRS_CACHE:-/var/cache/wireguard-rs}
WGRS_SUITE=trixie
WGRS_KVER=7.3
export WGRS_TOOLS WGRS_TOP WGRS_CACHE

log() { printf '[wgrs %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Kernel profiles. "debug" (the default) is tools/kernel.config alone, the
# kernel make check uses; any other NAME is tools/kernel.config with
# tools/kernel-NAME.config merged over it ("bench": the debug options off).
# WGRS_KERNEL_PROFILE picks one for tools/kernel, tools/module and
# tools/vm-run.
WGRS_PROFILE=${WGRS_KERNEL_PROFILE:-debug}
case $WGRS_PROFILE in
debug) ;;
*[!a-z0-9-]* | '') die "WGRS_KERNEL_PROFILE: bad profile name '$WGRS_PROFILE'" ;;
*) [ -f "$WGRS_TOOLS/kernel-$WGRS_PROFILE.config" ] ||
	die "WGRS_KERNEL_PROFILE=$WGRS_PROFILE: no tools/kernel-$WGRS_PROFILE.config" ;;
esac
export WGRS_KERNEL_PROFILE=$WGRS_PROFILE

# module_tree: where the module and tests/kmod are built for the profile:
# the repository itself for "debug"; for another profile, a copy of their
# sources under build/profile-NAME/ (tools/module keeps it up to date), so
# that a build against one kernel never clobbers the other's.
module_tree() {
	if [ "$WGRS_PROFILE" = debug ]; then
		echo "$WGRS_TOP"
	else
		echo "$WGRS_TOP/build/profile-$WGRS_PROFILE"
	fi
}

need_root() {
	[ "$(id -u)" = 0 ] || die "this step needs root (debootstrap, chroot, mount)"
}

# key NAME FILE... -- STRING...: a short hash over file contents and strings.
key() {
	local name=$1; shift
	{
		while [ $# -gt 0 ] && [ "$1" != -- ]; do
			printf 'file %s\n' "$(basename "$1")"; cat "$1"; shift
		done
		[ $# -gt 0 ] && shift
		printf '%s\n' "$@"
	} | sha256sum | cut -c1-16 | sed "s/^/$name-/"
}

# Host packages the tools need; installed on demand (CI starts on a bare machine).
ensure_host_tools() {
	local missing=() cmd pkg
	for pair in debootstrap:debootstrap qemu-system-x86_64:qemu-system-x86 \
		    sha256sum:coreutils flock:util-linux; do
		cmd=${pair%%:*}; pkg=${pair#*:}
		command -v "$cmd" >/dev/null || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	need_root
	log "installing host packages: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Serialise builders of one cache entry across clones and concurrent runs.
cache_lock() {
	mkdir -p "$WGRS_CACHE"
	exec {WGRS_LOCK_FD}>"$WGRS_CACHE/.lock-$1"
	flock "$WGRS_LOCK_FD"
}

# --- chroot ------------------------------------------------------------------

# in_chroot ROOT CMD...: run CMD inside ROOT with /proc, /sys, /dev, the
# cache and the repository mounted at their host paths, so that absolute
# paths mean the same inside and out. The mounts live in a private mount
# namespace: they vanish with the command however it ends (error, Ctrl-C,
# kill), and concurrent builds in the same ROOT do not see each other's.
in_chroot() {
	local root=$1; shift
	need_root
	cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root$WGRS_CACHE" "$root$WGRS_TOP"
	unshare --mount --propagation private -- /bin/sh -ec '
		root=$1; shift
		for m in /proc /sys /dev "$WGRS_CACHE" "$WGRS_TOP"; do
			umount -R -l "$root$m" 2>/dev/null || true # inherited leftovers
		done
		mount -t proc proc "$root/proc"
		mount -t sysfs sys "$root/sys"
		mount --rbind /dev "$root/dev"
		mount --bind "$WGRS_CACHE" "$root$WGRS_CACHE"
		mount --bind "$WGRS_TOP" "$root$WGRS_TOP"
		exec chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
	' in_chroot "$root" "$@"
}

# debian_root ROOT PACKAGES [BACKPORTS_PACKAGES]: debootstrap a minimal
# trixie into ROOT, enable trixie-backports on the mirror debootstrap chose,
# and install the packages. Logs go next to ROOT.
debian_root() {
	local root=$1 pkgs=$2 bpo=${3:-}
	ensure_host_tools
	rm -rf "$root"; mkdir -p "$root"
	log "debootstrap $WGRS_SUITE into $root (about a minute)"
	debootstrap --variant=minbase "$WGRS_SUITE" "$root" >"$root.debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $root.debootstrap.log"
	sed -n "s/^deb \([^ ]*\) $WGRS_SUITE main.*/deb \1 $WGRS_SUITE-backports main/p" \
		"$root/etc/apt/sources.list" >"$root/etc/apt/sources.list.d/backports.list"
	[ -s "$root/etc/apt/sources.list.d/backports.list" ] || die "no mirror line in sources.list"
	log "apt-get install $pkgs${bpo:+ (backports: $bpo)}"
	in_chroot "$root" sh -c "export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq &&
		apt-get install -y -qq --no-install-recommends $pkgs &&
		{ [ -z '$bpo' ] || apt-get install -y -qq --no-install-recommends -t $WGRS_SUITE-backports $bpo; } &&
		apt-get clean" >"$root.apt.log" 2>&1 || die "apt-get failed, see $root.apt.log"
}

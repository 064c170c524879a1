# shellcheck shell=bash
# eng/rootfs.sh — the cached Debian 13 (trixie) root file system that build.sh runs in when the
# host's libstdc++ lacks GLIBCXX_3.4.32 (TorchSharp's native glue needs GCC 13's C++ runtime,
# Debian 12 has GCC 12's, and Debian 13's libstdc++ cannot be loaded into a Debian 12 process).
# Sourced by eng/env.sh. See /work/shared/ENVIRONMENT.md for what was verified.
#
# Safety rules this file keeps:
# - a root is complete only when its stamp matches rootfs_recipe; it is built in a temporary
#   directory and renamed into place, so a half-built root (Ctrl-C, lost network) is never used;
# - every mount happens in a private mount namespace (unshare), so nothing is ever mounted
#   below a directory on the host, and removing an old root cannot reach into /dev or the repo;
# - a lock (flock) on "$ROOTFS.lock": shared while in use, exclusive while building, so a
#   rebuild never pulls a root from under a running build.sh.

ROOTFS=${LOCKSTEP_ROOTFS:-/var/cache/lockstep/rootfs-trixie}
ROOTFS_SUITE=trixie
# Bump when the recipe changes in a way the stamp below cannot see (e.g. the build commands).
ROOTFS_RECIPE_VERSION=1
# What .NET itself needs: TLS roots, ICU, OpenSSL, the C++ runtime, OpenMP for libtorch, time zones.
ROOTFS_BASE=(ca-certificates libicu76 libssl3t64 libstdc++6 libgcc-s1 zlib1g libgomp1 tzdata)
ROOTFS_STAMP=.lockstep-rootfs

rootfs_recipe() {
  printf 'lockstep rootfs recipe %s\nsuite %s\nbase %s\nnative %s\ndebconf %s\n' \
    "$ROOTFS_RECIPE_VERSION" "$ROOTFS_SUITE" "${ROOTFS_BASE[*]}" "${NATIVE_PACKAGES[*]}" "$MKL_DEBCONF"
}

rootfs_is_current() {
  [[ -f $ROOTFS/$ROOTFS_STAMP && $(<"$ROOTFS/$ROOTFS_STAMP") == "$(rootfs_recipe)" ]]
}

# Takes the lock, builds the root if missing or stale, and leaves a shared lock held on fd
# ROOTFS_LOCK for as long as this build.sh runs. Runs that find the root current share the lock
# and never wait for each other; only a (re)build takes it exclusively.
rootfs_prepare() {
  ((EUID == 0)) || die "the Debian 13 root needs root (debootstrap, chroot, mounts): run as root, or with sudo (the command then runs as \$SUDO_USER inside)"
  mkdir -p "$(dirname "$ROOTFS")"
  exec {ROOTFS_LOCK}>"$ROOTFS.lock"
  rootfs_lock -s
  rootfs_is_current && return
  rootfs_lock -x   # converting drops the shared lock first, so two converting runs cannot deadlock
  rootfs_is_current || rootfs_build
  flock -s "$ROOTFS_LOCK"
}

rootfs_lock() {
  flock -n "$1" "$ROOTFS_LOCK" && return
  note "waiting for another build.sh that holds $ROOTFS.lock"
  flock "$1" "$ROOTFS_LOCK"
}

# Builds a fresh root next to $ROOTFS and renames it into place. Runs under the exclusive lock.
rootfs_build() {
  local stale
  for stale in "$ROOTFS".tmp.* "$ROOTFS".old.*; do   # left by an interrupted build
    if [[ -d $stale ]]; then safe_rm "$stale"; elif [[ -e $stale ]]; then rm -f "$stale"; fi
  done
  if ! command -v debootstrap >/dev/null; then
    note "installing debootstrap on the host"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)
    "${apt[@]}" install --no-install-recommends debootstrap >&2 ||
      { "${apt[@]}" update >&2 && "${apt[@]}" install --no-install-recommends debootstrap >&2; }
  fi
  local mirror
  mirror=${LOCKSTEP_MIRROR:-$(host_mirror)}
  [[ -n $mirror ]] || die "cannot read a Debian mirror from the host's apt sources; set LOCKSTEP_MIRROR"

  local tmp t0=$EPOCHREALTIME
  tmp=$(mktemp -d "$ROOTFS.tmp.XXXXXX")
  chmod 755 "$tmp"   # mktemp's 0700 would lock out apt's _apt user and a non-root user inside
  note "building the Debian 13 root in $tmp (once; about a minute)"
  # Removes the half-built root if anything below fails or is interrupted (die and Ctrl-C both
  # end in the EXIT trap; build.sh sets no other).
  # shellcheck disable=SC2064  # $tmp is meant to expand now
  trap "safe_rm '$tmp'" EXIT
  local log=$tmp.log packages=${NATIVE_PACKAGES[*]}
  unshare --mount --pid --fork --kill-child -- \
    debootstrap --variant=minbase --components=main,non-free \
    --include="$(IFS=,; echo "${ROOTFS_BASE[*]}")" "$ROOTFS_SUITE" "$tmp" "$mirror" >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; die "debootstrap failed (full log: $log)"; }
  touch "$tmp/etc/resolv.conf" "$tmp/etc/hosts"   # mount points for the host's files (eng/in-root.sh)
  LOCKSTEP_BINDS='' in_root "$tmp" / /bin/sh -euc "
    export DEBIAN_FRONTEND=noninteractive
    echo '$MKL_DEBCONF' | debconf-set-selections
    apt-get update
    apt-get install -y --no-install-recommends $packages
    apt-get clean
    dpkg-query -W -f='\${Package} \${Version}\n' $packages libstdc++6 libc6 > /$ROOTFS_STAMP.versions
  " >>"$log" 2>&1 || { tail -n 30 "$log" >&2; die "installing $packages inside the root failed (full log: $log)"; }
  if chroot "$tmp" update-alternatives --get-selections | mkl_is_system_blas; then
    die "libmkl-rt became the root's BLAS despite the debconf answer (log: $log)"
  fi
  rm -f "$log"
  rootfs_recipe >"$tmp/$ROOTFS_STAMP"
  if [[ -e $ROOTFS ]]; then
    mv "$ROOTFS" "$ROOTFS.old.$$"
  fi
  mv "$tmp" "$ROOTFS"
  trap - EXIT
  if [[ -e $ROOTFS.old.$$ ]]; then safe_rm "$ROOTFS.old.$$"; fi
  note "built $ROOTFS in $(elapsed "$t0"): $(tr '\n' ',' <"$ROOTFS/$ROOTFS_STAMP.versions" | sed 's/,$//; s/,/, /g')"
}

# The host's Debian mirror: the first URIs of a non-security stanza in debian.sources, else the
# first matching "deb" line of sources.list. Read at build time so no host name is in the repository.
host_mirror() {
  local f=/etc/apt/sources.list.d/debian.sources
  if [[ -r $f ]]; then
    awk 'BEGIN { RS = "" } /\nURIs:/ {
        for (i = 1; i <= NF; i++) if ($i == "URIs:") { u = $(i + 1); break }
        if (u !~ /security/) { print u; exit } }' "$f"
    return
  fi
  [[ -r /etc/apt/sources.list ]] &&
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($i !~ /security/) { print $i; exit } }' /etc/apt/sources.list
}

# rm -rf that refuses to run while anything is mounted below the directory (it would delete
# through a bind mount into /dev or the repository).
safe_rm() {
  local dir
  dir=$(readlink -f "$1")
  if awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    die "not removing $dir: something is mounted below it"
  fi
  rm -rf --one-file-system "$dir"
}

# shellcheck shell=bash
# eng/env.sh — sourced by build.sh: decides where commands run, prepares that place once, and runs
# commands there (env_prepare, env_run).
#
#   host    the host's libstdc++ has GLIBCXX_3.4.32 (GCC 13+: Debian 13, Ubuntu 24.04, Fedora 39+),
#           which TorchSharp 0.107's libLibTorchSharp.so needs: run directly; MKL, libiomp5 and OpenBLAS
#           are installed with apt if missing (eng/mkl.sh).
#   rootfs  otherwise (Debian 12, the CI machine): a cached Debian 13 root file system (eng/rootfs.sh),
#           entered with eng/in-root.sh; the repository, the .NET SDK and $HOME (NuGet cache) appear
#           inside at the same paths, so paths printed or passed on the command line mean the same.
#
# LOCKSTEP_ENV=host|rootfs overrides the choice; LOCKSTEP_ROOTFS moves the cached root;
# LOCKSTEP_EXTRA_BINDS (colon-separated directories) makes more host directories visible inside.

ENG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$ENG_DIR")

note() { echo "env: $*" >&2; }
warn() { echo "env: warning: $*" >&2; }
die() { echo "env: error: $*" >&2; exit 1; }
# Seconds since $1 (an $EPOCHREALTIME value), e.g. "0.3 s".
elapsed() {
  local us=$((${EPOCHREALTIME/./} - ${1/./}))
  printf '%d.%d s' $((us / 1000000)) $((us / 100000 % 10))
}

# shellcheck source=eng/mkl.sh
source "$ENG_DIR/mkl.sh"
# shellcheck source=eng/rootfs.sh
source "$ENG_DIR/rootfs.sh"

# True when the host's own libstdc++ (of this machine's architecture) has GLIBCXX_3.4.32.
host_has_glibcxx_3_4_32() {
  local arch lib
  arch=$(uname -m | tr _ -)   # ldconfig spells x86_64 as x86-64
  lib=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p) |
    awk -v a="$arch" 'tolower($0) ~ /libstdc\+\+\.so\.6 / && tolower($0) ~ tolower(a) { print $NF; exit }')
  [[ -n $lib ]] && grep -q 'GLIBCXX_3\.4\.32' "$lib"
}

env_prepare() {
  local t0=$EPOCHREALTIME
  ENV_MODE=${LOCKSTEP_ENV:-}
  if [[ -z $ENV_MODE ]]; then
    if host_has_glibcxx_3_4_32; then ENV_MODE=host; else ENV_MODE=rootfs; fi
  fi
  local dotnet
  dotnet=$(command -v dotnet || echo "${DOTNET_ROOT:-/usr/share/dotnet}/dotnet")
  [[ -x $dotnet ]] || die "dotnet not found: install the .NET 10 SDK (or put it on PATH)"
  DOTNET_DIR=$(dirname "$(readlink -f "$dotnet")")
  case $ENV_MODE in
    host)
      mkl_ensure_host
      note "host ready, its libstdc++ has GLIBCXX_3.4.32 ($(elapsed "$t0"))" ;;
    rootfs)
      rootfs_prepare
      rootfs_binds
      note "debian13 rootfs ready ($(elapsed "$t0"))" ;;
    *) die "LOCKSTEP_ENV must be host or rootfs, not '$ENV_MODE'" ;;
  esac
}

# env_run CMD...: runs CMD in the prepared environment, in the current directory; returns its exit code.
env_run() {
  if [[ $ENV_MODE == host ]]; then
    "$@"
    return
  fi
  local dir=$PWD
  if ! covered "$dir"; then
    dir=$REPO_DIR
    note "$PWD is not visible inside the root; running in $dir"
  fi
  in_root "$ROOTFS" "$dir" "$@"
}

# in_root ROOT DIR CMD...: eng/in-root.sh in a new PID and private mount namespace (see there).
in_root() {
  unshare --mount --pid --fork --kill-child -- "$ENG_DIR/in-root.sh" "$@"
}

# Sets what eng/in-root.sh mounts and passes: LOCKSTEP_BINDS, the PATH inside, the user.
rootfs_binds() {
  local home=${HOME:-/root}
  if [[ -n ${SUDO_UID:-} && ${SUDO_UID} != 0 ]]; then
    # Started with sudo: run as that user inside, with that user's home and NuGet cache.
    export LOCKSTEP_USERSPEC=$SUDO_UID:${SUDO_GID:?}
    home=$(getent passwd "$SUDO_UID" | cut -d: -f6)
    [[ -n $home ]] || die "no home directory for uid $SUDO_UID"
    export HOME=$home USER=${SUDO_USER:-} LOGNAME=${SUDO_USER:-}
  fi
  [[ -d $home/.nuget ]] || { mkdir -p "$home/.nuget" && chown "${LOCKSTEP_USERSPEC:-0:0}" "$home/.nuget"; }
  BINDS=()
  local path extra
  IFS=: read -ra extra <<<"${LOCKSTEP_EXTRA_BINDS:-}"
  # Sorted, a directory comes before anything inside it, which then needs no mount of its own.
  while IFS= read -r path; do
    covered "$path" && continue
    bindable "$path" || die "refusing to mount $path over the root's own system directories"
    BINDS+=("$path")
  # /usr/share/fonts: the host's fonts, for `compare --plot` (the root has none).
  done < <(for path in "$REPO_DIR" "$(dirname "$REPO_DIR")/shared" "$DOTNET_DIR" "$home" /opt/nuget /usr/share/fonts "${extra[@]}"; do
             [[ -n $path && -d $path ]] && readlink -f "$path"
           done | LC_ALL=C sort -u)
  LOCKSTEP_BINDS=$(printf '%s\n' "${BINDS[@]}")
  export LOCKSTEP_BINDS
  export LOCKSTEP_INNER_PATH=$DOTNET_DIR:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  export DOTNET_ROOT=$DOTNET_DIR
  # Worker nodes live and die with one command (the root's /tmp, where they listen, is private to it).
  export MSBUILDDISABLENODEREUSE=1
}

# True when $1 is inside one of the directories already in BINDS.
covered() {
  local b
  for b in "${BINDS[@]}"; do
    [[ $1 == "$b" || $1 == "$b"/* ]] && return 0
  done
  return 1
}

# False for / and for directories that hold the root's own system (/usr, /etc, /var/lib, ...).
bindable() {
  local sys
  for sys in /bin /etc /lib /sbin /usr/bin /usr/lib /usr/sbin /usr/share/ca-certificates /var/lib/dpkg; do
    [[ $sys == "$1" || $sys == "$1"/* ]] && return 1
  done
  return 0
}

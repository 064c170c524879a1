#!/usr/bin/env bash
# eng/in-root.sh ROOT DIR CMD... — runs CMD in directory DIR inside the root file system ROOT.
#
# Started by eng/env.sh (in_root) as `unshare --mount --pid --fork --kill-child`, so this script is
# process 1 of a new PID namespace with a private mount namespace:
# - every mount below is invisible to the host and disappears when the last process ends, so
#   nothing stays mounted after a failure, a Ctrl-C or a kill -9;
# - when this script ends, the kernel ends every process left in the namespace (MSBuild nodes,
#   the compiler server), so nothing outlives the command or keeps the root busy.
#
# Mounted at the same paths as on the host: /proc (of the new namespace), /dev, /sys, the host's
# /etc/resolv.conf and /etc/hosts (NuGet needs DNS), and each directory in $LOCKSTEP_BINDS (one per
# line: the repository, the .NET SDK, $HOME with the NuGet cache, ...), and a private /tmp.
set -euo pipefail
root=$1 dir=$2
shift 2

mount -t proc proc "$root/proc"
# A private /tmp for each command. MSBuild's worker nodes listen on /tmp/MSBuild<pid> and the C# compiler
# server on a socket there too; PIDs restart at 1 in every PID namespace, so a shared /tmp would let a
# concurrent run of another checkout (where this repository is not mounted) answer this one's builds
# (MSB4025 / CS2001 "could not find"). Write results meant for the host under the repository or $HOME.
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
# The host's CA bundle too: where the host reaches the package registries through a TLS proxy of its own,
# only the host's trust store knows that proxy's CA (NuGet failed with "UntrustedRoot" otherwise).
for f in /etc/resolv.conf /etc/hosts /etc/ssl/certs/ca-certificates.crt; do
  [[ -e $f ]] && mount --bind "$(readlink -f "$f")" "$root$f"
done
while IFS= read -r path; do
  [[ -n $path ]] || continue
  mkdir -p "$root$path"
  mount --rbind "$path" "$root$path"
done <<<"${LOCKSTEP_BINDS:-}"

# The environment inside: only what the build, the tests and the native libraries read.
vars=("PATH=${LOCKSTEP_INNER_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}")
while IFS= read -r name; do
  case $name in
    HOME | USER | LOGNAME | TERM | COLORTERM | NO_COLOR | CI | COLUMNS | TZ | LANG | LC_* | GLIBC_TUNABLES | \
      DOTNET_* | NUGET_* | MSBUILD* | LOCKSTEP_* | OPENBLAS_* | MKL_* | OMP_* | KMP_* | TORCH_* | CUDA_* | \
      http_proxy | https_proxy | no_proxy | HTTP_PROXY | HTTPS_PROXY | NO_PROXY | GITHUB_* | TF_BUILD)
      [[ $name == LOCKSTEP_BINDS || $name == LOCKSTEP_INNER_PATH || $name == LOCKSTEP_USERSPEC ]] ||
        vars+=("$name=${!name}") ;;
  esac
done < <(compgen -e)

# shellcheck disable=SC2016  # $1 and $@ belong to the inner sh
# chroot --userspec drops root when build.sh was started with sudo, so that bin/ and obj/ in the
# repository stay owned by the user.
chroot ${LOCKSTEP_USERSPEC:+--userspec="$LOCKSTEP_USERSPEC"} "$root" \
  /usr/bin/env -i "${vars[@]}" /bin/sh -c 'cd "$1" && shift && exec "$@"' in-root "$dir" "$@"

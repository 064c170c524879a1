# shellcheck shell=bash
# eng/mkl.sh — the native math libraries Lockstep loads at run time, and how they are installed.
# Sourced by eng/env.sh. Used in both environments: on a host that runs the tests directly
# (mkl_ensure_host) and inside the Debian 13 root file system (eng/rootfs.sh installs the same list).
#
#   libmkl-rt             Intel MKL's single dynamic library libmkl_rt.so (Debian/Ubuntu non-free/multiverse).
#   libomp-dev            the LLVM OpenMP runtime as libiomp5.so: MKL's default threading layer dlopens it by
#                         that name; without it the process dies with "undefined symbol: omp_get_num_procs".
#   libopenblas0-pthread  OpenBLAS, the second GEMM provider (faster than MKL 2020 on AMD CPUs).

NATIVE_PACKAGES=(libmkl-rt libomp-dev libopenblas0-pthread)

# libmkl-rt asks (debconf) whether libmkl_rt.so should become the system's libblas.so.3/liblapack.so.3.
# Always no: other programs keep their BLAS; Lockstep loads MKL by name and never needs the alternative.
MKL_DEBCONF='libmkl-rt libmkl-rt/use-as-default-blas-lapack boolean false'

# Prints the packages of "$@" that are not installed.
native_missing() {
  local p
  for p in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == 'install ok installed' ]] || echo "$p"
  done
}

# True when MKL is the system's BLAS or LAPACK (libblas.so.3, liblapack.so.3), read from
# `update-alternatives --get-selections` on stdin. (libmkl-rt registers itself for the ILP64
# libblas64.so.3/liblapack64.so.3 whatever the debconf answer; nothing in Lockstep uses those, and an
# ILP64 provider the host already had is put back by restore_blas_alternatives.)
mkl_is_system_blas() {
  grep -E '^lib(blas|lapack)\.so\.3-' | grep -qi mkl
}

# The current BLAS/LAPACK alternatives, "name mode value" per line (empty when there are none).
blas_alternatives() {
  update-alternatives --get-selections 2>/dev/null | grep -E '^lib(blas|cblas|lapack)' || true
}

# Host mode: make sure NATIVE_PACKAGES are installed, without changing which BLAS the system uses.
# Needs root (or sudo) only when something is missing; a second run costs one dpkg-query.
mkl_ensure_host() {
  local -a missing
  mapfile -t missing < <(native_missing "${NATIVE_PACKAGES[@]}")
  ((${#missing[@]})) || return 0
  if ! command -v apt-get >/dev/null; then
    warn "not a Debian/Ubuntu host: install MKL (libmkl_rt.so), libiomp5 and OpenBLAS by hand; missing: ${missing[*]}"
    return 0
  fi
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "missing ${missing[*]}; run once as root: apt-get install --no-install-recommends ${missing[*]}"
    sudo=(sudo)
  fi
  note "installing ${missing[*]} on the host"
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)
  if ! apt_has_candidate libmkl-rt; then
    "${apt[@]}" update >&2
    apt_has_candidate libmkl-rt || { enable_mkl_component "${sudo[@]}"; "${apt[@]}" update >&2; }
  fi
  local before after
  before=$(blas_alternatives)
  echo "$MKL_DEBCONF" | "${sudo[@]}" debconf-set-selections
  "${apt[@]}" install --no-install-recommends "${missing[@]}" >&2
  after=$(blas_alternatives)
  restore_blas_alternatives "$before" "$after" "${sudo[@]}"
  if blas_alternatives | mkl_is_system_blas; then
    die "MKL became a system BLAS/LAPACK alternative; undo with update-alternatives --config"
  fi
}

apt_has_candidate() {
  local c
  c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [[ -n $c && $c != '(none)' ]]
}

# Adds the component that carries MKL (Debian: non-free, Ubuntu: multiverse) in a sources file of
# its own, copied from the host's main sources with only the Components changed. The host's own
# files are never edited, and no mirror is written down anywhere but in that file.
enable_mkl_component() {
  local id comp file
  id=$(. /etc/os-release && echo "$ID ${ID_LIKE:-}")
  case " $id " in
    *' ubuntu '*) comp=multiverse ;;
    *' debian '*) comp=non-free ;;
    *) die "cannot tell which apt component carries libmkl-rt on this host ($id)" ;;
  esac
  local src
  for src in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/ubuntu.sources; do
    [[ -r $src ]] || continue
    file=/etc/apt/sources.list.d/lockstep-$comp.sources
    # deb822: every stanza with the main component, its Components line replaced.
    awk -v comp="$comp" 'BEGIN { RS = ""; ORS = "\n\n" }
      /\nComponents:[^\n]* main/ { sub(/\nComponents:[^\n]*/, "\nComponents: " comp); print }' "$src" |
      "$@" tee "$file" >/dev/null
    note "enabled apt component $comp in $file"
    return 0
  done
  [[ -r /etc/apt/sources.list ]] || die "no apt sources found to derive the $comp component from"
  file=/etc/apt/sources.list.d/lockstep-$comp.list
  # one-line format: "deb [options] URI suite components..." for every line with main.
  awk -v comp="$comp" '$1 == "deb" && / main( |$)/ {
      i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      line = $1; for (j = 2; j <= i + 1; j++) line = line " " $j; print line " " comp }' /etc/apt/sources.list |
    "$@" tee "$file" >/dev/null
  note "enabled apt component $comp in $file"
}

# Puts back any BLAS/LAPACK alternative whose value the install changed (installing OpenBLAS
# would otherwise replace, say, the reference BLAS for every program on the machine).
restore_blas_alternatives() {
  local before=$1 after=$2 name value now
  shift 2
  [[ $before == "$after" ]] && return 0
  while read -r name _ value; do
    [[ -n $name ]] || continue
    now=$(awk -v n="$name" '$1 == n {print $3}' <<<"$after")
    if [[ $now != "$value" ]]; then
      note "restoring the system's $name alternative to $value (the install had changed it to $now)"
      "$@" update-alternatives --quiet --set "$name" "$value"
    fi
  done <<<"$before"
}

#!/usr/bin/env bash
# eng/gpu-check.sh — the torch backend on an NVIDIA GPU, for a machine with PyTorch but no .NET and no network.
#
#   eng/gpu-check.sh pack [TARBALL]        HERE (needs the .NET SDK): publish the torch tests and the lockstep CLI
#                                          self-contained for linux-x64 with -p:TorchVariant=cuda (TorchSharp without
#                                          libtorch), from the working tree's tracked and untracked files, and pack
#                                          them with this script, eng/gpu-anchor.py and docs/perf/gpu/cudnn_dw.py into
#                                          TARBALL (default artifacts/gpu-check/lockstep-gpu-check.tar.xz).
#   gpu-check.sh run [OUTDIR] [STAGE...]   THERE: from the unpacked tarball (or from the repository, which then
#                                          unpacks the default TARBALL). Writes every result under OUTDIR (default
#                                          $OUT, else ./gpu-check-results) and a summary, OUTDIR/summary.txt.
#
# Stages of `run` (default: all, in this order):
#   env      GPU, driver, PyTorch, CUDA, cuDNN, glibc and libstdc++; finds PyTorch's torch/lib
#   ldd      ldd -r of TorchSharp's glue (built against libtorch 2.10) against that torch/lib: missing libraries,
#            missing symbol versions, undefined symbols (demangled), all written down, never guessed
#   tests    the torch test project (hand-computed cases, conformance vs managed and vs the naive loops, gradient
#            checks, FC->CONV; float32 with TF32 off and float64) with LOCKSTEP__TORCH__DEVICE=cuda; then again with
#            cuDNN off (LOCKSTEP__TORCH__CUDNN=false: libtorch's own CUDA convolutions)
#   compare  lockstep compare on alexnet and vgg16: torch:cuda against both CPU backends (managed, torch)
#   tf32     vgg16 once more with AllowTF32, torch:cuda against torch (cpu): the speed TF32 buys, and its error
#   anchor   eng/gpu-anchor.py: the same layers in plain PyTorch on the same GPU, set against compare's torch:cuda
#   cudnn    what cuDNN costs in accuracy and is worth in time: alexnet's compare again with Torch:CuDnn = false,
#            the anchor of both networks with cuDNN disabled, and docs/perf/gpu/cudnn_dw.py (one wide 5x5 layer's
#            weight gradient under each of PyTorch's cuDNN settings, with cuDNN's API log of the engine it runs)
#
# Settings (environment): LOCKSTEP_TORCH_LIB (torch/lib; default: asked of python), PYTHON (python3),
# LOCKSTEP_GPU_BATCH (16), LOCKSTEP_GPU_REPEATS (10), LOCKSTEP_GPU_DEVICE (cuda; cpu lets the run step be tried on a
# machine without a GPU, against any libtorch 2.10 lib directory), LOCKSTEP_GPU_STEP_SECONDS (each program a stage
# runs is stopped after this many seconds, and the stage goes on with the next; default: no limit),
# LOCKSTEP_GPU_ARCHIVE (a .tar.gz path: OUTDIR packed into it after every stage, so that what was done survives a
# run stopped from outside, on a machine that hands back only a few files).
#
# The managed backend needs MKL or OpenBLAS (Lockstep:Managed:Gemm = auto). A GPU machine with only PyTorch usually
# has neither, and PyTorch's wheels link MKL statically, so there is no libmkl_rt to borrow: auto then takes the
# managed GEMM, correct but slow (alexnet's step took 8.3 s at batch 16 on 2 cores), and compare leaves the managed
# backend out (torch:cuda runs against torch on the CPU). MKL is not carried in the tarball: libmkl_rt alone is a
# dispatcher over libmkl_core, a threading layer and per-ISA kernel libraries (hundreds of MB in all), and Debian 13's
# builds need a newer glibc than such machines may have. `run` says which GEMM ran and what was skipped.
set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PACKAGE_NAME=lockstep-gpu-check

die() { echo "gpu-check: error: $*" >&2; exit 2; }
say() { echo "gpu-check: $*" >&2; }

usage() {
  sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-2}"
}

# ---------------------------------------------------------------------------------------------------------------
# pack (here)

cmd_pack() {
  local repo src pkg tarball dotnet
  repo=$(cd "$SCRIPT_DIR/.." && pwd)
  [[ -f $repo/Backends.sln ]] || die "pack runs from the repository (eng/gpu-check.sh pack)"
  dotnet=$(command -v dotnet || echo "${DOTNET_ROOT:-/usr/share/dotnet}/dotnet")
  [[ -x $dotnet ]] || die "pack needs the .NET 10 SDK (dotnet not found)"
  tarball=${1:-$repo/artifacts/gpu-check/$PACKAGE_NAME.tar.xz}
  mkdir -p "$(dirname "$tarball")" || die "cannot create the directory of $tarball"
  tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
  local work=$repo/artifacts/gpu-check
  src=$work/src
  pkg=$work/$PACKAGE_NAME
  rm -rf "$src" "$pkg"
  mkdir -p "$src" "$pkg/app"

  # A copy of the sources, so that the cuda variant's restore and build leave the working tree's obj/ alone.
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$src" ||
    die "copying the sources failed"
  local project
  for project in bench/Lockstep.Bench tests/Backends.Torch.Tests; do
    say "publishing $project (linux-x64, self-contained, TorchVariant=cuda)"
    "$dotnet" publish "$src/$project" -c Release -r linux-x64 --self-contained -p:TorchVariant=cuda \
      -o "$pkg/app" -v q -nologo -clp:NoSummary || die "dotnet publish $project failed"
  done
  [[ -f $pkg/app/libLibTorchSharp.so ]] || die "libLibTorchSharp.so is missing from the publish output"
  if compgen -G "$pkg/app/libtorch*.so*" >/dev/null; then
    die "libtorch was bundled ($(cd "$pkg/app" && ls libtorch*.so*)): the cuda variant must take it from the machine"
  fi
  cp "$SCRIPT_DIR/gpu-check.sh" "$SCRIPT_DIR/gpu-anchor.py" "$repo/docs/perf/gpu/cudnn_dw.py" "$pkg/"
  # The ONNX peer corpus, which the torch tests read (LOCKSTEP_ONNX_CORPUS), lies next to the repository.
  [[ -f $repo/../shared/conformance/onnx/manifest.json ]] || die "no ONNX corpus at $repo/../shared/conformance/onnx"
  cp -r "$repo/../shared/conformance/onnx" "$pkg/onnx"
  {
    echo "commit: $(git -C "$repo" rev-parse HEAD)$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "TorchSharp: $(sed -n 's/.*Include="TorchSharp" Version="\([^"]*\)".*/\1/p' "$repo/Directory.Packages.props")"
  } >"$pkg/VERSION"
  say "packing $tarball"
  tar -C "$work" -cf - "$PACKAGE_NAME" | xz -T0 -6 >"$tarball" || die "tar/xz failed"
  local files size
  files=$(find "$pkg" -type f | wc -l)
  size=$(du -sm "$pkg" | cut -f1)
  echo "$tarball: $(du -h "$tarball" | cut -f1) ($files files, $size MB unpacked)"
  echo "on the GPU machine: tar -xJf $(basename "$tarball") && $PACKAGE_NAME/gpu-check.sh run OUTDIR"
}

# ---------------------------------------------------------------------------------------------------------------
# run (there)

OUTDIR=
APP=
SUMMARY=
STATUS=0

# Runs a stage's program, stopped after LOCKSTEP_GPU_STEP_SECONDS where that is set (exit 124 then, as timeout's).
limited() {
  if [[ -n ${STEP_SECONDS:-} ]]; then timeout -k 10 "$STEP_SECONDS" "$@"; else "$@"; fi
}

# OUTDIR packed into LOCKSTEP_GPU_ARCHIVE, where that is set.
archive() {
  [[ -n ${ARCHIVE:-} ]] || return 0
  tar -czf "$ARCHIVE" -C "$(dirname "$OUTDIR")" "$(basename "$OUTDIR")" || say "packing $OUTDIR into $ARCHIVE failed"
}

# Records one stage's outcome in the summary (and on stderr).
record() {
  echo "$*" | tee -a "$SUMMARY" >&2
}

locate_package() {
  if [[ -x $SCRIPT_DIR/app/lockstep ]]; then
    APP=$SCRIPT_DIR/app
    return
  fi
  local tarball
  tarball=$(cd "$SCRIPT_DIR/.." && pwd)/artifacts/gpu-check/$PACKAGE_NAME.tar.xz
  [[ -f $tarball ]] || die "no package: run 'eng/gpu-check.sh pack' first, or run the script from the unpacked tarball"
  local unpacked
  unpacked=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-gpu.XXXXXX")
  tar -xJf "$tarball" -C "$unpacked" || die "unpacking $tarball failed"
  APP=$unpacked/$PACKAGE_NAME/app
}

# The first libstdc++.so.6 with GLIBCXX_3.4.32 (TorchSharp's glue needs it): the system's, else a Python environment's.
find_libstdcxx() {
  local candidate prefix
  local -a candidates=()
  candidate=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) | awk '/libstdc\+\+\.so\.6 .*x86-64/ { print $NF; exit }')
  [[ -n $candidate ]] && candidates+=("$candidate")
  for prefix in "${CONDA_PREFIX:-}" "$("$PYTHON" -c 'import sys; print(sys.prefix)' 2>/dev/null)"; do
    [[ -n $prefix && -f $prefix/lib/libstdc++.so.6 ]] && candidates+=("$prefix/lib/libstdc++.so.6")
  done
  for candidate in "${candidates[@]}"; do
    if grep -q 'GLIBCXX_3\.4\.32' "$candidate" 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

stage_env() {
  local f=$OUTDIR/env.txt
  {
    echo "== package"; cat "$APP/../VERSION" 2>/dev/null
    echo "== machine"; uname -a; ldd --version 2>&1 | head -1; nproc
    echo "== nvidia-smi"; nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || echo "nvidia-smi not found"
    echo "== python"; "$PYTHON" - <<'PY' 2>&1
import os, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("cuda available", torch.cuda.is_available(), "devices", torch.cuda.device_count())
if torch.cuda.is_available():
    print("device 0", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
print("torch/lib", os.path.join(os.path.dirname(torch.__file__), "lib"))
PY
    echo "== torch/lib: $TORCH_LIB"; find "$TORCH_LIB" -maxdepth 1 -name '*.so*' -printf '%f\n' | sort
    echo "== libstdc++ with GLIBCXX_3.4.32: ${LIBSTDCXX:-none found}"
    echo "== BLAS for the managed backend"
    (ldconfig -p 2>/dev/null | grep -E 'libmkl_rt\.so|libopenblas\.so|libiomp5\.so') || echo "no libmkl_rt, libopenblas or libiomp5 on the loader's path"
  } >"$f"
  record "env: written to env.txt (torch/lib: $TORCH_LIB)"
}

# 0: glue loads (possibly with undefined symbols, which lazy binding defers); 1: it cannot load.
stage_ldd() {
  local glue=$APP/libLibTorchSharp.so out=$OUTDIR/ldd-r.txt
  ldd -r "$glue" >"$out" 2>&1
  local missing_libs versions undefined
  missing_libs=$(grep -c '=> not found' "$out")
  versions=$(grep -c 'version .* not found' "$out")
  grep -o 'undefined symbol: [^ 	]*' "$out" | sed 's/undefined symbol: //' | sort -u >"$OUTDIR/undefined-symbols.txt"
  if command -v c++filt >/dev/null; then
    c++filt <"$OUTDIR/undefined-symbols.txt" >"$OUTDIR/undefined-symbols.demangled.txt"
  fi
  undefined=$(wc -l <"$OUTDIR/undefined-symbols.txt")
  record "ldd: libLibTorchSharp.so against $TORCH_LIB: $missing_libs missing libraries, $versions missing symbol versions, $undefined undefined symbols (ldd-r.txt, undefined-symbols*.txt)"
  if ((missing_libs > 0 || versions > 0)); then
    grep -E 'not found' "$out" | sed 's/^/  /' | tee -a "$SUMMARY" >&2
    record "ldd: BLOCKED: TorchSharp's glue cannot load against this libtorch; the .NET stages are skipped"
    return 1
  fi
  if ((undefined > 0)); then
    record "ldd: WARNING: TorchSharp 0.107's glue (libtorch 2.10) calls $undefined functions this libtorch lacks; functions bind lazily, so a run stops with 'symbol lookup error' only if it calls one. First ones:"
    head -5 "$OUTDIR/undefined-symbols.demangled.txt" 2>/dev/null | sed 's/^/  /' | tee -a "$SUMMARY" >&2
  fi
  return 0
}

tests_one() {
  local name=$1 cudnn=$2 rc=0
  local out=$OUTDIR/tests-$name.txt
  # GpuCheckScriptTests test this script and gpu-anchor.py from the repository (./build.sh test runs them); the
  # package is not a repository, so they are left out here.
  LOCKSTEP__TORCH__DEVICE=$DEVICE LOCKSTEP__TORCH__CUDNN=$cudnn LOCKSTEP_ONNX_CORPUS=$APP/../onnx \
    limited "$APP/Lockstep.Backends.Torch.Tests" '!GpuCheckScriptTests' >"$out" 2>&1 || rc=$?
  record "tests ($DEVICE, cudnn $cudnn): exit $rc, $(tail -1 "$out") (tests-$name.txt)"
  ((rc == 0)) || STATUS=1
}

stage_tests() {
  tests_one "$DEVICE" true
  [[ $DEVICE == cpu ]] || tests_one "$DEVICE-nocudnn" false
}

# Which GEMM the managed backend gets here (auto), from `lockstep info`.
managed_gemm() {
  limited "$APP/lockstep" info --backend managed >"$OUTDIR/info-managed.txt" 2>&1
  if grep -q 'gemm: mkl\|gemm: openblas' "$OUTDIR/info-managed.txt"; then echo native; else echo managed; fi
}

compare_one() {
  local name=$1 backends=$2
  shift 2
  local rc=0
  limited "$APP/lockstep" compare --net "${name%%-*}" --backends "$backends" --batch "$BATCH" --repeats "$REPEATS" \
    --json "$OUTDIR/compare-$name.json" "$@" >"$OUTDIR/compare-$name.txt" 2>&1 || rc=$?
  record "compare $name ($backends): exit $rc (compare-$name.txt, compare-$name.json)"
  ((rc == 0)) || STATUS=1
}

stage_compare() {
  local gemm gpu=torch:$DEVICE net
  gemm=$(managed_gemm)
  record "managed backend: $(grep -m1 'managed (' "$OUTDIR/info-managed.txt" || echo 'see info-managed.txt')"
  for net in alexnet vgg16; do
    if [[ $gemm == native ]]; then
      compare_one $net "managed,torch,$gpu"
    else
      record "compare $net: managed backend skipped (no MKL or OpenBLAS here: the managed GEMM would take minutes); torch (cpu) is the reference"
      compare_one $net "torch,$gpu"
    fi
  done
}

stage_tf32() {
  compare_one vgg16-tf32 "torch,torch:$DEVICE" --Lockstep:Torch:AllowTF32 true --tolerance 1e-2
}

stage_anchor() {
  local net rc
  for net in alexnet vgg16; do
    rc=0
    local -a compare=()
    [[ -f $OUTDIR/compare-$net.json ]] && compare=(--compare "$OUTDIR/compare-$net.json" --backend "torch:$DEVICE")
    limited "$PYTHON" "$ANCHOR" "$net" --device "$DEVICE" --batch "$BATCH" --repeats "$REPEATS" \
      --json "$OUTDIR/anchor-$net.json" "${compare[@]}" >"$OUTDIR/anchor-$net.txt" 2>&1 || rc=$?
    record "anchor $net (plain PyTorch): exit $rc (anchor-$net.txt, anchor-$net.json)"
    ((rc == 0)) || STATUS=1
  done
}

stage_cudnn() {
  compare_one alexnet-nocudnn "torch,torch:$DEVICE" --Lockstep:Torch:CuDnn false
  local net rc
  for net in alexnet vgg16; do
    rc=0
    limited "$PYTHON" "$ANCHOR" "$net" --device "$DEVICE" --batch "$BATCH" --repeats "$REPEATS" --no-cudnn \
      --json "$OUTDIR/anchor-$net-nocudnn.json" >"$OUTDIR/anchor-$net-nocudnn.txt" 2>&1 || rc=$?
    record "anchor $net, cuDNN disabled (plain PyTorch): exit $rc (anchor-$net-nocudnn.txt)"
    ((rc == 0)) || STATUS=1
  done
  rc=0
  limited "$PYTHON" "$CUDNN_PROBE" --log "$OUTDIR" >"$OUTDIR/cudnn-dw.txt" 2>&1 || rc=$?
  record "cudnn_dw.py (one 5x5 layer's dw under PyTorch's cuDNN settings): exit $rc (cudnn-dw.txt, cudnn-api.log)"
  ((rc == 0)) || STATUS=1
}

cmd_run() {
  OUTDIR=${1:-${OUT:-./gpu-check-results}}
  (($#)) && shift
  local -a stages=("$@")
  ((${#stages[@]})) || stages=(env ldd tests compare tf32 anchor cudnn)
  mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
  OUTDIR=$(cd "$OUTDIR" && pwd)
  SUMMARY=$OUTDIR/summary.txt
  PYTHON=${PYTHON:-python3}
  BATCH=${LOCKSTEP_GPU_BATCH:-16}
  REPEATS=${LOCKSTEP_GPU_REPEATS:-10}
  DEVICE=${LOCKSTEP_GPU_DEVICE:-cuda}
  STEP_SECONDS=${LOCKSTEP_GPU_STEP_SECONDS:-}
  [[ -z $STEP_SECONDS || $STEP_SECONDS =~ ^[1-9][0-9]*$ ]] || die "LOCKSTEP_GPU_STEP_SECONDS must be a positive whole number of seconds, got '$STEP_SECONDS'"
  ARCHIVE=${LOCKSTEP_GPU_ARCHIVE:-}
  if [[ -n $ARCHIVE ]]; then
    mkdir -p "$(dirname "$ARCHIVE")" || die "cannot create the directory of $ARCHIVE"
    ARCHIVE=$(cd "$(dirname "$ARCHIVE")" && pwd)/$(basename "$ARCHIVE")
    [[ $ARCHIVE != "$OUTDIR"/* ]] || die "LOCKSTEP_GPU_ARCHIVE must lie outside OUTDIR ($OUTDIR), got $ARCHIVE"
  fi
  locate_package
  ANCHOR=$APP/../gpu-anchor.py
  [[ -f $ANCHOR ]] || ANCHOR=$SCRIPT_DIR/gpu-anchor.py
  CUDNN_PROBE=$APP/../cudnn_dw.py
  [[ -f $CUDNN_PROBE ]] || CUDNN_PROBE=$SCRIPT_DIR/../docs/perf/gpu/cudnn_dw.py
  echo "gpu-check run $(date -u +%Y-%m-%dT%H:%M:%SZ): stages ${stages[*]}, device $DEVICE, batch $BATCH, repeats $REPEATS" >>"$SUMMARY"

  TORCH_LIB=${LOCKSTEP_TORCH_LIB:-}
  if [[ -z $TORCH_LIB ]]; then
    TORCH_LIB=$("$PYTHON" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) ||
      die "PyTorch not found ($PYTHON -c 'import torch' failed); set LOCKSTEP_TORCH_LIB to a libtorch lib directory"
  fi
  [[ -f $TORCH_LIB/libtorch_cpu.so ]] || die "no libtorch_cpu.so in $TORCH_LIB"
  [[ $DEVICE == cpu || -f $TORCH_LIB/libtorch_cuda.so ]] || die "no libtorch_cuda.so in $TORCH_LIB: this libtorch has no CUDA"
  local library_path=$TORCH_LIB
  if LIBSTDCXX=$(find_libstdcxx); then
    # A Python environment's newer libstdc++ goes first; the system's needs nothing.
    [[ $LIBSTDCXX == /usr/* || $LIBSTDCXX == /lib* ]] || library_path=$(dirname "$LIBSTDCXX"):$library_path
  else
    LIBSTDCXX=
  fi
  # TorchSharp loads libtorch_cuda and its glue by name through the dynamic loader: LD_LIBRARY_PATH is how it finds
  # this libtorch (it has no variable of its own); the glue itself lies next to the apps.
  export LD_LIBRARY_PATH=$library_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

  local dotnet_ok=1 stage
  for stage in "${stages[@]}"; do
    case $stage in
      env) stage_env ;;
      ldd)
        if [[ -z $LIBSTDCXX ]]; then
          record "ldd: BLOCKED: no libstdc++ with GLIBCXX_3.4.32 (GCC 13+) here or in the Python environment; TorchSharp's glue needs it"
        fi
        stage_ldd || dotnet_ok=0 ;;
      tests | compare | tf32 | cudnn)
        if ((dotnet_ok)); then "stage_$stage"; else record "$stage: skipped (TorchSharp's glue cannot load, see ldd)"; fi ;;
      anchor) stage_anchor ;;
      *) die "unknown stage '$stage' (env ldd tests compare tf32 anchor cudnn)" ;;
    esac
    archive
  done
  ((dotnet_ok)) || STATUS=1
  echo "gpu-check: results in $OUTDIR (summary.txt)" >&2
  return "$STATUS"
}

case ${1:-} in
  pack) shift; cmd_pack "$@" ;;
  run) shift; cmd_run "$@" ;;
  -h | --help | help) usage 0 ;;
  *) usage 2 ;;
esac

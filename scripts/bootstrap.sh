#!/usr/bin/env bash
# Installs what is missing (Debian packages), configures and builds dmem; optionally runs the tests.
#
#   scripts/bootstrap.sh            install + build (build/, binary at build/bin/dmem)
#   scripts/bootstrap.sh --test     install + build + all tests (ctest), install + consumer test,
#                                   an ASan/UBSan build of the tests, short fuzz runs of the parsers,
#                                   and builds that cover the other build types and clang (GCC Release
#                                   + Debian package, clang MinSizeRel + unit suite)
#
# Environment: DMEM_BUILD_DIR (default build), DMEM_CUDA (AUTO|ON|OFF, default AUTO),
# DMEM_CUDA_ARCHS (default: every architecture from sm_75 to sm_120 plus PTX),
# DMEM_FUZZ_SECONDS (default 20 per parser), DMEM_SKIP_SANITIZE=1 to skip the sanitizer build,
# DMEM_SKIP_MATRIX=1 to skip the GCC Release and clang MinSizeRel builds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DMEM_BUILD_DIR:-$here/build}"
mode="${1:-build}"
case "$mode" in build | --build) mode=build ;; --test | test) mode=test ;;
  -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "bootstrap: unknown argument '$mode' (use --test or nothing)" >&2; exit 2 ;;
esac

# ---- packages ----------------------------------------------------------------------------------
pkgs=(build-essential cmake ninja-build ccache pkg-config libboost-dev libboost-program-options-dev
  libspdlog-dev libfmt-dev catch2 nlohmann-json3-dev libopenblas-dev)
# librsvg2-bin: the plan chart test renders the SVG to PNG with rsvg-convert; python3: the emitted
# diffusers scripts are compiled (py_compile).
if [ "$mode" = test ]; then pkgs+=(clang libclang-rt-dev clang-format librsvg2-bin python3); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: not a Debian system; install the equivalents of: ${missing[*]}" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "bootstrap: missing packages: ${missing[*]}" >&2
      echo "run as root: apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi
  echo "bootstrap: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- configure + build -------------------------------------------------------------------------
jobs="$(nproc 2>/dev/null || echo 2)"
# The default CUDA architecture list (CMakeLists) is what users get, so CI builds it too.
archs="${DMEM_CUDA_ARCHS:-}"
cuda_args=(-DDMEM_WITH_CUDA="${DMEM_CUDA:-AUTO}")
[ -n "$archs" ] && cuda_args+=(-DCMAKE_CUDA_ARCHITECTURES="$archs")
# Warnings are errors for development and CI; a plain build (a user, a packager) keeps them warnings.
werror=OFF
[ "$mode" = test ] && werror=ON
export CCACHE_NOHASHDIR=1 CCACHE_BASEDIR="$here"

# Each stage's wall time goes into the closing summary (CI keeps the whole run well inside its limit).
timings=()
stage_start=$SECONDS
stage_done() { timings+=("$1 $((SECONDS - stage_start)) s"); stage_start=$SECONDS; }

cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDMEM_WERROR="$werror" \
  "${cuda_args[@]}" >/dev/null
cmake --build "$build" -j "$jobs"
stage_done "build (gcc RelWithDebInfo, CUDA ${DMEM_CUDA:-AUTO}, default archs)"

[ "$mode" = test ] || exit 0

# ---- tests -------------------------------------------------------------------------------------
# Style first: every C++ source is clang-formatted (.clang-format).
(cd "$here" && git ls-files '*.cpp' '*.hpp' '*.h' '*.cu' 2>/dev/null | xargs -r clang-format --dry-run --Werror) ||
  { echo "bootstrap: run clang-format -i on the files above" >&2; exit 1; }

ctest_log="$(mktemp)"
(cd "$build" && ctest --output-on-failure -j "$jobs") 2>&1 | tee "$ctest_log"
summary="$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$ctest_log" | tail -n 1)"
skipped="$(grep -cE '\*\*\*Skipped|Not Run|  Skipped' "$ctest_log" || true)"
rm -f "$ctest_log"
stage_done "ctest"

# Install into a fresh prefix and build an out-of-tree consumer against it: CMake package and
# pkg-config, shared and static.
"$here/tests/consumer/run.sh" "$build" "$build-consumer"
stage_done "install + consumer (4 builds)"

if [ "${DMEM_SKIP_SANITIZE:-0}" != 1 ]; then
  # Sanitizers: the whole unit suite again under ASan + UBSan (CPU only, no CUDA, no bench),
  # less the planner's [property] grids and [slow] seed checks (every plan of the catalog x 24
  # machines, or of one large model validated one by one: minutes when instrumented, and no
  # memory path the other tests miss; ctest above runs them).
  san="$build-asan"
  cmake -S "$here" -B "$san" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDMEM_WITH_CUDA=OFF -DDMEM_WERROR=ON \
    -DDMEM_SANITIZE=address,undefined -DDMEM_BUILD_BENCH=OFF -DDMEM_BUILD_SAMPLES=OFF >/dev/null
  cmake --build "$san" -j "$jobs" --target dmem_tests
  (cd "$san" && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    ./tests/dmem_tests "~[cuda]~[property]~[slow]" --order rand --rng-seed 7)
  stage_done "ASan/UBSan (gcc Debug, CPU) + unit suite"
fi

if [ "${DMEM_SKIP_SANITIZE:-0}" != 1 ]; then
  # ThreadSanitizer: the tests where threads meet (acquire/release from several threads, the
  # prefetch worker, the loader's I/O threads, the trace recorder), CPU only, no command.
  tsan="$build-tsan"
  cmake -S "$here" -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDMEM_WITH_CUDA=OFF \
    -DDMEM_WERROR=ON -DDMEM_SANITIZE=thread -DDMEM_BUILD_BENCH=OFF -DDMEM_BUILD_SAMPLES=OFF \
    -DDMEM_BUILD_CLI=OFF >/dev/null
  cmake --build "$tsan" -j "$jobs" --target dmem_tests
  (cd "$tsan" && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ./tests/dmem_tests "[threads]")
  stage_done "TSan (gcc RelWithDebInfo, CPU) + [threads] tests"
fi

if command -v clang++ >/dev/null 2>&1 && [ -f "$here/tests/fuzz/CMakeLists.txt" ]; then
  fz="$build-fuzz"
  CC=clang CXX=clang++ cmake -S "$here" -B "$fz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDMEM_WITH_CUDA=OFF -DDMEM_WERROR=ON -DDMEM_BUILD_FUZZ=ON -DDMEM_BUILD_TESTS=OFF -DDMEM_BUILD_BENCH=OFF \
    -DDMEM_BUILD_SAMPLES=OFF -DDMEM_BUILD_CLI=OFF >/dev/null
  targets=()
  for src in "$here"/tests/fuzz/fuzz_*.cpp; do targets+=(--target "$(basename "$src" .cpp)"); done
  cmake --build "$fz" -j "$jobs" "${targets[@]}"
  secs="${DMEM_FUZZ_SECONDS:-20}"
  for f in "$fz"/tests/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name="$(basename "$f")"
    corpus="$here/tests/fuzz/corpus/${name#fuzz_}"
    work="$(mktemp -d)"
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    echo "fuzz: $name for ${secs}s"
    "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 "$work" 2>&1 | tail -n 12
    rm -rf "$work"
  done
  stage_done "fuzz (clang RelWithDebInfo, CPU)"
fi

# Builds that cover the other build types and compilers, with warnings as errors and with CUDA
# where the toolkit is present (nvcc then uses that compiler as host compiler): GCC Release is
# compiled and packaged, clang MinSizeRel compiled with the plugins linked statically
# (DMEM_STATIC_PLUGINS, for hosts that cannot dlopen) and its unit suite run.
if [ "${DMEM_SKIP_MATRIX:-0}" != 1 ]; then
  cmake -S "$here" -B "$build-gcc-release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDMEM_WERROR=ON \
    "${cuda_args[@]}" >/dev/null
  cmake --build "$build-gcc-release" -j "$jobs"
  stage_done "build: gcc Release, CUDA ${DMEM_CUDA:-AUTO}"
  # The Release build also makes the Debian package, which must pass the same consumer test.
  "$here/tests/consumer/run.sh" "$build-gcc-release" "$build-consumer-deb" --deb
  stage_done "cpack DEB + consumer (4 builds)"
  if command -v clang++ >/dev/null 2>&1; then
    CC=clang CXX=clang++ cmake -S "$here" -B "$build-clang-minsizerel" -G Ninja \
      -DCMAKE_BUILD_TYPE=MinSizeRel -DDMEM_WERROR=ON -DCMAKE_CUDA_HOST_COMPILER=clang++ \
      -DDMEM_STATIC_PLUGINS=ON \
      "${cuda_args[@]}" >/dev/null
    cmake --build "$build-clang-minsizerel" -j "$jobs"
    # The unit suite once more as clang optimises it (seconds; it has caught a clang-only bug).
    (cd "$build-clang-minsizerel" && ./tests/dmem_tests "~[cuda]~[property]~[slow]" --order rand --rng-seed 11 >/dev/null)
    stage_done "build: clang MinSizeRel, static plugins, CUDA ${DMEM_CUDA:-AUTO}; unit suite"
  fi
fi
for t in "${timings[@]}"; do echo "stage: $t"; done
total="$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$summary")"
failed="$(sed -E 's/.*, ([0-9]+) tests failed.*/\1/' <<<"$summary")"
echo "tests: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"

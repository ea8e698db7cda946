#!/usr/bin/env bash
# Installs a configured dmem build into a fresh prefix and builds tests/consumer against it four
# ways: CMake package (shared, static) and pkg-config (dmem.pc shared, dmem-static.pc static).
# Each program must run and print the catalog size of Qwen-Image. Then builds the sample plugin
# samples/custom_quantizer against the prefix, and the installed `dmem` must list it and plan
# with it.
#
#   tests/consumer/run.sh BUILD_DIR [WORK_DIR] [--deb]
#
# With --deb the prefix is not `cmake --install` but the Debian package that `cpack -G DEB` makes
# from BUILD_DIR, unpacked (dpkg -x) into WORK_DIR/deb-root.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:?usage: run.sh BUILD_DIR [WORK_DIR] [--deb]}"
work="${2:-$(mktemp -d)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
rm -rf "$work"/prefix "$work"/deb-root "$work"/cmake-* "$work"/pc-*
if [ "${3:-}" = --deb ]; then
  (cd "$build" && cpack -G DEB -B "$work/deb" >/dev/null)
  deb="$(ls "$work"/deb/*.deb | head -n 1)"
  dpkg-deb --info "$deb" | grep -E '^ (Package|Version|Depends|Recommends):'
  # The package's dependencies are satisfied here (checked without installing anything).
  if [ "$(id -u)" = 0 ]; then dpkg --dry-run -i "$deb" >/dev/null; fi
  dpkg -x "$deb" "$work/deb-root"
  prefix="$work/deb-root/usr"
else
  prefix="$work/prefix"
  cmake --install "$build" --prefix "$prefix" >/dev/null
fi

# Installed public headers include only the standard library and each other (the plugin ABI,
# a C header, only <stddef.h> and <stdint.h>), and each compiles on its own with nothing but the
# prefix on the include path.
headers=("$prefix"/include/dmem/*.hpp "$prefix"/include/dmem/plugin/*.h "$prefix"/include/dmem/plugin/*.hpp)
[ -f "$prefix/include/dmem/plugin/abi.h" ] || { echo "consumer: plugin/abi.h not installed" >&2; exit 1; }
bad="$(grep -hE '^[[:space:]]*#[[:space:]]*include' "${headers[@]}" |
  grep -vE '#[[:space:]]*include[[:space:]]*(<[a-z_]+>|<std(def|int)\.h>|[<"]dmem/[a-z_/]+\.hp?p?[>"])' || true)"
if [ -n "$bad" ]; then
  echo "consumer: installed headers include more than the standard library:" >&2
  echo "$bad" >&2
  exit 1
fi
for h in "${headers[@]}"; do
  rel="${h#"$prefix"/include/}"
  echo "#include <$rel>" |
    c++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I "$prefix/include" -x c++ -
done
echo '#include <dmem/plugin/abi.h>' |
  cc -std=c99 -pedantic -fsyntax-only -Wall -Wextra -Werror -I "$prefix/include" -x c -

# The shared library: versioned SONAME, and no CUDA runtime symbol exported (a host may link its own).
so="$(find "$prefix" -name 'libdmem.so.*.*.*' | head -n 1)"
soname="$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
case "$soname" in libdmem.so.[0-9]*) ;; *) echo "consumer: $so has SONAME '$soname'" >&2; exit 1 ;; esac
if nm -D --defined-only "$so" | grep -E ' [TtWw] (cuda|__cuda)' >/dev/null; then
  echo "consumer: $so exports CUDA runtime symbols" >&2
  exit 1
fi

check() {  # check NAME BINARY: run it and expect the catalog line
  local out
  out="$("$2")"
  echo "consumer $1: $out"
  grep -q "qwen-image, 3 components" <<<"$out"
}

for kind in shared static; do
  static=OFF
  [ "$kind" = static ] && static=ON
  cmake -S "$here" -B "$work/cmake-$kind" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
    -DDMEM_CONSUMER_STATIC="$static" >/dev/null
  cmake --build "$work/cmake-$kind" >/dev/null
  check "find_package $kind" "$work/cmake-$kind/consumer"
done

# The out-of-tree sample plugin (samples/custom_quantizer), built as a plugin author builds it:
# find_package(dmem) and dmem_add_plugin() against the prefix. Exactly the two entry symbols,
# no libdmem; the installed `dmem` finds it through DMEM_PLUGIN_PATH, lists it and plans with it.
cmake -S "$here/../../samples/custom_quantizer" -B "$work/cmake-plugin" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake-plugin" >/dev/null
plugin="$work/cmake-plugin/dmem_plugin_int4_g32.so"
exported="$(nm -D --defined-only "$plugin" | awk '{print $3}' | sort | tr '\n' ' ')"
if [ "$exported" != "dmem_plugin_entry dmem_plugin_probe " ]; then
  echo "consumer: $plugin exports '$exported', not just the two entry symbols" >&2
  exit 1
fi
if ldd "$plugin" | grep -q libdmem; then
  echo "consumer: $plugin links libdmem; a plugin needs only the headers" >&2
  exit 1
fi
sample_id=example.quantizer.int4_g32
listed="$(DMEM_PLUGIN_PATH="$work/cmake-plugin" "$prefix/bin/dmem" plugins --json)"
if ! grep -q "\"$sample_id\"" <<<"$listed"; then
  echo "consumer: dmem plugins does not list $sample_id from DMEM_PLUGIN_PATH:" >&2
  echo "$listed" >&2
  exit 1
fi
# A CPU-only machine: the sample's CPU kernels fit, so some plan stores the denoiser with it.
plans="$(DMEM_PLUGIN_PATH="$work/cmake-plugin" "$prefix/bin/dmem" plan flux1-schnell --no-probe \
  --gpu none --ram 64GiB --disk 500GiB --json)"
if ! grep -Eq "\"quantizer\": *\"$sample_id\"" <<<"$plans"; then
  echo "consumer: no plan of dmem plan uses $sample_id" >&2
  exit 1
fi
echo "consumer plugin: samples/custom_quantizer made $(basename "$plugin") exporting $exported; dmem plugins lists it and dmem plan uses it"

export PKG_CONFIG_PATH="$(dirname "$(find "$prefix" -name dmem.pc | head -n 1)")"
libdir="$(pkg-config --variable=libdir dmem)"
mkdir -p "$work/pc-shared" "$work/pc-static"
# shellcheck disable=SC2046  # pkg-config output is a list of flags
c++ -std=c++20 "$here/main.cpp" -o "$work/pc-shared/consumer" $(pkg-config --cflags --libs dmem) \
  -Wl,-rpath,"$libdir"
check "pkg-config shared" "$work/pc-shared/consumer"
# shellcheck disable=SC2046
c++ -std=c++20 "$here/main.cpp" -o "$work/pc-static/consumer" $(pkg-config --cflags --libs dmem-static)
check "pkg-config static" "$work/pc-static/consumer"
if ldd "$work/pc-static/consumer" | grep -q libdmem; then
  echo "consumer: the static build still loads libdmem.so" >&2
  exit 1
fi
echo "consumer: 4 of 4 builds passed (prefix $prefix)"

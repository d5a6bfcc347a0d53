#!/usr/bin/env bash
# `make test-dist`: installs each artefact of dist/ into a fresh, empty environment outside the
# work tree and runs a smoke test against the installed copy, as a user of a machine with nothing
# else from this repository would:
#  1. the wheel into a new venv (pip --no-index: nothing but the wheel), then `import hark`
#     there; its tag is manylinux2014 and auditwheel agrees; its native module has no debug info;
#  2. the sdist into another venv (pip builds it from source, fetching maturin as a user's pip does);
#  3. the npm tarball into a new npm project, then `require('hark-notify')` there; the prebuilt
#     addon is inside and has no debug info;
#  4. the C tarball unpacked to a temporary prefix: a C program compiled with
#     `pkg-config --cflags --libs hark` (shared, then static), its soname links, the `hark`
#     command and its man page (`man --warnings -l` renders it without a warning, and it names
#     every command and option that `--help` lists);
#  5. each package carries the licence files (identical to the repository's) and its README;
#  6. `make install DESTDIR=… PREFIX=/usr` stages the command, its man page and the C library.
# Ends with "dist: N passed, M failed" and exits non-zero if anything failed.
#
# Environment: ROOT (the repository), DIST (the folder of artefacts), VERSION, PYTHON, NPM, CC, MAKE.
set -euo pipefail

root=${ROOT:?ROOT must name the repository}
dist=$(realpath "${DIST:?DIST must name the folder of artefacts}")
version=${VERSION:?}
python=${PYTHON:-python3}
npm=${NPM:-npm}
cc=${CC:-cc}
make=${MAKE:-make}
here=$root/tests/dist

# Outside the work tree, and with nothing of it on the search paths.
scratch=$(mktemp -d /tmp/hark-dist-test.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
case "$scratch/" in "$root"/*) echo "scratch $scratch is inside the work tree" >&2; exit 1 ;; esac
unset PYTHONPATH NODE_PATH LD_LIBRARY_PATH PKG_CONFIG_PATH HARK_DIR VIRTUAL_ENV
cd "$scratch"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() { failed=$((failed + 1)); echo "FAIL $1"; }
# Whether an ELF file has DWARF debug info (a section named .debug_*).
has_debug_info() { readelf -S --wide "$1" | grep -E '\.debug_(info|line|str)' >/dev/null; }
# The files of each artefact, by kind (exactly one each).
one() {
    local matches=("$dist"/$1)
    if [ ${#matches[@]} -ne 1 ] || [ ! -f "${matches[0]}" ]; then
        echo "dist/ must hold exactly one $1, has: ${matches[*]}" >&2
        exit 1
    fi
    echo "${matches[0]}"
}
wheel=$(one "hark_notify-$version-*.whl")
sdist=$(one "hark_notify-$version.tar.gz")
npm_tgz=$(one "hark-notify-$version.tgz")
c_tgz=$(one "hark-$version-linux-*.tar.gz")

# ---- 1. the wheel ------------------------------------------------------------------------------
case "$(basename "$wheel")" in
*-cp310-abi3-*manylinux_2_17_x86_64*.whl)
    ok "the wheel is tagged manylinux2014 (glibc 2.17), abi3 for CPython >= 3.10: $(basename "$wheel")" ;;
*) not_ok "the wheel's tags: $(basename "$wheel") (want cp310-abi3, manylinux_2_17 / manylinux2014)" ;;
esac
if "$root/.venv/bin/auditwheel" show "$wheel" >"$scratch/auditwheel.txt" 2>&1 &&
    grep -E 'manylinux_2_17_x86_64' "$scratch/auditwheel.txt" >/dev/null; then
    ok "auditwheel: the wheel's symbols allow manylinux_2_17"
else
    not_ok "auditwheel show"
    cat "$scratch/auditwheel.txt"
fi
mkdir -p "$scratch/wheel"
(cd "$scratch/wheel" && "$python" -m zipfile -e "$wheel" .)
ext=$(find "$scratch/wheel/hark" -name '_hark*.so' | head -n1)
if [ -n "$ext" ] && ! has_debug_info "$ext"; then
    ok "the wheel's native module has no debug info ($(stat -c %s "$ext") bytes)"
else
    not_ok "the wheel's native module ${ext:-(missing)} has debug info"
fi
meta=$(find "$scratch/wheel" -path '*.dist-info/METADATA')
if grep -Fx 'Name: hark-notify' "$meta" >/dev/null && grep -F 'pip install hark-notify' "$meta" >/dev/null &&
    grep -Fx 'License-Expression: MIT OR Apache-2.0' "$meta" >/dev/null &&
    cmp -s "$root/LICENSE-MIT" "$(find "$scratch/wheel" -path '*.dist-info/*LICENSE-MIT')" &&
    cmp -s "$root/LICENSE-APACHE" "$(find "$scratch/wheel" -path '*.dist-info/*LICENSE-APACHE')"; then
    ok "the wheel's metadata: name hark-notify, the README as description, the licence and its files"
else
    not_ok "the wheel's metadata (name, README, licence files)"
fi
"$python" -m venv "$scratch/venv"
if "$scratch/venv/bin/pip" install --quiet --disable-pip-version-check --no-index "$wheel" &&
    "$scratch/venv/bin/python" "$here/smoke.py" "$scratch/q-wheel" "$scratch/venv"; then
    ok "pip install the wheel in a fresh venv: import hark, LISTEN/NOTIFY with a rollback"
else
    not_ok "the wheel installed in a fresh venv"
fi

# ---- 2. the sdist ------------------------------------------------------------------------------
"$python" -m venv "$scratch/venv-sdist"
if timeout 1200 "$scratch/venv-sdist/bin/pip" install --quiet --disable-pip-version-check "$sdist" \
    >"$scratch/sdist.log" 2>&1 &&
    "$scratch/venv-sdist/bin/python" "$here/smoke.py" "$scratch/q-sdist" "$scratch/venv-sdist"; then
    ok "pip install the sdist (built from source) in a fresh venv: import hark, LISTEN/NOTIFY"
    built=$(find "$scratch/venv-sdist" -name '_hark*.so' | head -n1)
    if [ -n "$built" ] && ! has_debug_info "$built"; then
        ok "the module built from the sdist has no debug info ($(stat -c %s "$built") bytes)"
    else
        not_ok "the module built from the sdist ${built:-(missing)} has debug info"
    fi
else
    not_ok "the sdist installed in a fresh venv"
    tail -n 30 "$scratch/sdist.log"
fi

# ---- 3. the npm tarball ------------------------------------------------------------------------
mkdir -p "$scratch/npm"
tar -xzf "$npm_tgz" -C "$scratch/npm"
addon=$(find "$scratch/npm/package" -name '*.node' | head -n1)
if [ -n "$addon" ] && ! has_debug_info "$addon"; then
    ok "the npm tarball holds the prebuilt addon, without debug info ($(stat -c %s "$addon") bytes)"
else
    not_ok "the npm tarball's addon ${addon:-(missing)} (missing or with debug info)"
fi
if [ "$(node -p "require('$scratch/npm/package/package.json').name")" = hark-notify ] &&
    [ -f "$scratch/npm/package/README.md" ] &&
    cmp -s "$root/LICENSE-MIT" "$scratch/npm/package/LICENSE-MIT" &&
    cmp -s "$root/LICENSE-APACHE" "$scratch/npm/package/LICENSE-APACHE"; then
    ok "the npm tarball: name hark-notify, README.md and the licence files"
else
    not_ok "the npm tarball's name, README or licence files"
fi
mkdir -p "$scratch/app"
if (cd "$scratch/app" && echo '{ "name": "smoke-app", "private": true }' >package.json &&
    "$npm" install --no-audit --no-fund --silent "$npm_tgz" &&
    cp "$here/smoke.js" . && node smoke.js "$scratch/q-node"); then
    ok "npm install the tarball in a fresh project: require('hark-notify'), LISTEN/NOTIFY with a rollback"
else
    not_ok "the npm tarball installed in a fresh project"
fi

# ---- 4. the C tarball --------------------------------------------------------------------------
mkdir -p "$scratch/c"
tar -xzf "$c_tgz" -C "$scratch/c"
prefix=$scratch/c/hark-$version
lib=$prefix/lib
if [ "$(readlink "$lib/libhark.so")" = libhark.so.0 ] &&
    [ "$(readlink "$lib/libhark.so.0")" = "libhark.so.$version" ] && [ -f "$lib/libhark.so.$version" ] &&
    readelf -d "$lib/libhark.so.$version" | grep 'SONAME.*\[libhark\.so\.0\]' >/dev/null &&
    ! has_debug_info "$lib/libhark.so.$version" && ! has_debug_info "$lib/libhark.a"; then
    ok "libhark.so -> libhark.so.0 -> libhark.so.$version (soname libhark.so.0), no debug info ($(stat -c %s "$lib/libhark.so.$version") bytes)"
else
    not_ok "the C tarball's libraries (links, soname or debug info)"
fi
export PKG_CONFIG_PATH=$lib/pkgconfig
read -ra pc_flags <<<"$(pkg-config --cflags --libs hark)"
read -ra pc_static <<<"$(pkg-config --static --libs-only-l hark | sed 's/-lhark //')"
if [ "$(pkg-config --modversion hark)" = "$version" ] &&
    "$cc" -std=c11 -Wall -Wextra -Werror -pedantic "$here/smoke.c" "${pc_flags[@]}" -Wl,-rpath,"$lib" -o smoke-shared &&
    readelf -d smoke-shared | grep 'NEEDED.*\[libhark\.so\.0\]' >/dev/null &&
    ./smoke-shared "$scratch/q-c" >c.out && grep -Fx 'smoke from-c' c.out >/dev/null; then
    ok "cc smoke.c \$(pkg-config --cflags --libs hark) against the unpacked tarball: needs libhark.so.0, runs"
else
    not_ok "the C program against the unpacked tarball (shared)"
fi
if "$cc" -std=c11 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags hark) "$here/smoke.c" "$lib/libhark.a" \
    "${pc_static[@]}" -o smoke-static && ! readelf -d smoke-static | grep 'NEEDED.*libhark' >/dev/null &&
    ./smoke-static "$scratch/q-c-static" >c-static.out && grep -Fx 'smoke from-c' c-static.out >/dev/null; then
    ok "the same program linked statically with libhark.a and hark.pc's Libs.private"
else
    not_ok "the C program against the unpacked tarball (static)"
fi
hark=$prefix/bin/hark
man=$prefix/share/man/man1/hark.1
if [ -x "$hark" ] && ! has_debug_info "$hark" && "$hark" --version | grep -F "hark $version" >/dev/null &&
    "$hark" notify --dir "$scratch/q-cli" smoke from-cli && "$hark" stat "$scratch/q-cli" >/dev/null; then
    ok "the tarball's hark command runs (notify, stat), without debug info ($(stat -c %s "$hark") bytes)"
else
    not_ok "the tarball's hark command"
fi
if MANWIDTH=100 man --warnings -l "$man" >man.txt 2>man.err && [ ! -s man.err ] && grep -E '^ +hark +- PostgreSQL' man.txt >/dev/null; then
    ok "man -l renders the man page without a warning"
else
    not_ok "man -l on the man page"
    cat man.err
fi
# Every command of `hark --help` and every long option of `hark COMMAND --help` is in the man page.
missing=()
commands=$("$hark" --help | awk '/^Commands:/ { on = 1; next } /^$/ { on = 0 } on { print $1 }')
for c in $commands; do
    grep -E "^\.B $c\$" "$man" >/dev/null || missing+=("command $c")
    [ "$c" = help ] && continue
    for o in $("$hark" "$c" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
        grep -F -- "$(sed 's/-/\\-/g' <<<"$o")" "$man" >/dev/null || missing+=("$c $o")
    done
done
if [ -n "$commands" ] && [ ${#missing[@]} -eq 0 ]; then
    ok "the man page names every command and option of --help ($(wc -w <<<"$commands") commands)"
else
    not_ok "the man page lacks: ${missing[*]}"
fi
if cmp -s "$root/LICENSE-MIT" "$prefix/LICENSE-MIT" && cmp -s "$root/LICENSE-APACHE" "$prefix/LICENSE-APACHE"; then
    ok "the C tarball carries the licence files"
else
    not_ok "the C tarball's licence files"
fi

# ---- 5. the sdist's contents --------------------------------------------------------------------
if tar -tzf "$sdist" | grep -E '^hark_notify-[^/]+/(bindings/python/)?LICENSE-MIT$' >/dev/null &&
    tar -tzf "$sdist" | grep -E '^hark_notify-[^/]+/PKG-INFO$' >/dev/null &&
    tar -xzOf "$sdist" "hark_notify-$version/PKG-INFO" | grep -F 'pip install hark-notify' >/dev/null; then
    ok "the sdist carries the licence files and the README as its description"
else
    not_ok "the sdist's licence files or description"
fi

# ---- 6. make install DESTDIR=… ------------------------------------------------------------------
stage=$scratch/stage
if "$make" -s -C "$root" --no-print-directory install DESTDIR="$stage" PREFIX=/usr >install.log 2>&1 &&
    [ -x "$stage/usr/bin/hark" ] && [ -f "$stage/usr/share/man/man1/hark.1" ] &&
    [ -f "$stage/usr/include/hark.h" ] && [ -f "$stage/usr/lib/pkgconfig/hark.pc" ] &&
    [ "$(readlink "$stage/usr/lib/libhark.so")" = libhark.so.0 ] &&
    [ "$(readlink "$stage/usr/lib/libhark.so.0")" = "libhark.so.$version" ] &&
    grep -Fx 'libdir=/usr/lib' "$stage/usr/lib/pkgconfig/hark.pc" >/dev/null &&
    man -l "$stage/usr/share/man/man1/hark.1" >/dev/null 2>&1; then
    ok "make install DESTDIR=… PREFIX=/usr: the command, its man page, the libraries and links, header, hark.pc"
else
    not_ok "make install DESTDIR=… PREFIX=/usr"
    cat install.log
fi

echo "dist: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

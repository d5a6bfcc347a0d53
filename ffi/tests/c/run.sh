#!/usr/bin/env bash
# The C side of the ffi suite (run by `make test-ffi`, after libhark.so, libhark.a, the Rust peer
# and the header check are built):
#  1. compiles the C API test and the C examples with -std=c11 -Wall -Wextra -Werror -pedantic,
#     three ways: against libhark.so, against libhark.a, and against libhark.so under
#     AddressSanitizer + UBSan with leak detection;
#  2. runs the API test, the misuse test (misuse_test.c) and the chat scenario each way;
#  3. runs listeners and notifiers as separate processes against each other: C with C, C with the
#     Rust peer both ways, and two listeners at once; each listener's output must be exactly the
#     committed notifications, in order, from the notifier's PID (never the rolled-back one);
#  4. installs into a temporary prefix with `make install-c` (the C part of `make install`) and
#     builds examples against it with pkg-config, shared and static.
# Ends with "ffi-c: N passed, M failed" and exits non-zero if anything failed.
#
# Environment: ROOT (the repository), HARK_LIBS_PRIVATE (what a static link needs besides
# libhark.a), CC (default cc), MAKE (default make).
set -euo pipefail

root=${ROOT:?ROOT must name the repository}
cc=${CC:-cc}
make=${MAKE:-make}
libdir=$root/target/c/lib
bin=$root/target/c/bin
peer=$root/target/release/examples/peer
read -ra libs_private <<<"${HARK_LIBS_PRIVATE:?}"
strict=(-std=c11 -Wall -Wextra -Werror -pedantic)
cflags=("${strict[@]}" -pthread -I"$root/include")
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

scratch=$(mktemp -d "${TMPDIR:-/tmp}/hark-ffi-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$bin"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() { failed=$((failed + 1)); echo "FAIL $1"; }

# ---- 1. build ----------------------------------------------------------------------------------
# The C examples that use libhark (orders.c uses only SQLite and hark's SQLite extension: the
# SQLite suite builds and runs it).
sources=("$root/ffi/tests/c/api_test.c" "$root/ffi/tests/c/misuse_test.c")
for ex in "$root"/examples/c/*.c; do
    grep -q '#include <hark.h>' "$ex" && sources+=("$ex")
done
for src in "${sources[@]}"; do
    name=$(basename "$src" .c)
    "$cc" "${cflags[@]}" -O1 "$src" -L"$libdir" -lhark -Wl,-rpath,"$libdir" -o "$bin/$name"
    "$cc" "${cflags[@]}" -O1 "$src" "$libdir/libhark.a" "${libs_private[@]}" -o "$bin/$name-static"
    "$cc" "${cflags[@]}" -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer "$src" \
        -L"$libdir" -lhark -Wl,-rpath,"$libdir" -o "$bin/$name-asan"
done
ok "compiled ${#sources[@]} programs, each shared, static and with ASan (-Werror -pedantic)"

# (grep without -q after a pipe: an early exit would make the writer fail under pipefail)
if readelf -d "$bin/listener" | grep 'NEEDED.*\[libhark\.so\.0\]' >/dev/null &&
    readelf -d "$libdir/libhark.so" | grep 'SONAME.*\[libhark\.so\.0\]' >/dev/null &&
    [ "$(readlink "$libdir/libhark.so")" = libhark.so.0 ] &&
    [[ "$(readlink "$libdir/libhark.so.0")" == libhark.so.0.* ]]; then
    ok "the shared build needs libhark.so.0 by its soname (libhark.so -> libhark.so.0 -> libhark.so.0.x.y)"
else
    not_ok "the shared build does not record libhark.so.0 as NEEDED/SONAME, or the links are wrong"
fi
if ! readelf -d "$bin/listener-static" | grep 'NEEDED.*libhark' >/dev/null &&
    nm "$bin/listener-static" | grep ' T hark_notifies$' >/dev/null; then
    ok "the static build carries libhark inside"
else
    not_ok "the static build still depends on libhark.so"
fi

# Every function the header declares is exercised by the API test.
missing=()
while read -r fn; do
    grep -q "\b$fn(" "$root/ffi/tests/c/api_test.c" || grep -q "\b$fn\b" "$root/ffi/tests/c/api_test.c" || missing+=("$fn")
done < <(grep -oE '\bhark_[a-z_]+\(' "$root/include/hark.h" | tr -d '(' | sort -u)
if [ ${#missing[@]} -eq 0 ]; then ok "api_test.c calls every function of hark.h"; else not_ok "api_test.c never calls: ${missing[*]}"; fi

# ---- 2. the API test and the chat scenario, each way ---------------------------------------------
for variant in "" -static -asan; do
    dir=$scratch/api$variant
    mkdir -p "$dir"
    if "$bin/api_test$variant" "$dir" >"$dir.out" 2>&1 && grep -q ' 0 failed$' "$dir.out"; then
        ok "api_test$variant: $(tail -n1 "$dir.out")"
    else
        not_ok "api_test$variant"
        cat "$dir.out"
    fi

    dir=$scratch/misuse$variant
    mkdir -p "$dir"
    if "$bin/misuse_test$variant" "$dir" >"$dir.out" 2>&1 && grep -q ' 0 failed$' "$dir.out"; then
        ok "misuse_test$variant: $(tail -n1 "$dir.out")"
    else
        not_ok "misuse_test$variant"
        cat "$dir.out"
    fi

    dir=$scratch/chat$variant
    if "$bin/chat$variant" "$dir" >"$dir.out" 2>"$dir.err" &&
        sed -E 's/PID [0-9]+\./PID <pid>./' "$dir.out" | diff -u "$root/examples/c/chat.expected" - >"$dir.diff"; then
        ok "chat$variant: the seed scenario's transcript"
    else
        not_ok "chat$variant"
        cat "$dir.err" "$dir.diff"
    fi
done

# ---- 3. separate processes ---------------------------------------------------------------------
# wait_ready FILE PID: until FILE has "READY <pid>" (the LISTEN committed) or the process ended.
wait_ready() {
    for _ in $(seq 200); do
        grep -q '^READY ' "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# exchange NAME COUNT PER_TXN NOTIFIER LISTENER... : the listeners (commands taking DIR CHANNEL
# COUNT) LISTEN, then the notifier (a command taking DIR CHANNEL PREFIX COUNT PER_TXN) sends COUNT
# notifications; every listener must print exactly them, in order, with the notifier's PID.
exchange() {
    local name=$1 count=$2 per_txn=$3 notifier=$4
    shift 4
    local dir=$scratch/$name pids=() outs=() i=0 good=1
    mkdir -p "$dir"
    for listener in "$@"; do
        i=$((i + 1))
        # shellcheck disable=SC2086 # a command with its leading words
        $listener "$dir/q" chan "$count" >"$dir/listener$i.out" 2>"$dir/listener$i.err" &
        pids+=($!)
        outs+=("$dir/listener$i")
        wait_ready "$dir/listener$i.out" "$!" || { good=0; echo "  listener $i never became ready"; }
    done
    local sent
    # shellcheck disable=SC2086
    if ! sent=$($notifier "$dir/q" chan "msg" "$count" "$per_txn" 2>"$dir/notifier.err"); then
        good=0
        cat "$dir/notifier.err"
    fi
    local npid=${sent##* }
    [ "$sent" = "SENT $count $npid" ] || { good=0; echo "  notifier said: $sent"; }
    for k in $(seq 0 $((count - 1))); do printf 'chan\tmsg-%d\t%s\n' "$k" "$npid"; done >"$dir/expected"
    for j in "${!pids[@]}"; do
        if ! wait "${pids[$j]}"; then
            good=0
            echo "  listener $((j + 1)) failed:"
            cat "${outs[$j]}.err"
        fi
        tail -n +2 "${outs[$j]}.out" | diff -u "$dir/expected" - || good=0
        ! grep -q 'rolled-back' "${outs[$j]}.out" || good=0
    done
    if [ $good = 1 ]; then ok "$name: $count notifications, $per_txn per transaction"; else not_ok "$name"; fi
}

exchange c-listener-from-c-notifier 50 7 "$bin/notifier-static" "$bin/listener"
exchange c-under-asan 20 3 "$bin/notifier-asan" "$bin/listener-asan"
exchange c-listener-from-rust-notifier 30 5 "$peer notify" "$bin/listener-static"
exchange rust-listener-from-c-notifier 30 4 "$bin/notifier" "$peer listen"
exchange two-listeners-c-and-rust 40 10 "$bin/notifier-asan" "$bin/listener-asan" "$peer listen"

# ---- 4. make install-c and pkg-config ------------------------------------------------------------
prefix=$scratch/prefix
if "$make" -s -C "$root" --no-print-directory install-c PREFIX="$prefix" >"$scratch/install.log" 2>&1 &&
    [ -f "$prefix/include/hark.h" ] && [ -f "$prefix/lib/libhark.a" ] &&
    [ "$(readlink "$prefix/lib/libhark.so")" = libhark.so.0 ] &&
    [[ "$(readlink "$prefix/lib/libhark.so.0")" == libhark.so.0.* ]] && [ -f "$prefix/lib/libhark.so.0" ] &&
    [ -f "$prefix/lib/pkgconfig/hark.pc" ]; then
    ok "make install-c PREFIX=… installs the header, both libraries (with the soname links) and hark.pc"
else
    not_ok "make install"
    cat "$scratch/install.log"
fi
if command -v pkg-config >/dev/null; then
    read -ra pc_flags <<<"$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs hark)"
else
    echo "  (pkg-config is not installed: using the flags hark.pc states)"
    pc_flags=(-I"$prefix/include" -L"$prefix/lib" -lhark)
    grep -q '^Libs: -L${libdir} -lhark$' "$prefix/lib/pkgconfig/hark.pc" || pc_flags=()
fi
mkdir -p "$scratch/pc"
if [ ${#pc_flags[@]} -gt 0 ] &&
    "$cc" "${strict[@]}" "$root/examples/c/notifier.c" "${pc_flags[@]}" -o "$scratch/pc/notifier" &&
    "$cc" "${strict[@]}" "$root/examples/c/listener.c" "${pc_flags[@]}" -o "$scratch/pc/listener"; then
    ok "cc example.c \$(pkg-config --cflags --libs hark) builds against the installed copy"
    LD_LIBRARY_PATH=$prefix/lib exchange installed-copy 10 2 "$scratch/pc/notifier" "$scratch/pc/listener"
else
    not_ok "building against the installed copy with pkg-config"
fi
# The static link the README documents: libhark.a plus hark.pc's Libs.private.
if command -v pkg-config >/dev/null; then
    read -ra pc_static <<<"$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --static --libs-only-l hark | sed 's/-lhark //')"
else
    read -ra pc_static <<<"$(sed -n 's/^Libs.private: //p' "$prefix/lib/pkgconfig/hark.pc")"
fi
if "$cc" "${strict[@]}" -I"$prefix/include" "$root/examples/c/chat.c" "$prefix/lib/libhark.a" "${pc_static[@]}" \
    -o "$scratch/pc/chat-static" && "$scratch/pc/chat-static" "$scratch/pc/chat-queue" >/dev/null &&
    ! readelf -d "$scratch/pc/chat-static" | grep libhark >/dev/null; then
    ok "the installed libhark.a links statically with hark.pc's Libs.private"
else
    not_ok "static link against the installed libhark.a"
fi

echo "ffi-c: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

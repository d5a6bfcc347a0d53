#!/usr/bin/env bash
# Writes the expected output of the shell transcripts marked `-- psql: compatible` from a real
# PostgreSQL: each file (and each of its `-- variant NAME: ARGS`) goes through `psql -X ARGS`, and
# standard output and standard error are kept as NAME[.VARIANT].out and .err, with PIDs written
# `PID N` and psql's `psql:` location prefix written `hark:`. The transcript test then requires
# `hark shell` to print exactly that.
#
# Needs a server that psql reaches through the usual PG* variables, for example a throwaway one:
#   initdb -D /tmp/pg -A trust -U postgres && pg_ctl -D /tmp/pg -o '-k /tmp -c listen_addresses=' start
#   PGHOST=/tmp PGUSER=postgres cli/tests/psql-reference.sh
set -euo pipefail
cd "$(dirname "$0")/shell"
normalize() { sed -E -e 's/PID [0-9]+/PID N/g' -e 's/^psql:/hark:/'; }
for sql in *.sql; do
    grep -q '^-- psql: compatible' "$sql" || continue
    name=${sql%.sql}
    variants=$(sed -n 's/^-- variant \([A-Za-z0-9]*\):\(.*\)$/\1|\2/p' "$sql")
    [ -n "$variants" ] || variants="default|"
    while IFS='|' read -r variant args; do
        out=$name; [ "$variant" = default ] || out=$name.$variant
        # shellcheck disable=SC2086
        if [[ " $args " == *" -f "* ]]; then
            psql -X $args </dev/null >"$out.out.tmp" 2>"$out.err.tmp" || true
        else
            psql -X $args <"$sql" >"$out.out.tmp" 2>"$out.err.tmp" || true
        fi
        normalize <"$out.out.tmp" >"$out.out"
        normalize <"$out.err.tmp" >"$out.err"
        rm -f "$out.out.tmp" "$out.err.tmp"
        echo "wrote $out.out, $out.err"
    done <<<"$variants"
done

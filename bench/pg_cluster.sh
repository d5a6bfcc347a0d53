#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the benchmarks: under a temporary directory, on a Unix
# socket only, fsync off, enough connections for the fanout scenario.
#   pg_cluster.sh start DIR   prints the libpq conninfo
#   pg_cluster.sh stop DIR
set -euo pipefail
cmd=$1 dir=$2
bin=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)
[ -n "$bin" ] || { echo "pg_cluster.sh: PostgreSQL 15 is not installed" >&2; exit 3; }
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start -o \
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c listen_addresses='' -c unix_socket_directories=$dir -c max_connections=1100 -c shared_buffers=256MB" >/dev/null
    echo "host=$dir user=postgres dbname=postgres"
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
*) echo "usage: pg_cluster.sh start|stop DIR" >&2; exit 64 ;;
esac

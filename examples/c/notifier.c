/*
 * A notifier that sends inside transactions: nothing is visible to listeners until hark_commit,
 * then all of a transaction's notifications are, in order. It first sends one notification in a
 * transaction that it rolls back, which no listener may ever receive.
 *
 *     notifier DIR CHANNEL PREFIX COUNT [PER_TXN]
 *
 * Sends COUNT notifications with payloads PREFIX-0, PREFIX-1, …, PER_TXN (default 1) per
 * transaction, then prints "SENT <count> <pid>". Exits 1 on any error.
 */
#include <hark.h>

#include <stdio.h>
#include <stdlib.h>

static int check(hark_conn *conn, hark_result r, const char *what) {
    if (r == HARK_OK)
        return 1;
    fprintf(stderr, "notifier: %s failed: %s (%s, SQLSTATE %s)\n", what, hark_error_message(conn),
            hark_result_str(r), hark_error_sqlstate(conn));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: notifier DIR CHANNEL PREFIX COUNT [PER_TXN]\n");
        return 64;
    }
    const char *channel = argv[2], *prefix = argv[3];
    long count = strtol(argv[4], NULL, 10);
    long per_txn = argc == 6 ? strtol(argv[5], NULL, 10) : 1;
    if (per_txn < 1)
        per_txn = 1;

    hark_conn *conn = hark_connect(argv[1]);
    if (hark_status(conn) != HARK_OK) {
        fprintf(stderr, "notifier: cannot open %s: %s\n", argv[1], hark_error_message(conn));
        hark_finish(conn);
        return 1;
    }

    char payload[256];
    int ok = check(conn, hark_begin(conn), "BEGIN");
    snprintf(payload, sizeof payload, "%s-rolled-back", prefix);
    ok = ok && check(conn, hark_notify(conn, channel, payload), "NOTIFY");
    ok = ok && check(conn, hark_rollback(conn), "ROLLBACK");

    long sent = 0;
    while (ok && sent < count) {
        ok = check(conn, hark_begin(conn), "BEGIN");
        for (long i = 0; ok && i < per_txn && sent < count; i++, sent++) {
            snprintf(payload, sizeof payload, "%s-%ld", prefix, sent);
            ok = check(conn, hark_notify(conn, channel, payload), "NOTIFY");
        }
        ok = ok && check(conn, hark_commit(conn), "COMMIT");
    }
    if (ok)
        printf("SENT %ld %d\n", sent, hark_backend_pid(conn));
    hark_finish(conn);
    return ok ? 0 : 1;
}

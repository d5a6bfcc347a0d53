/*
 * The C tarball's smoke test, compiled against the unpacked copy with pkg-config:
 *     smoke DIR
 * Opens DIR, LISTENs, sends one notification in a transaction it rolls back and one in a
 * transaction it commits, and prints what it receives: only the committed one may arrive.
 */
#include <hark.h>

#include <stdio.h>
#include <string.h>

static int check(hark_conn *conn, hark_result r, const char *what) {
    if (r == HARK_OK)
        return 1;
    fprintf(stderr, "smoke: %s failed: %s\n", what, hark_error_message(conn));
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: smoke DIR\n");
        return 64;
    }
    hark_conn *conn = hark_connect(argv[1]);
    if (hark_status(conn) != HARK_OK) {
        fprintf(stderr, "smoke: cannot open %s: %s\n", argv[1], hark_error_message(conn));
        hark_finish(conn);
        return 1;
    }
    int ok = check(conn, hark_listen(conn, "smoke"), "LISTEN") &&
             check(conn, hark_begin(conn), "BEGIN") &&
             check(conn, hark_notify(conn, "smoke", "rolled-back"), "NOTIFY") &&
             check(conn, hark_rollback(conn), "ROLLBACK") &&
             check(conn, hark_begin(conn), "BEGIN") &&
             check(conn, hark_notify(conn, "smoke", "from-c"), "NOTIFY") &&
             check(conn, hark_commit(conn), "COMMIT");
    int received = 0;
    while (ok && hark_wait(conn, received ? 200 : 10000) == 1) {
        if (!hark_consume_input(conn))
            break;
        hark_notification *n;
        while ((n = hark_notifies(conn)) != NULL) {
            printf("%s %s\n", n->relname, n->extra);
            received++;
            hark_freemem(n);
        }
    }
    printf("version %s\n", hark_version());
    hark_finish(conn);
    return ok && received == 1 ? 0 : 1;
}

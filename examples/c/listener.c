/*
 * A listener in the classic libpq shape: LISTEN, then a select() loop on hark_socket,
 * hark_consume_input, and drain hark_notifies, freeing each with hark_freemem.
 *
 *     listener DIR CHANNEL COUNT [TIMEOUT_MS]
 *
 * Prints "READY <pid>" once the LISTEN has committed, then one line per notification,
 * "channel<TAB>payload<TAB>sender pid", and exits 0 after COUNT of them; exits 2 if TIMEOUT_MS
 * (default 30000) pass without one, 1 on any error.
 */
#define _POSIX_C_SOURCE 200809L
#include <hark.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

/* LISTEN "channel": a quoted identifier keeps the name verbatim (a '"' inside is doubled). */
static int listen_sql(hark_conn *conn, const char *channel) {
    size_t len = strlen(channel);
    char *sql = malloc(2 * len + 16);
    if (sql == NULL)
        return 0;
    char *p = sql + sprintf(sql, "LISTEN \"");
    for (const char *c = channel; *c; c++) {
        if (*c == '"')
            *p++ = '"';
        *p++ = *c;
    }
    strcpy(p, "\"");
    hark_query *res = hark_exec(conn, sql);
    free(sql);
    int ok = hark_query_status(res) == HARK_OK;
    if (!ok)
        fprintf(stderr, "listener: LISTEN failed: %s\n", hark_error_message(conn));
    hark_query_clear(res);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: listener DIR CHANNEL COUNT [TIMEOUT_MS]\n");
        return 64;
    }
    long count = strtol(argv[3], NULL, 10);
    long timeout_ms = argc == 5 ? strtol(argv[4], NULL, 10) : 30000;

    hark_conn *conn = hark_connect(argv[1]);
    if (hark_status(conn) != HARK_OK) {
        fprintf(stderr, "listener: cannot open %s: %s\n", argv[1], hark_error_message(conn));
        hark_finish(conn);
        return 1;
    }
    if (!listen_sql(conn, argv[2])) {
        hark_finish(conn);
        return 1;
    }
    printf("READY %d\n", hark_backend_pid(conn));
    fflush(stdout);

    long got = 0;
    int status = 0;
    while (got < count) {
        int sock = hark_socket(conn);
        if (sock < 0) {
            fprintf(stderr, "listener: no socket: %s\n", hark_error_message(conn));
            status = 1;
            break;
        }
        fd_set input;
        FD_ZERO(&input);
        FD_SET(sock, &input);
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        int ready = select(sock + 1, &input, NULL, NULL, &tv);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            perror("listener: select");
            status = 1;
            break;
        }
        if (ready == 0) {
            fprintf(stderr, "listener: timed out after %ld of %ld notifications\n", got, count);
            status = 2;
            break;
        }
        if (!hark_consume_input(conn)) {
            fprintf(stderr, "listener: %s\n", hark_error_message(conn));
            status = 1;
            break;
        }
        hark_notification *n;
        while ((n = hark_notifies(conn)) != NULL) {
            printf("%s\t%s\t%d\n", n->relname, n->extra, n->be_pid);
            hark_freemem(n);
            got++;
            hark_consume_input(conn);
        }
        if (hark_error_message(conn)[0] != '\0') {
            fprintf(stderr, "listener: %s\n", hark_error_message(conn));
            status = 1;
            break;
        }
        fflush(stdout);
    }
    hark_finish(conn);
    return status;
}

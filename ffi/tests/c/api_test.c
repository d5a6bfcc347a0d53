/*
 * A test of every export of include/hark.h, including NULL and bad arguments.
 *
 *     api_test DIR      (DIR: an empty scratch directory; queues are created under it)
 *
 * Prints one line per failed check and ends with "api_test: N passed, M failed"; exits 1 if any
 * check failed.
 */
#define _POSIX_C_SOURCE 200809L
#include "hark.h"

#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char base[4096];

static const char *path(const char *name) {
    static char buf[4096 + 64];
    snprintf(buf, sizeof buf, "%s/%s", base, name);
    return buf;
}

/* A notice processor that keeps the last message and counts calls. */
struct notices {
    int count;
    char last[512];
};

static void keep_notice(void *arg, const char *message) {
    struct notices *n = arg;
    n->count++;
    snprintf(n->last, sizeof n->last, "%s", message);
}

static int readable(int fd, int timeout_ms) {
    fd_set set;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    FD_ZERO(&set);
    FD_SET(fd, &set);
    int r = select(fd + 1, &set, NULL, NULL, &tv);
    return r > 0 && FD_ISSET(fd, &set);
}

/* Takes one notification and checks its three fields. */
static void expect_notification(hark_conn *c, const char *channel, const char *payload, int pid) {
    hark_notification *n = hark_notifies(c);
    CHECK(n != NULL);
    if (n == NULL) {
        fprintf(stderr, "  (expected %s/%s): %s\n", channel, payload, hark_error_message(c));
        return;
    }
    CHECK_STR(n->relname, channel);
    CHECK_STR(n->extra, payload);
    CHECK(n->be_pid == pid);
    hark_freemem(n);
}

static void test_static_strings(void) {
    CHECK(strlen(hark_version()) > 0);
    CHECK_STR(hark_result_str(HARK_OK), "HARK_OK");
    CHECK_STR(hark_result_str(HARK_ERR_INVALID_ARGUMENT), "HARK_ERR_INVALID_ARGUMENT");
    CHECK_STR(hark_result_str(HARK_ERR_QUEUE_FULL), "HARK_ERR_QUEUE_FULL");
    CHECK_STR(hark_result_str(200), "HARK_ERR_QUEUE_FULL");
    CHECK_STR(hark_result_str(HARK_ERR_CLOSED), "HARK_ERR_CLOSED");
    CHECK_STR(hark_result_str(HARK_ERR_NULL_PARAMETER), "HARK_ERR_NULL_PARAMETER");
    CHECK_STR(hark_result_str(HARK_ERR_PANIC), "HARK_ERR_PANIC");
    CHECK_STR(hark_result_str(-1), "HARK_ERR_UNKNOWN");
    CHECK_STR(hark_result_str(999), "HARK_ERR_UNKNOWN");
    /* The numbers are part of the ABI. */
    CHECK(HARK_OK == 0 && HARK_ERR_SYNTAX == 101 && HARK_ERR_TRANSACTION_STATE == 102);
    CHECK(HARK_ERR_TOO_MANY_LISTENERS == 201 && HARK_ERR_DISK_FULL == 202);
    CHECK(HARK_ERR_CORRUPTED == 300 && HARK_ERR_INCOMPATIBLE == 301);
    CHECK(HARK_ERR_PERMISSION_DENIED == 302 && HARK_ERR_IO == 400);
}

/* Every call given a NULL connection or result: an error value, never a crash. */
static void test_null_everywhere(void) {
    double usage = -7.0;
    CHECK_RES(hark_status(NULL), HARK_ERR_NULL_PARAMETER);
    CHECK(strlen(hark_error_message(NULL)) > 0);
    CHECK_STR(hark_error_sqlstate(NULL), "");
    CHECK(hark_socket(NULL) == -1);
    CHECK(hark_backend_pid(NULL) == 0);
    CHECK(hark_transaction_status(NULL) == HARK_TRANS_UNKNOWN);
    CHECK(hark_set_notice_processor(NULL, keep_notice, NULL) == NULL);
    CHECK(hark_exec(NULL, "LISTEN x") == NULL);
    CHECK(hark_consume_input(NULL) == 0);
    CHECK(hark_notifies(NULL) == NULL);
    const char *one[] = {"c"};
    hark_gap no_gap;
    CHECK_RES(hark_subscribe(NULL, "s", one, 1, NULL, NULL), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_ack(NULL, 0), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_detach(NULL), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_unsubscribe(NULL, "s"), HARK_ERR_NULL_PARAMETER);
    CHECK(hark_last_gap(NULL, &no_gap) == 0);
    CHECK(hark_wait(NULL, 0) == -1);
    CHECK_RES(hark_queue_usage(NULL, &usage), HARK_ERR_NULL_PARAMETER);
    CHECK(usage == -7.0);
    CHECK_RES(hark_listen(NULL, "x"), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_unlisten(NULL, "x"), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_notify(NULL, "x", "y"), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_begin(NULL), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_commit(NULL), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_rollback(NULL), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_savepoint(NULL, "s"), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_release(NULL, "s"), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_rollback_to(NULL, "s"), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_query_status(NULL), HARK_ERR_NULL_PARAMETER);
    CHECK_STR(hark_query_sqlstate(NULL), "");
    CHECK_STR(hark_query_error_message(NULL), "");
    CHECK_STR(hark_query_command(NULL), "");
    CHECK(hark_query_ntuples(NULL) == 0);
    CHECK(hark_query_nfields(NULL) == 0);
    CHECK(hark_query_fname(NULL, 0) == NULL);
    CHECK(hark_query_getvalue(NULL, 0, 0) == NULL);
    CHECK(hark_query_getisnull(NULL, 0, 0) == 0);
    /* The frees accept NULL. */
    hark_finish(NULL);
    hark_freemem(NULL);
    hark_query_clear(NULL);
    hark_default_notice_processor(NULL, NULL);
    checks_passed++;
}

/* libpq style: a failed open still returns a connection that carries the error. */
static void test_failed_connect(void) {
    FILE *f = fopen(path("a-file"), "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    hark_conn *c = hark_connect(path("a-file"));
    CHECK(c != NULL);
    CHECK(hark_status(c) != HARK_OK);
    CHECK(strlen(hark_error_message(c)) > 0);
    CHECK(hark_socket(c) == -1);
    CHECK(hark_backend_pid(c) == 0);
    CHECK(hark_transaction_status(c) == HARK_TRANS_UNKNOWN);
    char opened[512];
    snprintf(opened, sizeof opened, "%s", hark_error_message(c));
    CHECK_RES(hark_listen(c, "x"), HARK_ERR_CLOSED);
    CHECK_STR(hark_error_sqlstate(c), "08003");
    CHECK(strncmp(hark_error_message(c), "no connection: ", 15) == 0);
    CHECK(strstr(hark_error_message(c), opened) != NULL); /* the open's own reason is kept */
    CHECK(hark_consume_input(c) == 0);
    CHECK(hark_notifies(c) == NULL);
    CHECK(hark_wait(c, 0) == -1);
    hark_query *q = hark_exec(c, "LISTEN x");
    CHECK(q != NULL);
    CHECK_RES(hark_query_status(q), HARK_ERR_CLOSED);
    hark_query_clear(q);
    hark_finish(c);

    hark_options bad = {0};
    bad.max_payload = 2u << 20; /* over the 1 MiB ceiling */
    c = hark_connect_options(path("bad-options"), &bad);
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(hark_error_message(c), "max_payload") != NULL);
    hark_finish(c);

    hark_options odd = {0};
    odd.segment_size = 100000; /* not a power of two */
    c = hark_connect_options(path("bad-options"), &odd);
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    hark_finish(c);

    c = hark_connect_options(path("null-options"), NULL);
    CHECK_RES(hark_status(c), HARK_OK);
    hark_finish(c);

    /* A private queue directory is 0700 (I10). */
    struct stat st;
    CHECK(stat(path("null-options"), &st) == 0 && (st.st_mode & 0777) == 0700);
}

/* libpq's PQconnectdbParams shape: keyword and value arrays, NULL or empty values ignored. */
static void test_connect_params(void) {
    const char *keys[] = {"dir", "max_payload", "group_shared", "segment_size", NULL};
    const char *vals[] = {path("params"), "100", "off", "", NULL};
    hark_conn *c = hark_connect_params(keys, vals);
    CHECK_RES(hark_status(c), HARK_OK);
    char payload[102];
    memset(payload, 'p', 101);
    payload[101] = '\0';
    CHECK_RES(hark_notify(c, "ch", payload), HARK_ERR_INVALID_ARGUMENT); /* 101 > max_payload */
    /* PostgreSQL's message, then hark's DETAIL (the sizes) and HINT (the option). */
    CHECK(strncmp(hark_error_message(c), "payload string too long\nDETAIL:  ", 33) == 0);
    CHECK(strstr(hark_error_message(c), "max_payload") != NULL);
    payload[100] = '\0';
    CHECK_RES(hark_notify(c, "ch", payload), HARK_OK);
    hark_finish(c);

    const char *unknown[] = {"dir", "dbname", NULL};
    const char *unknown_v[] = {path("params"), "postgres", NULL};
    c = hark_connect_params(unknown, unknown_v);
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    CHECK_STR(hark_error_message(c), "invalid connection option \"dbname\"");
    hark_finish(c);

    const char *bad[] = {"max_queue_size", NULL};
    const char *bad_v[] = {"lots", NULL};
    c = hark_connect_params(bad, bad_v);
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    CHECK_STR(hark_error_message(c), "invalid integer value \"lots\" for connection option \"max_queue_size\"");
    hark_finish(c);

    const char *flag[] = {"dir", "group_shared", NULL};
    const char *flag_v[] = {path("params-flag"), "maybe", NULL};
    c = hark_connect_params(flag, flag_v);
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    hark_finish(c);

    /* Reopening with a different size is refused, as with hark_options. */
    const char *other[] = {"dir", "max_payload", NULL};
    const char *other_v[] = {path("params"), "200", NULL};
    c = hark_connect_params(other, other_v);
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    hark_finish(c);

    const char *no_values[] = {"dir", NULL};
    c = hark_connect_params(no_values, NULL);
    CHECK_RES(hark_status(c), HARK_ERR_NULL_PARAMETER);
    hark_finish(c);
}

/* Each connection has its own backend PID, as each PostgreSQL connection has its own backend:
 * the process's id for its first, another for the second, and a notification carries its
 * sender's, so that skipping your own (be_pid == hark_backend_pid) skips only your own. */
static void test_backend_pids(void) {
    hark_conn *first = hark_connect(path("pids"));
    hark_conn *second = hark_connect(path("pids"));
    int p1 = hark_backend_pid(first), p2 = hark_backend_pid(second);
    CHECK(p1 == (int)getpid());
    CHECK(p2 > 0 && p2 != p1);
    CHECK_RES(hark_listen(first, "pids"), HARK_OK);
    CHECK_RES(hark_notify(second, "pids", "from second"), HARK_OK);
    CHECK_RES(hark_notify(first, "pids", "from first"), HARK_OK);
    CHECK(hark_consume_input(first) == 1);
    expect_notification(first, "pids", "from second", p2);
    expect_notification(first, "pids", "from first", p1);
    char want[32];
    snprintf(want, sizeof want, "%d", p2);
    hark_query *q = hark_exec(second, "SELECT pg_backend_pid()");
    CHECK_STR(hark_query_getvalue(q, 0, 0), want);
    hark_query_clear(q);
    hark_finish(second);
    hark_finish(first);
}

/* A queue is made only where nothing else is; create=off opens only an existing queue; a
 * connection string is not taken for a directory. */
static void test_queue_directories(void) {
    const char *keys[] = {"dir", "create", NULL};
    const char *missing_v[] = {path("not-yet"), "off", NULL};
    hark_conn *c = hark_connect_params(keys, missing_v);
    CHECK_RES(hark_status(c), HARK_ERR_IO);
    CHECK_STR(hark_error_sqlstate(c), "3D000");
    CHECK(strstr(hark_error_message(c), "does not exist") != NULL);
    hark_finish(c);
    struct stat st;
    CHECK(stat(path("not-yet"), &st) != 0); /* nothing was created */
    c = hark_connect(path("not-yet"));
    CHECK_RES(hark_status(c), HARK_OK);
    hark_finish(c);
    c = hark_connect_params(keys, missing_v); /* now it exists */
    CHECK_RES(hark_status(c), HARK_OK);
    hark_finish(c);

    CHECK(mkdir(path("populated"), 0700) == 0);
    char file[4200];
    snprintf(file, sizeof file, "%s/notes.txt", path("populated"));
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    c = hark_connect(path("populated"));
    CHECK_RES(hark_status(c), HARK_ERR_PERMISSION_DENIED);
    CHECK_STR(hark_error_sqlstate(c), "55000");
    CHECK(strstr(hark_error_message(c), "exists but is not empty") != NULL);
    hark_finish(c);
    char control[4200];
    snprintf(control, sizeof control, "%s/control", path("populated"));
    CHECK(stat(control, &st) != 0); /* nothing was written into it */

    c = hark_connect("dbname=app");
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(hark_error_message(c), "looks like a connection string") != NULL);
    hark_finish(c);
    CHECK(stat("dbname=app", &st) != 0);
    c = hark_connect("postgresql://localhost/app");
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    CHECK(strstr(hark_error_message(c), "looks like a URL") != NULL);
    hark_finish(c);
}

static void test_bad_arguments(hark_conn *c) {
    char long_channel[65];
    memset(long_channel, 'c', 64);
    long_channel[64] = '\0';

    CHECK_RES(hark_listen(c, NULL), HARK_ERR_NULL_PARAMETER);
    CHECK(strstr(hark_error_message(c), "channel") != NULL);
    CHECK_STR(hark_error_sqlstate(c), "22004");
    CHECK_RES(hark_listen(c, ""), HARK_ERR_INVALID_ARGUMENT);
    CHECK_STR(hark_error_message(c), "channel name cannot be empty");
    CHECK_STR(hark_error_sqlstate(c), "22023");
    CHECK_RES(hark_listen(c, long_channel), HARK_ERR_INVALID_ARGUMENT);
    CHECK_STR(hark_error_message(c), "channel name too long");
    CHECK_RES(hark_listen(c, "bad\xff"), HARK_ERR_INVALID_ARGUMENT);
    CHECK_STR(hark_error_sqlstate(c), "22021");
    CHECK_RES(hark_unlisten(c, ""), HARK_ERR_INVALID_ARGUMENT);
    CHECK_RES(hark_notify(c, NULL, "p"), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_notify(c, long_channel, "p"), HARK_ERR_INVALID_ARGUMENT);
    CHECK_RES(hark_notify(c, "ch", "\xc3("), HARK_ERR_INVALID_ARGUMENT);
    CHECK_RES(hark_savepoint(c, "s"), HARK_ERR_TRANSACTION_STATE); /* outside a block */
    CHECK_RES(hark_savepoint(c, NULL), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_release(c, NULL), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_rollback_to(c, NULL), HARK_ERR_NULL_PARAMETER);
    double usage = -7.0;
    CHECK_RES(hark_queue_usage(c, NULL), HARK_ERR_NULL_PARAMETER);
    CHECK_RES(hark_queue_usage(c, &usage), HARK_OK);
    CHECK(usage >= 0.0 && usage <= 1.0);
    /* A successful call clears the last error. */
    CHECK_STR(hark_error_message(c), "");
    CHECK_STR(hark_error_sqlstate(c), "");
    CHECK(hark_transaction_status(c) == HARK_TRANS_IDLE);
}

static void test_self_notify_and_payloads(hark_conn *c) {
    int me = hark_backend_pid(c);
    CHECK(me == (int)getpid());
    CHECK(hark_socket(c) >= 0);
    CHECK(hark_notifies(c) == NULL);
    CHECK_RES(hark_listen(c, "events"), HARK_OK);
    CHECK_RES(hark_notify(c, "events", "p1"), HARK_OK);
    CHECK_RES(hark_notify(c, "events", NULL), HARK_OK);
    CHECK_RES(hark_notify(c, "other", "not listened"), HARK_OK);
    CHECK(hark_consume_input(c) == 1);
    expect_notification(c, "events", "p1", me);
    expect_notification(c, "events", "", me);
    CHECK(hark_notifies(c) == NULL);
    CHECK_RES(hark_unlisten(c, "events"), HARK_OK);
    CHECK_RES(hark_notify(c, "events", "after unlisten"), HARK_OK);
    CHECK(hark_notifies(c) == NULL);
}

static void test_transactions(hark_conn *a, hark_conn *b) {
    int pa = hark_backend_pid(a);
    CHECK_RES(hark_listen(b, "tx"), HARK_OK);

    /* Delivery only at commit; duplicates folded, send order kept. */
    CHECK_RES(hark_begin(a), HARK_OK);
    CHECK(hark_transaction_status(a) == HARK_TRANS_INTRANS);
    CHECK_RES(hark_notify(a, "tx", "first"), HARK_OK);
    CHECK_RES(hark_notify(a, "tx", "first"), HARK_OK);
    CHECK_RES(hark_notify(a, "tx", "second"), HARK_OK);
    CHECK(hark_wait(b, 50) == 0);
    CHECK_RES(hark_commit(a), HARK_OK);
    CHECK(hark_transaction_status(a) == HARK_TRANS_IDLE);
    CHECK(hark_wait(b, 5000) == 1);
    expect_notification(b, "tx", "first", pa);
    expect_notification(b, "tx", "second", pa);
    CHECK(hark_notifies(b) == NULL);

    /* A rolled-back transaction is never seen. */
    CHECK_RES(hark_begin(a), HARK_OK);
    CHECK_RES(hark_notify(a, "tx", "rolled back"), HARK_OK);
    CHECK_RES(hark_rollback(a), HARK_OK);
    CHECK(hark_wait(b, 100) == 0);

    /* Savepoints. */
    CHECK_RES(hark_begin(a), HARK_OK);
    CHECK_RES(hark_notify(a, "tx", "a"), HARK_OK);
    CHECK_RES(hark_savepoint(a, "s"), HARK_OK);
    CHECK_RES(hark_notify(a, "tx", "b"), HARK_OK);
    CHECK_RES(hark_rollback_to(a, "s"), HARK_OK);
    CHECK_RES(hark_notify(a, "tx", "c"), HARK_OK);
    CHECK_RES(hark_release(a, "s"), HARK_OK);
    CHECK_RES(hark_commit(a), HARK_OK);
    CHECK(hark_wait(b, 5000) == 1);
    expect_notification(b, "tx", "a", pa);
    expect_notification(b, "tx", "c", pa);
    CHECK(hark_notifies(b) == NULL);

    /* An error aborts the block; COMMIT then rolls back and says so. */
    CHECK_RES(hark_begin(a), HARK_OK);
    CHECK_RES(hark_notify(a, "tx", "lost"), HARK_OK);
    CHECK_RES(hark_rollback_to(a, "nosuch"), HARK_ERR_TRANSACTION_STATE);
    CHECK(hark_transaction_status(a) == HARK_TRANS_INERROR);
    CHECK_RES(hark_notify(a, "tx", "ignored"), HARK_ERR_TRANSACTION_STATE);
    CHECK_STR(hark_error_sqlstate(a), "25P02");
    CHECK_RES(hark_commit(a), HARK_ERR_TRANSACTION_STATE);
    CHECK(hark_transaction_status(a) == HARK_TRANS_IDLE);
    CHECK(hark_wait(b, 100) == 0);
    CHECK_RES(hark_release(a, "s"), HARK_ERR_TRANSACTION_STATE);

    /* The classic loop: select() on the socket, consume, drain; then the socket is quiet. */
    CHECK_RES(hark_notify(a, "tx", "polled"), HARK_OK);
    CHECK(readable(hark_socket(b), 5000));
    CHECK(hark_consume_input(b) == 1);
    expect_notification(b, "tx", "polled", pa);
    CHECK(hark_notifies(b) == NULL);
    CHECK(!readable(hark_socket(b), 0));

    /* A negative timeout waits for as long as it takes. */
    CHECK_RES(hark_notify(a, "tx", "forever"), HARK_OK);
    CHECK(hark_wait(b, -1) == 1);
    /* A notification outlives its connection. */
    hark_notification *n = hark_notifies(b);
    CHECK(n != NULL);
    CHECK_RES(hark_unlisten(b, NULL), HARK_OK);
    CHECK_RES(hark_notify(a, "tx", "after unlisten *"), HARK_OK);
    CHECK(hark_wait(b, 100) == 0);
    hark_finish(b);
    if (n) {
        CHECK_STR(n->extra, "forever");
        hark_freemem(n);
    }
}

static void test_notices(hark_conn *c) {
    struct notices got = {0, ""};
    hark_notice_processor prev = hark_set_notice_processor(c, keep_notice, &got);
    CHECK(prev == hark_default_notice_processor);
    CHECK(hark_set_notice_processor(c, NULL, NULL) == keep_notice); /* NULL: only asks */
    CHECK_RES(hark_commit(c), HARK_OK);                             /* outside a block: warns */
    CHECK(got.count == 1);
    CHECK_STR(got.last, "WARNING:  there is no transaction in progress\n");
    CHECK_RES(hark_begin(c), HARK_OK);
    CHECK_RES(hark_begin(c), HARK_OK);
    CHECK(got.count == 2);
    CHECK_STR(got.last, "WARNING:  there is already a transaction in progress\n");
    CHECK_RES(hark_rollback(c), HARK_OK);
    /* Notices from the SQL dialect too: an identifier over 63 bytes is truncated. */
    hark_query *q = hark_exec(c, "LISTEN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    CHECK_RES(hark_query_status(q), HARK_OK);
    hark_query_clear(q);
    CHECK(got.count == 3);
    CHECK(strncmp(got.last, "NOTICE:  ", 9) == 0 && strstr(got.last, "truncated") != NULL);
    CHECK(hark_set_notice_processor(c, prev, NULL) == keep_notice);
    CHECK_RES(hark_unlisten(c, NULL), HARK_OK);
}

static void test_exec(hark_conn *c) {
    hark_query *q = hark_exec(c, "LISTEN Virtual; NOTIFY virtual, 'This is the payload'");
    CHECK_RES(hark_query_status(q), HARK_OK);
    CHECK_STR(hark_query_sqlstate(q), "00000");
    CHECK_STR(hark_query_error_message(q), "");
    CHECK_STR(hark_query_command(q), "NOTIFY");
    CHECK(hark_query_ntuples(q) == 0 && hark_query_nfields(q) == 0);
    hark_query_clear(q);
    expect_notification(c, "virtual", "This is the payload", hark_backend_pid(c));

    q = hark_exec(c, "SELECT pg_notify('fo' || 'o', 'pay'), pg_listening_channels(), NULL::text AS n");
    CHECK_RES(hark_query_status(q), HARK_OK);
    CHECK_STR(hark_query_command(q), "SELECT 1");
    CHECK(hark_query_nfields(q) == 3);
    CHECK(hark_query_ntuples(q) == 1);
    CHECK_STR(hark_query_fname(q, 0), "pg_notify");
    CHECK_STR(hark_query_fname(q, 1), "pg_listening_channels");
    CHECK_STR(hark_query_fname(q, 2), "n");
    CHECK(hark_query_fname(q, 3) == NULL && hark_query_fname(q, -1) == NULL);
    CHECK_STR(hark_query_getvalue(q, 0, 0), "");
    CHECK(hark_query_getisnull(q, 0, 0) == 0);
    CHECK_STR(hark_query_getvalue(q, 0, 1), "virtual");
    CHECK_STR(hark_query_getvalue(q, 0, 2), "");
    CHECK(hark_query_getisnull(q, 0, 2) == 1);
    CHECK(hark_query_getvalue(q, 1, 0) == NULL && hark_query_getvalue(q, 0, 3) == NULL);
    CHECK(hark_query_getvalue(q, -1, 0) == NULL && hark_query_getvalue(q, 0, -1) == NULL);
    CHECK(hark_query_getisnull(q, 5, 5) == 0);
    hark_query_clear(q);

    q = hark_exec(c, "SELECT pg_backend_pid()");
    char pid[32];
    snprintf(pid, sizeof pid, "%d", hark_backend_pid(c));
    CHECK_STR(hark_query_getvalue(q, 0, 0), pid);
    hark_query_clear(q);

    q = hark_exec(c, "LISTEN");
    CHECK_RES(hark_query_status(q), HARK_ERR_SYNTAX);
    CHECK_STR(hark_query_sqlstate(q), "42601");
    CHECK(strlen(hark_query_error_message(q)) > 0);
    CHECK_STR(hark_error_message(c), hark_query_error_message(q));
    CHECK_STR(hark_query_command(q), "");
    hark_query_clear(q);

    q = hark_exec(c, NULL);
    CHECK(q != NULL);
    CHECK_RES(hark_query_status(q), HARK_ERR_NULL_PARAMETER);
    hark_query_clear(q);

    q = hark_exec(c, "");
    CHECK_RES(hark_query_status(q), HARK_OK);
    CHECK_STR(hark_query_command(q), "");
    hark_query_clear(q);

    q = hark_exec(c, "NOTIFY virtual, '\xff'");
    CHECK_RES(hark_query_status(q), HARK_ERR_INVALID_ARGUMENT);
    hark_query_clear(q);

    /* A query result outlives its connection. */
    hark_conn *other = hark_connect(path("queue"));
    q = hark_exec(other, "SELECT 'kept'");
    hark_finish(other);
    CHECK_STR(hark_query_getvalue(q, 0, 0), "kept");
    hark_query_clear(q);

    q = hark_exec(c, "UNLISTEN *");
    CHECK_STR(hark_query_command(q), "UNLISTEN");
    hark_query_clear(q);
}

/* Values that would end a literal, a comment or the statement if they were pasted into SQL. */
static const char *const hostile[] = {
    "'", "''", "it's", "\\", "\\'", "E'x'", "e'\\''", "$$", "$$; NOTIFY evil, 'x'; $$", "$tag$",
    "$1", "--", "-- NOTIFY evil", "/*", "*/", ";", "'); NOTIFY evil, 'pwned'; --", "\\x00", "",
};
#define N_HOSTILE (sizeof hostile / sizeof hostile[0])

static void test_exec_params(hark_conn *c) {
    int me = hark_backend_pid(c);
    hark_query_clear(hark_exec(c, "LISTEN events; LISTEN evil"));
    for (size_t i = 0; i < N_HOSTILE; i++) {
        const char *values[] = {"events", hostile[i]};
        hark_query *q = hark_exec_params(c, "SELECT pg_notify($1, $2), $2 AS v", 2, NULL, values, NULL, NULL, 0);
        CHECK_RES(hark_query_status(q), HARK_OK);
        CHECK_STR(hark_query_getvalue(q, 0, 1), hostile[i]);
        hark_query_clear(q);
    }
    for (size_t i = 0; i < N_HOSTILE; i++)
        expect_notification(c, "events", hostile[i], me);
    CHECK(hark_notifies(c) == NULL); /* nothing on "evil" */

    /* NULL values, explicit zero types and formats, a cast. */
    const char *values[] = {"42", NULL};
    const unsigned int types[] = {0, 0};
    const int formats[] = {0, 0}, lengths[] = {-1, 99};
    hark_query *q = hark_exec_params(c, "SELECT $1::int AS i, $2 AS n", 2, types, values, lengths, formats, 0);
    CHECK_RES(hark_query_status(q), HARK_OK);
    CHECK_STR(hark_query_getvalue(q, 0, 0), "42");
    CHECK(hark_query_getisnull(q, 0, 1) == 1);
    hark_query_clear(q);
    q = hark_exec_params(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
    CHECK_RES(hark_query_status(q), HARK_OK);
    hark_query_clear(q);

    /* PostgreSQL's errors. */
    q = hark_exec_params(c, "SELECT $1, $3", 3, NULL, (const char *const[]){"a", "b", "c"}, NULL, NULL, 0);
    CHECK_RES(hark_query_status(q), HARK_ERR_SYNTAX);
    CHECK_STR(hark_query_sqlstate(q), "42P18");
    CHECK_STR(hark_query_error_message(q), "could not determine data type of parameter $2");
    hark_query_clear(q);
    q = hark_exec_params(c, "SELECT $0", 0, NULL, NULL, NULL, NULL, 0);
    CHECK_STR(hark_query_sqlstate(q), "42P02");
    CHECK_STR(hark_query_error_message(q), "there is no parameter $0");
    hark_query_clear(q);
    q = hark_exec_params(c, "SELECT $1, $2", 1, NULL, values, NULL, NULL, 0);
    CHECK_STR(hark_query_error_message(q), "bind message supplies 1 parameters, but prepared statement \"\" requires 2");
    hark_query_clear(q);
    q = hark_exec_params(c, "SELECT $1", 2, NULL, values, NULL, NULL, 0);
    CHECK_RES(hark_query_status(q), HARK_ERR_INVALID_ARGUMENT);
    CHECK_STR(hark_query_sqlstate(q), "08P01");
    CHECK_STR(hark_query_error_message(q), "bind message supplies 2 parameters, but prepared statement \"\" requires 1");
    hark_query_clear(q);
    q = hark_exec_params(c, "SELECT $1; SELECT $2", 2, NULL, values, NULL, NULL, 0);
    CHECK_STR(hark_query_sqlstate(q), "42601");
    CHECK_STR(hark_error_message(c), "cannot insert multiple commands into a prepared statement");
    hark_query_clear(q);
    const char *bad_utf8[] = {"\xff"};
    q = hark_exec_params(c, "SELECT $1", 1, NULL, bad_utf8, NULL, NULL, 0);
    CHECK_STR(hark_query_sqlstate(q), "22021");
    hark_query_clear(q);

    /* What hark does not support, and bad arguments. */
    const unsigned int text_type[] = {25};
    const int binary[] = {1};
    q = hark_exec_params(c, "SELECT $1", 1, text_type, values, NULL, NULL, 0);
    CHECK_RES(hark_query_status(q), HARK_ERR_INVALID_ARGUMENT);
    hark_query_clear(q);
    q = hark_exec_params(c, "SELECT $1", 1, NULL, values, NULL, binary, 0);
    CHECK_RES(hark_query_status(q), HARK_ERR_INVALID_ARGUMENT);
    hark_query_clear(q);
    q = hark_exec_params(c, "SELECT $1", 1, NULL, values, NULL, NULL, 1);
    CHECK_RES(hark_query_status(q), HARK_ERR_INVALID_ARGUMENT);
    hark_query_clear(q);
    q = hark_exec_params(c, "SELECT $1", -1, NULL, values, NULL, NULL, 0);
    CHECK_RES(hark_query_status(q), HARK_ERR_INVALID_ARGUMENT);
    hark_query_clear(q);
    q = hark_exec_params(c, "SELECT $1", 1, NULL, NULL, NULL, NULL, 0);
    CHECK_RES(hark_query_status(q), HARK_ERR_NULL_PARAMETER);
    hark_query_clear(q);
    q = hark_exec_params(c, NULL, 0, NULL, NULL, NULL, NULL, 0);
    CHECK_RES(hark_query_status(q), HARK_ERR_NULL_PARAMETER);
    hark_query_clear(q);
    CHECK(hark_exec_params(NULL, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0) == NULL);
    hark_query_clear(hark_exec(c, "UNLISTEN *"));
}

static void test_escape(hark_conn *c) {
    char sql[256];
    for (size_t i = 0; i < N_HOSTILE; i++) {
        char *lit = hark_escape_literal(c, hostile[i], strlen(hostile[i]));
        CHECK(lit != NULL);
        if (lit == NULL)
            continue;
        snprintf(sql, sizeof sql, "SELECT %s", lit);
        hark_query *q = hark_exec(c, sql);
        CHECK_RES(hark_query_status(q), HARK_OK);
        CHECK_STR(hark_query_getvalue(q, 0, 0), hostile[i]);
        hark_query_clear(q);
        hark_freemem(lit);
    }
    char *s = hark_escape_literal(c, "a\\b'c", 5);
    CHECK_STR(s, " E'a\\\\b''c'");
    hark_freemem(s);
    s = hark_escape_literal(c, "abcdef", 3); /* at most length bytes */
    CHECK_STR(s, "'abc'");
    hark_freemem(s);
    s = hark_escape_literal(c, "ab\0cd", 5); /* up to a NUL, as libpq */
    CHECK_STR(s, "'ab'");
    hark_freemem(s);
    s = hark_escape_identifier(c, "Mixed \"Case\"", 12);
    CHECK_STR(s, "\"Mixed \"\"Case\"\"\"");
    hark_query *q = hark_exec(c, "SELECT 1 AS \"Mixed \"\"Case\"\"\"");
    CHECK_STR(hark_query_fname(q, 0), "Mixed \"Case\"");
    hark_query_clear(q);
    hark_freemem(s);
    CHECK(hark_escape_literal(c, "\xff", 1) == NULL);
    CHECK_STR(hark_error_sqlstate(c), "22021");
    CHECK(hark_escape_identifier(c, NULL, 1) == NULL);
    CHECK_STR(hark_error_sqlstate(c), "22004");
    CHECK(hark_escape_literal(NULL, "x", 1) == NULL);
}

static void test_queue_full(void) {
    hark_options small = {0};
    small.max_queue_size = 512 * 1024; /* the minimum */
    hark_conn *idle = hark_connect_options(path("small"), &small);
    hark_conn *sender = hark_connect_options(path("small"), &small);
    CHECK_RES(hark_status(idle), HARK_OK);
    CHECK_RES(hark_status(sender), HARK_OK);
    CHECK_RES(hark_listen(idle, "big"), HARK_OK); /* never reads: the queue fills */
    struct notices got = {0, ""};
    hark_set_notice_processor(sender, keep_notice, &got);

    static char payload[7000];
    memset(payload, 'x', sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';
    hark_result r = HARK_OK;
    int sent = 0;
    for (; sent < 1000 && r == HARK_OK; sent++) {
        snprintf(payload, 16, "%06d", sent);
        payload[6] = 'x';
        r = hark_notify(sender, "big", payload);
    }
    CHECK_RES(r, HARK_ERR_QUEUE_FULL);
    CHECK(sent > 10 && sent < 1000);
    CHECK_STR(hark_error_sqlstate(sender), "54000");
    CHECK(strncmp(hark_error_message(sender), "too many notifications in the NOTIFY queue", 42) == 0);
    CHECK(got.count >= 1 && strstr(got.last, "NOTIFY queue is") != NULL);
    double usage = 0.0;
    CHECK_RES(hark_queue_usage(sender, &usage), HARK_OK);
    CHECK(usage > 0.5 && usage <= 1.0);

    /* Options that differ from the queue's are refused on reopening. */
    hark_options other = {0};
    other.max_queue_size = 1024 * 1024;
    hark_conn *c = hark_connect_options(path("small"), &other);
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    hark_finish(c);
    hark_finish(idle);
    hark_finish(sender);
}

static void test_max_payload_option(void) {
    hark_options o = {0};
    o.max_payload = 16;
    hark_conn *c = hark_connect_options(path("tiny"), &o);
    CHECK_RES(hark_status(c), HARK_OK);
    CHECK_RES(hark_notify(c, "ch", "0123456789abcdef"), HARK_OK);
    CHECK_RES(hark_notify(c, "ch", "0123456789abcdefg"), HARK_ERR_INVALID_ARGUMENT);
    /* PostgreSQL's message, then hark's DETAIL (the sizes) and HINT (the option). */
    CHECK(strncmp(hark_error_message(c), "payload string too long\nDETAIL:  ", 33) == 0);
    CHECK(strstr(hark_error_message(c), "max_payload") != NULL);
    hark_finish(c);
}

/* A durable subscription: resumed after hark_finish, acknowledged, listed in errors, and its gap. */
static void test_subscriptions(void) {
    const char *q = path("subs");
    hark_conn *app = hark_connect(q);
    hark_conn *w = hark_connect(q);
    const char *chans[] = {"orders.*", "exact"};
    CHECK_RES(hark_subscribe(w, "mailer", chans, 2, NULL, NULL), HARK_OK);
    CHECK_RES(hark_listen(w, "x"), HARK_ERR_TRANSACTION_STATE);
    hark_conn *other = hark_connect(q);
    CHECK_RES(hark_subscribe(other, "mailer", chans, 2, NULL, NULL), HARK_ERR_IN_USE);
    CHECK_STR(hark_error_sqlstate(other), "55006");
    CHECK_RES(hark_notify(app, "orders.paid", "1"), HARK_OK);
    CHECK_RES(hark_notify(app, "users", "no"), HARK_OK);
    CHECK_RES(hark_notify(app, "exact", "2"), HARK_OK);
    CHECK(hark_wait(w, 5000) == 1);
    hark_notification *n1 = hark_notifies(w);
    CHECK(n1 != NULL);
    if (n1 != NULL) {
        CHECK_STR(n1->extra, "1");
        CHECK(n1->commit_time_ns > 1600000000LL * 1000000000LL);
        CHECK_RES(hark_ack(w, n1->position), HARK_OK);
        hark_freemem(n1);
    }
    hark_finish(w); /* "2" received, not acknowledged */
    CHECK_RES(hark_notify(app, "orders.new", "3"), HARK_OK);
    w = hark_connect(q);
    const char *keys[] = {"ack", "create", NULL};
    const char *vals[] = {"auto", "off", NULL};
    CHECK_RES(hark_subscribe(w, "mailer", chans, 2, keys, vals), HARK_OK);
    expect_notification(w, "exact", "2", hark_backend_pid(app));
    expect_notification(w, "orders.new", "3", hark_backend_pid(app));
    CHECK(hark_notifies(w) == NULL);
    CHECK_RES(hark_ack(w, 1u << 30), HARK_ERR_INVALID_ARGUMENT);
    CHECK_RES(hark_unsubscribe(other, "mailer"), HARK_ERR_IN_USE);
    CHECK_RES(hark_detach(w), HARK_OK);
    CHECK_RES(hark_unsubscribe(other, "mailer"), HARK_OK);
    CHECK_RES(hark_unsubscribe(other, "mailer"), HARK_ERR_INVALID_ARGUMENT);
    CHECK_STR(hark_error_sqlstate(other), "42704");
    const char *bad_keys[] = {"nonsense", NULL};
    const char *bad_vals[] = {"1", NULL};
    CHECK_RES(hark_subscribe(w, "s", chans, 2, bad_keys, bad_vals), HARK_ERR_INVALID_ARGUMENT);
    CHECK_RES(hark_subscribe(w, "s", chans, 0, NULL, NULL), HARK_ERR_INVALID_ARGUMENT);
    CHECK_RES(hark_subscribe(w, NULL, chans, 1, NULL, NULL), HARK_ERR_NULL_PARAMETER);
    hark_gap gap;
    CHECK(hark_last_gap(w, &gap) == 0);
    hark_finish(other);
    hark_finish(w);
    hark_finish(app);
}

/* hark_stats: the queue's state and each receiver's lag, in one block. */
static void test_stats(void) {
    const char *q = path("stats");
    hark_conn *app = hark_connect(q);
    hark_conn *l = hark_connect(q);
    hark_conn *w = hark_connect(q);
    CHECK_RES(hark_listen(l, "plain"), HARK_OK);
    const char *chans[] = {"orders.*", "exact"};
    const char *keys[] = {"max_lag_bytes", NULL};
    const char *vals[] = {"1000000", NULL};
    CHECK_RES(hark_subscribe(w, "mailer", chans, 2, keys, vals), HARK_OK);
    CHECK_RES(hark_detach(w), HARK_OK);
    for (int i = 0; i < 3; i++) CHECK_RES(hark_notify(app, "orders.paid", "x"), HARK_OK);
    CHECK_RES(hark_notify(app, "plain", "y"), HARK_OK);
    CHECK_RES(hark_stats(app, NULL), HARK_ERR_NULL_PARAMETER);
    hark_queue_stats *st = NULL;
    CHECK_RES(hark_stats(app, &st), HARK_OK);
    CHECK(st != NULL);
    if (st != NULL) {
        CHECK(st->head > st->tail || st->head == st->tail);
        CHECK(st->receiver_count == 2);
        CHECK(st->usage >= 0.0 && st->usage <= 1.0);
        CHECK(st->max_payload == 7999 && st->segment_files >= 1);
        int seen = 0;
        for (int i = 0; i < st->receiver_count; i++) {
            const hark_receiver_stat *r = &st->receivers[i];
            if (r->subscription == NULL) {
                seen |= 1;
                CHECK(r->alive == 1 && r->backend_pid == hark_backend_pid(l));
                CHECK(r->channel_count == 1 && r->channel_names != NULL);
                if (r->channel_names != NULL) CHECK_STR(r->channel_names[0], "plain");
                CHECK(r->lag_notifications == 1 && r->lag_bytes > 0 && r->lag_age_ns >= 0);
            } else {
                seen |= 2;
                CHECK_STR(r->subscription, "mailer");
                CHECK(r->alive == 0 && r->backend_pid == 0);
                CHECK(r->channel_count == 2 && r->channel_names != NULL);
                if (r->channel_names != NULL) {
                    CHECK_STR(r->channel_names[0], "orders.*");
                    CHECK_STR(r->channel_names[1], "exact");
                }
                CHECK(r->lag_notifications == 3 && r->max_lag_bytes == 1000000 && r->gap_pending == 0);
            }
        }
        CHECK(seen == 3);
        hark_freemem(st);
    }
    hark_finish(w);
    hark_finish(l);
    hark_finish(app);
}

/* Under cut_laggards a listener that does not read is cut: commits go on, and its next
 * hark_notifies returns NULL once with HARK_ERR_GAP, the count in hark_last_gap. */
static void test_cut_policy(void) {
    const char *keys[] = {"dir", "max_queue_size", "segment_size", "cut_laggards", NULL};
    const char *vals[] = {path("cut"), "524288", "65536", "on", NULL};
    hark_conn *idle = hark_connect_params(keys, vals);
    hark_conn *sender = hark_connect_params(keys, vals);
    CHECK_RES(hark_status(idle), HARK_OK);
    CHECK_RES(hark_listen(idle, "c"), HARK_OK);
    hark_set_notice_processor(sender, keep_notice, &(struct notices){0, ""});
    static char payload[1001];
    memset(payload, 'x', sizeof payload - 1);
    int sent = 0;
    hark_result r = HARK_OK;
    for (; sent < 3000 && r == HARK_OK; sent++) {
        snprintf(payload, 16, "%06d", sent);
        payload[6] = 'x';
        r = hark_notify(sender, "c", payload);
    }
    CHECK_RES(r, HARK_OK); /* about six queue sizes, all committed */
    int got = 0, gaps = 0;
    hark_gap gap = {0, 0, 0, 0};
    for (;;) {
        hark_notification *n = hark_notifies(idle);
        if (n != NULL) {
            got++;
            hark_freemem(n);
            continue;
        }
        if (hark_last_gap(idle, &gap)) {
            CHECK_STR(hark_error_sqlstate(idle), "HK001");
            gaps++;
            continue;
        }
        break;
    }
    CHECK(gaps == 1);
    CHECK(got > 0 && (uint64_t)got + gap.skipped == 3000);
    CHECK(gap.last_txn >= gap.first_txn);
    hark_finish(idle);
    hark_finish(sender);
}

/* After fork() the child must not use its parent's connection. */
static void test_fork(hark_conn *c) {
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        int ok = hark_status(c) == HARK_ERR_CLOSED && hark_listen(c, "child") == HARK_ERR_CLOSED &&
                 hark_consume_input(c) == 0 && strstr(hark_error_message(c), "fork") != NULL;
        hark_finish(c);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RES(hark_listen(c, "parent"), HARK_OK); /* the parent's connection still works */
    CHECK_RES(hark_unlisten(c, NULL), HARK_OK);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: api_test SCRATCH_DIR\n");
        return 2;
    }
    snprintf(base, sizeof base, "%s", argv[1]);

    test_static_strings();
    test_null_everywhere();
    test_failed_connect();
    test_connect_params();
    test_backend_pids();
    test_queue_directories();

    hark_conn *a = hark_connect(path("queue"));
    hark_conn *b = hark_connect(path("queue"));
    CHECK_RES(hark_status(a), HARK_OK);
    CHECK_RES(hark_status(b), HARK_OK);
    CHECK_STR(hark_error_message(a), "");
    if (hark_status(a) == HARK_OK && hark_status(b) == HARK_OK) {
        test_bad_arguments(a);
        test_self_notify_and_payloads(a);
        test_transactions(a, b); /* finishes b */
        test_notices(a);
        test_exec(a);
        test_exec_params(a);
        test_escape(a);
        test_fork(a);
    } else {
        hark_finish(b);
    }
    hark_finish(a);
    test_queue_full();
    test_max_payload_option();
    test_subscriptions();
    test_stats();
    test_cut_policy();

    /* NULL dir: the default directory, here $HARK_DIR. */
    setenv("HARK_DIR", path("default"), 1);
    hark_conn *d = hark_connect(NULL);
    CHECK_RES(hark_status(d), HARK_OK);
    hark_finish(d);
    struct stat st;
    CHECK(stat(path("default"), &st) == 0 && S_ISDIR(st.st_mode));

    printf("api_test: %d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

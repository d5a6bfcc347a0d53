/*
 * Misuse of the C API (issue 8): every call on a connection that is not open, several threads,
 * invalid UTF-8, fork(), and SQL nested deep enough to overflow a small stack. Each case runs in
 * its own child process, so that a crash shows up as a signal in the wait status (and fails the
 * case) instead of ending the whole test.
 *
 *     misuse_test DIR      (DIR: an empty scratch directory; queues are created under it)
 *
 * Prints one line per failed check and ends with "misuse_test: N passed, M failed"; exits 1 if
 * any case failed.
 */
#define _POSIX_C_SOURCE 200809L
#include "hark.h"

#include "check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Checks count inside a case's child process (check.h); the parent counts cases. */

static char base[4096];

static const char *path(const char *name) {
    static char buf[4096 + 64];
    snprintf(buf, sizeof buf, "%s/%s", base, name);
    return buf;
}

/* Every call that takes a connection, on one that is not open (a failed open, or the parent's
 * connection in a forked child): each refuses with HARK_ERR_CLOSED (SQLSTATE 08003) or the
 * documented failure value, and the message contains `reason`. */
static void expect_all_closed(hark_conn *c, const char *reason) {
    double usage = -7.0;
    CHECK_RES(hark_status(c), HARK_ERR_CLOSED);
    CHECK(hark_socket(c) == -1);
    CHECK(hark_backend_pid(c) == 0);
    CHECK(hark_transaction_status(c) == HARK_TRANS_UNKNOWN);
#define CLOSED(call)                                                                               \
    do {                                                                                           \
        CHECK_RES(call, HARK_ERR_CLOSED);                                                          \
        CHECK_STR(hark_error_sqlstate(c), "08003");                                                \
        CHECK(strstr(hark_error_message(c), reason) != NULL);                                      \
    } while (0)
    CLOSED(hark_listen(c, "x"));
    CLOSED(hark_unlisten(c, "x"));
    CLOSED(hark_unlisten(c, NULL));
    CLOSED(hark_notify(c, "x", "y"));
    CLOSED(hark_notify(c, "x", NULL));
    CLOSED(hark_begin(c));
    CLOSED(hark_commit(c));
    CLOSED(hark_rollback(c));
    CLOSED(hark_savepoint(c, "s"));
    CLOSED(hark_release(c, "s"));
    CLOSED(hark_rollback_to(c, "s"));
    CLOSED(hark_queue_usage(c, &usage));
#undef CLOSED
    CHECK(usage == -7.0);
    CHECK(hark_consume_input(c) == 0);
    CHECK_STR(hark_error_sqlstate(c), "08003");
    CHECK(hark_notifies(c) == NULL);
    CHECK(hark_wait(c, 0) == -1);
    CHECK(hark_wait(c, 10) == -1);
    CHECK_STR(hark_error_sqlstate(c), "08003");
    const char *stmts[] = {"LISTEN x", "NOTIFY x, 'y'", "SELECT pg_listening_channels()", "", "BEGIN"};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        hark_query *q = hark_exec(c, stmts[i]);
        CHECK(q != NULL);
        CHECK_RES(hark_query_status(q), HARK_ERR_CLOSED);
        CHECK_STR(hark_query_sqlstate(q), "08003");
        CHECK(hark_query_ntuples(q) == 0);
        hark_query_clear(q);
    }
    /* A notice processor may still be set; it is never called. */
    CHECK(hark_set_notice_processor(c, hark_default_notice_processor, NULL) != NULL);
}

/* 1. A connection whose open failed refuses every call with HARK_ERR_CLOSED. */
static void case_failed_open(void) {
    FILE *f = fopen(path("a-file"), "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    hark_conn *c = hark_connect(path("a-file"));
    CHECK(c != NULL);
    if (!c)
        return;
    char reason[512];
    snprintf(reason, sizeof reason, "%s", hark_error_message(c));
    CHECK(strlen(reason) > 0);
    CHECK(hark_status(c) != HARK_OK);
    /* hark_status keeps the open's own result; every other call says CLOSED. */
    hark_result opened = hark_status(c);
    CHECK_RES(hark_listen(c, "x"), HARK_ERR_CLOSED);
    CHECK_RES(hark_status(c), opened);
    hark_finish(c);

    hark_options bad = {0};
    bad.segment_size = 100000; /* not a power of two */
    c = hark_connect_options(path("bad-options"), &bad);
    CHECK_RES(hark_status(c), HARK_ERR_INVALID_ARGUMENT);
    CHECK_RES(hark_notify(c, "x", "y"), HARK_ERR_CLOSED);
    CHECK_RES(hark_begin(c), HARK_ERR_CLOSED);
    CHECK(hark_wait(c, 0) == -1);
    hark_finish(c);
}

/* Same, exhaustively, for the parent's connection in a forked child (reason mentions fork). */
static void case_fork(void) {
    hark_conn *parent = hark_connect(path("fork"));
    CHECK_RES(hark_status(parent), HARK_OK);
    CHECK_RES(hark_listen(parent, "from-child"), HARK_OK);
    CHECK_RES(hark_begin(parent), HARK_OK); /* an open block in the parent, too */
    CHECK_RES(hark_notify(parent, "from-child", "parent-in-block"), HARK_OK);
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        checks_failed = 0;
        expect_all_closed(parent, "fork");
        CHECK(strstr(hark_error_message(parent), "fork") != NULL);
        /* The child opens its own connection and notifies the parent's channel. */
        hark_conn *own = hark_connect(path("fork"));
        CHECK_RES(hark_status(own), HARK_OK);
        CHECK(hark_backend_pid(own) == (int)getpid());
        CHECK_RES(hark_notify(own, "from-child", "hello from the child"), HARK_OK);
        hark_finish(own);
        hark_finish(parent); /* allowed, and must not disturb the parent's session */
        _exit(checks_failed == 0 ? 0 : 1);
    }
    int status = 0;
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The parent's session, its block and its listener are intact. */
    CHECK(hark_transaction_status(parent) == HARK_TRANS_INTRANS);
    CHECK_RES(hark_commit(parent), HARK_OK);
    int got_child = 0, got_own = 0, other = 0;
    for (int tries = 0; tries < 50 && got_child + got_own < 2; tries++) {
        if (hark_wait(parent, 100) < 0)
            break;
        hark_notification *n;
        while ((n = hark_notifies(parent)) != NULL) {
            if (strcmp(n->extra, "hello from the child") == 0 && n->be_pid == (int)child)
                got_child++;
            else if (strcmp(n->extra, "parent-in-block") == 0 && n->be_pid == (int)getpid())
                got_own++;
            else
                other++;
            hark_freemem(n);
        }
    }
    CHECK(got_child == 1 && got_own == 1 && other == 0);
    CHECK(hark_notifies(parent) == NULL);
    hark_finish(parent);
}

/* 2. Threads. */
#define THREADS 4
#define PER_THREAD 300

struct sender {
    hark_conn *conn;         /* the thread's own connection, or the shared one */
    pthread_mutex_t *lock;   /* non-NULL: the shared connection, used one thread at a time */
    int id;
    int pid;                 /* its connection's backend PID, the be_pid of what it sends */
    int errors;
};

static void *send_all(void *arg) {
    struct sender *s = arg;
    char payload[64];
    for (int k = 0; k < PER_THREAD; k++) {
        snprintf(payload, sizeof payload, "%d-%d", s->id, k);
        if (s->lock)
            pthread_mutex_lock(s->lock);
        /* every fifth in a transaction of its own, the rest in autocommit */
        int r = HARK_OK;
        if (k % 5 == 0) {
            if (hark_begin(s->conn) != HARK_OK || hark_notify(s->conn, "threads", payload) != HARK_OK ||
                hark_commit(s->conn) != HARK_OK)
                r = -1;
        } else {
            r = hark_notify(s->conn, "threads", payload);
        }
        if (s->lock)
            pthread_mutex_unlock(s->lock);
        if (r != HARK_OK)
            s->errors++;
    }
    return NULL;
}

struct received {
    hark_notification *items[THREADS * PER_THREAD + 16];
    int count;
};

/* Frees notifications on another thread than the one that received them (documented as fine). */
static void *free_all(void *arg) {
    struct received *r = arg;
    for (int i = 0; i < r->count; i++)
        hark_freemem(r->items[i]);
    return NULL;
}

static void run_senders(int shared) {
    hark_conn *listener = hark_connect(path("threads"));
    CHECK_RES(hark_status(listener), HARK_OK);
    CHECK_RES(hark_listen(listener, "threads"), HARK_OK);
    hark_conn *one = shared ? hark_connect(path("threads")) : NULL;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct sender senders[THREADS];
    pthread_t tids[THREADS];
    for (int i = 0; i < THREADS; i++) {
        senders[i].conn = shared ? one : hark_connect(path("threads"));
        senders[i].lock = shared ? &lock : NULL;
        senders[i].id = i;
        senders[i].errors = 0;
        CHECK_RES(hark_status(senders[i].conn), HARK_OK);
        senders[i].pid = hark_backend_pid(senders[i].conn);
        /* One connection per thread: each its own backend PID, as separate backends. */
        for (int j = 0; j < i && !shared; j++)
            CHECK(senders[j].pid != senders[i].pid);
    }
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&tids[i], NULL, send_all, &senders[i]) == 0);

    /* Receive on this thread while the senders run. */
    static struct received got;
    got.count = 0;
    int last[THREADS];
    for (int i = 0; i < THREADS; i++)
        last[i] = -1;
    int out_of_order = 0, unknown = 0, waits = 0;
    while (got.count < THREADS * PER_THREAD && waits < 300) {
        int w = hark_wait(listener, 100);
        CHECK(w >= 0);
        if (w <= 0) {
            waits++;
            continue;
        }
        hark_notification *n;
        while ((n = hark_notifies(listener)) != NULL) {
            int id = -1, k = -1;
            if (sscanf(n->extra, "%d-%d", &id, &k) != 2 || id < 0 || id >= THREADS || strcmp(n->relname, "threads") != 0 ||
                n->be_pid != senders[id].pid)
                unknown++;
            else if (k != last[id] + 1) /* per sender: each once, in order */
                out_of_order++;
            else
                last[id] = k;
            if (got.count < (int)(sizeof got.items / sizeof got.items[0]))
                got.items[got.count++] = n;
            else
                hark_freemem(n), unknown++;
        }
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(tids[i], NULL) == 0);
        CHECK(senders[i].errors == 0);
        CHECK(last[i] == PER_THREAD - 1);
    }
    CHECK(got.count == THREADS * PER_THREAD);
    CHECK(out_of_order == 0 && unknown == 0);
    /* Nothing more arrives (no duplicate). */
    CHECK(hark_wait(listener, 200) == 0);
    pthread_t freer;
    CHECK(pthread_create(&freer, NULL, free_all, &got) == 0);
    CHECK(pthread_join(freer, NULL) == 0);
    for (int i = 0; i < THREADS && !shared; i++)
        hark_finish(senders[i].conn);
    hark_finish(one);
    hark_finish(listener);
}

/* One connection per thread, all at once. */
static void case_threads_own_connections(void) { run_senders(0); }

/* One connection handed between threads under a lock (the header's rule: never two at once). */
static void case_threads_shared_connection(void) { run_senders(1); }

/* A connection handed to another thread, which closes it; this thread then uses only its own. */
static void *finish_it(void *arg) {
    hark_conn *c = arg;
    CHECK_RES(hark_notify(c, "handoff", "from the other thread"), HARK_OK);
    hark_finish(c);
    return NULL;
}

static void case_thread_handoff(void) {
    hark_conn *l = hark_connect(path("handoff"));
    CHECK_RES(hark_listen(l, "handoff"), HARK_OK);
    hark_conn *c = hark_connect(path("handoff"));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, finish_it, c) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(hark_wait(l, 2000) == 1);
    hark_notification *n = hark_notifies(l);
    CHECK(n != NULL && strcmp(n->extra, "from the other thread") == 0);
    hark_freemem(n);
    CHECK(hark_notifies(l) == NULL);
    hark_finish(l);
}

/* 3. NULL arguments beyond api_test.c: SQL text, out-parameters, and a NULL/odd processor. */
static void case_null_arguments(void) {
    hark_conn *c = hark_connect(path("nulls"));
    CHECK_RES(hark_status(c), HARK_OK);
    hark_query *q = hark_exec(c, NULL);
    /* NULL SQL: a result that says NULL parameter, or no result at all; never a crash. */
    if (q != NULL) {
        CHECK_RES(hark_query_status(q), HARK_ERR_NULL_PARAMETER);
        hark_query_clear(q);
    }
    CHECK_RES(hark_unlisten(c, NULL), HARK_OK); /* documented: UNLISTEN * */
    CHECK_RES(hark_notify(c, "ch", NULL), HARK_OK); /* documented: empty payload */
    CHECK(hark_set_notice_processor(c, NULL, NULL) == hark_default_notice_processor);
    CHECK(hark_wait(c, 0) == 0);
    CHECK(hark_query_fname(NULL, -1) == NULL);
    CHECK(hark_query_getvalue(NULL, -1, -1) == NULL);
    CHECK_STR(hark_result_str(-1), "HARK_ERR_UNKNOWN");
    CHECK_STR(hark_result_str(12345), "HARK_ERR_UNKNOWN");
    /* Out-of-range rows and columns of a real result. */
    q = hark_exec(c, "SELECT 1 AS one");
    CHECK_RES(hark_query_status(q), HARK_OK);
    CHECK(hark_query_fname(q, 1) == NULL && hark_query_fname(q, -1) == NULL);
    CHECK(hark_query_getvalue(q, 1, 0) == NULL && hark_query_getvalue(q, 0, -1) == NULL);
    CHECK(hark_query_getisnull(q, 5, 5) == 0);
    hark_query_clear(q);
    CHECK_RES(hark_status(c), HARK_OK);
    hark_finish(c);
}

/* 4. Invalid UTF-8 everywhere a string goes in: PostgreSQL's 22021 and its message. */
static void case_invalid_utf8(void) {
    hark_conn *c = hark_connect(path("utf8"));
    CHECK_RES(hark_status(c), HARK_OK);
    CHECK_RES(hark_listen(c, "ok"), HARK_OK);
    const char *bad[] = {"\xff", "a\xff", "\xc3(", "\xed\xa0\x80" /* a UTF-16 surrogate */, "\xc0\x80" /* overlong NUL */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
#define BAD(call)                                                                                  \
    do {                                                                                           \
        CHECK_RES(call, HARK_ERR_INVALID_ARGUMENT);                                                \
        CHECK_STR(hark_error_sqlstate(c), "22021");                                                \
        CHECK(strncmp(hark_error_message(c), "invalid byte sequence for encoding \"UTF8\"", 41) == 0); \
    } while (0)
        BAD(hark_listen(c, bad[i]));
        BAD(hark_unlisten(c, bad[i]));
        BAD(hark_notify(c, bad[i], "p"));
        BAD(hark_notify(c, "ok", bad[i]));
        CHECK_RES(hark_begin(c), HARK_OK);
        BAD(hark_savepoint(c, bad[i]));
        CHECK_RES(hark_rollback(c), HARK_OK);
#undef BAD
        char sql[64];
        snprintf(sql, sizeof sql, "NOTIFY ok, '%s'", bad[i]);
        hark_query *q = hark_exec(c, sql);
        CHECK_RES(hark_query_status(q), HARK_ERR_INVALID_ARGUMENT);
        CHECK_STR(hark_query_sqlstate(q), "22021");
        CHECK(strncmp(hark_query_error_message(q), "invalid byte sequence for encoding \"UTF8\"", 41) == 0);
        hark_query_clear(q);
    }
    /* Nothing of the refused calls was delivered; the session still works. */
    CHECK(hark_notifies(c) == NULL);
    CHECK(hark_transaction_status(c) == HARK_TRANS_IDLE);
    /* A C string ends at its first NUL: "a\0b" is the payload "a". Valid multibyte is kept. */
    CHECK_RES(hark_notify(c, "ok", "a\0b"), HARK_OK);
    CHECK_RES(hark_notify(c, "ok", "\xc3\xa9\xf0\x9f\x98\x80"), HARK_OK);
    hark_notification *n = hark_notifies(c);
    CHECK(n != NULL && strcmp(n->extra, "a") == 0);
    hark_freemem(n);
    n = hark_notifies(c);
    CHECK(n != NULL && strcmp(n->extra, "\xc3\xa9\xf0\x9f\x98\x80") == 0);
    hark_freemem(n);
    CHECK(hark_notifies(c) == NULL);
    hark_finish(c);
}

/* 5. Deeply nested and very long SQL through hark_exec on a thread with a 128 KiB stack (musl's
 * default): nesting beyond 256 levels fails with PostgreSQL's 54001, chains of any length work.
 * Before hark limited nesting, each of these overflowed the stack (SIGSEGV). */
static char *repeat_around(const char *head, const char *open, size_t n, const char *middle, const char *close) {
    size_t lh = strlen(head), lo = strlen(open), lm = strlen(middle), lc = strlen(close);
    char *s = malloc(lh + n * (lo + lc) + lm + 1);
    if (s == NULL) {
        return NULL;
    }
    char *p = s;
    memcpy(p, head, lh);
    p += lh;
    for (size_t i = 0; i < n; i++, p += lo) {
        memcpy(p, open, lo);
    }
    memcpy(p, middle, lm);
    p += lm;
    for (size_t i = 0; i < n; i++, p += lc) {
        memcpy(p, close, lc);
    }
    *p = '\0';
    return s;
}

static void *run_deep_sql(void *arg) {
    hark_conn *c = arg;
    char *parens = repeat_around("SELECT ", "(", 10000, "1", ")");
    char *calls = repeat_around("SELECT ", "pg_notify(", 10000, "'c'", ", 'p')");
    char *concat = repeat_around("SELECT 'a'", " || 'b'", 30000, "", "");
    char *casts = repeat_around("SELECT 'x'", "::text", 30000, "", "");
    CHECK(parens != NULL && calls != NULL && concat != NULL && casts != NULL);
    const char *deep[] = {parens, calls};
    for (size_t i = 0; i < 2; i++) {
        hark_query *q = hark_exec(c, deep[i]);
        CHECK_RES(hark_query_status(q), HARK_ERR_SYNTAX);
        CHECK_STR(hark_query_sqlstate(q), "54001");
        CHECK_STR(hark_query_error_message(q),
                  "stack depth limit exceeded\nHINT:  Parentheses and function calls may nest at most 256 "
                  "levels deep in hark; write the expression with less nesting.");
        hark_query_clear(q);
    }
    hark_query *q = hark_exec(c, concat);
    CHECK_RES(hark_query_status(q), HARK_OK);
    const char *v = hark_query_getvalue(q, 0, 0);
    CHECK(v != NULL && strlen(v) == 30001 && v[0] == 'a' && v[30000] == 'b');
    hark_query_clear(q);
    q = hark_exec(c, casts);
    CHECK_RES(hark_query_status(q), HARK_OK);
    CHECK_STR(hark_query_getvalue(q, 0, 0), "x");
    CHECK_STR(hark_query_fname(q, 0), "text");
    hark_query_clear(q);
    free(parens);
    free(calls);
    free(concat);
    free(casts);
    return NULL;
}

static void case_deep_sql(void) {
    hark_conn *c = hark_connect(path("deep"));
    CHECK_RES(hark_status(c), HARK_OK);
    pthread_attr_t attr;
    pthread_t t;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, 128 * 1024) == 0);
    CHECK(pthread_create(&t, &attr, run_deep_sql, c) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    pthread_attr_destroy(&attr);
    hark_query *q = hark_exec(c, "SELECT 1");
    CHECK_RES(hark_query_status(q), HARK_OK);
    hark_query_clear(q);
    hark_finish(c);
}

static int cases_passed, cases_failed;

/* Runs one case in a child; it passes if the child exits 0 (not by a signal). */
static void run_case(const char *name, void (*fn)(void)) {
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        checks_failed = 0;
        fn();
        fflush(NULL);
        _exit(checks_failed == 0 ? 0 : 1);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child) {
        cases_failed++;
        fprintf(stderr, "FAIL %s: could not run it\n", name);
    } else if (WIFSIGNALED(status)) {
        cases_failed++;
        fprintf(stderr, "FAIL %s: killed by signal %d\n", name, WTERMSIG(status));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cases_failed++;
        fprintf(stderr, "FAIL %s: exit status %d\n", name, WEXITSTATUS(status));
    } else {
        cases_passed++;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: misuse_test SCRATCH_DIR\n");
        return 2;
    }
    snprintf(base, sizeof base, "%s", argv[1]);
    run_case("calls on a connection whose open failed", case_failed_open);
    run_case("fork: the child is refused, opens its own; the parent is unaffected", case_fork);
    run_case("threads with a connection each", case_threads_own_connections);
    run_case("threads sharing one connection under a lock", case_threads_shared_connection);
    run_case("a connection handed to another thread", case_thread_handoff);
    run_case("NULL and out-of-range arguments", case_null_arguments);
    run_case("invalid UTF-8 and NUL in channels, payloads and SQL", case_invalid_utf8);
    run_case("deeply nested and very long SQL on a 128 KiB thread stack", case_deep_sql);
    printf("misuse_test: %d passed, %d failed\n", cases_passed, cases_failed);
    return cases_failed == 0 ? 0 : 1;
}

/*
 * The benchmark roles of `hark bench`, played by PostgreSQL through libpq, so that both are
 * measured by the same coordinator with the same method:
 *
 *   pg_peer --role listener CONNINFO MAX_PAYLOAD CHANNEL NOTIFIERS COUNT MODE
 *   pg_peer --role notifier CONNINFO MAX_PAYLOAD CHANNEL INDEX COUNT PER_TXN PAYLOAD_BYTES MODE
 *   pg_peer --role idle     CONNINFO K
 *
 * The protocol on standard input/output is the one bench/src/roles.rs documents.
 */
#define _POSIX_C_SOURCE 200809L
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void say(const char *s) {
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static void wait_line(void) {
    char buf[64];
    if (!fgets(buf, sizeof buf, stdin)) buf[0] = 0;
}

static PGconn *connect_or_die(const char *conninfo) {
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg_peer: %s", PQerrorMessage(c));
        exit(1);
    }
    return c;
}

static void exec_or_die(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pg_peer: %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int listener(char **a) {
    const char *channel = a[2];
    long notifiers = atol(a[3]);
    long count = atol(a[4]);
    int latency = strcmp(a[5], "latency") == 0 || strcmp(a[5], "latency-idle") == 0;
    PGconn *c = connect_or_die(a[0]);
    char sql[128];
    snprintf(sql, sizeof sql, "LISTEN %s", channel);
    exec_or_die(c, sql);
    say("READY");
    if (strcmp(a[5], "backlog") == 0) wait_line();
    uint64_t *next = calloc((size_t)notifiers, sizeof *next);
    double *lat = latency ? malloc(sizeof(double) * (size_t)count) : NULL;
    long got = 0;
    int sock = PQsocket(c);
    while (got < count) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(sock, &rd);
        struct timeval tv = {60, 0};
        if (select(sock + 1, &rd, NULL, NULL, &tv) <= 0) {
            fprintf(stderr, "pg_peer: timed out after %ld of %ld\n", got, count);
            return 1;
        }
        if (!PQconsumeInput(c)) {
            fprintf(stderr, "pg_peer: %s", PQerrorMessage(c));
            return 1;
        }
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            long who = strtol(n->extra, NULL, 10);
            const char *colon = strchr(n->extra, ':');
            uint64_t v = colon ? strtoull(colon + 1, NULL, 10) : 0;
            if (latency) {
                lat[got] = (double)(now_ns() - v) / 1000.0;
            } else {
                if (who < 0 || who >= notifiers || v != next[who]) {
                    fprintf(stderr, "pg_peer: lost or reordered at %ld:%llu\n", who, (unsigned long long)v);
                    return 1;
                }
                next[who]++;
            }
            got++;
            PQfreemem(n);
        }
    }
    char line[160];
    if (latency) {
        qsort(lat, (size_t)count, sizeof(double), cmp_double);
#define Q(p) lat[(long)((double)count * (p)) < count ? (long)((double)count * (p)) : count - 1]
        snprintf(line, sizeof line, "LAT %f %f %f %f", Q(0.5), Q(0.9), Q(0.99), lat[count - 1]);
    } else {
        snprintf(line, sizeof line, "END %llu", (unsigned long long)now_ns());
    }
    say(line);
    wait_line();
    PQfinish(c);
    return 0;
}

static int notifier(char **a) {
    const char *channel = a[2];
    long idx = atol(a[3]), count = atol(a[4]), per_txn = atol(a[5]), size = atol(a[6]);
    /* latency: spins between sends (a busy notifier); latency-idle: sleeps (an idle one). */
    int latency = strcmp(a[7], "latency") == 0, idle = strcmp(a[7], "latency-idle") == 0;
    PGconn *c = connect_or_die(a[0]);
    size_t cap = (size_t)size + 256;
    char *fill = malloc(cap), *sql = malloc(cap + 128);
    long head = snprintf(NULL, 0, "%ld:", idx) + 20;
    long nfill = size > head ? size - head : 0;
    memset(fill, 'x', (size_t)nfill);
    fill[nfill] = 0;
    say("READY");
    wait_line();
    char line[64];
    snprintf(line, sizeof line, "START %llu", (unsigned long long)now_ns());
    say(line);
    long i = 0;
    while (i < count) {
        if (latency || idle) {
            uint64_t t = now_ns();
            snprintf(sql, cap + 128, "NOTIFY %s, '%ld:%020llu%s'", channel, idx, (unsigned long long)t, fill);
            exec_or_die(c, sql);
            uint64_t now = now_ns();
            if (idle && now < t + 150000) {
                struct timespec gap = {0, (long)(t + 150000 - now)};
                nanosleep(&gap, NULL);
            }
            while (now_ns() < t + 150000) {
            }
            i++;
            continue;
        }
        long n = per_txn < count - i ? per_txn : count - i;
        if (n == 1) {
            snprintf(sql, cap + 128, "NOTIFY %s, '%ld:%020ld%s'", channel, idx, i, fill);
            exec_or_die(c, sql);
            i++;
            continue;
        }
        /* Several per transaction: as a PostgreSQL user batches them, in one statement and one
         * round trip (its own transaction), the payloads passed as one text[] parameter. */
        char *arr = malloc((size_t)n * (cap + 4) + 2), *at = arr;
        *at++ = '{';
        for (long k = 0; k < n; k++, i++) {
            at += snprintf(at, cap + 4, "%s\"%ld:%020ld%s\"", k ? "," : "", idx, i, fill);
        }
        *at++ = '}';
        *at = 0;
        const char *values[2] = {channel, arr};
        PGresult *r = PQexecParams(c, "SELECT pg_notify($1, p) FROM unnest($2::text[]) p", 2, NULL, values, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "pg_peer: batched pg_notify: %s", PQerrorMessage(c));
            exit(1);
        }
        PQclear(r);
        free(arr);
    }
    say("DONE");
    wait_line();
    PQfinish(c);
    return 0;
}

static int idle(char **a) {
    long k = atol(a[1]);
    PGconn **cs = calloc((size_t)k, sizeof *cs);
    for (long i = 0; i < k; i++) {
        char sql[64];
        cs[i] = connect_or_die(a[0]);
        snprintf(sql, sizeof sql, "LISTEN idle_%ld", i);
        exec_or_die(cs[i], sql);
    }
    say("READY");
    wait_line();
    for (long i = 0; i < k; i++) PQfinish(cs[i]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 5 && strcmp(argv[1], "--role") == 0) {
        if (strcmp(argv[2], "listener") == 0 && argc >= 9) return listener(argv + 3);
        if (strcmp(argv[2], "notifier") == 0 && argc >= 11) return notifier(argv + 3);
        if (strcmp(argv[2], "idle") == 0 && argc >= 5) return idle(argv + 3);
    }
    fprintf(stderr, "usage: pg_peer --role listener|notifier|idle CONNINFO ARGS...\n");
    return 64;
}

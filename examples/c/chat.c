/*
 * The chat-group scenario: sessions join a channel with LISTEN, talk with NOTIFY, read the
 * history that piled up while they were busy, and leave with UNLISTEN. Everything goes through
 * hark_exec, and after every command the session prints what arrived, as psql does:
 *
 *     Asynchronous notification "cnpug" with payload "hello" received from server process with PID 46882.
 *
 *     chat DIR
 *
 * Sessions A and B are two connections of this process (each its own listener, as two psql
 * sessions would be); C joins late. The program checks what each session received and exits 1
 * if anything differs from what PostgreSQL would show.
 */
#include <hark.h>

#include <stdio.h>
#include <string.h>

struct session {
    const char *name;
    hark_conn *conn;
    int received;
    char last[128];
};

static int failures;

/* Runs one command like psql: echo it, print the command tag or the error, then notifications. */
static void run(struct session *s, const char *sql) {
    printf("session %s=# %s\n", s->name, sql);
    hark_query *res = hark_exec(s->conn, sql);
    if (hark_query_status(res) == HARK_OK) {
        printf("%s\n", hark_query_command(res));
    } else {
        printf("ERROR:  %s\n", hark_query_error_message(res));
        failures++;
    }
    hark_query_clear(res);
    hark_notification *n;
    while ((n = hark_notifies(s->conn)) != NULL) {
        if (n->extra[0] != '\0')
            printf("Asynchronous notification \"%s\" with payload \"%s\" received from server "
                   "process with PID %d.\n",
                   n->relname, n->extra, n->be_pid);
        else
            printf("Asynchronous notification \"%s\" received from server process with PID %d.\n",
                   n->relname, n->be_pid);
        s->received++;
        snprintf(s->last, sizeof s->last, "%s", n->extra);
        hark_freemem(n);
    }
}

static void expect(struct session *s, int received, const char *last) {
    if (s->received != received || strcmp(s->last, last) != 0) {
        fprintf(stderr, "chat: session %s received %d (last \"%s\"), expected %d (last \"%s\")\n",
                s->name, s->received, s->last, received, last);
        failures++;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: chat DIR\n");
        return 64;
    }
    struct session a = {"A", hark_connect(argv[1]), 0, ""};
    struct session b = {"B", hark_connect(argv[1]), 0, ""};
    struct session c = {"C", hark_connect(argv[1]), 0, ""};
    struct session *all[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++) {
        if (hark_status(all[i]->conn) != HARK_OK) {
            fprintf(stderr, "chat: cannot open %s: %s\n", argv[1], hark_error_message(all[i]->conn));
            for (int j = 0; j < 3; j++)
                hark_finish(all[j]->conn);
            return 1;
        }
    }

    printf("-- 1. everybody joins the chat group (channel)\n");
    run(&a, "listen cnpug;");
    run(&b, "listen cnpug;");

    printf("-- 2. a message to the group; your own arrives at once\n");
    run(&a, "notify cnpug, 'hello, every body.';");
    expect(&a, 1, "hello, every body.");

    printf("-- 3. the others read it with their next command\n");
    run(&b, "listen cnpug;");
    expect(&b, 1, "hello, every body.");
    run(&b, "notify cnpug, 'hello';");
    run(&a, "listen cnpug;");
    expect(&a, 2, "hello");

    printf("-- a session busy elsewhere finds the backlog waiting, every message in order\n");
    for (int i = 0; i < 10; i++)
        run(&b, "notify cnpug, 'hello';");
    run(&b, "notify cnpug, 'hello1';");
    expect(&b, 13, "hello1");
    run(&a, "listen cnpug;");
    expect(&a, 13, "hello1");

    printf("-- 4. a newcomer sees only what is sent after joining\n");
    run(&c, "listen cnpug;");
    expect(&c, 0, "");
    run(&b, "notify cnpug, 'welcome';");
    run(&c, "select 1;");
    expect(&c, 1, "welcome");
    run(&a, "select 1;");
    expect(&a, 14, "welcome");

    printf("-- 5. leaving the group\n");
    run(&a, "unlisten cnpug;");
    run(&b, "notify cnpug, 'bye';");
    run(&a, "select 1;");
    run(&c, "select 1;");
    expect(&a, 14, "welcome");
    expect(&c, 2, "bye");

    for (int i = 0; i < 3; i++)
        hark_finish(all[i]->conn);
    if (failures)
        fprintf(stderr, "chat: %d failure(s)\n", failures);
    return failures ? 1 : 0;
}

/* The seeds' orders application in C on SQLite with hark's SQLite extension: a trigger turns
 * every row change into a JSON event on "events", delivered when (and only if) the SQLite
 * transaction commits. Any hark listener on the same queue directory prints the events.
 *
 *   cc -o orders orders.c -lsqlite3
 *   ./orders DB EXTENSION [QUEUE_DIR]    EXTENSION: the path of libhark_sqlite.so
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

static int run(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "orders: %s\n  in: %s\n", err, sql);
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DB EXTENSION [QUEUE_DIR]\n", argv[0]);
        return 64;
    }
    sqlite3 *db;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK) {
        fprintf(stderr, "orders: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_busy_timeout(db, 30000);
    /* Only the C API may load extensions; SQL's load_extension() stays off. */
    char *err = NULL;
    if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, NULL) != SQLITE_OK ||
        sqlite3_load_extension(db, argv[2], NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "orders: cannot load %s: %s\n", argv[2], err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return 1;
    }
    if (argc > 3) {
        sqlite3_stmt *q;
        sqlite3_prepare_v2(db, "SELECT hark_queue(?)", -1, &q, NULL);
        sqlite3_bind_text(q, 1, argv[3], -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_ROW) {
            fprintf(stderr, "orders: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_finalize(q);
    }
    if (run(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, email TEXT NOT NULL,"
                " total INTEGER NOT NULL CHECK (total >= 0));"
                "SELECT hark_notify_changes('orders', 'events');"))
        return 1;
    if (run(db, "BEGIN; INSERT INTO orders (email, total) VALUES ('c@example.com', 4200); COMMIT;"))
        return 1;
    printf("committed order %lld\n", (long long)sqlite3_last_insert_rowid(db));
    if (run(db, "BEGIN; INSERT INTO orders (email, total) VALUES ('rolled@back.example', 1); ROLLBACK;"))
        return 1;
    printf("rolled back: no event\n");
    if (run(db, "INSERT INTO orders (email, total) VALUES ('refused@example.com', -1);") == 0)
        return 1;
    printf("refused: no event\n");
    if (run(db, "UPDATE orders SET total = total + 1 WHERE email = 'c@example.com';"))
        return 1;
    printf("committed an update\n");
    /* SQLITE_BUSY here would mean statements left unfinalized (by the extension, say). */
    if (sqlite3_close(db) != SQLITE_OK) {
        fprintf(stderr, "orders: close: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    return 0;
}

/*
 * lockdb - holds a SQLite database's write lock for tests/integration/faults_state.mjs, as
 * another program with an open transaction would: opens PATH, begins an IMMEDIATE transaction
 * (in WAL mode, the lock every writer waits for), prints "locked" and keeps the lock until its
 * standard input ends.
 */
#include <sqlite3.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    sqlite3 *db = NULL;
    if (argc != 2) {
        fprintf(stderr, "usage: lockdb PATH\n");
        return 2;
    }
    char *err = NULL;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "lockdb: %s\n", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        sqlite3_close(db);
        return 1;
    }
    puts("locked");
    fflush(stdout);
    while (getchar() != EOF)
        ;
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    return 0;
}

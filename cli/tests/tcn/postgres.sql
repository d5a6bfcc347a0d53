-- Run by psql -X -q -t -A against PostgreSQL 15 with contrib's tcn; its notifications, PIDs
-- written PID N, are postgres.out. tcn_matches_postgresql (tests/processes.rs) sends the same
-- changes with hark notify --tcn and must print the same lines.
CREATE EXTENSION IF NOT EXISTS tcn;
DROP TABLE IF EXISTS tcndata, "we""ird", mytable;
CREATE TABLE tcndata (a int NOT NULL, b date NOT NULL, c text, PRIMARY KEY (a, b));
CREATE TRIGGER tcndata_tcn_trigger AFTER INSERT OR UPDATE OR DELETE ON tcndata FOR EACH ROW EXECUTE FUNCTION triggered_change_notification();
CREATE TABLE "we""ird" (k text PRIMARY KEY, v int);
CREATE TRIGGER t AFTER INSERT OR UPDATE OR DELETE ON "we""ird" FOR EACH ROW EXECUTE FUNCTION triggered_change_notification('changes');
CREATE TABLE mytable (key int PRIMARY KEY, "Quoted ""Col""" text);
CREATE TRIGGER t AFTER INSERT ON mytable FOR EACH ROW EXECUTE FUNCTION triggered_change_notification();
LISTEN tcn;
LISTEN changes;
INSERT INTO tcndata VALUES (1, date '2012-12-22', 'one'), (1, date '2012-12-23', 'another'), (2, date '2012-12-23', 'two');
UPDATE tcndata SET c = 'uno' WHERE a = 1;
DELETE FROM tcndata WHERE a = 1 AND b = date '2012-12-22';
INSERT INTO "we""ird" VALUES ('O''Brien', 1);
UPDATE "we""ird" SET k = 'new' WHERE k = 'O''Brien';
INSERT INTO mytable VALUES (1, 'x');

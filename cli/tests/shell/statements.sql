-- Every statement of the dialect, with its command tag and the notifications it lets through.
-- psql: compatible
-- variant default:
-- variant quiet: -q
LISTEN a;
LISTEN "Mixed Case";
listen B;
SELECT pg_listening_channels();
NOTIFY a;
NOTIFY "Mixed Case", 'quoted';
NOTIFY b, 'it''s folded';
-- A transaction delivers at commit, in send order, folding duplicates.
BEGIN;
NOTIFY a, 'one';
NOTIFY a, 'two';
NOTIFY a, 'one';
SELECT pg_notify('b', 'three');
COMMIT;
START TRANSACTION;
NOTIFY a, 'rolled back';
ROLLBACK;
BEGIN WORK;
NOTIFY a, 'aborted';
ABORT;
BEGIN TRANSACTION;
NOTIFY a, 'ended';
END;
-- Savepoints.
BEGIN;
NOTIFY a, 'kept';
SAVEPOINT s1;
NOTIFY a, 'undone';
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
NOTIFY a, 'released';
RELEASE SAVEPOINT s2;
SAVEPOINT s3;
ROLLBACK TO s3;
RELEASE s3;
COMMIT;
-- Chained transactions.
BEGIN;
NOTIFY a, 'first of a chain';
COMMIT AND CHAIN;
NOTIFY a, 'second of a chain';
COMMIT;
-- Several statements on one line are sent one by one.
NOTIFY a, 'x'; NOTIFY b, 'y';
-- A statement over several lines.
NOTIFY
  a,
  'multi-line statement';
SELECT pg_notification_queue_usage();
SELECT 1 AS one, 'text' AS t, NULL AS n, true AS yes, 2.5 AS num, '42'::int AS cast;
SELECT 'a' || 'b' AS joined, 12345678 AS big;
UNLISTEN "Mixed Case";
SELECT pg_listening_channels();
UNLISTEN *;
SELECT pg_listening_channels();
NOTIFY a, 'nobody listens';
LISTEN a;
DISCARD ALL;
SELECT pg_listening_channels();
NOTIFY a, 'nobody listens after DISCARD ALL';
;

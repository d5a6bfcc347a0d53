-- Errors and warnings, with psql's LINE and caret for the ones that carry a position.
-- psql: compatible
NOTIFY virtual 'x';
NOTIFY a, 'unterminated;
';
SELECT "unterminated;
";
LISTEN "";
SELECT pg_notify('', 'x');
SELECT pg_notify(NULL, 'x');
SELECT pg_notify('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'x');
LISTEN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;
SELECT pg_listening_channels();
UNLISTEN *;
SELECT nope;
SELECT 'a',
  nope x;
COMMIT;
ROLLBACK;
SAVEPOINT s;
RELEASE SAVEPOINT s;
ROLLBACK TO SAVEPOINT s;
BEGIN;
BEGIN;
ROLLBACK TO SAVEPOINT nope;
SELECT 1;
NOTIFY a, 'lost with the failed transaction';
COMMIT;
NOTIFY a, 'now it works';

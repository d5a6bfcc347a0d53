-- Output flags: -q drops command tags, -t prints rows only, -A drops alignment.
-- psql: compatible
-- variant default:
-- variant q: -q
-- variant t: -t
-- variant A: -A
-- variant tA: -t -A
-- variant qtA: -q -t -A
LISTEN f;
NOTIFY f, 'payload';
NOTIFY f;
SELECT 1 AS a, 'x' AS b;
SELECT 'two
lines' AS multi, 'c' AS c;
SELECT 'only' AS one_row;
BEGIN;
SELECT pg_notify('f', 'in a block');
COMMIT;
NOTIFY f 'bad';
\echo done

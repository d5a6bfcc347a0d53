-- The example of PostgreSQL's NOTIFY documentation, as typed into psql.
-- psql: compatible
LISTEN virtual;
NOTIFY virtual;
NOTIFY virtual, 'This is the payload';

LISTEN foo;
SELECT pg_notify('fo' || 'o', 'pay' || 'load');

-- Syntax errors whose wording or position in hark's core differs from PostgreSQL 15's, which
-- says `at or near ";"` for the first, second and fourth, and points its caret at 'abc' for the
-- third. Kept apart so that the psql-compatible transcripts stay exact.
LISTEN;
SELECT 1,
  2 +;
SELECT 'abc'::int;
DISCARD;

-- Errors checked against PostgreSQL 15 by hand rather than by the psql reference run. The first,
-- third and fourth print what psql 15 prints. The second differs: hark's dialect has no
-- arithmetic, so it stops at `+`, where PostgreSQL stops at the `;` after it.
LISTEN;
SELECT 1,
  2 +;
SELECT 'abc'::int;
DISCARD;

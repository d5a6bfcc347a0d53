-- Errors checked against PostgreSQL 15 by hand rather than by the psql reference run. The first,
-- third and fourth print what psql 15 prints. The second differs: hark's dialect has no
-- arithmetic, so it stops at `+`, where PostgreSQL stops at the `;` after it, and its HINT says
-- what hark understands. The last two are PostgreSQL's SQL outside hark's dialect: the same HINT.
LISTEN;
SELECT 1,
  2 +;
SELECT 'abc'::int;
DISCARD;
SELECT * FROM t;
INSERT INTO t VALUES (1);

-- Meta-commands: \echo, an unknown one, and \q, which ends the script.
-- psql: compatible
\echo hello
\echo 'two  spaces' and it''s 'quoted ''word'''
\echo -n no newline
\echo
\nosuch
SELECT 1 AS before_quit;
\q
SELECT 2 AS never;

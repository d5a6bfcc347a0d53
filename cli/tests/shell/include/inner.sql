-- Included by variables.sql (\i and \ir); not a transcript of its own.
SELECT :'who' AS greeting_for;
\echo included, who is :who
SELECT nosuch;

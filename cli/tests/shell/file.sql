-- -f FILE: reports start with the file name and line, as psql's do.
-- psql: compatible
-- variant file: -f file.sql
LISTEN f;
NOTIFY f, 'from a file';
NOTIFY f 'bad';
COMMIT;
\nosuch
SELECT 'end of file without a semicolon' AS last

-- What is left unterminated at the end of the input is sent as it is, as psql does.
-- psql: compatible
SELECT 1 AS a;
NOTIFY eof, 'no semicolon' ; SELECT 'unterminated

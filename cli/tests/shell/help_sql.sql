-- \h on the statements of the seed articles, as psql prints it.
-- psql: compatible
\h notify
\h LISTEN
\h unlisten
\h savepoint
\h release
\h rollback to
\h nosuch

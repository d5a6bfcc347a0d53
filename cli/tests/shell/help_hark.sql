-- \h where hark's dialect is smaller than PostgreSQL's: the list, SELECT, BEGIN, a prefix.
\h
\h select
\h begin
\h roll
\h insert

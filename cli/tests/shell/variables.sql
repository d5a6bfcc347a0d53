-- Variables (-v, \set, \unset), their interpolation into SQL and meta-commands, ON_ERROR_STOP's
-- Boolean values, and \i / \ir.
-- psql: compatible
-- variant default: -v who=world -v chan=news
-- variant file: -f variables.sql -v who=world -v chan=news
\echo :who :'who' :"who" :nosuch :'nosuch' ::who
\set greeting 'it''s' ' a ' test
\echo :greeting
LISTEN :chan;
NOTIFY :chan, :'greeting';
SELECT :'greeting' AS lit, :"chan" AS ident, ':who' AS quoted, 1::text AS cast -- :who
;
SELECT 'multi
:who' AS kept;
/* :who in a comment */ SELECT :'who' AS after_comment;
\unset greeting
\echo :greeting
\set ON_ERROR_STOP maybe
\set ON_ERROR_STOP
\echo :ON_ERROR_STOP
\unset ON_ERROR_STOP
\echo :ON_ERROR_STOP
\i include/inner.sql
\ir include/inner.sql
\i include/nosuch.sql
SELECT 'still going' AS after_errors;

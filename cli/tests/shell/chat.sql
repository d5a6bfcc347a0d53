-- The chat channel of the seed article, one session's side: its own messages come back at once.
-- psql: compatible
listen cnpug;
notify cnpug, 'hello, every body.';
notify cnpug, 'hello';
notify cnpug, 'hello1';
select pg_listening_channels();
unlisten cnpug;
notify cnpug, 'nobody hears this';

-- The seed article's tcn session, replayed by hand: the payloads the trigger would send, each
-- as psql shows it on arrival.
-- psql: compatible
LISTEN tcn;
NOTIFY tcn, '"tcndata",I,"a"=''1'',"b"=''2012-12-22''';
BEGIN;
NOTIFY tcn, '"tcndata",U,"a"=''1'',"b"=''2012-12-22''';
NOTIFY tcn, '"tcndata",U,"a"=''1'',"b"=''2012-12-23''';
COMMIT;
SELECT pg_notify('tcn', '"tcndata",D,"a"=''1'',"b"=''2012-12-22''');

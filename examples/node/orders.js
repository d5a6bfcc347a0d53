'use strict'
// The seeds' orders application on SQLite (better-sqlite3) with hark's SQLite extension: a
// trigger turns every row change into a JSON event on 'events', delivered when (and only if)
// the SQLite transaction commits. Run listener.js beside it (the same $HARK_DIR).
//
//   node orders.js DB [N]     N orders (default 3), one per transaction, then a transaction
//                             that rolls back and a statement that fails: neither sends an event
//
// The extension is $HARK_SQLITE_EXTENSION, or target/release/libhark_sqlite.so of this checkout.

const path = require('node:path')
const Database = require('better-sqlite3')

const extension = process.env.HARK_SQLITE_EXTENSION ||
  path.join(__dirname, '..', '..', 'target', 'release', 'libhark_sqlite.so')

const db = new Database(process.argv[2] || 'orders.db', { timeout: 30000 })
db.loadExtension(extension) // pg_notify, hark_notify_changes, hark_notify_tcn, hark_queue
db.pragma('journal_mode = WAL')
db.pragma('synchronous = NORMAL')
db.exec(`CREATE TABLE IF NOT EXISTS orders (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL,
  total INTEGER NOT NULL CHECK (total >= 0)
)`)
db.prepare("SELECT hark_notify_changes('orders', 'events')").get()

const insert = db.prepare('INSERT INTO orders (email, total) VALUES (?, ?)')
const count = Number(process.argv[3] || 3)
for (let i = 1; i <= count; i++) {
  const { lastInsertRowid } = insert.run('test@example.com', 10000 * i)
  console.log(`committed order ${lastInsertRowid}`)
}
const changeMyMind = db.transaction(() => {
  insert.run('rolled@back.example', 1)
  throw new Error('changed my mind')
})
try {
  changeMyMind()
} catch (err) {
  console.log(`rolled back (${err.message}): no event`)
}
try {
  insert.run('refused@example.com', -1)
} catch (err) {
  console.log(`refused (${err.message}): no event`)
}
db.close()

'use strict'
// Sends what a PostgreSQL trigger would: one JSON event per order, on channel 'events', each in its
// own transaction. The queue directory is $HARK_DIR (or hark's default).
//
//   node notifier.js [COUNT]         default 3 orders

const { Client } = require('hark-notify')

const count = Number(process.argv[2] ?? 3)
const client = new Client()

;(async () => {
  await client.connect()
  for (let id = 1; id <= count; id++) {
    const event = { table: 'orders', action: 'INSERT', data: { id, email: 'test@example.com', total: 10000 * id } }
    await client.transaction(async () => {
      await client.query('SELECT pg_notify($1, $2)', ['events', JSON.stringify(event)])
    })
    console.log(`notified events: ${JSON.stringify(event)}`)
  }
  await client.end()
})().catch((err) => {
  console.error(`notifier: ${err.message} (SQLSTATE ${err.code}, ${err.harkCode})`)
  process.exitCode = 1
  client.end()
})

'use strict'
// A node-postgres listener, moved onto hark: LISTEN on 'events' and print each event's JSON.
// The queue directory is $HARK_DIR (or hark's default); run notifier.js beside it.
//
//   node listener.js [--count N]     exits after N events (default: runs until Ctrl-C)

const { Client } = require('hark-notify')

const at = process.argv.indexOf('--count')
const count = at > 0 ? Number(process.argv[at + 1]) : Infinity

const client = new Client()
process.once('SIGINT', () => client.end())

;(async () => {
  await client.connect()
  await client.query('listen events')
  console.log('start listening channel \'events\'')
  let heard = 0
  client.on('notification', function (msg) {
    let event
    try {
      event = JSON.parse(msg.payload)
    } catch {
      event = msg.payload // not JSON: print the text as a JSON string
    }
    console.log(`heard ${JSON.stringify(event, null, 2)}, from channel: ${msg.channel}`)
    if (++heard === count) client.end()
  })
})().catch((err) => {
  console.error(`listener: ${err.message} (SQLSTATE ${err.code}, ${err.harkCode})`)
  process.exitCode = 1
  client.end()
})

// The cross-language peer in Node (same command line and output as core/examples/peer.rs).
//
//   node peer.js listen DIR CHANNEL COUNT [TIMEOUT_S]
//   node peer.js notify DIR CHANNEL PREFIX COUNT [PER_TXN]
'use strict'

const path = require('node:path')
const { Client } = require(path.join(__dirname, '..', '..', 'bindings', 'node'))

async function listen ([dir, channel, count, timeout]) {
  const client = new Client({ dir })
  await client.connect()
  await client.listen(channel)
  console.log(`READY ${client.processID}`)
  const want = Number(count)
  let got = 0
  const timer = setTimeout(() => { process.exitCode = 2; client.end() }, 1000 * Number(timeout || 30))
  for await (const n of client.notifications()) {
    process.stdout.write(`${n.channel}\t${n.payload}\t${n.processId}\n`)
    if (++got === want) break
  }
  clearTimeout(timer)
  await client.end()
}

async function notify ([dir, channel, prefix, count, perTxn]) {
  const client = new Client({ dir })
  await client.connect()
  const n = Number(count)
  const per = Number(perTxn || 1)
  let sent = 0
  while (sent < n) {
    await client.transaction(async () => {
      for (let k = 0; k < per && sent < n; k++) await client.notify(channel, `${prefix}-${sent++}`)
    })
  }
  console.log(`SENT ${sent} ${client.processID}`)
  await client.end()
}

const [cmd, ...args] = process.argv.slice(2)
const run = { listen, notify }[cmd]
if (!run) {
  process.stderr.write('usage: peer.js listen DIR CHANNEL COUNT [TIMEOUT_S] | notify DIR CHANNEL PREFIX COUNT [PER_TXN]\n')
  process.exit(64)
}
run(args).catch((e) => { process.stderr.write(`peer.js: ${e.stack || e}\n`); process.exit(1) })

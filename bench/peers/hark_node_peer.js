// The benchmark roles of `hark bench`, played by hark's Node package, so that a Node listener is
// measured by the same coordinator with the same method as the Rust one:
//
//   node hark_node_peer.js --role listener DIR MAX_PAYLOAD CHANNEL NOTIFIERS COUNT MODE
//   node hark_node_peer.js --role notifier DIR MAX_PAYLOAD CHANNEL INDEX COUNT PER_TXN PAYLOAD_BYTES MODE
//
// The protocol on standard input/output is the one bench/src/roles.rs documents.
'use strict'

const path = require('node:path')
const readline = require('node:readline')
const { Client } = require(path.join(__dirname, '..', '..', 'bindings', 'node'))

const nowNs = () => process.hrtime.bigint() // CLOCK_MONOTONIC on Linux, as the other roles
const say = (line) => process.stdout.write(line + '\n')
const lines = readline.createInterface({ input: process.stdin })
const nextLine = () => new Promise((resolve) => lines.once('line', resolve).once('close', resolve))

async function listener ([dir, maxPayload, channel, notifiers, count, mode]) {
  const client = new Client({ dir, maxPayload: Number(maxPayload) })
  await client.connect()
  client.listen(channel)
  const next = new Array(Number(notifiers)).fill(0n)
  const lat = []
  let got = 0
  const total = Number(count)
  await new Promise((resolve, reject) => {
    client.on('notification', (n) => {
      const colon = n.payload.indexOf(':')
      const who = Number(n.payload.slice(0, colon))
      const v = BigInt(n.payload.slice(colon + 1, colon + 21))
      if (mode === 'latency') {
        lat.push(Number(nowNs() - v) / 1000)
      } else if (v !== next[who]) {
        reject(new Error(`notifier ${who}: expected ${next[who]}, got ${v}`))
        return
      } else {
        next[who] += 1n
      }
      if (++got === total) resolve()
    })
    client.on('error', reject)
    say('READY')
  })
  if (mode === 'latency') {
    lat.sort((a, b) => a - b)
    const q = (p) => lat[Math.min(Math.floor(lat.length * p), lat.length - 1)]
    say(`LAT ${q(0.5)} ${q(0.9)} ${q(0.99)} ${lat[lat.length - 1]}`)
  } else {
    say(`END ${nowNs()}`)
  }
  await nextLine()
  await client.end()
}

async function notifier ([dir, maxPayload, channel, index, count, perTxn, size, mode]) {
  const client = new Client({ dir, maxPayload: Number(maxPayload) })
  await client.connect()
  const head = `${index}:`
  const fill = 'x'.repeat(Math.max(0, Number(size) - head.length - 20))
  say('READY')
  await nextLine()
  say(`START ${nowNs()}`)
  const n = Number(count)
  for (let i = 0; i < n; i++) {
    if (mode === 'latency') {
      const t = nowNs()
      client.notify(channel, head + String(t).padStart(20, '0') + fill)
      while (nowNs() < t + 150000n) { /* a gap without a sleep's wake-up cost */ }
      await new Promise(setImmediate) // let the event loop breathe between sends
    } else {
      client.notify(channel, head + String(i).padStart(20, '0') + fill)
    }
  }
  say('DONE')
  await nextLine()
  await client.end()
}

const [flag, role, ...args] = process.argv.slice(2)
const run = flag === '--role' && { listener, notifier }[role]
if (!run) {
  process.stderr.write('usage: hark_node_peer.js --role listener|notifier DIR ARGS...\n')
  process.exit(64)
}
run(args).catch((e) => {
  process.stderr.write(`hark_node_peer: ${e.stack || e}\n`)
  process.exit(1)
})

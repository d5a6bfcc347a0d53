// The npm tarball's smoke test, run inside a fresh npm project it was installed into:
//     node smoke.js DIR
// require('hark-notify') must resolve inside that project's node_modules, never to the build
// tree; a listener and a notifier on DIR must exchange the committed notification only.
'use strict'
const path = require('node:path')
const assert = require('node:assert')
const { Client } = require('hark-notify')

async function main () {
  const dir = process.argv[2]
  const where = require.resolve('hark-notify')
  const modules = path.join(process.cwd(), 'node_modules') + path.sep
  assert.ok(where.startsWith(modules), `hark-notify resolved to ${where}, not under ${modules}`)

  const listener = new Client({ dir })
  const app = new Client({ dir })
  await listener.connect()
  await app.connect()
  await listener.query('LISTEN smoke')
  const got = []
  listener.on('notification', (msg) => got.push([msg.channel, msg.payload, msg.processId]))
  await assert.rejects(app.transaction(async () => {
    await app.query('SELECT pg_notify($1, $2)', ['smoke', 'rolled-back'])
    throw new Error('roll back')
  }), /roll back/)
  await app.transaction(async () => {
    await app.query('SELECT pg_notify($1, $2)', ['smoke', 'from-node'])
  })
  const deadline = Date.now() + 10000
  while (got.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepStrictEqual(got, [['smoke', 'from-node', app.processID]])
  await listener.end()
  await app.end()
  console.log('node smoke: ok', where)
}

main().catch((err) => { console.error(err); process.exit(1) })

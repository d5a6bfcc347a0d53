'use strict'
// Durable subscriptions from Node: resume after a restart, acknowledgement, one attached client
// (and waiting), patterns, the 'gap' event with its counts, and the commit metadata.

const test = require('node:test')
const assert = require('node:assert')
const { Client } = require('..')
const { queueDir, runNode } = require('./helpers.js')

async function client (dir, config = {}) {
  const c = new Client({ dir, ...config })
  await c.connect()
  return c
}

// The next `n` notifications (and gaps, as { gap }) a client emits, or a rejection after `ms`.
function next (c, n, ms = 10000) {
  return new Promise((resolve, reject) => {
    const got = []
    const done = () => { c.off('notification', on); c.off('gap', onGap); clearTimeout(timer); resolve(got) }
    const on = (m) => { got.push(m); if (got.length === n) done() }
    const onGap = (g) => { got.push({ gap: g.gap, code: g.code, harkCode: g.harkCode }); if (got.length === n) done() }
    const timer = setTimeout(() => { c.off('notification', on); c.off('gap', onGap); reject(new Error(`got ${got.length} of ${n}`)) }, ms)
    c.on('notification', on)
    c.on('gap', onGap)
  })
}

test('a subscription resumes after its client restarts, from its last acknowledgement', async (t) => {
  const dir = queueDir(t)
  const app = await client(dir)
  let w = await client(dir)
  await w.subscribe('mailer', ['orders.*'])
  assert.strictEqual(w.subscription, 'mailer')
  const first = next(w, 2)
  app.notify('orders.paid', '1')
  app.notify('users.new', 'no')
  app.notify('orders.paid', '2')
  const got = await first
  assert.deepStrictEqual(got.map((m) => m.payload), ['1', '2'])
  assert.ok(got[0].position < got[1].position)
  assert.strictEqual(got[1].txn, got[0].txn + 2)
  assert.ok(got[0].commitTime instanceof Date && Math.abs(Date.now() - got[0].commitTime) < 60000)
  await w.ack(got[0])
  await w.end()
  app.notify('orders.paid', '3')
  w = await client(dir)
  const again = next(w, 2)
  await w.subscribe('mailer', 'orders.*')
  assert.deepStrictEqual((await again).map((m) => m.payload), ['2', '3'])
  await w.end()
  await app.end()
})

test('one client at a time; a second waits or is refused; bad input rejects', async (t) => {
  const dir = queueDir(t)
  const a = await client(dir)
  const b = await client(dir)
  await a.subscribe('s', ['c'])
  await assert.rejects(b.subscribe('s', ['c']), (e) => e.harkCode === 'HARK_ERR_IN_USE' && e.sqlstate === '55006')
  await assert.rejects(b.subscribe('s', ['c'], { ack: 'sometimes' }), /ack must be/)
  await assert.rejects(b.subscribe('', ['c']), (e) => e.harkCode === 'HARK_ERR_INVALID_ARGUMENT')
  await assert.rejects(b.subscribe('none', ['c'], { create: false }), (e) => e.sqlstate === '42704')
  await assert.rejects(a.ack(2 ** 40), (e) => e.harkCode === 'HARK_ERR_INVALID_ARGUMENT')
  // A wrong limit's error names the option as the caller spelled it.
  await assert.rejects(b.subscribe('t', ['c'], { maxLagAge: 1.5 }), /^Error: maxLagAge must be/)
  await assert.rejects(client(dir, { listenerMaxLagAge: -1 }), /^Error: listenerMaxLagAge must be/)
  // A wait that is not a number of milliseconds is refused, not retried for ever.
  for (const wait of ['soon', -1, NaN, {}]) {
    const hung = new Promise((resolve) => setTimeout(() => resolve('still waiting'), 2000).unref())
    const outcome = await Promise.race([b.subscribe('s', ['c'], { wait }).catch((e) => e.harkCode), hung])
    assert.strictEqual(outcome, 'HARK_ERR_INVALID_ARGUMENT', `wait: ${String(wait)}`)
  }
  const waiting = b.subscribe('s', ['c'], { wait: 5000 })
  setTimeout(() => { a.detach() }, 100)
  await waiting
  assert.strictEqual(b.subscription, 's')
  await assert.rejects(a.unsubscribe('s'), (e) => e.harkCode === 'HARK_ERR_IN_USE')
  await b.unsubscribe('s')
  await a.end()
  await b.end()
})

test('a subscription past its lag limit gets one gap event with its counts, then the rest', async (t) => {
  const dir = queueDir(t)
  const app = await client(dir, { segmentSize: 65536, maxQueueSize: 4 << 20 })
  const w = await client(dir)
  await w.subscribe('g', ['c'], { maxLagBytes: 50000 })
  await w.detach()
  const total = 1000
  for (let i = 0; i < total; i++) app.notify('c', `${i} ${'x'.repeat(200)}`)
  const events = []
  const all = new Promise((resolve) => {
    w.on('gap', (g) => events.push(g))
    w.on('notification', (m) => { events.push(m); if (m.payload.startsWith(`${total - 1} `)) resolve() })
  })
  await w.subscribe('g', ['c'], { maxLagBytes: 50000 })
  await all
  const gap = events[0]
  assert.strictEqual(gap.harkCode, 'HARK_ERR_GAP')
  assert.strictEqual(gap.code, 'HK001')
  const rest = events.slice(1).map((m) => Number(m.payload.split(' ')[0]))
  assert.strictEqual(gap.gap.skipped + rest.length, total)
  assert.deepStrictEqual(rest, Array.from({ length: rest.length }, (_, i) => gap.gap.skipped + i))
  assert.ok(gap.gap.lastTxn >= gap.gap.firstTxn)
  await w.end()
  await app.end()
})

test('without a gap listener, a cut listener gets an error event, never silence', async (t) => {
  const dir = queueDir(t)
  const app = await client(dir, { segmentSize: 65536, maxQueueSize: 512 << 10, cutLaggards: true })
  const idle = await client(dir)
  idle.listen('c')
  idle.removeAllListeners('notification')
  const errored = new Promise((resolve) => idle.once('error', resolve))
  for (let i = 0; i < 3000; i++) app.notify('c', `${i} ${'x'.repeat(500)}`) // never HARK_ERR_QUEUE_FULL
  idle.on('notification', () => {})
  const err = await errored
  assert.strictEqual(err.harkCode, 'HARK_ERR_GAP')
  assert.ok(err.gap.skipped > 0)
  await idle.end()
  await app.end()
})

test('stats() reports each listener and subscription with its lag', async (t) => {
  const dir = queueDir(t)
  const app = await client(dir)
  const listener = await client(dir)
  await listener.listen('plain')
  const w = await client(dir)
  await w.subscribe('mailer', ['orders.*', 'exact'], { maxLagBytes: 1000000, maxLagAge: 60000 })
  await w.detach()
  for (let i = 0; i < 3; i++) await app.notify('orders.paid', 'x')
  await app.notify('plain', 'y')
  const st = app.stats()
  assert.ok(st.head > st.tail && st.usage >= 0 && st.usage <= 1)
  assert.strictEqual(st.maxPayload, 7999)
  assert.ok(st.segmentFiles.length >= 1)
  assert.strictEqual(st.receivers.length, 2)
  const plain = st.receivers.find((r) => r.subscription === null || r.subscription === undefined)
  assert.deepStrictEqual([plain.processId, plain.alive, plain.channels], [listener.processID, true, ['plain']])
  assert.strictEqual(plain.lagNotifications, 1)
  assert.ok(plain.lagBytes > 0 && plain.lagAgeMs >= 0 && plain.lagAgeMs < 60000)
  const sub = st.receivers.find((r) => r.subscription === 'mailer')
  assert.deepStrictEqual([sub.processId, sub.alive, sub.channels], [0, false, ['orders.*', 'exact']])
  assert.deepStrictEqual([sub.lagNotifications, sub.maxLagBytes, sub.maxLagAgeMs, sub.gapPending], [3, 1000000, 60000, 0])
  assert.deepStrictEqual(app.subscriptions().map((r) => [r.subscription, r.lagNotifications]), [['mailer', 3]])
  for (const c of [app, listener, w]) await c.end()
  assert.throws(() => app.stats(), (e) => e.code === '08003')
})

test('with automatic acknowledgement, a client killed while handling a notification gets that one again, and all after it', async (t) => {
  const dir = queueDir(t)
  const app = await client(dir)
  // Attached first, so that all five are owed to it.
  const first = await client(dir)
  await first.subscribe('auto', ['c'], { ack: 'auto' })
  await first.end()
  for (let i = 0; i < 5; i++) await app.notify('c', String(i))
  // The consumer takes "0" and handles it, then is killed while handling "1".
  const consumer = runNode(t, `
    const { Client } = require('hark-notify')
    ;(async () => {
      const c = new Client({ dir: process.argv[2] })
      await c.connect()
      await c.subscribe('auto', ['c'], { ack: 'auto' })
      for await (const msg of c.notifications()) {
        console.log('HANDLING ' + msg.payload)
        if (msg.payload === '1') await new Promise(() => {})
      }
    })()
  `, [dir])
  await consumer.waitLine((l) => l === 'HANDLING 1')
  consumer.child.kill('SIGKILL')
  await consumer.exited
  const w = await client(dir)
  const again = next(w, 4)
  await w.subscribe('auto', ['c'], { ack: 'auto' })
  assert.deepStrictEqual((await again).map((m) => m.payload), ['1', '2', '3', '4'])
  await w.end()
  await app.end()
})

test('a subscribed client with nobody listening yet keeps its notifications for the first listener', async (t) => {
  const dir = queueDir(t)
  const app = await client(dir)
  for (const ack of ['auto', 'explicit']) {
    const w = await client(dir)
    await w.subscribe(`s-${ack}`, ['c'], { ack })
    for (let i = 0; i < 3; i++) await app.notify('c', `${ack} ${i}`)
    // Some other work before the handler is attached: the client must not read and drop.
    await new Promise((resolve) => setTimeout(resolve, 100))
    const got = next(w, 3)
    assert.deepStrictEqual((await got).map((m) => m.payload), [0, 1, 2].map((i) => `${ack} ${i}`))
    await w.end()
  }
  await app.end()
})

'use strict'
// for await (const msg of client.notifications({ signal })): ends on abort or end().

const test = require('node:test')
const assert = require('node:assert')
const { Client } = require('..')
const { queueDir, collect, sleep } = require('./helpers.js')

async function pair (t) {
  const dir = queueDir(t)
  const listener = new Client({ dir })
  const notifier = new Client({ dir })
  await listener.connect()
  await notifier.connect()
  t.after(() => Promise.all([listener.end(), notifier.end()]))
  listener.listen('events')
  return { listener, notifier }
}

test('the iterator yields notifications in order and break stops it', async (t) => {
  const { listener, notifier } = await pair(t)
  const it = listener.notifications()
  await notifier.query("BEGIN; NOTIFY events, 'a'; NOTIFY events, 'b'; NOTIFY events, 'c'; COMMIT")
  const got = []
  for await (const msg of it) {
    got.push(msg)
    if (got.length === 3) break
  }
  assert.deepStrictEqual(got.map((m) => m.payload), ['a', 'b', 'c'])
  assert.strictEqual(got[0].processId, notifier.processID)
  assert.strictEqual(listener.listenerCount('notification'), 0, 'break removed the iterator\'s listener')
  assert.deepStrictEqual(await it.next(), { value: undefined, done: true })
})

test('an abort signal ends a waiting iteration at once', async (t) => {
  const { listener, notifier } = await pair(t)
  const ac = new AbortController()
  const got = []
  const loop = (async () => {
    for await (const msg of listener.notifications({ signal: ac.signal })) {
      got.push(msg.payload)
      if (got.length === 2) ac.abort()
    }
  })()
  notifier.notify('events', '1')
  notifier.notify('events', '2')
  await loop
  assert.deepStrictEqual(got, ['1', '2'])
  notifier.notify('events', '3')
  await sleep(50)
  assert.deepStrictEqual(got, ['1', '2'])
  assert.strictEqual(listener.listenerCount('notification'), 0)
})

test('a signal aborted while nothing arrives ends the loop; an aborted signal yields nothing', async (t) => {
  const { listener } = await pair(t)
  const started = performance.now()
  let count = 0
  for await (const _ of listener.notifications({ signal: AbortSignal.timeout(100) })) count++ // eslint-disable-line no-unused-vars
  assert.strictEqual(count, 0)
  assert.ok(performance.now() - started >= 90, 'waited for the signal')
  const ac = new AbortController()
  ac.abort()
  for await (const _ of listener.notifications({ signal: ac.signal })) count++ // eslint-disable-line no-unused-vars
  assert.strictEqual(count, 0)
})

test('end() ends the iteration after what was already received', async (t) => {
  const { listener, notifier } = await pair(t)
  const it = listener.notifications()
  // Registered after the iterator, so once it has both, the iterator has them too (unconsumed).
  const both = collect(listener, 2)
  await notifier.query("BEGIN; NOTIFY events, 'x'; NOTIFY events, 'y'; COMMIT")
  await both
  await listener.end()
  const got = []
  for await (const msg of it) got.push(msg.payload)
  assert.deepStrictEqual(got, ['x', 'y'])
  assert.deepStrictEqual(await listener.notifications().next(), { value: undefined, done: true })
})

test('a client error rejects a waiting iteration', async (t) => {
  const { listener } = await pair(t)
  const it = listener.notifications()
  const waiting = it.next()
  const boom = Object.assign(new Error('boom'), { code: 'HARK_ERR_IO' })
  listener.emit('error', boom)
  await assert.rejects(waiting, (e) => e === boom)
  assert.deepStrictEqual(await it.next(), { value: undefined, done: true })
})

test('two iterators and a listener each get every notification', async (t) => {
  const { listener, notifier } = await pair(t)
  const a = listener.notifications()
  const b = listener.notifications()
  const seen = []
  listener.on('notification', (m) => seen.push(m.payload))
  notifier.notify('events', 'one')
  notifier.notify('events', 'two')
  assert.deepStrictEqual([(await a.next()).value.payload, (await a.next()).value.payload], ['one', 'two'])
  assert.deepStrictEqual([(await b.next()).value.payload, (await b.next()).value.payload], ['one', 'two'])
  assert.deepStrictEqual(seen, ['one', 'two'])
  await a.return()
  await b.return()
})

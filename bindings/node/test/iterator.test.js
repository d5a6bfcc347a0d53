'use strict'
// for await (const msg of client.notifications({ signal })): pulls as the loop asks; ends on abort or
// end().

const test = require('node:test')
const assert = require('node:assert')
const { Client } = require('..')
const { queueDir, collect, waitFor, sleep } = require('./helpers.js')

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
  const boom = Object.assign(new Error('boom'), { harkCode: 'HARK_ERR_IO' })
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

// Notifications sent in one transaction, `${prefix}-0` … `${prefix}-${n-1}`.
async function backlog (notifier, prefix, n) {
  await notifier.transaction(() => {
    for (let i = 0; i < n; i++) notifier.notify('events', `${prefix}-${i}`)
  })
}

// CPU time (user + system, all threads) this process spends while `ms` pass.
async function cpuDuring (ms) {
  const before = process.cpuUsage()
  await sleep(ms)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / 1000
}

test('the iterator takes as its consumer asks: a backlog waits in the queue, not in memory', async (t) => {
  const { listener, notifier } = await pair(t)
  const N = 10000
  const it = listener.notifications()
  await backlog(notifier, 'm', N)
  const got = []
  for (let i = 0; i < 3 * 1024 + 1; i++) got.push((await it.next()).value.payload)
  // The consumer pauses. The client must take nothing meanwhile, and spin neither the event loop
  // nor poll the session: the notifications not yet asked for stay in the queue.
  const cpuMs = await cpuDuring(300)
  t.diagnostic(`CPU while paused: ${cpuMs.toFixed(1)} ms in 300 ms`)
  assert.ok(cpuMs < 150, `${cpuMs.toFixed(0)} ms of CPU in 300 ms while the consumer paused`)
  assert.ok(notifier.queueUsage() > 0, 'the backlog is still in the queue')
  for (let i = got.length; i < N; i++) got.push((await it.next()).value.payload)
  assert.deepStrictEqual(got, Array.from({ length: N }, (_, i) => `m-${i}`))
  await it.return()
  assert.strictEqual(notifier.queueUsage(), 0)
})

test('a consumer that stops asking holds the queue, as a PostgreSQL client that stops reading', async (t) => {
  const dir = queueDir(t)
  const listener = new Client({ dir, maxQueueSize: 512 * 1024 }) // PostgreSQL's minimum: 64 pages
  const notifier = new Client({ dir })
  await listener.connect()
  await notifier.connect()
  t.after(() => Promise.all([listener.end(), notifier.end()]))
  listener.listen('events')
  const it = listener.notifications()
  const first = it.next()
  notifier.notify('events', 'first')
  assert.strictEqual((await first).value.payload, 'first')
  // The consumer is busy; the notifier goes on, giving the event loop turns, until the queue is
  // full or it sent eight times what the queue holds.
  const pad = 'x'.repeat(4000)
  let sent = 0
  let error = null
  while (sent < 1000) {
    try {
      await notifier.notify('events', `${sent} ${pad}`)
    } catch (e) {
      error = e
      break
    }
    if (++sent % 10 === 0) await new Promise(setImmediate)
  }
  assert.strictEqual(error && error.harkCode, 'HARK_ERR_QUEUE_FULL', `${sent} sent without filling the queue`)
  for (let i = 0; i < sent; i++) {
    const { value } = await it.next()
    if (value.payload !== `${i} ${pad}`) assert.fail(`notification ${i} is ${value.payload.slice(0, 20)}`)
  }
  notifier.notify('events', 'after') // room again
  assert.strictEqual((await it.next()).value.payload, 'after')
  await it.return()
})

test('two iterators without a listener: the one that asks does not wait for the other', async (t) => {
  const { listener, notifier } = await pair(t)
  const a = listener.notifications()
  const b = listener.notifications()
  notifier.notify('events', 'one')
  notifier.notify('events', 'two')
  assert.deepStrictEqual([(await a.next()).value.payload, (await a.next()).value.payload], ['one', 'two'])
  assert.deepStrictEqual([(await b.next()).value.payload, (await b.next()).value.payload], ['one', 'two'])
  await a.return()
  await b.return()
})

test('while iterators are busy, a new notification listener gets the backlog; ending them lets the client read on', async (t) => {
  const { listener, notifier } = await pair(t)
  const it = listener.notifications()
  await backlog(notifier, 'a', 10000)
  assert.strictEqual((await it.next()).value.payload, 'a-0')
  await sleep(50)
  assert.ok(notifier.queueUsage() > 0, 'paused for the busy iterator')
  // Events are pushed, as in node-postgres: the client takes everything for the listener, and
  // the iterator keeps what it did not yet yield.
  const heard = collect(listener, 10000 - 1024)
  await heard
  assert.strictEqual(notifier.queueUsage(), 0)
  listener.removeAllListeners('notification')
  let n = 1
  for await (const msg of it) {
    assert.strictEqual(msg.payload, `a-${n}`)
    if (++n === 10000) break
  }
  // Nobody consumes now: what arrives is read and dropped, so the session does not hold the
  // queue (node-postgres drops notifications nobody listens to).
  const ac = new AbortController()
  const it2 = listener.notifications({ signal: ac.signal })
  await backlog(notifier, 'b', 10000)
  await sleep(50)
  assert.ok(notifier.queueUsage() > 0, 'held for the iterator that has not asked yet')
  ac.abort()
  // The queue empties when the session has read the backlog; the session may still hold up to a
  // read's worth (4,096) not yet taken and dropped: wait for both.
  await waitFor(() => notifier.queueUsage() === 0 && listener._session.status() === 0, 'the client to read on after the abort')
  assert.deepStrictEqual(await it2.next(), { value: undefined, done: true })
  const it3 = listener.notifications()
  notifier.notify('events', 'c')
  assert.strictEqual((await it3.next()).value.payload, 'c', 'a new iterator gets notifications from its start')
  await it3.return()
})

'use strict'
// Delivery: exactly once and in order under a burst of 100,000 notifications, without blocking
// the event loop, within one process and across processes and languages (the Rust peer).

const test = require('node:test')
const assert = require('node:assert')
const { Client } = require('..')
const { queueDir, peerPath, run, runNode, collect } = require('./helpers.js')

const BURST = 100000

// Receives `n` notifications, counting the timer ticks between the first and the last: a delivery
// that held the event loop for the whole burst would let no timer run in between.
function receiveBurst (client, n, ms = 120000) {
  return new Promise((resolve, reject) => {
    const messages = []
    let ticks = 0
    let ticksAtFirst = 0
    let firstAt = 0
    const timer = setInterval(() => ticks++, 1)
    const deadline = setTimeout(() => {
      clearInterval(timer)
      client.off('notification', on)
      reject(new Error(`timed out with ${messages.length} of ${n} notifications`))
    }, ms)
    function on (m) {
      if (messages.push(m) === 1) { ticksAtFirst = ticks; firstAt = performance.now() }
      if (messages.length === n) {
        clearInterval(timer)
        clearTimeout(deadline)
        client.off('notification', on)
        resolve({ messages, ticksBetween: ticks - ticksAtFirst, firstToLastMs: performance.now() - firstAt })
      }
    }
    client.on('notification', on)
  })
}

// Checks payloads `${prefix}-0` … `${prefix}-${n-1}`, each exactly once and in order.
function assertSequence (messages, prefix, n, pid) {
  assert.strictEqual(messages.length, n)
  for (let i = 0; i < n; i++) {
    const m = messages[i]
    if (m.payload !== `${prefix}-${i}` || (pid !== undefined && m.processId !== pid)) {
      assert.fail(`message ${i} is ${JSON.stringify(m)}, expected payload ${prefix}-${i}`)
    }
  }
}

async function connected (t, dir) {
  const c = new Client({ dir })
  await c.connect()
  t.after(() => c.end())
  return c
}

test(`a burst of ${BURST} notifications in one process: exactly once, in order, loop kept turning`, async (t) => {
  const dir = queueDir(t)
  const listener = await connected(t, dir)
  const notifier = await connected(t, dir)
  listener.listen('burst')
  const received = receiveBurst(listener, BURST)
  const start = performance.now()
  // 1,000 transactions of 100; one notifier fixes the order.
  for (let i = 0; i < BURST; i += 100) {
    await notifier.transaction(async () => {
      for (let k = i; k < i + 100; k++) notifier.notify('burst', `n-${k}`)
    })
  }
  const sentMs = performance.now() - start
  const { messages, ticksBetween, firstToLastMs } = await received
  const ms = performance.now() - start
  assertSequence(messages, 'n', BURST, notifier.processID)
  // About one tick per batch of 1,024 when every batch gives the loop a turn; a delivery that
  // held the loop (batches emitted back to back) lets through only one or two.
  assert.ok(ticksBetween >= 10, `timers ran ${ticksBetween} times while the burst was being delivered`)
  t.diagnostic(`Node -> Node in one process: sent in ${sentMs.toFixed(0)} ms, all received after ${ms.toFixed(0)} ms ` +
    `(${Math.round(BURST / (ms / 1000))}/s; first to last ${firstToLastMs.toFixed(0)} ms, ${ticksBetween} timer ticks in between)`)
})

test(`a burst of ${BURST} from the Rust peer in another process reaches a Node listener exactly once, in order`, async (t) => {
  const dir = queueDir(t)
  const listener = await connected(t, dir)
  listener.listen('burst')
  const received = receiveBurst(listener, BURST)
  const start = performance.now()
  const peer = run(t, peerPath(), ['notify', dir, 'burst', 'rust', String(BURST), '100'])
  const { messages, ticksBetween } = await received
  const ms = performance.now() - start
  const peerPid = Number((await peer.waitLine((l) => l.startsWith('SENT '))).split(' ')[2])
  assert.strictEqual((await peer.exited).code, 0)
  assertSequence(messages, 'rust', BURST, peerPid)
  assert.ok(ticksBetween >= 10, `timers ran ${ticksBetween} times while the burst was being delivered`)
  t.diagnostic(`Rust peer (100 per commit) -> Node listener: ${BURST} in ${ms.toFixed(0)} ms, ${Math.round(BURST / (ms / 1000))} notifications/s, ${ticksBetween} timer ticks first to last`)
})

test('one notification per transaction from the Rust peer, timed', async (t) => {
  const dir = queueDir(t)
  const listener = await connected(t, dir)
  listener.listen('single')
  const n = 20000
  const got = collect(listener, n, 120000)
  const start = performance.now()
  const peer = run(t, peerPath(), ['notify', dir, 'single', 's', String(n), '1'])
  const all = await got
  const ms = performance.now() - start
  assertSequence(all, 's', n)
  assert.strictEqual((await peer.exited).code, 0)
  t.diagnostic(`Rust peer, one per commit -> Node listener: ${n} in ${ms.toFixed(0)} ms, ${Math.round(n / (ms / 1000))} notifications/s`)
})

test('a Node notifier reaches the Rust peer listener, with the sender\'s PID', async (t) => {
  const dir = queueDir(t)
  const peer = run(t, peerPath(), ['listen', dir, 'to-rust', '1000', '30'])
  await peer.waitLine((l) => l.startsWith('READY '))
  const notifier = await connected(t, dir)
  for (let i = 0; i < 1000; i += 50) {
    await notifier.transaction(async () => {
      for (let k = i; k < i + 50; k++) notifier.notify('to-rust', `node-${k}`)
    })
  }
  const { code, stderr } = await peer.exited
  assert.strictEqual(code, 0, stderr)
  const lines = peer.lines.filter((l) => !l.startsWith('READY '))
  assert.strictEqual(lines.length, 1000)
  lines.forEach((l, i) => assert.strictEqual(l, `to-rust\tnode-${i}\t${process.pid}`))
})

test('Node to Node across processes, both ways, in one commit order', async (t) => {
  const dir = queueDir(t)
  const listener = await connected(t, dir)
  listener.listen('x')
  const got = collect(listener, 2000, 60000)
  // Two notifier processes at once: each one's messages arrive in its own order, all exactly once.
  const script = `
    const { Client } = require('hark-notify')
    const [dir, prefix] = process.argv.slice(2)
    const c = new Client({ dir })
    c.connect().then(async () => {
      for (let i = 0; i < 1000; i++) c.notify('x', prefix + '-' + i)
      console.log('SENT ' + c.processID)
      await c.end()
    })`
  const a = runNode(t, script, [dir, 'a'])
  const b = runNode(t, script, [dir, 'b'])
  const all = await got
  const pidA = Number((await a.waitLine((l) => l.startsWith('SENT '))).split(' ')[1])
  const pidB = Number((await b.waitLine((l) => l.startsWith('SENT '))).split(' ')[1])
  assertSequence(all.filter((m) => m.payload.startsWith('a-')), 'a', 1000, pidA)
  assertSequence(all.filter((m) => m.payload.startsWith('b-')), 'b', 1000, pidB)
  assert.strictEqual((await a.exited).code, 0)
  assert.strictEqual((await b.exited).code, 0)

  // The other direction: a Node listener process hears this process.
  const lscript = `
    const { Client } = require('hark-notify')
    const c = new Client({ dir: process.argv[2] })
    c.connect().then(() => {
      c.listen('back')
      console.log('READY')
      let n = 0
      c.on('notification', (m) => {
        console.log(m.channel + ' ' + m.payload + ' ' + m.processId)
        if (++n === 3) c.end()
      })
    })`
  const l = runNode(t, lscript, [dir])
  await l.waitLine((x) => x === 'READY')
  await listener.query("BEGIN; NOTIFY back, '1'; NOTIFY back, '2'; COMMIT; NOTIFY back, '3'")
  const { code, stderr } = await l.exited
  assert.strictEqual(code, 0, stderr)
  assert.deepStrictEqual(l.lines.slice(1), [`back 1 ${process.pid}`, `back 2 ${process.pid}`, `back 3 ${process.pid}`])
})

test('a listener that joined late hears only what committed after its LISTEN', async (t) => {
  const dir = queueDir(t)
  const notifier = await connected(t, dir)
  const early = await connected(t, dir)
  early.listen('late')
  notifier.notify('late', 'before')
  await collect(early, 1)
  const late = await connected(t, dir)
  late.listen('late')
  const got = collect(late, 1)
  notifier.notify('late', 'after')
  assert.deepStrictEqual((await got).map((m) => m.payload), ['after'])
})

test('round trips between two Node processes (latency, for the record)', async (t) => {
  const dir = queueDir(t)
  const echo = runNode(t, `
    const { Client } = require('hark-notify')
    const c = new Client({ dir: process.argv[2] })
    c.connect().then(() => {
      c.listen('ping')
      c.on('notification', (m) => { if (m.payload === 'stop') c.end(); else c.notify('pong', m.payload) })
      console.log('READY')
    })`, [dir])
  await echo.waitLine((l) => l === 'READY')
  const c = await connected(t, dir)
  c.listen('pong')
  const rounds = 500
  const rtts = []
  let waiting = null
  c.on('notification', (m) => waiting(m))
  for (let i = 0; i < rounds; i++) {
    const start = performance.now()
    const reply = new Promise((resolve) => { waiting = resolve })
    c.notify('ping', String(i))
    const m = await reply
    rtts.push(performance.now() - start)
    assert.strictEqual(m.payload, String(i))
  }
  c.notify('ping', 'stop')
  assert.strictEqual((await echo.exited).code, 0)
  rtts.sort((a, b) => a - b)
  const q = (f) => (rtts[Math.floor(f * (rtts.length - 1))] * 1000).toFixed(0)
  t.diagnostic(`Node <-> Node process round trip (notify, wake, emit, notify back): p50 ${q(0.5)} µs, p99 ${q(0.99)} µs over ${rounds}`)
})

'use strict'
// A client keeps the process alive while it is open, as node-postgres' socket does, and never
// after end(), nor after unref() while it only waits. Each case runs in a child process.

const test = require('node:test')
const assert = require('node:assert')
const { queueDir, runNode, sleep } = require('./helpers.js')

// Connects, LISTENs, prints READY, then does `then` (JS source) with `c` in scope.
function listenerScript (then) {
  return `
    const { Client } = require('hark-notify')
    const c = new Client({ dir: process.argv[2] })
    c.connect().then(async () => {
      c.listen('events')
      c.on('notification', (m) => console.log('GOT ' + m.payload))
      console.log('READY')
      ${then}
    })`
}

async function exitsBy (t, script, dir, ms) {
  const p = runNode(t, script, [dir], { deadlineMs: ms })
  const started = performance.now()
  const { code, signal, stderr } = await p.exited
  assert.strictEqual(signal, null, `still running after ${ms} ms (killed); stderr: ${stderr}`)
  assert.strictEqual(code, 0, stderr)
  return { lines: p.lines, ms: performance.now() - started }
}

test('the process exits after end()', async (t) => {
  const { lines } = await exitsBy(t, listenerScript('await c.end(); console.log("ENDED")'), queueDir(t), 10000)
  assert.deepStrictEqual(lines, ['READY', 'ENDED'])
})

test('the process exits after end() called while a notification iterator is pending', async (t) => {
  const script = listenerScript(`
    setTimeout(() => c.end(), 50)
    for await (const m of c.notifications()) console.log('GOT ' + m.payload)
    console.log('ITERATION ENDED')`)
  const { lines } = await exitsBy(t, script, queueDir(t), 10000)
  assert.deepStrictEqual(lines, ['READY', 'ITERATION ENDED'])
})

test('the process exits while an unref()ed client waits for notifications', async (t) => {
  const { lines } = await exitsBy(t, listenerScript('c.unref()'), queueDir(t), 10000)
  assert.deepStrictEqual(lines, ['READY'])
})

test('an open client keeps the process alive (so the tests above can fail)', async (t) => {
  const p = runNode(t, listenerScript(''), [queueDir(t)], { deadlineMs: 30000 })
  await p.waitLine((l) => l === 'READY')
  await sleep(1000)
  assert.strictEqual(p.child.exitCode, null, 'the listener process is still running')
  p.child.kill('SIGTERM')
  await p.exited
})

test('an unref()ed client still delivers while something else keeps the process alive', async (t) => {
  const dir = queueDir(t)
  const p = runNode(t, listenerScript(`
    c.unref()
    const keep = setInterval(() => {}, 1000)
    c.on('notification', () => { clearInterval(keep) })`), [dir], { deadlineMs: 20000 })
  await p.waitLine((l) => l === 'READY')
  const { Client } = require('..')
  const n = new Client({ dir })
  await n.connect()
  n.notify('events', 'while unrefed')
  await n.end()
  const { code, signal, stderr } = await p.exited
  assert.strictEqual(signal, null, 'exits once the interval is cleared')
  assert.strictEqual(code, 0, stderr)
  assert.deepStrictEqual(p.lines, ['READY', 'GOT while unrefed'])
})

test('ref() after unref() keeps the process alive again', async (t) => {
  const p = runNode(t, listenerScript('c.unref(); c.ref()'), [queueDir(t)], { deadlineMs: 30000 })
  await p.waitLine((l) => l === 'READY')
  await sleep(1000)
  assert.strictEqual(p.child.exitCode, null)
  p.child.kill('SIGTERM')
  await p.exited
})

test('a client that was never connected, or failed to connect, does not hold the process', async (t) => {
  const script = `
    const { Client } = require('hark-notify')
    new Client({ dir: process.argv[2] })
    const bad = new Client({ dir: '/proc/hark-cannot-be-created-here' })
    bad.connect().catch((e) => console.log('CONNECT FAILED ' + e.harkCode))`
  const { lines } = await exitsBy(t, script, queueDir(t), 10000)
  assert.strictEqual(lines.length, 1)
  assert.match(lines[0], /^CONNECT FAILED HARK_ERR_/)
})

test('a listener does not busy-poll: before and after a wake-up, its process uses next to no CPU', async (t) => {
  const dir = queueDir(t)
  const script = listenerScript(`
    const before = process.cpuUsage()
    setTimeout(async () => {
      const used = process.cpuUsage(before)
      console.log('CPU ' + (used.user + used.system))
      await c.end()
    }, 1500)`)
  const p = runNode(t, script, [dir], { deadlineMs: 20000 })
  await p.waitLine((l) => l === 'READY')
  await sleep(200)
  const { Client } = require('..')
  const n = new Client({ dir })
  await n.connect()
  n.notify('events', 'wake up once')
  await n.end()
  const { code, stderr } = await p.exited
  assert.strictEqual(code, 0, stderr)
  assert.ok(p.lines.includes('GOT wake up once'))
  const micros = Number(p.lines.find((l) => l.startsWith('CPU ')).slice(4))
  // A waiter or event loop spinning on the descriptor would use about 1,500,000 µs here.
  assert.ok(micros < 300000, `used ${micros} µs of CPU in 1.5 s of waiting`)
  t.diagnostic(`CPU used by a listener process in 1.5 s with one wake-up: ${micros} µs`)
})

test('in a worker thread: the worker exits after end(), and terminating one with an open client is clean', async (t) => {
  const script = `
    const { Worker } = require('node:worker_threads')
    const { Client } = require('hark-notify')
    const dir = process.argv[2]
    const body = \`
      const { parentPort, workerData } = require('node:worker_threads')
      const { Client } = require('hark-notify')
      const c = new Client({ dir: workerData.dir })
      c.connect().then(() => {
        c.listen('events')
        c.on('notification', (m) => {
          parentPort.postMessage('GOT ' + m.payload)
          if (workerData.end) c.end()
        })
        parentPort.postMessage('READY')
      })\`
    function start (end) {
      const w = new Worker(body, { eval: true, workerData: { dir, end } })
      return new Promise((resolve) => w.on('message', async (m) => {
        console.log(m)
        if (m === 'READY') {
          const n = new Client({ dir })
          await n.connect()
          n.notify('events', end ? 'then end' : 'then terminate')
          await n.end()
        } else if (!end) {
          await w.terminate()
        }
      }).on('exit', (code) => { console.log('EXIT ' + code); resolve() }))
    }
    start(true).then(() => start(false))`
  const p = runNode(t, script, [queueDir(t)], { deadlineMs: 20000 })
  const { code, signal, stderr } = await p.exited
  assert.strictEqual(signal, null, stderr)
  assert.strictEqual(code, 0, stderr)
  // terminate() ends a worker with exit code 1.
  assert.deepStrictEqual(p.lines, ['READY', 'GOT then end', 'EXIT 0', 'READY', 'GOT then terminate', 'EXIT 1'])
})

'use strict'
// A panic inside the addon (a bug in hark) is thrown as an Error with code 'HARK_ERR_PANIC', the
// process goes on, and the session it happened in is closed. A panic is injected through a hidden
// method that only the test build of the addon has (cargo feature `test-panic`, built by `make
// test-node` into target/test-panic/addon); this file loads that build in place of the released
// one, which must not have the hook. Rust's report of each injected panic on standard error is
// expected.

const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
const path = require('node:path')
const Module = require('node:module')
const { REPO, queueDir, collect, waitFor } = require('./helpers.js')

const released = require('../index.js')

function testAddon () {
  const target = path.resolve(REPO, process.env.CARGO_TARGET_DIR || 'target')
  const p = path.join(target, 'test-panic', 'addon', 'index.js')
  if (!fs.existsSync(p)) {
    throw new Error(`${p} is missing: build the test addon as \`make test-node\` does (napi build --features test-panic)`)
  }
  return require(p)
}

// lib/client.js over the test build: its require('../index.js') finds the test build in the cache.
const native = testAddon()
const indexPath = require.resolve('../index.js')
const substitute = new Module(indexPath, module)
substitute.exports = native
substitute.loaded = true
require.cache[indexPath] = substitute
delete require.cache[require.resolve('../lib/client.js')]
const { Client } = require('../lib/client.js')

test('the released addon has no test hook', () => {
  assert.strictEqual(typeof native.Connection.prototype._panicForTest, 'function', 'the test build has it')
  assert.strictEqual(released.Connection.prototype._panicForTest, undefined)
})

test('a panic in a call becomes an HARK_ERR_PANIC error and closes the session', async (t) => {
  const dir = queueDir(t)
  const s = await native.open(dir)
  t.after(() => s.close())
  s.listen('events')
  assert.throws(() => s._panicForTest('now'), (err) => {
    assert.ok(err instanceof Error)
    assert.strictEqual(err.harkCode, 'HARK_ERR_PANIC')
    assert.strictEqual(err.code, 'XX000')
    assert.match(err.message, /^internal error in hark: a panic inside the session \(test hook\); the connection was closed$/)
    return true
  })
  assert.strictEqual(s.closed, true)
  assert.throws(() => s.listen('other'), { harkCode: 'HARK_ERR_CLOSED' })
  assert.throws(() => s.take(10), { harkCode: 'HARK_ERR_CLOSED' })
  assert.throws(() => s.listeningChannels(), { harkCode: 'HARK_ERR_CLOSED' })
  s.close() // closing again is a no-op

  // The process, the queue and other sessions on it go on; the closed session's listener slot was
  // freed, so it does not hold the queue's tail.
  const other = await native.open(dir)
  t.after(() => other.close())
  other.listen('events')
  other.notify('events', 'after the panic')
  assert.deepStrictEqual(other.take(10).map((n) => n.payload), ['after the panic'])
  assert.strictEqual(other.queueUsage(), 0)
})

test('a panic while receiving reaches the client as an error event; the client is closed', async (t) => {
  const dir = queueDir(t)
  const listener = new Client({ dir })
  await listener.connect()
  t.after(() => listener.end())
  const bystander = new Client({ dir })
  await bystander.connect()
  t.after(() => bystander.end())
  const notifier = new Client({ dir })
  await notifier.connect()
  t.after(() => notifier.end())
  listener.listen('events')
  bystander.listen('events')
  const errors = []
  listener.on('error', (err) => errors.push(err))
  listener.on('notification', () => assert.fail('the session panicked before delivering'))
  listener._session._panicForTest('take') // the next take reads the queue, then panics
  const heard = collect(bystander, 1)
  notifier.notify('events', 'x')
  await waitFor(() => errors.length > 0, 'the error event')
  assert.strictEqual(errors.length, 1)
  assert.strictEqual(errors[0].harkCode, 'HARK_ERR_PANIC')
  assert.match(errors[0].message, /a panic inside take \(test hook\)/)
  await assert.rejects(listener.listen('other'), { harkCode: 'HARK_ERR_CLOSED', code: '08003' })
  await assert.rejects(listener.query('SELECT 1'), { harkCode: 'HARK_ERR_CLOSED' })
  assert.deepStrictEqual((await heard).map((m) => m.payload), ['x'])
  notifier.notify('events', 'y')
  assert.deepStrictEqual((await collect(bystander, 1)).map((m) => m.payload), ['y'])
})

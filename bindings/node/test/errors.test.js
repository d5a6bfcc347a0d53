'use strict'
// Errors are Error objects with node-postgres' DatabaseError fields: `code` is PostgreSQL's
// SQLSTATE, `message` its text, `severity`, `detail`, `hint`, `position`; hark's own identity, the
// C constant's name, is `harkCode`.

const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
const path = require('node:path')
const { Client } = require('..')
const { queueDir, collect, waitFor, sleep, rejectsWithHarkCode } = require('./helpers.js')

async function connected (t, dir, config = {}) {
  const c = new Client({ dir, ...config })
  await c.connect()
  t.after(() => c.end())
  return c
}

test('HARK_ERR_INVALID_ARGUMENT: PostgreSQL\'s texts for bad channels and payloads', async (t) => {
  const c = await connected(t, queueDir(t))
  const cases = [
    [() => c.notify('', 'x'), 'channel name cannot be empty'],
    [() => c.notify('x'.repeat(64), 'x'), 'channel name too long'],
    [() => c.listen('x'.repeat(64)), 'channel name too long'],
    [() => c.notify('events', 'x'.repeat(8000)), 'payload string too long'],
    [() => c.notify('events', 'a\u0000b'), 'invalid byte sequence for encoding "UTF8": 0x00']
  ]
  for (const [fn, message] of cases) {
    const err = await rejectsWithHarkCode(assert, fn, 'HARK_ERR_INVALID_ARGUMENT', message)
    assert.match(err.code, /^22/)
  }
  const long = await rejectsWithHarkCode(assert, () => c.query(`SELECT pg_notify('events', '${'x'.repeat(8000)}')`),
    'HARK_ERR_INVALID_ARGUMENT', 'payload string too long')
  assert.strictEqual(long.code, '22023')
  await c.notify('events', 'x'.repeat(7999)) // the limit itself is accepted, as in PostgreSQL
  await rejectsWithHarkCode(assert, () => new Client({ dir: queueDir(t), maxQueueSize: -1 }).connect(), 'HARK_ERR_INVALID_ARGUMENT')
})

test('HARK_ERR_SYNTAX: code 42601 and the position, as node-postgres\' DatabaseError', async (t) => {
  const c = await connected(t, queueDir(t))
  const err = await rejectsWithHarkCode(assert, () => c.query('SELEC 1'), 'HARK_ERR_SYNTAX', 'syntax error at or near "SELEC"')
  assert.strictEqual(err.code, '42601')
  assert.strictEqual(err.severity, 'ERROR')
  assert.strictEqual(err.position, '1') // text, as node-postgres gives it
  assert.ok(err instanceof Error)
  const later = await rejectsWithHarkCode(assert, () => c.query('SELECT pg_notify(1,'), 'HARK_ERR_SYNTAX')
  assert.strictEqual(later.position, '20')
  // What node-postgres code tests, unchanged.
  try {
    await c.query('SELEC 1')
    assert.fail('resolved')
  } catch (e) {
    assert.ok(e.code === '42601', 'a node-postgres syntax-error check matches')
  }
})

test('every field node-postgres\' DatabaseError has and hark fills: code, severity, detail, hint', async (t) => {
  const c = await connected(t, queueDir(t))
  const deep = await rejectsWithHarkCode(assert, () => c.query('SELECT ' + '('.repeat(300) + '1' + ')'.repeat(300)), 'HARK_ERR_SYNTAX')
  assert.deepStrictEqual([deep.code, deep.sqlstate, deep.severity, deep.message], ['54001', '54001', 'ERROR', 'stack depth limit exceeded'])
  assert.match(deep.hint, /at most 256 levels/)
  const missing = await rejectsWithHarkCode(assert, () => new Client({ dir: queueDir(t), create: false }).connect(), 'HARK_ERR_IO')
  assert.strictEqual(missing.code, '3D000')
  assert.strictEqual(missing.position, undefined)
  const populated = queueDir(t)
  fs.mkdirSync(populated, { mode: 0o700 })
  fs.writeFileSync(path.join(populated, 'notes.txt'), 'mine')
  const notEmpty = await rejectsWithHarkCode(assert, () => new Client(populated).connect(), 'HARK_ERR_PERMISSION_DENIED')
  assert.strictEqual(notEmpty.code, '55000')
  assert.strictEqual(typeof notEmpty.hint, 'string')
  const notices = []
  c.on('notice', (n) => notices.push(n))
  await c.query('BEGIN')
  await c.query('BEGIN')
  await c.query('ROLLBACK')
  assert.deepStrictEqual(notices.map((n) => [n.severity, n.code, n.sqlstate, n.message]),
    [['WARNING', '25001', '25001', 'there is already a transaction in progress']])
})

test('HARK_ERR_TRANSACTION_STATE: savepoints outside a block, an aborted block', async (t) => {
  const c = await connected(t, queueDir(t))
  await rejectsWithHarkCode(assert, () => c.query('SAVEPOINT s'), 'HARK_ERR_TRANSACTION_STATE',
    'SAVEPOINT can only be used in transaction blocks')
  await c.query('BEGIN')
  await rejectsWithHarkCode(assert, () => c.query('SELEC 1'), 'HARK_ERR_SYNTAX')
  const err = await rejectsWithHarkCode(assert, () => c.query("NOTIFY events, 'x'"), 'HARK_ERR_TRANSACTION_STATE',
    'current transaction is aborted, commands ignored until end of transaction block')
  assert.strictEqual(err.code, '25P02')
  await rejectsWithHarkCode(assert, () => c.notify('events', 'x'), 'HARK_ERR_TRANSACTION_STATE')
  const r = await c.query('COMMIT')
  assert.strictEqual(r.command, 'ROLLBACK', 'COMMIT of a failed block rolls back, as PostgreSQL reports it')
})

test('HARK_ERR_QUEUE_FULL: the failing transaction leaves nothing, others go on', async (t) => {
  const dir = queueDir(t)
  const maxQueueSize = 512 * 1024 // PostgreSQL's minimum: 64 pages
  const stuck = await connected(t, dir, { maxQueueSize })
  const reader = await connected(t, dir)
  const notifier = await connected(t, dir)
  // `stuck` listens but stays in a transaction block, so it never reads and pins the queue.
  await stuck.listen('events')
  await stuck.query('BEGIN')
  await reader.listen('events')
  const received = []
  reader.on('notification', (m) => received.push(m.payload))
  const notices = []
  notifier.on('notice', (n) => notices.push(n))
  const payload = 'p'.repeat(7000)
  let sent = 0
  let error = null
  for (let i = 0; i < 200 && error === null; i++) {
    try {
      await notifier.notify('events', `${i}:${payload}`)
      sent++
    } catch (e) {
      error = e
    }
  }
  assert.ok(error, 'the queue filled up')
  assert.strictEqual(error.harkCode, 'HARK_ERR_QUEUE_FULL')
  assert.strictEqual(error.message, 'too many notifications in the NOTIFY queue')
  assert.strictEqual(error.code, '54000')
  assert.match(error.detail, /at most 524288 bytes/)
  assert.ok(notices.some((n) => n.severity === 'WARNING' && /NOTIFY queue is \d+% full/.test(n.message)),
    'the half-full warning reached the notifier')

  // A multi-notification transaction that does not fit fails whole.
  await rejectsWithHarkCode(assert, () => notifier.transaction(async () => {
    for (let i = 0; i < 5; i++) await notifier.notify('events', `txn-${i}:${payload}`)
  }), 'HARK_ERR_QUEUE_FULL')

  await waitFor(() => received.length >= sent, 'every committed notification')
  await sleep(50) // and nothing of the failed transactions
  assert.strictEqual(received.length, sent)
  assert.ok(received.every((p, i) => p === `${i}:${payload}`), 'every committed notification, nothing of the failed ones')

  // Once the stuck listener reads, the queue drains and notifying works again.
  const late = collect(stuck, sent, 30000)
  await stuck.query('COMMIT')
  assert.strictEqual((await late).length, sent)
  await notifier.notify('events', 'fits again')
})

test('HARK_ERR_PERMISSION_DENIED and HARK_ERR_CORRUPTED when opening', async (t) => {
  const open = queueDir(t)
  fs.mkdirSync(open, { mode: 0o700 })
  fs.chmodSync(open, 0o777)
  const err = await rejectsWithHarkCode(assert, () => new Client({ dir: open }).connect(), 'HARK_ERR_PERMISSION_DENIED')
  assert.match(err.message, /writable by every user/)

  const corrupt = queueDir(t)
  fs.mkdirSync(corrupt, { mode: 0o700 })
  fs.writeFileSync(path.join(corrupt, 'control'), Buffer.alloc(65536, 0x5a), { mode: 0o600 })
  await rejectsWithHarkCode(assert, () => new Client({ dir: corrupt }).connect(), 'HARK_ERR_CORRUPTED')
})

test('HARK_ERR_CLOSED after end()', async (t) => {
  const c = await connected(t, queueDir(t))
  await c.end()
  const err = await rejectsWithHarkCode(assert, () => c.query('SELECT 1'), 'HARK_ERR_CLOSED', 'connection is closed')
  assert.strictEqual(err.code, '08003')
  await rejectsWithHarkCode(assert, () => c.unlisten(), 'HARK_ERR_CLOSED', 'connection is closed')
})

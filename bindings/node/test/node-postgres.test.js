'use strict'
// What code written for node-postgres does, and how hark answers it: every failure of a method
// that returns a promise rejects that promise (never throws).

const test = require('node:test')
const assert = require('node:assert')
const { Client } = require('..')
const { queueDir, rejectsWithHarkCode } = require('./helpers.js')

async function connected (t, dir) {
  const c = new Client({ dir })
  await c.connect()
  t.after(() => c.end())
  return c
}

test('listen, unlisten and notify reject their promise on failure, never throw', async (t) => {
  const c = await connected(t, queueDir(t))
  let err = await rejectsWithHarkCode(assert, () => c.listen(''), 'HARK_ERR_INVALID_ARGUMENT', 'channel name cannot be empty')
  assert.strictEqual(err.code, '22023')
  err = await rejectsWithHarkCode(assert, () => c.unlisten(''), 'HARK_ERR_INVALID_ARGUMENT', 'channel name cannot be empty')
  assert.strictEqual(err.code, '22023')
  err = await rejectsWithHarkCode(assert, () => c.notify('', 'x'), 'HARK_ERR_INVALID_ARGUMENT', 'channel name cannot be empty')
  assert.strictEqual(err.code, '22023')
  err = await rejectsWithHarkCode(assert, () => c.listen('x'.repeat(64)), 'HARK_ERR_INVALID_ARGUMENT', 'channel name too long')
  assert.strictEqual(err.code, '22023')

  // A payload no rule turns into text: a TypeError, through the promise too.
  for (const payload of [() => 1, Symbol('s')]) {
    let promise
    assert.doesNotThrow(() => { promise = c.notify('events', payload) })
    await assert.rejects(promise, { name: 'TypeError', message: /a notification payload must be a string or a value JSON can represent/ })
  }
  // Inside a failed block: 25P02.
  await c.query('BEGIN')
  await assert.rejects(c.query('SELEC 1'), { code: '42601' })
  err = await rejectsWithHarkCode(assert, () => c.listen('events'), 'HARK_ERR_TRANSACTION_STATE')
  assert.strictEqual(err.code, '25P02')
  await c.query('ROLLBACK')

  // What succeeds resolves (with nothing), after the statement ran: the order of calls is kept
  // without awaiting each.
  const done = [c.listen('a'), c.listen('b'), c.unlisten('a'), c.notify('b', { n: 1 })]
  assert.deepStrictEqual(c.listeningChannels(), ['b'])
  assert.deepStrictEqual(await Promise.all(done), [undefined, undefined, undefined, undefined])
})

test('on a client never connected, or ended, every promise-returning method rejects', async (t) => {
  const dir = queueDir(t)
  const fresh = new Client({ dir })
  const ended = new Client({ dir })
  await ended.connect()
  await ended.end()
  for (const [c, message] of [[fresh, 'client is not connected; call client.connect() first'], [ended, 'connection is closed']]) {
    for (const call of [() => c.listen('x'), () => c.unlisten('x'), () => c.unlisten(), () => c.notify('x', 'y'),
      () => c.notify('x', { a: 1 }), () => c.query('SELECT 1'), () => c.query('SELECT $1', ['v']),
      () => c.transaction(async () => 1)]) {
      const err = await rejectsWithHarkCode(assert, call, 'HARK_ERR_CLOSED', message)
      assert.strictEqual(err.code, '08003')
    }
  }
  const again = await rejectsWithHarkCode(assert, () => ended.connect(), 'HARK_ERR_INVALID_ARGUMENT')
  assert.strictEqual(again.code, '08000')
  await fresh.end()
})

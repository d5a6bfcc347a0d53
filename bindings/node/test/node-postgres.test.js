'use strict'
// What code written for node-postgres does, and how hark answers it: every failure of a method
// that returns a promise rejects that promise (never throws), and a config meant for a PostgreSQL
// server (or holding any key hark does not take) is refused, saying what hark takes instead.

const test = require('node:test')
const assert = require('node:assert')
const fs = require('node:fs')
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
      () => c.transaction(async () => 1), () => c.subscribe('s', ['x']), () => c.ack(1), () => c.detach(),
      () => c.unsubscribe('s')]) {
      const err = await rejectsWithHarkCode(assert, call, 'HARK_ERR_CLOSED', message)
      assert.strictEqual(err.code, '08003')
    }
  }
  const again = await rejectsWithHarkCode(assert, () => ended.connect(), 'HARK_ERR_INVALID_ARGUMENT')
  assert.strictEqual(again.code, '08000')
  await fresh.end()
})

// Each key node-postgres (or libpq) takes to reach a server, with a value as such code gives it.
const SERVER_CONFIGS = [
  { host: 'localhost' }, { user: 'app' }, { password: 'secret' }, { database: 'app' }, { port: 5432 },
  { connectionString: 'postgres://app@localhost/app' }, { ssl: true }, { dbname: 'app' },
  { application_name: 'worker' }, { statement_timeout: 1000 }, { keepAlive: true }
]

test('node-postgres\' server options are refused, saying what hark takes instead', async (t) => {
  const dir = queueDir(t)
  for (const config of SERVER_CONFIGS) {
    const [key] = Object.keys(config)
    const c = new Client({ dir, ...config }) // the constructor does not throw, as node-postgres'
    const err = await rejectsWithHarkCode(assert, () => c.connect(), 'HARK_ERR_INVALID_ARGUMENT',
      `option "${key}" is for a PostgreSQL server: hark takes a queue directory ({ dir } or $HARK_DIR)`)
    assert.strictEqual(err.code, '22023')
    assert.match(err.hint, /path of a queue directory, as \{ dir: '\/path\/to\/queue' \}.*\$HARK_DIR/)
    await rejectsWithHarkCode(assert, () => c.query('SELECT 1'), 'HARK_ERR_CLOSED')
  }
  // Nothing was created: not the queue, nor anything a server option could name.
  assert.ok(!fs.existsSync(dir))
  // Only the config decides: without the server key, the same directory opens.
  const c = await connected(t, dir)
  assert.strictEqual(c.dir, dir)
})

test('a connection string or URL in place of the directory is refused with the same advice', async (t) => {
  for (const config of ['postgres://app@localhost/app', 'postgresql:///app', 'host=localhost dbname=app',
    { dir: 'postgresql://localhost/app' }]) {
    const err = await rejectsWithHarkCode(assert, () => new Client(config).connect(), 'HARK_ERR_INVALID_ARGUMENT')
    assert.strictEqual(err.code, '22023')
    assert.match(err.message, /looks like (a URL|a connection string), not a directory/)
    assert.match(err.hint, /hark has no server: give the path of a queue directory.*\$HARK_DIR/)
  }
})

test('any key hark does not take is refused by name; the keys it takes are accepted', async (t) => {
  const dir = queueDir(t)
  for (const key of ['maxQueueSzie', 'Dir', 'directory', 'path', 'create_if_missing']) {
    const err = await rejectsWithHarkCode(assert, () => new Client({ dir, [key]: 1 }).connect(), 'HARK_ERR_INVALID_ARGUMENT',
      `unknown option "${key}": a Client takes dir, maxQueueSize, maxPayload, segmentSize, groupShared, create, ` +
      'cutLaggards, listenerMaxLagBytes and listenerMaxLagAge')
    assert.strictEqual(err.code, '22023')
  }
  // A key is refused whatever its value, undefined included: it is the name that is wrong.
  await rejectsWithHarkCode(assert, () => new Client({ dir, host: undefined }).connect(), 'HARK_ERR_INVALID_ARGUMENT')
  assert.ok(!fs.existsSync(dir))
  const c = new Client({
    dir, maxQueueSize: 1 << 20, maxPayload: 8000, segmentSize: 1 << 16, groupShared: false, create: true,
    cutLaggards: false, listenerMaxLagBytes: 1 << 19, listenerMaxLagAge: 60000
  })
  await c.connect()
  t.after(() => c.end())
  assert.deepStrictEqual((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }])
})

test('a config that is neither a path nor an options object is refused; none (or null) is the default', async (t) => {
  for (const [config, what] of [[42, 'a number'], [true, 'a boolean'], [['/tmp/q'], 'an array']]) {
    const err = await rejectsWithHarkCode(assert, () => new Client(config).connect(), 'HARK_ERR_INVALID_ARGUMENT',
      `a Client takes a queue directory path or an options object, not ${what}`)
    assert.match(err.hint, /\$HARK_DIR/)
  }
  const dir = queueDir(t)
  const saved = process.env.HARK_DIR
  process.env.HARK_DIR = dir
  try {
    for (const config of [undefined, null]) {
      const c = new Client(config)
      await c.connect()
      assert.strictEqual(c.dir, dir)
      await c.end()
    }
  } finally {
    if (saved === undefined) delete process.env.HARK_DIR
    else process.env.HARK_DIR = saved
  }
})

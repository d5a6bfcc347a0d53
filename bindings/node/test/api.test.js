'use strict'
// The Client API as node-postgres users know it: connect, query, listen/unlisten/notify,
// 'notification' messages, transactions, notices, end.

const test = require('node:test')
const assert = require('node:assert')
const { Client, defaultDir } = require('..')
const { queueDir, collect, waitFor, sleep, rejectsWithCode, runNode } = require('./helpers.js')

async function connected (t, dir, config = {}) {
  const c = new Client({ dir, ...config })
  await c.connect()
  t.after(() => c.end())
  return c
}

test('a notification has node-postgres\' fields and arrives from another client', async (t) => {
  const dir = queueDir(t)
  const listener = await connected(t, dir)
  const notifier = await connected(t, dir)
  assert.strictEqual(typeof listener.processID, 'number')
  assert.strictEqual(listener.processID, process.pid) // the backend PID is the sending process
  const result = await listener.query('LISTEN events')
  assert.strictEqual(result.command, 'LISTEN')
  const got = collect(listener, 1)
  await notifier.query("NOTIFY events, 'order 42 paid'")
  const [msg] = await got
  const { channel, payload, processId, position, txn, commitTime } = msg
  assert.deepStrictEqual({ channel, payload, processId }, { channel: 'events', payload: 'order 42 paid', processId: notifier.processID })
  // hark's own fields beside node-postgres' three: where and when it was committed.
  assert.deepStrictEqual(Object.keys(msg), ['channel', 'payload', 'processId', 'position', 'txn', 'commitTime'])
  assert.ok(Number.isSafeInteger(position) && Number.isSafeInteger(txn))
  assert.ok(commitTime instanceof Date && Math.abs(Date.now() - commitTime.getTime()) < 60000)
})

test('each client has its own backend PID, so skipping your own skips only your own', async (t) => {
  const dir = queueDir(t)
  const me = await connected(t, dir)
  const other = await connected(t, dir)
  assert.strictEqual(me.processID, process.pid)
  assert.notStrictEqual(other.processID, me.processID)
  assert.ok(other.processID >= 2 ** 22, `${other.processID}`)
  assert.deepStrictEqual((await other.query('SELECT pg_backend_pid()')).rows, [{ pg_backend_pid: other.processID }])
  me.listen('ch')
  const got = collect(me, 2)
  other.notify('ch', 'from other')
  me.notify('ch', 'from me')
  const msgs = await got
  assert.deepStrictEqual(msgs.map((m) => [m.payload, m.processId]), [['from other', other.processID], ['from me', me.processID]])
  assert.deepStrictEqual(msgs.filter((m) => m.processId !== me.processID).map((m) => m.payload), ['from other'])
})

test('create: false opens only an existing queue; no queue among other files nor at a connection string', async (t) => {
  const dir = queueDir(t)
  const fs = require('node:fs')
  const path = require('node:path')
  await assert.rejects(new Client({ dir, create: false }).connect(), (err) => {
    assert.strictEqual(err.code, 'HARK_ERR_IO')
    assert.strictEqual(err.sqlstate, '3D000')
    assert.match(err.message, /does not exist/)
    return true
  })
  assert.ok(!fs.existsSync(dir))
  const creator = await connected(t, dir)
  const joiner = await connected(t, dir, { create: false })
  joiner.listen('ch')
  const got = collect(joiner, 1)
  creator.notify('ch', 'hello')
  assert.deepStrictEqual((await got).map((m) => m.payload), ['hello'])

  const populated = path.dirname(dir) // holds the queue directory: not empty, not a queue
  await assert.rejects(new Client(populated).connect(), (err) => {
    assert.strictEqual(err.code, 'HARK_ERR_PERMISSION_DENIED')
    assert.strictEqual(err.sqlstate, '55000')
    assert.match(err.hint, /missing or empty directory/)
    return true
  })
  assert.deepStrictEqual(fs.readdirSync(populated), ['queue'])
  for (const dsn of ['dbname=app', 'postgresql://localhost/app']) {
    await assert.rejects(new Client(dsn).connect(), (err) => {
      assert.strictEqual(err.code, 'HARK_ERR_INVALID_ARGUMENT')
      assert.match(err.message, /looks like/)
      return true
    })
  }
})

test('listen, notify and unlisten as methods take channel names verbatim', async (t) => {
  const dir = queueDir(t)
  const c = await connected(t, dir)
  c.listen('Mixed Case')
  c.listen('other')
  assert.deepStrictEqual(c.listeningChannels(), ['Mixed Case', 'other'])
  const got = collect(c, 2)
  c.notify('Mixed Case', 'one')
  c.notify('other') // no payload: empty string, as PostgreSQL
  assert.deepStrictEqual((await got).map((m) => [m.channel, m.payload]), [['Mixed Case', 'one'], ['other', '']])
  c.unlisten('other')
  assert.deepStrictEqual(c.listeningChannels(), ['Mixed Case'])
  c.unlisten()
  assert.deepStrictEqual(c.listeningChannels(), [])
  let late = 0
  c.on('notification', () => late++)
  c.notify('Mixed Case', 'after unlisten')
  await sleep(100)
  assert.strictEqual(late, 0)
})

test('query resolves with the rows of SELECT functions, parsed as node-postgres does', async (t) => {
  const c = await connected(t, queueDir(t))
  await c.query('LISTEN a; LISTEN b')
  const r = await c.query("SELECT pg_listening_channels(), pg_backend_pid() AS pid, 'x' || 'y' AS xy, NULL AS n")
  assert.strictEqual(r.command, 'SELECT')
  assert.strictEqual(r.rowCount, 2)
  assert.deepStrictEqual(r.fields.map((f) => f.name), ['pg_listening_channels', 'pid', 'xy', 'n'])
  assert.deepStrictEqual(r.rows, [
    { pg_listening_channels: 'a', pid: process.pid, xy: 'xy', n: null },
    { pg_listening_channels: 'b', pid: process.pid, xy: 'xy', n: null }
  ])
  const usage = await c.query('SELECT pg_notification_queue_usage()')
  assert.strictEqual(usage.rows[0].pg_notification_queue_usage, c.queueUsage())
})

test('values follow pg-types\' default text parsers; fields carry the type OIDs', async (t) => {
  const c = await connected(t, queueDir(t))
  const r = await c.query(`SELECT 42 AS int4, -7 AS neg, 9007199254740993 AS int8, 1.50 AS numeric,
    2.5::float8 AS float8, 'NaN'::float8 AS nan, '-Infinity'::float8 AS ninf, true AS yes, 'off'::bool AS no,
    'text' AS text, NULL AS nothing, '{"a": [1, null]}'::json AS json, pg_notify('c', '') AS void`)
  assert.deepStrictEqual(r.rows, [{
    int4: 42, // int2, int4, oid: parseInt
    neg: -7,
    int8: '9007199254740993', // int8: a string, as it may not fit a number
    numeric: '1.50', // numeric: no default parser, the text as PostgreSQL prints it
    float8: 2.5, // float4, float8: parseFloat
    nan: NaN,
    ninf: -Infinity,
    yes: true,
    no: false,
    text: 'text',
    nothing: null, // never handed to a parser
    json: { a: [1, null] }, // json, jsonb: JSON.parse
    void: ''
  }])
  assert.deepStrictEqual(r.fields.map((f) => [f.name, f.dataTypeID]), [
    ['int4', 23], ['neg', 23], ['int8', 20], ['numeric', 1700], ['float8', 701], ['nan', 701], ['ninf', 701],
    ['yes', 16], ['no', 16], ['text', 25], ['nothing', 25], ['json', 114], ['void', 2278]
  ])
  // The rest of node-postgres' FieldDef, as PostgreSQL describes a column that is not a table's.
  assert.deepStrictEqual(r.fields[0], {
    name: 'int4', tableID: 0, columnID: 0, dataTypeID: 23, dataTypeSize: 4, dataTypeModifier: -1, format: 'text'
  })
  assert.deepStrictEqual(r.fields[9].dataTypeSize, -1)
  assert.deepStrictEqual((await c.query("SELECT '7'::int2 AS small, '0.5'::real AS real")).rows, [{ small: 7, real: 0.5 }])
  // A cast's column has the type cast to: an int8 is a string even when it is small.
  const cast = await c.query("SELECT 1::int8 AS big, 1::int2 AS small, '{\"b\": 2}'::jsonb AS jb, 'v'::varchar AS vc")
  assert.deepStrictEqual(cast.rows, [{ big: '1', small: 1, jb: { b: 2 }, vc: 'v' }])
  assert.deepStrictEqual(cast.fields.map((f) => f.dataTypeID), [20, 21, 3802, 1043])
  const listen = await c.query('LISTEN x')
  assert.deepStrictEqual([listen.rows, listen.fields, listen.rowCount], [[], [], null])
})

test('a text of several statements resolves with one result per statement, as node-postgres', async (t) => {
  const c = await connected(t, queueDir(t))
  const rs = await c.query("LISTEN a; SELECT 1 AS one, 'x' AS x; NOTIFY a, 'p'; SELECT pg_backend_pid(), NULL AS n")
  assert.ok(Array.isArray(rs))
  assert.deepStrictEqual(rs.map((r) => [r.command, r.rowCount]), [['LISTEN', null], ['SELECT', 1], ['NOTIFY', null], ['SELECT', 1]])
  assert.deepStrictEqual(rs[1].rows, [{ one: 1, x: 'x' }])
  assert.deepStrictEqual(rs[1].fields.map((f) => [f.name, f.dataTypeID]), [['one', 23], ['x', 25]])
  assert.deepStrictEqual(rs[3].rows, [{ pg_backend_pid: process.pid, n: null }])
  assert.deepStrictEqual(rs[0].rows, [])
  // One statement, even with empty ones around it, is one result; no statement is an empty one.
  const one = await c.query(';SELECT 2 AS two;;')
  assert.deepStrictEqual([Array.isArray(one), one.command, one.rows], [false, 'SELECT', [{ two: 2 }]])
  const none = await c.query(' ; -- nothing')
  assert.deepStrictEqual(none, { command: null, rowCount: null, rows: [], fields: [] })
})

test('a failing statement rejects the whole query; what ran before follows PostgreSQL', async (t) => {
  const dir = queueDir(t)
  const c = await connected(t, dir)
  const listener = await connected(t, dir)
  listener.listen('events')
  const got = []
  listener.on('notification', (m) => got.push(m.payload))
  // The statements of one text run as one implicit transaction: a failure undoes the earlier ones.
  await rejectsWithCode(assert, () => c.query("NOTIFY events, 'undone'; SELECT pg_notify('', 'x')"),
    'HARK_ERR_INVALID_ARGUMENT', 'channel name cannot be empty')
  // Unless the text ends that transaction itself: a COMMIT before the failure keeps its work.
  await rejectsWithCode(assert, () => c.query("BEGIN; NOTIFY events, 'kept'; COMMIT; NOTIFY events, 'undone too'; SELECT pg_notify('', 'x')"),
    'HARK_ERR_INVALID_ARGUMENT')
  // The whole text is parsed first: a syntax error anywhere runs nothing.
  await rejectsWithCode(assert, () => c.query("NOTIFY events, 'never'; SELEC 1"), 'HARK_ERR_SYNTAX')
  // A failure inside an explicit block leaves the block failed, as in PostgreSQL.
  await rejectsWithCode(assert, () => c.query("BEGIN; NOTIFY events, 'in a block'; SELECT pg_notify('', 'x')"), 'HARK_ERR_INVALID_ARGUMENT')
  await rejectsWithCode(assert, () => c.query('SELECT 1'), 'HARK_ERR_TRANSACTION_STATE')
  assert.strictEqual((await c.query('ROLLBACK')).command, 'ROLLBACK')
  c.notify('events', 'last')
  await waitFor(() => got.includes('last'), 'the last notification')
  assert.deepStrictEqual(got, ['kept', 'last'])
})

test('query takes $n parameters as node-postgres code passes them', async (t) => {
  const c = await connected(t, queueDir(t))
  c.listen('it\'s')
  const got = collect(c, 2)
  const payload = JSON.stringify({ quote: "it's", backslash: '\\n', dollar: '$1 $$' })
  await c.query('SELECT pg_notify($1, $2) -- $3 is not a parameter here', ["it's", payload])
  await c.query({ text: "SELECT pg_notify($1, 'x$2' || $2) /* $9 */", values: ["it's", 7] })
  assert.deepStrictEqual((await got).map((m) => m.payload), [payload, 'x$27'])
  await rejectsWithCode(assert, () => c.query('SELECT pg_notify($1, $2)', ['a']), 'HARK_ERR_INVALID_ARGUMENT', 'bind message supplies 1 parameters, but prepared statement "" requires 2')
  assert.strictEqual(c.escapeLiteral("o'k"), "'o''k'")
  assert.strictEqual(c.escapeIdentifier('a"b'), '"a""b"')
})

test('query and connect also take node-postgres callbacks', async (t) => {
  const c = new Client({ dir: queueDir(t) })
  await new Promise((resolve, reject) => c.connect((err) => (err ? reject(err) : resolve())))
  t.after(() => c.end())
  const r = await new Promise((resolve, reject) => c.query('SELECT 1 AS one', (err, res) => (err ? reject(err) : resolve(res))))
  assert.deepStrictEqual(r.rows, [{ one: 1 }])
  const err = await new Promise((resolve) => c.query('SELEC 1', (e) => resolve(e)))
  assert.strictEqual(err.code, 'HARK_ERR_SYNTAX')
})

test('BEGIN … COMMIT delivers at commit; ROLLBACK delivers nothing', async (t) => {
  const dir = queueDir(t)
  const listener = await connected(t, dir)
  const notifier = await connected(t, dir)
  listener.listen('events')
  const got = []
  listener.on('notification', (m) => got.push(m.payload))
  await notifier.query('BEGIN')
  notifier.notify('events', 'one')
  notifier.notify('events', 'one') // folded: same channel and payload in one transaction
  await notifier.query("NOTIFY events, 'two'")
  await sleep(100)
  assert.deepStrictEqual(got, [], 'nothing is visible before COMMIT')
  await notifier.query('COMMIT')
  await notifier.query("BEGIN; NOTIFY events, 'rolled back'; ROLLBACK")
  await notifier.query('BEGIN')
  notifier.notify('events', 'also rolled back')
  await notifier.query('ROLLBACK')
  notifier.notify('events', 'three')
  await waitFor(() => got.length >= 3, 'three notifications')
  await sleep(50) // and nothing more
  assert.deepStrictEqual(got, ['one', 'two', 'three'])
})

test('a listener inside a transaction block gets its notifications after the block ends', async (t) => {
  const dir = queueDir(t)
  const listener = await connected(t, dir)
  const notifier = await connected(t, dir)
  listener.listen('events')
  const got = []
  listener.on('notification', (m) => got.push(m.payload))
  await listener.query('BEGIN')
  notifier.notify('events', 'while busy')
  await sleep(100)
  assert.deepStrictEqual(got, [], 'PostgreSQL delivers between transactions only')
  await listener.query('COMMIT')
  await waitFor(() => got.length >= 1, 'the notification after COMMIT')
  assert.deepStrictEqual(got, ['while busy'])
})

test('transaction() commits, rolls back on a throw, and nests with savepoints', async (t) => {
  const dir = queueDir(t)
  const listener = await connected(t, dir)
  const c = await connected(t, dir)
  listener.listen('events')
  const got = []
  listener.on('notification', (m) => got.push(m.payload))

  const value = await c.transaction(async (client) => {
    assert.strictEqual(client, c)
    c.notify('events', 'committed')
    await c.transaction(async () => { c.notify('events', 'inner kept') })
    await assert.rejects(c.transaction(async () => {
      c.notify('events', 'inner dropped')
      throw new Error('inner failure')
    }), /inner failure/)
    return 42
  })
  assert.strictEqual(value, 42)

  await assert.rejects(c.transaction(async () => {
    c.notify('events', 'dropped')
    throw new Error('boom')
  }), /boom/)

  // A statement that failed inside, even if caught, must not be reported as committed.
  const err = await rejectsWithCode(assert, () => c.transaction(async () => {
    c.notify('events', 'dropped too')
    await c.query('SELEC 1').catch(() => {})
  }), 'HARK_ERR_TRANSACTION_STATE')
  assert.match(err.message, /rolled back/)

  c.notify('events', 'after')
  await waitFor(() => got.includes('after'), 'the last notification')
  assert.deepStrictEqual(got, ['committed', 'inner kept', 'after'])
  assert.strictEqual((await c.query('SELECT 1')).command, 'SELECT', 'the client is usable again')
})

test('notices go to the notice event', async (t) => {
  const c = await connected(t, queueDir(t))
  const notices = []
  c.on('notice', (n) => notices.push(n))
  await c.query('COMMIT')
  await c.query(`LISTEN ${'x'.repeat(70)}`)
  assert.strictEqual(notices.length, 2)
  assert.deepStrictEqual([notices[0].severity, notices[0].sqlstate, notices[0].message],
    ['WARNING', '25P01', 'there is no transaction in progress'])
  assert.strictEqual(notices[1].severity, 'NOTICE')
  assert.match(notices[1].message, /will be truncated to/)
})

test('the default directory comes from HARK_DIR', async (t) => {
  const dir = queueDir(t)
  const saved = process.env.HARK_DIR
  process.env.HARK_DIR = dir
  t.after(() => { if (saved === undefined) delete process.env.HARK_DIR; else process.env.HARK_DIR = saved })
  assert.strictEqual(defaultDir(), dir)
  const c = new Client()
  await c.connect()
  t.after(() => c.end())
  assert.strictEqual(c.dir, dir)
})

test('the default directory depends on the user alone without HARK_DIR', () => {
  const saved = { HARK_DIR: process.env.HARK_DIR, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR }
  try {
    delete process.env.HARK_DIR
    process.env.XDG_RUNTIME_DIR = '/run/user/12345'
    const base = require('node:fs').existsSync('/dev/shm') ? '/dev/shm' : '/tmp'
    assert.strictEqual(defaultDir(), `${base}/hark-${process.geteuid()}`)
  } finally {
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v }
  }
})

test('connect, use and end follow node-postgres\' life cycle', async (t) => {
  const dir = queueDir(t)
  const c = new Client({ dir })
  await rejectsWithCode(assert, () => c.query('SELECT 1'), 'HARK_ERR_CLOSED')
  assert.throws(() => c.listen('x'), { code: 'HARK_ERR_CLOSED' })
  await c.connect()
  await rejectsWithCode(assert, () => c.connect(), 'HARK_ERR_INVALID_ARGUMENT')
  let ended = 0
  c.on('end', () => ended++)
  await c.end()
  await c.end()
  assert.strictEqual(ended, 1)
  await rejectsWithCode(assert, () => c.query('SELECT 1'), 'HARK_ERR_CLOSED', 'connection is closed')
  assert.throws(() => c.notify('x', 'y'), { code: 'HARK_ERR_CLOSED' })
})

test('end() drops what the client had not yet emitted, and emits nothing after', async (t) => {
  const dir = queueDir(t)
  const listener = await connected(t, dir)
  const notifier = await connected(t, dir)
  listener.listen('events')
  let seen = 0
  listener.on('notification', () => { if (++seen === 1) listener.end() })
  await notifier.query("BEGIN; NOTIFY events, '1'; NOTIFY events, '2'; NOTIFY events, '3'; COMMIT")
  await waitFor(() => seen >= 1, 'the first notification')
  await sleep(100)
  assert.strictEqual(seen, 1)
})

test('a listener that throws does not lose the rest of the batch', async (t) => {
  // In a child process: the error must surface as an uncaught exception, as from any handler.
  const script = `
    const { Client } = require('hark')
    const c = new Client({ dir: process.argv[2] })
    const got = [], uncaught = []
    process.on('uncaughtException', (e) => uncaught.push(e.message))
    c.connect().then(async () => {
      c.listen('events')
      c.on('notification', (m) => {
        got.push(m.payload)
        if (m.payload === 'b') throw new Error('listener failure')
      })
      await c.query("BEGIN; NOTIFY events, 'a'; NOTIFY events, 'b'; NOTIFY events, 'c'; COMMIT")
      // Later notifications from another session still wake the listener.
      const other = new Client({ dir: process.argv[2] })
      await other.connect()
      setTimeout(() => other.notify('events', 'd'), 100)
      setTimeout(async () => {
        console.log(JSON.stringify({ got, uncaught }))
        await c.end()
        await other.end()
      }, 300)
    })`
  const p = runNode(t, script, [queueDir(t)], { deadlineMs: 20000 })
  const { code, stderr } = await p.exited
  assert.strictEqual(code, 0, stderr)
  assert.deepStrictEqual(JSON.parse(p.lines[0]), { got: ['a', 'b', 'c', 'd'], uncaught: ['listener failure'] })
})

test('notify sends a non-string payload as JSON or text, never "[object Object]"', async (t) => {
  const dir = queueDir(t)
  const l = new Client({ dir })
  const n = new Client({ dir })
  await l.connect()
  await n.connect()
  t.after(() => Promise.all([l.end(), n.end()]))
  l.listen('ch')
  const got = collect(l, 7)
  n.notify('ch', { order: 42, paid: true })
  n.notify('ch', [1, 'two'])
  n.notify('ch', 7)
  n.notify('ch', null)
  n.notify('ch', new Date(Date.UTC(2026, 11, 4)))
  n.notify('ch', Buffer.from('bytes'))
  n.notify('ch', 12n)
  const payloads = (await got).map((m) => m.payload)
  assert.deepStrictEqual(payloads, ['{"order":42,"paid":true}', '[1,"two"]', '7', '', '2026-12-04T00:00:00.000Z', 'bytes', '12'])
  assert.deepStrictEqual(JSON.parse(payloads[0]), { order: 42, paid: true })
  assert.throws(() => n.notify('ch', () => 1), { name: 'TypeError', message: /not a function/ })
})

'use strict'
// query(text, values): values are bound to $1, $2, … by the core, never pasted into SQL, so no
// value can end its string, open a comment or end the statement; JS values are prepared as
// node-postgres prepares them. escapeLiteral/escapeIdentifier quote as libpq.

const test = require('node:test')
const assert = require('node:assert')
const { Client, escapeLiteral, escapeIdentifier } = require('..')
const { queueDir, collect, rejectsWithHarkCode } = require('./helpers.js')

const HOSTILE = [
  "'", "''", "it's", '\\', "\\'", "E'x'", "e'\\''", '$$', "$$; NOTIFY evil, 'x'; $$", '$tag$', '$1',
  '--', '-- NOTIFY evil', '/*', '*/', '/* /*', ';', "'); NOTIFY evil, 'pwned'; --", '"; LISTEN evil; "',
  '\\x00', 'é ✓ 😀', ''
]

async function connected (t) {
  const c = new Client({ dir: queueDir(t) })
  await c.connect()
  t.after(() => c.end())
  return c
}

test('hostile values arrive exactly as sent, and nothing else does', async (t) => {
  const c = await connected(t)
  await c.query('LISTEN events; LISTEN evil')
  const got = collect(c, HOSTILE.length)
  for (const v of HOSTILE) {
    const r = await c.query('SELECT pg_notify($1, $2), $2 AS v, $2 || $3 AS w', ['events', v, '!'])
    assert.deepStrictEqual(r.rows, [{ pg_notify: '', v, w: v + '!' }], v)
  }
  const msgs = await got
  assert.deepStrictEqual(msgs.map((m) => [m.channel, m.payload]), HOSTILE.map((v) => ['events', v]))
  await c.query('SELECT pg_notify($1, $2)', ['events', 'end'])
  const last = await collect(c, 1)
  assert.deepStrictEqual(last.map((m) => m.payload), ['end']) // no notification on "evil" came first
})

test('JS values are prepared as node-postgres prepares them', async (t) => {
  const c = await connected(t)
  const point = { toPostgres: () => ({ toPostgres: () => '(1,2)' }) }
  const r = await c.query('SELECT $1 AS a, $2 AS b, $3 AS c, $4::int AS d, $5 AS e, $6 AS f, $7 AS g, $8 AS h, $9 AS i', [
    null, undefined, true, 42, new Date(0), Buffer.from('bytes'), { a: [1, "'"] }, point, 12n
  ])
  assert.deepStrictEqual(r.rows, [{
    a: null, b: null, c: 'true', d: 42, e: '1970-01-01T00:00:00.000Z', f: 'bytes', g: '{"a":[1,"\'"]}', h: '(1,2)', i: '12'
  }])
  const loop = { toPostgres: () => loop }
  await assert.rejects(() => c.query('SELECT $1', [loop]), /circular reference/)
})

test('placeholders inside strings, identifiers and comments are text', async (t) => {
  const c = await connected(t)
  const r = await c.query("SELECT '$1' AS a, $$ $1 $$ AS b, $1 AS c /* $2 */ -- $3", ['X'])
  assert.deepStrictEqual(r.rows, [{ a: '$1', b: ' $1 ', c: 'X' }])
})

test('PostgreSQL\'s errors for mistakes with values', async (t) => {
  const c = await connected(t)
  // As node-postgres gets them from PostgreSQL.
  let e = await rejectsWithHarkCode(assert, () => c.query('SELECT $1, $2', ['a']), 'HARK_ERR_INVALID_ARGUMENT',
    'bind message supplies 1 parameters, but prepared statement "" requires 2')
  assert.strictEqual(e.code, '08P01')
  e = await rejectsWithHarkCode(assert, () => c.query('SELECT $1, $3', ['a', 'b', 'c']), 'HARK_ERR_SYNTAX',
    'could not determine data type of parameter $2')
  assert.strictEqual(e.code, '42P18')
  e = await rejectsWithHarkCode(assert, () => c.query('SELECT $0', ['a']), 'HARK_ERR_SYNTAX', 'there is no parameter $0')
  assert.strictEqual(e.code, '42P02')
  e = await rejectsWithHarkCode(assert, () => c.query('SELECT $1', ['a', 'b']), 'HARK_ERR_INVALID_ARGUMENT',
    'bind message supplies 2 parameters, but prepared statement "" requires 1')
  assert.strictEqual(e.code, '08P01')
  await rejectsWithHarkCode(assert, () => c.query('SELECT $1; SELECT 2', ['a']), 'HARK_ERR_SYNTAX',
    'cannot insert multiple commands into a prepared statement')
  e = await rejectsWithHarkCode(assert, () => c.query('SELECT $1', ['nul\0byte']), 'HARK_ERR_INVALID_ARGUMENT')
  assert.strictEqual(e.code, '22021')
  // Without values: the simple protocol, several statements, and no parameter at all.
  await rejectsWithHarkCode(assert, () => c.query('SELECT $1'), 'HARK_ERR_SYNTAX', 'there is no parameter $1')
  assert.strictEqual((await c.query('SELECT 1; SELECT 2', [])).length, 2)
})

test('escapeLiteral and escapeIdentifier quote as libpq and read back verbatim', async (t) => {
  const c = await connected(t)
  assert.strictEqual(escapeLiteral("o'k"), "'o''k'")
  assert.strictEqual(escapeLiteral('a\\b'), " E'a\\\\b'")
  assert.strictEqual(c.escapeIdentifier('a"b'), '"a""b"')
  for (const v of HOSTILE) {
    const r = await c.query(`SELECT ${c.escapeLiteral(v)} AS ${escapeIdentifier(v || 'x')}`)
    assert.deepStrictEqual(r.rows, [{ [v || 'x']: v }], v)
  }
})

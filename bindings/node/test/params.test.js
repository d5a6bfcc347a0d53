'use strict'
// $n parameters are replaced by quoted literals outside strings, identifiers and comments only.

const test = require('node:test')
const assert = require('node:assert')
const { interpolate } = require('../lib/params.js')

test('placeholders become literals; quotes are doubled, backslashes kept', () => {
  assert.strictEqual(interpolate('SELECT pg_notify($1, $2)', ['ch', "it's \\n"]), "SELECT pg_notify('ch', 'it''s \\n')")
  assert.strictEqual(interpolate('SELECT $1, $2, $3, $4', [null, undefined, 42, true]), "SELECT NULL, NULL, '42', 'true'")
  assert.strictEqual(interpolate('SELECT $1', [{ a: [1, "'"] }]), `SELECT '{"a":[1,"''"]}'`)
  assert.strictEqual(interpolate('SELECT $1', [new Date(0)]), "SELECT '1970-01-01T00:00:00.000Z'")
  assert.strictEqual(interpolate('SELECT $10, $1', ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']), "SELECT 'j', 'a'")
})

test('placeholders inside strings, quoted identifiers, comments and words stay as written', () => {
  const values = ['X']
  for (const sql of [
    "SELECT '$1'",
    "SELECT 'it''s $1'",
    "SELECT E'\\' $1'",
    'SELECT "$1"',
    'SELECT $$ $1 $$',
    'SELECT $tag$ $1 $$ $1 $tag$',
    'SELECT 1 -- $1',
    'SELECT /* $1 /* nested $1 */ $1 */ 1',
    'SELECT a$1'
  ]) {
    assert.strictEqual(interpolate(sql, values), sql, sql)
  }
  assert.strictEqual(interpolate("SELECT E'\\'', $1", values), "SELECT E'\\'', 'X'")
  assert.strictEqual(interpolate('SELECT $$x$$, $1 -- $1\n, $1', values), "SELECT $$x$$, 'X' -- $1\n, 'X'")
})

test('a placeholder without a value is an error with a code', () => {
  assert.throws(() => interpolate('SELECT $2', ['a']), { code: 'HARK_ERR_INVALID_ARGUMENT', message: 'there is no parameter $2' })
  assert.throws(() => interpolate('SELECT $0', ['a']), { code: 'HARK_ERR_INVALID_ARGUMENT' })
})

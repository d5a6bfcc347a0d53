'use strict'
// Query parameters ($1, $2, …) for `client.query(text, values)`, the way node-postgres code
// passes them (`SELECT pg_notify($1, $2)`). hark has no wire protocol to bind them, so each
// placeholder outside quotes and comments is replaced by a quoted literal before the text is
// parsed. Literals use standard-conforming strings ('' for a quote, backslashes verbatim), which is
// what hark's dialect reads in '…'.

function escapeLiteral (s) {
  return "'" + String(s).replace(/'/g, "''") + "'"
}

function escapeIdentifier (s) {
  return '"' + String(s).replace(/"/g, '""') + '"'
}

// node-postgres' conversions of JS values to parameter text.
function toLiteral (v) {
  if (v === null || v === undefined) return 'NULL'
  if (typeof v === 'string') return escapeLiteral(v)
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return escapeLiteral(String(v))
  if (v instanceof Date) return escapeLiteral(v.toISOString())
  if (Buffer.isBuffer(v)) return escapeLiteral(v.toString('utf8'))
  if (typeof v.toPostgres === 'function') return toLiteral(v.toPostgres(toLiteral))
  return escapeLiteral(JSON.stringify(v))
}

const IDENT = /[A-Za-z0-9_$\u0080-\uffff]/

// The index just past a $tag$ opening at i, or -1 when i does not start one.
function dollarTag (text, i) {
  let j = i + 1
  while (j < text.length) {
    const c = text[j]
    if (c === '$') return j + 1
    const ok = j === i + 1 ? /[A-Za-z_\u0080-\uffff]/.test(c) : /[A-Za-z0-9_\u0080-\uffff]/.test(c)
    if (!ok) return -1
    j++
  }
  return -1
}

// Replaces $1 … $n in `text` by the literals of `values`. Throws (code HARK_ERR_INVALID_ARGUMENT)
// when a placeholder has no value, as PostgreSQL rejects a bind with too few parameters.
function interpolate (text, values) {
  let out = ''
  let i = 0
  let from = 0
  const n = text.length
  while (i < n) {
    const c = text[i]
    if (c === '-' && text[i + 1] === '-') {
      const eol = text.indexOf('\n', i)
      i = eol < 0 ? n : eol + 1
    } else if (c === '/' && text[i + 1] === '*') {
      let depth = 1
      i += 2
      while (i < n && depth > 0) {
        if (text[i] === '/' && text[i + 1] === '*') { depth++; i += 2 } else if (text[i] === '*' && text[i + 1] === '/') { depth--; i += 2 } else i++
      }
    } else if (c === "'" || c === '"') {
      const escapes = c === "'" && i > 0 && /[eE]/.test(text[i - 1]) && !IDENT.test(text[i - 2] || ' ')
      i++
      while (i < n) {
        if (escapes && text[i] === '\\') { i += 2; continue }
        if (text[i] === c) {
          if (text[i + 1] === c) { i += 2; continue }
          break
        }
        i++
      }
      i++
    } else if (c === '$' && /[0-9]/.test(text[i + 1] || '') && !IDENT.test(text[i - 1] || ' ')) {
      let j = i + 1
      while (j < n && /[0-9]/.test(text[j])) j++
      const k = Number(text.slice(i + 1, j))
      if (k < 1 || k > values.length) {
        const err = new Error(`there is no parameter $${k}`)
        err.code = 'HARK_ERR_INVALID_ARGUMENT'
        err.sqlstate = '42P02'
        throw err
      }
      out += text.slice(from, i) + toLiteral(values[k - 1])
      i = from = j
    } else if (c === '$' && !IDENT.test(text[i - 1] || ' ') && dollarTag(text, i) > 0) {
      const open = dollarTag(text, i)
      const tag = text.slice(i, open)
      const close = text.indexOf(tag, open)
      i = close < 0 ? n : close + tag.length
    } else if (IDENT.test(c)) {
      // A whole identifier or number, so that "a$1" stays one word as PostgreSQL reads it.
      while (i < n && IDENT.test(text[i])) i++
    } else {
      i++
    }
  }
  return out + text.slice(from)
}

module.exports = { interpolate, escapeLiteral, escapeIdentifier }

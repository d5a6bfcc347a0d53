'use strict'
// Result values as node-postgres gives them. hark's core reports each column's PostgreSQL type
// name (typname) and the value's text output; node-postgres knows a column by its type OID and
// turns the text into a JS value with pg-types' default text parsers:
//
//   int2, int4, oid -> number (parseInt)      int8 -> string (it may not fit a number)
//   float4, float8  -> number (parseFloat)    numeric -> string (no default parser)
//   bool            -> boolean                json, jsonb -> JSON.parse
//   anything else   -> the text as it is      SQL NULL -> null (never parsed)

// typname -> [OID, typlen], from PostgreSQL's pg_type catalogue (typlen: bytes, -1 for varlena,
// -2 for a C string), what node-postgres reports as dataTypeID and dataTypeSize.
const TYPES = {
  bool: [16, 1],
  name: [19, 64],
  int8: [20, 8],
  int2: [21, 2],
  int4: [23, 4],
  text: [25, -1],
  oid: [26, 4],
  json: [114, -1],
  float4: [700, 4],
  float8: [701, 8],
  unknown: [705, -2],
  varchar: [1043, -1],
  numeric: [1700, -1],
  void: [2278, 4],
  jsonb: [3802, -1]
}

function parseBool (v) {
  return v === 'TRUE' || v === 't' || v === 'true' || v === 'y' || v === 'yes' || v === 'on' || v === '1'
}

const parseInteger = (v) => parseInt(v, 10)
const parseJson = (v) => JSON.parse(v)

// By OID, as pg-types registers them; types without a parser keep their text.
const PARSERS = new Map([
  [16, parseBool],
  [21, parseInteger],
  [23, parseInteger],
  [26, parseInteger],
  [700, parseFloat],
  [701, parseFloat],
  [114, parseJson],
  [3802, parseJson]
])

const identity = (v) => v

/** node-postgres' field description of a column of type `typname`. */
function field (name, typname) {
  const [oid, size] = TYPES[typname] ?? [0, -1] // a type this table does not know yet: no OID
  return {
    name,
    tableID: 0, // not a table's column (as PostgreSQL reports for expressions)
    columnID: 0,
    dataTypeID: oid,
    dataTypeSize: size,
    dataTypeModifier: -1,
    format: 'text'
  }
}

/** The parser node-postgres uses by default for text values of type `oid`. */
function parser (oid) {
  return PARSERS.get(oid) ?? identity
}

/**
 * A query parameter as node-postgres prepares it, as text for the core to bind to `$n` (never
 * pasted into SQL): null and undefined are SQL NULL, a Date its ISO string, a Buffer its UTF-8
 * text, an object with `toPostgres()` what that returns (prepared again), any other object its
 * JSON; anything else its `String()`.
 */
function prepareValue (v, seen = []) {
  if (v === null || v === undefined) return null
  if (typeof v !== 'object') return String(v)
  if (v instanceof Date) return v.toISOString()
  if (Buffer.isBuffer(v)) return v.toString('utf8')
  if (typeof v.toPostgres === 'function') {
    if (seen.includes(v)) throw new Error(`circular reference detected while preparing "${v}" for query`)
    return prepareValue(v.toPostgres(prepareValue), [...seen, v])
  }
  return JSON.stringify(v)
}

module.exports = { field, parser, prepareValue, TYPES }

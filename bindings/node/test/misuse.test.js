'use strict'
// Misuse from Node (issue 8): calls after end(), concurrency (worker threads each with a client,
// concurrent promises on one client), wrong types, NUL / lone surrogates / Buffers, and a forked
// child process. Node has no fork() of a running process: child_process.fork starts a new one, so
// no client is ever inherited; what is tested is that the child opens its own client and the
// parent's listener is unaffected. A Client cannot be transferred to a worker thread (it holds a
// native handle owned by its JS thread), so each worker opens its own. Each case runs in a child
// process: a crash of the addon shows up as a signal and fails the case instead of the runner.
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { queueDir } = require('./helpers')

const PACKAGE = path.resolve(__dirname, '..')

function runCase (t, body) {
  const script = `
const assert = require('node:assert/strict')
const { Client } = require(${JSON.stringify(PACKAGE)})
const dir = process.argv[1]
;(async () => {
${body}
console.log('PASS')
})().catch((e) => { console.error(e); process.exitCode = 1 })
`
  const r = spawnSync(process.execPath, ['-e', script, queueDir(t)], { encoding: 'utf8', timeout: 60000 })
  assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`)
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /PASS\n$/)
}

test('every call after end() fails with HARK_ERR_CLOSED', (t) => runCase(t, `
  const c = new Client(dir)
  await c.connect()
  c.listen('a')
  await c.end()
  await c.end() // twice is fine
  const closed = { harkCode: 'HARK_ERR_CLOSED', code: '08003', message: 'connection is closed' }
  // What returns a promise rejects it, never throws; what returns a value throws.
  for (const f of [() => c.listen('x'), () => c.unlisten(), () => c.unlisten('x'), () => c.notify('x'),
    () => c.notify('x', 'y'), () => c.notify('x', { a: 1 })]) await assert.rejects(f(), closed)
  for (const f of [() => c.listeningChannels(), () => c.queueUsage()]) assert.throws(f, closed)
  await assert.rejects(c.query('SELECT 1'), closed)
  await assert.rejects(c.transaction(async () => 1), closed)
  await new Promise((resolve) => c.query('SELECT 1', (err) => { assert.equal(err.code, '08003'); resolve() }))
  await assert.rejects(c.connect(), { harkCode: 'HARK_ERR_INVALID_ARGUMENT', code: '08000', message: 'Client has already been connected. You cannot reuse a client.' })
  const it = c.notifications()
  assert.deepEqual(await it.next(), { value: undefined, done: true })
`))

test('worker threads with a client each, and concurrent promises on one client', (t) => runCase(t, `
  const { Worker } = require('node:worker_threads')
  const WORKERS = 4; const EACH = 200
  const listener = new Client(dir)
  await listener.connect()
  listener.listen('w')
  const got = []
  listener.on('notification', (n) => got.push(n.payload))
  const src = \`
    const { Client } = require(\${JSON.stringify(${JSON.stringify(PACKAGE)})})
    const { workerData, parentPort } = require('node:worker_threads')
    ;(async () => {
      const c = new Client(workerData.dir)
      await c.connect()
      const qs = []
      for (let k = 0; k < \${EACH}; k++) {
        if (k % 2) c.notify('w', workerData.id + '-' + k)
        else qs.push(c.query("SELECT pg_notify('w', '" + workerData.id + '-' + k + "')"))
      }
      await Promise.all(qs)
      await c.end()
      parentPort.postMessage('done')
    })()\`
  const exits = []
  for (let i = 0; i < WORKERS; i++) {
    const w = new Worker(src, { eval: true, workerData: { dir, id: i } })
    exits.push(new Promise((resolve, reject) => { w.on('error', reject); w.on('exit', resolve) }))
  }
  assert.deepEqual(await Promise.all(exits), Array(WORKERS).fill(0))
  // many promises at once on one client, interleaved with synchronous calls
  const ps = []
  for (let k = 0; k < 100; k++) {
    ps.push(listener.query("SELECT pg_notify('w', 'main-" + k + "')"))
    ps.push(listener.query('SELECT pg_listening_channels()').then((r) => assert.deepEqual(r.rows, [{ pg_listening_channels: 'w' }])))
  }
  await Promise.all(ps)
  const want = WORKERS * EACH + 100
  const deadline = Date.now() + 20000
  while (got.length < want && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  await new Promise((resolve) => setTimeout(resolve, 200)) // nothing more arrives
  assert.equal(got.length, want)
  assert.equal(new Set(got).size, want)
  for (let i = 0; i < WORKERS; i++) {
    const mine = got.filter((p) => p.startsWith(i + '-')).map((p) => Number(p.split('-')[1]))
    assert.deepEqual(mine, [...Array(EACH).keys()]) // each sender's order kept
  }
  assert.deepEqual(got.filter((p) => p.startsWith('main-')), [...Array(100).keys()].map((k) => 'main-' + k))
  await listener.end()
`))

test('null, undefined and wrong types are refused with a clear error', (t) => runCase(t, `
  const c = new Client(dir)
  await c.connect()
  const expectString = (v) => ({ code: 'StringExpected', message: new RegExp('Failed to convert JavaScript value .*into rust type \`String\`') })
  for (const v of [undefined, null, 42, Buffer.from('x'), {}]) {
    await assert.rejects(c.listen(v), expectString(v))
    await assert.rejects(c.notify(v, 'p'), expectString(v))
  }
  await assert.rejects(c.unlisten(42), expectString(42))
  await assert.rejects(c.notify(42), expectString(42))
  for (const v of [() => 1, Symbol('s')]) await assert.rejects(c.notify('ok', v), TypeError)
  await assert.rejects(new Client({ dir: 42 }).connect(), expectString(42))
  await assert.rejects(new Client({ dir, maxPayload: 'x' }).connect(), { code: 'NumberExpected' })
  // query text is converted with String(): a syntax error, as PostgreSQL gives
  for (const v of [undefined, null, 42]) {
    await assert.rejects(c.query(v), { harkCode: 'HARK_ERR_SYNTAX', code: '42601', message: 'syntax error at or near "' + String(v) + '"' })
  }
  await assert.rejects(c.transaction(42), TypeError)
  assert.equal(c.listeningChannels().length, 0)
  await c.listen('ok')
  await c.notify('ok', 'still works')
  const n = await new Promise((resolve) => c.once('notification', resolve))
  assert.equal(n.payload, 'still works')
  await c.end()
`))

test('NUL is refused; lone surrogates and Buffers arrive as UTF-8 text', (t) => runCase(t, `
  const c = new Client(dir)
  await c.connect()
  const nul = { harkCode: 'HARK_ERR_INVALID_ARGUMENT', code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0x00' }
  await assert.rejects(c.notify('ok', 'a\\0b'), nul)
  await assert.rejects(c.notify('a\\0b', 'p'), nul)
  await assert.rejects(c.listen('a\\0'), nul)
  await assert.rejects(c.query("NOTIFY ok, 'a\\0b'"), nul)
  c.listen('ok')
  const got = []
  c.on('notification', (n) => got.push([n.channel, n.payload]))
  // A JS string with a lone surrogate converts to UTF-8 with U+FFFD in its place (as TextEncoder).
  c.notify('ok', '\\ud800')
  await c.query("NOTIFY ok, 'x\\udcff'")
  c.listen('\\ud800')
  c.notify('\\ud800', 'on a surrogate channel')
  // A Buffer payload is its String(): UTF-8 decoded, invalid bytes replaced.
  c.notify('ok', Buffer.from([0xff]))
  c.notify('ok', Buffer.from('é'))
  const deadline = Date.now() + 5000
  while (got.length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.deepEqual(got, [['ok', '\\ufffd'], ['ok', 'x\\ufffd'], ['\\ufffd', 'on a surrogate channel'], ['ok', '\\ufffd'], ['ok', 'é']])
  await c.end()
`))

test('a child process (child_process.fork) opens its own client; the parent listener is unaffected', (t) => runCase(t, `
  const { fork } = require('node:child_process')
  const c = new Client(dir)
  await c.connect()
  c.listen('from-child')
  const got = []
  c.on('notification', (n) => got.push([n.payload, n.processId]))
  const childSrc = 'const { Client } = require(' + JSON.stringify(${JSON.stringify(PACKAGE)}) + ');' +
    '(async () => { const c = new Client(process.argv[2]); await c.connect(); c.notify("from-child", "hello"); await c.end() })()'
  const fs = require('node:fs'); const os = require('node:os'); const path = require('node:path')
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hark-fork-')), 'child.js')
  fs.writeFileSync(file, childSrc)
  const child = fork(file, [dir], { stdio: 'inherit' })
  const [code, signal] = await new Promise((resolve) => child.on('exit', (code, signal) => resolve([code, signal])))
  fs.rmSync(path.dirname(file), { recursive: true, force: true })
  assert.equal(signal, null)
  assert.equal(code, 0)
  const deadline = Date.now() + 5000
  while (got.length < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.deepEqual(got, [['hello', child.pid]])
  c.notify('from-child', 'parent still works')
  while (got.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.deepEqual(got.map((g) => g[0]), ['hello', 'parent still works'])
  await c.end()
`))

// The four statements of the deep-SQL report, checked on whatever thread runs them: nesting
// beyond hark's limit of 256 parentheses and calls fails with PostgreSQL's 54001, chains of ||
// and :: of any length work. Before the limit, the first one killed the process (SIGSEGV).
const DEEP_SQL_CHECKS = `
  const tooDeep = {
    harkCode: 'HARK_ERR_SYNTAX',
    code: '54001',
    message: 'stack depth limit exceeded',
    hint: 'Parentheses and function calls may nest at most 256 levels deep in hark; write the expression with less nesting.'
  }
  await assert.rejects(c.query('SELECT ' + '('.repeat(10000) + '1' + ')'.repeat(10000)), tooDeep)
  await assert.rejects(c.query('SELECT ' + 'pg_notify('.repeat(10000) + "'c'" + ", 'p')".repeat(10000)), tooDeep)
  const concat = await c.query("SELECT 'a'" + " || 'b'".repeat(30000) + ' AS s')
  assert.equal(concat.rows[0].s, 'a' + 'b'.repeat(30000))
  const cast = await c.query("SELECT 'x'" + '::text'.repeat(30000))
  assert.deepEqual(cast.rows, [{ text: 'x' }])
  assert.deepEqual((await c.query('SELECT ' + '('.repeat(256) + '1' + ')'.repeat(256) + ' AS one')).rows, [{ one: 1 }])
`

const DEEP_SQL_WORKER = `
const assert = require('node:assert/strict')
const { parentPort, workerData } = require('node:worker_threads')
const { Client } = require(${JSON.stringify(PACKAGE)})
;(async () => {
  const c = new Client(workerData.dir)
  await c.connect()
  ${DEEP_SQL_CHECKS}
  await c.end()
  parentPort.postMessage('done')
})().catch((e) => { parentPort.postMessage(String((e && e.stack) || e)) })
`

test('deeply nested and very long SQL, on the main thread and on a worker with a 512 KiB stack', (t) => runCase(t, `
  const { Worker } = require('node:worker_threads')
  const c = new Client(dir)
  await c.connect()
  ${DEEP_SQL_CHECKS}
  await c.end()
  const w = new Worker(${JSON.stringify(DEEP_SQL_WORKER)}, { eval: true, workerData: { dir }, resourceLimits: { stackSizeMb: 0.5 } })
  const said = await new Promise((resolve, reject) => { w.on('message', resolve); w.on('error', reject) })
  assert.equal(said, 'done')
`))

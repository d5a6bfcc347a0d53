'use strict'
// Shared by the tests: a fresh queue directory per test, the Rust peer, child processes with
// deadlines, and waiting for notifications with a deadline.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const readline = require('node:readline')

const PACKAGE = path.resolve(__dirname, '..')
const REPO = path.resolve(PACKAGE, '..', '..')

/** A new, empty queue directory, removed when the test ends. */
function queueDir (t) {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hark-node-'))
  t.after(() => fs.rmSync(base, { recursive: true, force: true }))
  return path.join(base, 'queue')
}

/** The Rust peer (core/examples/peer.rs), built by `make test-node`. */
function peerPath () {
  const target = process.env.CARGO_TARGET_DIR || path.join(REPO, 'target')
  const p = path.join(target, 'release', 'examples', 'peer')
  if (!fs.existsSync(p)) {
    throw new Error(`${p} is missing: build it with \`cargo build -p hark --release --example peer\` (make test-node does)`)
  }
  return p
}

/**
 * Spawns a process whose stdout is read line by line. `lines` collects them; `waitLine(pred)`
 * resolves with the first line (past or future) matching; `exited` resolves with
 * {code, signal, stderr}. The process is killed when the test ends or `deadlineMs` passes.
 */
function run (t, command, args, { deadlineMs = 60000, env, cwd } = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, cwd })
  const lines = []
  const watchers = []
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line)
    for (const w of watchers.slice()) {
      if (w.pred(line)) { watchers.splice(watchers.indexOf(w), 1); w.resolve(line) }
    }
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      for (const w of watchers.splice(0)) w.reject(new Error(`${path.basename(command)} exited (${code ?? signal}) before the expected line; stderr: ${stderr}`))
      resolve({ code, signal, stderr })
    })
  })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  function waitLine (pred) {
    const found = lines.find(pred)
    if (found !== undefined) return Promise.resolve(found)
    if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error('process already exited'))
    return new Promise((resolve, reject) => watchers.push({ pred, resolve, reject }))
  }
  return { child, lines, waitLine, exited, stderr: () => stderr }
}

/** Runs a Node script in a child process (the package is reachable as require('hark-notify')). */
function runNode (t, script, args = [], opts = {}) {
  const env = { ...process.env, NODE_PATH: nodePath(), ...(opts.env || {}) }
  // '[eval]' stands where a script's path would, so that process.argv[2] is the first argument.
  return run(t, process.execPath, ['-e', script, '--', '[eval]', ...args], { ...opts, env })
}

// A directory holding a `hark-notify` link to this package, so that child scripts can require('hark-notify').
let linkDir = null
function nodePath () {
  if (linkDir === null) {
    linkDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hark-node-path-'))
    fs.symlinkSync(PACKAGE, path.join(linkDir, 'hark-notify'))
    process.on('exit', () => fs.rmSync(linkDir, { recursive: true, force: true }))
  }
  return linkDir
}

/** Collects `count` notifications from `client`, or rejects after `ms` with what it got. */
function collect (client, count, ms = 30000) {
  return new Promise((resolve, reject) => {
    const got = []
    const timer = setTimeout(() => {
      client.off('notification', on)
      reject(new Error(`timed out with ${got.length} of ${count} notifications`))
    }, ms)
    function on (msg) {
      got.push(msg)
      if (got.length === count) {
        clearTimeout(timer)
        client.off('notification', on)
        resolve(got)
      }
    }
    client.on('notification', on)
  })
}

/** Resolves once `condition()` is true (checked every 5 ms), or rejects after `ms`. */
async function waitFor (condition, what, ms = 20000) {
  const deadline = performance.now() + ms
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Resolves after `ms` milliseconds. */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Asserts that `fn()` returns a promise (it must not throw: hark's promise-returning methods report
 * every failure by rejecting, as node-postgres' do) that rejects with an Error whose `harkCode` is
 * `harkCode` and, if given, whose `message` is `message`. Resolves with the error.
 */
async function rejectsWithHarkCode (assert, fn, harkCode, message) {
  let promise
  try {
    promise = fn()
  } catch (e) {
    assert.fail(`expected a rejection with ${harkCode}, but the call threw: ${e && e.stack}`)
  }
  assert.ok(promise instanceof Promise, `expected a promise rejecting with ${harkCode}, got ${promise}`)
  let error = null
  try { await promise } catch (e) { error = e }
  assert.ok(error instanceof Error, `expected an Error with harkCode ${harkCode}, got ${error}`)
  assert.strictEqual(error.harkCode, harkCode, `harkCode of: ${error.message}`)
  assert.match(error.code, /^[0-9A-Z]{5}$/, `code (the SQLSTATE) of: ${error.message}`)
  assert.strictEqual(error.sqlstate, error.code)
  assert.strictEqual(error.severity, 'ERROR')
  if (message !== undefined) assert.strictEqual(error.message, message)
  return error
}

module.exports = { PACKAGE, REPO, queueDir, peerPath, run, runNode, nodePath, collect, waitFor, sleep, rejectsWithHarkCode }

'use strict'
// require('hark-notify'): node-postgres' Client, for LISTEN/NOTIFY through a queue directory.
//
// A Client owns one native session (index.js, generated from src/lib.rs). Statements run on the
// JS thread, when called, and take microseconds; `query`, `listen`, `unlisten` and `notify` still
// return a Promise, as node-postgres' `query` does, and report every failure by rejecting it.
// Errors carry node-postgres' DatabaseError fields (`code` is the SQLSTATE) and hark's own
// identity as `harkCode` (src/error.rs).
// Notifications arrive as node-postgres delivers them, as 'notification' events, and through
// `notifications()` iterators:
//
//   event loop polls the sleeping session's descriptor (native, src/waiter.rs) --> _drain()
//   _drain(): take up to BATCH from the session, hand each to the iterators and emit it, in
//   order, one turn of the event loop per batch, so a burst never blocks the loop for long.
//   A batch that is not empty leaves the session awake, its wake-up flag raised (notifiers
//   then make no system call): the next drain, on the next turn, takes again; an empty batch
//   means the session found nothing and went to sleep (the loop polls its descriptor again).
//
// Notifications can also be ready without the descriptor saying so: after a COMMIT or ROLLBACK
// (PostgreSQL delivers between transactions only) and for a session's own NOTIFY. `_settle()`
// runs after every statement and schedules a drain for them.
//
// Iterators pull: a drain takes only while someone asks (`_wanted()`): a 'notification' listener
// (events are pushed, as in node-postgres), an iterator waiting in next() with nothing left, or
// nobody at all (what no one consumes is read and dropped, as node-postgres drops notifications
// nobody listens to, so that the session does not hold the queue; not a subscription's, which
// wait in the queue for their consumer). When only iterators consume and all of them are busy
// with what they have, the drain takes nothing and the session is not polled (`_paused`): the
// backlog stays in hark's queue, which is bounded and made for slow readers, and nothing runs
// until a consumer asks (`_resume()`).

const { EventEmitter } = require('node:events')
const native = require('../index.js')
// libpq's quoting, from the core (as node-postgres', ' E'…'' when there is a backslash).
const escapeLiteral = (s) => native.escapeLiteral(String(s))
const escapeIdentifier = (s) => native.escapeIdentifier(String(s))
const { field, parser, prepareValue } = require('./types.js')

// Notifications emitted per turn of the event loop.
const BATCH = 1024

// An error of the client itself, shaped as the native layer's (src/error.rs): node-postgres'
// DatabaseError fields (`code` the SQLSTATE, `severity`), hark's identity as `harkCode`.
function clientError (harkCode, sqlstate, message, hint) {
  const err = new Error(message)
  err.code = sqlstate
  err.harkCode = harkCode
  err.sqlstate = sqlstate
  err.severity = 'ERROR'
  if (hint !== undefined) err.hint = hint
  return err
}

// The options a Client takes (ClientConfig in client.d.ts).
const OPTIONS = ['dir', 'maxQueueSize', 'maxPayload', 'segmentSize', 'groupShared', 'create', 'cutLaggards',
  'listenerMaxLagBytes', 'listenerMaxLagAge']

// node-postgres' options for reaching a PostgreSQL server (and libpq's words for them): hark has
// none, and ignoring them would have a program written for a server use some other queue.
const SERVER_OPTIONS = new Set([
  'host', 'hostaddr', 'port', 'user', 'password', 'database', 'dbname', 'connectionString', 'ssl',
  'sslmode', 'options', 'application_name', 'fallback_application_name', 'client_encoding',
  'keepAlive', 'keepAliveInitialDelayMillis', 'connectionTimeoutMillis', 'statement_timeout',
  'query_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'stream', 'types',
  'binary', 'Promise', 'enableChannelBinding'
])

const WHERE_THE_QUEUE_IS = "hark has no server: give the path of a queue directory, as { dir: '/path/to/queue' } " +
  'or the path alone, or none for the default ($HARK_DIR if set, else defaultDir()).'

// The error a config deserves, or null: connect() rejects with it, as with the errors of opening.
function configError (config) {
  if (typeof config !== 'object' || Array.isArray(config)) {
    const what = Array.isArray(config) ? 'an array' : `a ${typeof config}`
    return clientError('HARK_ERR_INVALID_ARGUMENT', '22023',
      `a Client takes a queue directory path or an options object, not ${what}`, WHERE_THE_QUEUE_IS)
  }
  for (const key of Object.keys(config)) {
    if (SERVER_OPTIONS.has(key)) {
      return clientError('HARK_ERR_INVALID_ARGUMENT', '22023',
        `option "${key}" is for a PostgreSQL server: hark takes a queue directory ({ dir } or $HARK_DIR)`,
        WHERE_THE_QUEUE_IS)
    }
    if (!OPTIONS.includes(key)) {
      return clientError('HARK_ERR_INVALID_ARGUMENT', '22023',
        `unknown option "${key}": a Client takes ${OPTIONS.slice(0, -1).join(', ')} and ${OPTIONS.at(-1)}`)
    }
  }
  return null
}

// The text of a notify() payload (see Client#notify): never "[object Object]".
function payloadText (v) {
  if (typeof v === 'string') return v
  if (v === null || v === undefined) return ''
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
  if (Buffer.isBuffer(v)) return v.toString('utf8')
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'object') return JSON.stringify(v)
  throw new TypeError(`a notification payload must be a string or a value JSON can represent, not a ${typeof v}`)
}

function notConnected () {
  return clientError('HARK_ERR_CLOSED', '08003', 'client is not connected; call client.connect() first')
}

// node-postgres' Result: command, rowCount, rows as objects keyed by column name with values
// parsed by their column's type (lib/types.js), fields.
function toResult (r) {
  const m = /^([A-Za-z]+)(?: (\d+))?(?: (\d+))?/.exec(r.tag)
  const fields = r.fields.map((name, i) => field(name, r.types[i]))
  const parsers = fields.map((f) => parser(f.dataTypeID))
  const rows = r.rows.map((values) => {
    const row = {}
    for (let i = 0; i < fields.length; i++) {
      const v = values[i]
      row[fields[i].name] = v === null || v === undefined ? null : parsers[i](v)
    }
    return row
  })
  return {
    command: m ? m[1] : null,
    rowCount: m && (m[3] || m[2]) ? Number(m[3] || m[2]) : null,
    rows,
    fields
  }
}

// The result of a text without statements (node-postgres': no command, no rows).
const EMPTY = { tag: '', fields: [], types: [], rows: [] }

function withCallback (promise, callback) {
  if (typeof callback !== 'function') return promise
  promise.then((v) => callback(null, v), (err) => callback(err))
  return undefined
}

class Client extends EventEmitter {
  /**
   * @param {string | {dir?: string, maxQueueSize?: number, maxPayload?: number,
   *   segmentSize?: number, groupShared?: boolean, create?: boolean}} [config] the queue
   *   directory, or options; any other key (node-postgres' `host`, `user`, `database`, …
   *   included) makes connect() reject, never silently ignored.
   */
  constructor (config) {
    super()
    if (typeof config === 'string') config = { dir: config }
    config = config ?? {} // as node-postgres: no config (or null) is the defaults
    this._configError = configError(config)
    if (this._configError !== null) config = {}
    this.dir = config.dir ?? null
    this.processID = null
    this._options = {
      maxQueueSize: config.maxQueueSize,
      maxPayload: config.maxPayload,
      segmentSize: config.segmentSize,
      groupShared: config.groupShared,
      create: config.create,
      cutLaggards: config.cutLaggards,
      listenerMaxLagBytes: config.listenerMaxLagBytes,
      listenerMaxLagAgeMs: config.listenerMaxLagAge
    }
    this._session = null
    this._state = 'new' // connecting, connected, ended
    this._connecting = null
    this._keepAlive = true
    this._inbox = [] // taken from the session, not yet emitted
    this._inboxHead = 0
    this._drainScheduled = false
    this._paused = false // a drain found nobody asking: the session is not polled until _resume()
    this._iterators = new Set() // notifications() iterators not yet finished
    // Attached to a subscription with automatic acknowledgement: each take acknowledges what
    // was taken before it, so one notification is taken at a time (see _drain).
    this._autoAck = false
    this._transactionDepth = 0
  }

  connect (callback) {
    return withCallback(this._connect(), callback)
  }

  async _connect () {
    if (this._state !== 'new') {
      throw clientError('HARK_ERR_INVALID_ARGUMENT', '08000',
        'Client has already been connected. You cannot reuse a client.')
    }
    this._state = 'connecting'
    let session
    try {
      if (this._configError !== null) throw this._configError
      this._connecting = native.open(this.dir ?? undefined, this._options) // throws on bad options
      session = await this._connecting
    } catch (err) {
      this._state = 'ended'
      throw err
    } finally {
      this._connecting = null
    }
    if (this._state === 'ended') { // end() was called while opening
      session.close()
      throw clientError('HARK_ERR_CLOSED', '08003', 'client was ended while connecting')
    }
    try {
      session.watch(() => this._drain())
      if (!this._keepAlive) session.setKeepAlive(false)
    } catch (err) { // the event loop could not watch the session
      session.close()
      this._state = 'ended'
      throw err
    }
    this._session = session
    this._state = 'connected'
    this.dir = session.dir
    this.processID = session.backendPid
  }

  // Runs fn(session) synchronously; whatever happens, looks for notifications and notices the
  // statement made ready.
  _run (fn) {
    const s = this._session
    if (s === null) throw this._state === 'ended' ? clientError('HARK_ERR_CLOSED', '08003', 'connection is closed') : notConnected()
    try {
      return fn(s)
    } finally {
      this._settle()
    }
  }

  /**
   * Runs SQL in hark's dialect; resolves with node-postgres' result, or as node-postgres does for
   * a text of several statements, an array of one result per statement. Rejects with the error of
   * a statement that fails (the statements before it are undone if they ran in the text's
   * implicit transaction, as in PostgreSQL). `values` are bound to $1, $2, … as node-postgres'
   * parameters are: as values, never pasted into the text, which may then hold one statement.
   */
  query (text, values, callback) {
    if (typeof values === 'function') { callback = values; values = undefined }
    if (text !== null && typeof text === 'object') {
      values = values ?? text.values
      text = text.text
    }
    let promise
    try {
      // With values, one statement bound through the core (the extended protocol); without, the
      // simple protocol's several statements, as node-postgres decides.
      const results = Array.isArray(values) && values.length > 0
        ? this._run((s) => s.queryParams(String(text), values.map((v) => prepareValue(v))))
        : this._run((s) => s.query(String(text)))
      promise = Promise.resolve(results.length > 1 ? results.map(toResult) : toResult(results[0] ?? EMPTY))
    } catch (err) {
      promise = Promise.reject(err)
    }
    return withCallback(promise, callback)
  }

  // Runs fn(session) now, as _run, and reports through a promise: rejected, never thrown, when
  // the statement fails, as `query` does.
  _statement (fn) {
    try {
      return Promise.resolve(this._run(fn))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * LISTEN on `channel`, taken verbatim (no case folding), as pg_notify takes it. The statement
   * runs at once; the promise says how it went.
   */
  listen (channel) {
    return this._statement((s) => { s.listen(channel) })
  }

  /** UNLISTEN `channel`, or every channel when omitted. */
  unlisten (channel) {
    return this._statement((s) => { s.unlisten(channel ?? null) })
  }

  /**
   * pg_notify(channel, payload): visible to listeners when the transaction commits. A payload
   * that is not a string is sent as node-postgres sends a query value: an object or array as
   * JSON.stringify(value), a Date as toISOString(), a Buffer as UTF-8, a number, boolean or
   * bigint as String(value); null or undefined as '' (pg_notify's NULL payload). Parse a JSON
   * payload on receipt with JSON.parse(msg.payload).
   */
  notify (channel, payload = '') {
    let text
    try {
      text = payloadText(payload)
    } catch (err) {
      return Promise.reject(err)
    }
    return this._statement((s) => { s.notify(channel, text) })
  }

  /**
   * Creates the durable subscription `name` on `channels` (exact names, or globs with `*`, `?`
   * and `\` escapes, as Redis' PSUBSCRIBE) if it does not exist, and attaches this client to
   * it: 'notification' events then deliver every notification on its channels after its last
   * acknowledged one, in commit order, across restarts of this process (not across a reboot).
   * Options: `ack` ('explicit', the default: only ack() acknowledges; 'auto': each
   * notification taken acknowledges those before it, so that a client killed while handling one
   * gets that one again; such a client takes one notification per turn of the event loop),
   * `create` (false: only an existing subscription), `wait` (milliseconds to wait for another
   * attached client to let go, instead of rejecting with HARK_ERR_IN_USE), `maxLagBytes` and
   * `maxLagAge` (milliseconds): past them the subscription is cut, and a 'gap' event (an 'error'
   * without a 'gap' listener) says what was skipped.
   */
  async subscribe (name, channels, options = {}) {
    const list = typeof channels === 'string' ? [channels] : channels
    const native = {
      ack: options.ack,
      create: options.create,
      maxLagBytes: options.maxLagBytes,
      maxLagAgeMs: options.maxLagAge
    }
    const wait = options.wait ?? 0
    if (typeof wait !== 'number' || !(wait >= 0)) {
      throw clientError('HARK_ERR_INVALID_ARGUMENT', '22023', 'wait must be a non-negative number of milliseconds')
    }
    const deadline = Date.now() + wait
    for (;;) {
      try {
        this._run((s) => s.subscribe(String(name), Array.from(list, String), native))
        this._autoAck = native.ack === 'auto'
        this._scheduleDrain()
        return
      } catch (err) {
        if (err.harkCode !== 'HARK_ERR_IN_USE' || Date.now() >= deadline) throw err
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** Acknowledges `msg` (a notification, or its position) and every notification before it. */
  async ack (msg) {
    this._run((s) => s.ack(typeof msg === 'object' && msg !== null ? msg.position : msg))
  }

  /** Ends this client's attachment; the subscription stays at its acknowledged position. */
  async detach () {
    this._run((s) => s.detach())
    this._autoAck = false
  }

  /** Drops the durable subscription `name`. */
  async unsubscribe (name) {
    this._run((s) => s.unsubscribe(String(name)))
    if (this.subscription === null) this._autoAck = false
  }

  /** The durable subscription this client is attached to, or null. */
  get subscription () {
    return this._session === null ? null : this._session.subscription ?? null
  }

  /**
   * Runs `fn(client)` inside BEGIN … COMMIT (a savepoint when nested). Rolls back and rethrows
   * when `fn` throws; refuses to report success when a statement inside failed.
   */
  async transaction (fn) {
    const depth = this._transactionDepth
    const savepoint = `_hark_${depth}`
    await this.query(depth === 0 ? 'BEGIN' : `SAVEPOINT ${savepoint}`)
    this._transactionDepth = depth + 1
    let value
    try {
      value = await fn(this)
    } catch (err) {
      this._transactionDepth = depth
      if (this._session !== null) {
        await this.query(depth === 0 ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${savepoint}`)
      }
      throw err
    }
    this._transactionDepth = depth
    if (this._run((s) => s.transactionStatus()) === 'inerror') {
      await this.query(depth === 0 ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${savepoint}`)
      throw clientError('HARK_ERR_TRANSACTION_STATE', '25P02',
        'current transaction was aborted by an earlier error; it was rolled back')
    }
    await this.query(depth === 0 ? 'COMMIT' : `RELEASE SAVEPOINT ${savepoint}`)
    return value
  }

  /** Channels this session listens on (pg_listening_channels()). */
  listeningChannels () {
    return this._run((s) => s.listeningChannels())
  }

  /** pg_notification_queue_usage(): the fraction of the queue's maximum size in use. */
  queueUsage () {
    return this._run((s) => s.queueUsage())
  }

  /**
   * The queue's positions and sizes and each listener's and durable subscription's channels and
   * lag (bytes, notifications, age of the oldest unread in milliseconds), limits and pending gap:
   * what `hark stat` shows. Advances the queue's tail first, as a commit does.
   */
  stats () {
    return this._run((s) => s.stats())
  }

  /** The queue's durable subscriptions with their lag (`stats().receivers` that have a name). */
  subscriptions () {
    return this.stats().receivers.filter((r) => r.subscription !== null && r.subscription !== undefined)
  }

  /**
   * An async iterator over notifications received from now on. It takes them from the session as
   * its consumer asks (a batch at most), so a slow consumer leaves the backlog in the queue. It
   * ends when `signal` aborts (at once) or when the client ends (after yielding what was already
   * taken), and throws the client's 'error'.
   */
  notifications ({ signal } = {}) {
    return new NotificationIterator(this, signal)
  }

  /** Lets the process exit while this client only waits for notifications. */
  unref () {
    this._keepAlive = false
    if (this._session !== null) this._session.setKeepAlive(false)
    return this
  }

  /** Undoes unref(): an open client keeps the process alive (the default). */
  ref () {
    this._keepAlive = true
    if (this._session !== null) this._session.setKeepAlive(true)
    return this
  }

  end (callback) {
    return withCallback(this._end(), callback)
  }

  async _end () {
    if (this._state === 'ended') return
    const connecting = this._connecting
    this._state = 'ended'
    if (connecting !== null) await connecting.catch(() => {})
    const s = this._session
    this._session = null
    this._inbox = []
    this._inboxHead = 0
    this._paused = false
    if (s !== null) s.close()
    this.emit('end')
  }

  // Event listeners, like node-postgres' socket, take every notification as it comes.
  addListener (event, listener) {
    super.addListener(event, listener)
    if (event === 'notification') this._resume()
    return this
  }

  on (event, listener) {
    return this.addListener(event, listener)
  }

  prependListener (event, listener) {
    super.prependListener(event, listener)
    if (event === 'notification') this._resume()
    return this
  }

  // Whether a drain should take from the session now (see the top of this file).
  _wanted () {
    if (this.listenerCount('notification') > 0) return true
    // Nobody asks: a listener's notifications are read and dropped (as node-postgres drops
    // them), but a subscription's stay in the queue for the first consumer, since taking them
    // would acknowledge them (ack 'auto', or a later ack()) unseen.
    if (this._iterators.size === 0) return this.subscription === null
    for (const it of this._iterators) {
      if (it._waiting()) return true
    }
    return false
  }

  // A consumer asks (or one left, which may leave nobody): take again if the client paused.
  _resume () {
    if (this._paused) {
      this._paused = false
      this._scheduleDrain()
    }
  }

  // Called by the event loop when the sleeping session's descriptor is readable, and by _settle
  // when notifications are already waiting. Every call takes one batch from the session (plus
  // delivers what a throwing listener left over), if someone wants it. A batch that is not empty
  // leaves the session awake: the next batch is taken on the next turn (setImmediate), after
  // timers, I/O and the iterators' consumers had theirs. An empty one put the session to sleep.
  // A drain that takes nothing (nobody asks) leaves the session unpolled until _resume().
  _drain () {
    this._drainScheduled = false
    this._emitInbox()
    const s = this._session
    if (s === null) return
    if (!this._wanted()) {
      this._paused = true
      return
    }
    this._paused = false
    try {
      // The core acknowledges a notification when the next one is taken: a batch would
      // acknowledge all but its last before any was handled.
      this._inbox = s.take(this._autoAck ? 1 : BATCH)
      this._inboxHead = 0
    } catch (err) {
      this.emit('error', err)
      return
    }
    const awake = this._inbox.length > 0
    this._emitInbox()
    if (awake) this._scheduleDrain()
    this._settle()
  }

  _emitInbox () {
    while (this._inboxHead < this._inbox.length && this._session !== null) {
      const msg = this._inbox[this._inboxHead++]
      if (msg.isGap === true) {
        // A cut: never skipped silently. To 'gap' listeners (and iterators, which end with it),
        // or, without one, as an 'error'.
        delete msg.isGap
        if (this.listenerCount('gap') > 0) {
          for (const it of this._iterators) it._onError(msg)
          this.emit('gap', msg)
        } else {
          this.emit('error', msg)
        }
        continue
      }
      for (const it of this._iterators) it._push(msg)
      try {
        this.emit('notification', msg)
      } catch (err) {
        // A listener threw: the error surfaces as from any event handler, and the rest is still
        // delivered, in order, on the next turn.
        this._scheduleDrain()
        throw err
      }
    }
  }

  _scheduleDrain () {
    if (this._drainScheduled) return
    this._drainScheduled = true
    setImmediate(() => this._drain())
  }

  _settle () {
    const s = this._session
    if (s === null) return
    const status = s.status()
    if (status & native.PENDING_NOTICES) {
      for (const notice of s.takeNotices()) this._notice(notice)
    }
    if ((status & native.PENDING_NOTIFICATIONS) || this._inboxHead < this._inbox.length) {
      this._scheduleDrain()
    }
  }

  // Notices go to 'notice' listeners, or to standard error as libpq's default processor does.
  _notice (notice) {
    if (this.listenerCount('notice') > 0) {
      this.emit('notice', notice)
      return
    }
    let text = `${notice.severity}:  ${notice.message}\n`
    if (notice.detail) text += `DETAIL:  ${notice.detail}\n`
    if (notice.hint) text += `HINT:  ${notice.hint}\n`
    process.stderr.write(text)
  }
}

Client.prototype.escapeLiteral = escapeLiteral
Client.prototype.escapeIdentifier = escapeIdentifier

// Pull-based: the client hands it notifications (`_push`) from batches it takes while some
// consumer asks, and it asks (`_waiting` becomes true, `_resume`) only when next() finds nothing
// left. With no other consumer its buffer holds at most one batch; notifications other consumers
// made the client take while this one was busy wait here until it gets to them.
class NotificationIterator {
  constructor (client, signal) {
    this._client = client
    this._signal = signal
    this._buffer = []
    this._head = 0
    this._waiters = []
    this._error = null
    this._done = false
    this._onEnd = () => this._finish(true)
    this._onError = (err) => { this._error = err; this._finish(false) }
    this._onAbort = () => this._finish(false)
    if ((signal && signal.aborted) || client._state === 'ended') {
      this._done = true
      return
    }
    client._iterators.add(this)
    client.on('end', this._onEnd)
    client.on('error', this._onError)
    if (signal) signal.addEventListener('abort', this._onAbort, { once: true })
  }

  _push (msg) {
    const w = this._waiters.shift()
    if (w) w.resolve({ value: msg, done: false })
    else this._buffer.push(msg)
  }

  // Waiters exist only while the buffer is empty.
  _waiting () {
    return this._waiters.length > 0
  }

  _finish (keepReceived) {
    if (this._done) return
    this._done = true
    const client = this._client
    client._iterators.delete(this)
    client.off('end', this._onEnd)
    client.off('error', this._onError)
    if (this._signal) this._signal.removeEventListener('abort', this._onAbort)
    if (!keepReceived) { this._buffer = []; this._head = 0 }
    // The first waiter gets the error, if any; a later next() then finds the iterator done.
    for (const w of this._waiters.splice(0)) {
      if (this._error) {
        w.reject(this._error)
        this._error = null
      } else {
        w.resolve({ value: undefined, done: true })
      }
    }
    client._resume() // the client may have paused for this iterator alone
  }

  next () {
    if (this._head < this._buffer.length) {
      const value = this._buffer[this._head++]
      if (this._head >= 1024 && this._head * 2 >= this._buffer.length) {
        this._buffer = this._buffer.slice(this._head)
        this._head = 0
      }
      return Promise.resolve({ value, done: false })
    }
    if (this._done) {
      if (this._error) {
        const err = this._error
        this._error = null
        return Promise.reject(err)
      }
      return Promise.resolve({ value: undefined, done: true })
    }
    const next = new Promise((resolve, reject) => this._waiters.push({ resolve, reject }))
    this._client._resume()
    return next
  }

  return () {
    this._finish(false)
    this._error = null
    return Promise.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator] () {
    return this
  }
}

module.exports = { Client, defaultDir: native.defaultDir, escapeLiteral, escapeIdentifier }

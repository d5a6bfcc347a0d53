// Type-checked by `make test-node` (tsc --noEmit -p test/types), never run: it uses the public
// API as a TypeScript program would, so that a declaration that drifts from lib/client.js or the
// generated index.d.ts fails the check. `@ts-expect-error` lines are misuses that must not compile.

import { Client, defaultDir, escapeIdentifier, escapeLiteral } from 'hark-notify'
import type { ClientConfig, HarkError, HarkErrorCode, Notification, Notice, QueryResult, QueueStats, ReceiverStat } from 'hark-notify'
import * as native from 'hark-notify/index'

// Every code, once: the switch must stay exhaustive over the union.
function explain (code: HarkErrorCode): string {
  switch (code) {
    case 'HARK_ERR_INVALID_ARGUMENT': return 'bad argument'
    case 'HARK_ERR_SYNTAX': return 'syntax'
    case 'HARK_ERR_TRANSACTION_STATE': return 'transaction state'
    case 'HARK_ERR_IN_USE': return 'subscription in use'
    case 'HARK_ERR_QUEUE_FULL': return 'queue full'
    case 'HARK_ERR_TOO_MANY_LISTENERS': return 'too many listeners'
    case 'HARK_ERR_DISK_FULL': return 'disk full'
    case 'HARK_ERR_CORRUPTED': return 'corrupted'
    case 'HARK_ERR_INCOMPATIBLE': return 'incompatible'
    case 'HARK_ERR_PERMISSION_DENIED': return 'permission denied'
    case 'HARK_ERR_IO': return 'I/O'
    case 'HARK_ERR_CLOSED': return 'closed'
    case 'HARK_ERR_GAP': return 'notifications were skipped'
    case 'HARK_ERR_PANIC': return 'a bug in hark; the session was closed'
    default: {
      const unknown: never = code
      return unknown
    }
  }
}

function report (err: HarkError): string {
  const where = err.position === undefined ? '' : ` at ${Number.parseInt(err.position, 10) - 1}`
  // node-postgres' checks: code is the SQLSTATE.
  if (err.code === '54000' || err.code === '42601') console.error(err.severity, err.code, err.sqlstate)
  return `${explain(err.harkCode)} (${err.code})${where}: ${err.message}${err.detail ?? ''}${err.hint ?? ''}`
}

async function main (): Promise<void> {
  const config: ClientConfig = { dir: defaultDir(), maxQueueSize: 1 << 20, maxPayload: 8000, groupShared: false }
  // @ts-expect-error node-postgres' server options are no ClientConfig (connect() rejects them)
  const pgConfig: ClientConfig = { host: 'localhost', database: 'app' }
  // @ts-expect-error nor is any other key
  new Client({ dir: '/tmp/queue', maxQueueSzie: 1 })
  // @ts-expect-error hark's code is harkCode; code is the SQLSTATE
  const wrong: HarkErrorCode = ({} as HarkError).code
  const client = new Client(config)
  const byPath = new Client('/tmp/queue')
  await client.connect()
  byPath.connect((err: HarkError | null) => { if (err) console.error(report(err)) })
  const dir: string | null = client.dir
  const pid: number | null = client.processID

  await client.listen('events')
  await client.unlisten('events')
  await client.unlisten()
  const sent: Promise<void> = client.notify('events', 'payload')
  await sent
  await client.notify('events')
  await client.notify('events', { order: 42 }) // sent as JSON
  await client.notify('events', 42)
  client.listen('').catch((err: HarkError) => report(err))
  // @ts-expect-error a function is no payload
  await client.notify('events', () => 42)

  const r: QueryResult = await client.query('SELECT 1 AS one')
  const one: unknown = r.rows[0]?.['one']
  const typed = await client.query<{ n: number }>('SELECT $1::int4 AS n', [1])
  const n: number | undefined = typed.rows[0]?.n
  const fromConfig = await client.query({ text: 'SELECT pg_notify($1, $2)', values: ['events', 'x'] })
  const command: string | null = fromConfig.command
  const count: number | null = fromConfig.rowCount
  const oid: number | undefined = fromConfig.fields[0]?.dataTypeID
  client.query('SELECT 1', (err, result) => { if (err) report(err); else if (result) console.log(result.rows) })
  client.query('SELECT $1', ['x'], (err) => { if (err) report(err) })
  // @ts-expect-error the text is a string or a QueryConfig
  await client.query(42)

  const total: number = await client.transaction(async (c) => {
    await c.notify('events', 'inside')
    return 3
  })
  const channels: string[] = client.listeningChannels()
  const usage: number = client.queueUsage()

  client.on('notification', (msg: Notification) => console.log(msg.channel, msg.payload, msg.processId))
  client.once('notice', (notice: Notice) => console.log(notice.severity, notice.code, notice.sqlstate, notice.message))
  client.on('error', (err: HarkError) => {
    if (err.harkCode === 'HARK_ERR_PANIC') console.error('hark has a bug: this client is closed')
  })
  client.on('end', () => {})

  for await (const msg of client.notifications({ signal: AbortSignal.timeout(1000) })) {
    const payload: string = msg.payload
    if (payload === 'stop') break
  }
  const it = client.notifications()
  const first = await it.next()
  if (!first.done) console.log(first.value.processId)
  await it.return?.()

  client.unref().ref()
  console.log(escapeLiteral("it's"), escapeIdentifier('Table'), client.escapeLiteral('x'), client.escapeIdentifier('y'))
  console.log(dir, pid, one, n, command, count, oid, total, channels, usage, pgConfig, wrong)
  await client.end()
  client.end((err) => { if (err) report(err) })
  try {
    await byPath.query('SELECT 1')
  } catch (e) {
    report(e as HarkError)
  }

  // The native layer (index.d.ts, generated by napi from src/lib.rs).
  const s: native.Connection = await native.open(dir ?? undefined, { maxPayload: 8000 })
  s.watch(() => {
    const batch: native.Notification[] = s.take(1024)
    console.log(batch.length, s.status() & native.PENDING_NOTIFICATIONS, s.takeNotices())
  })
  const status: 'idle' | 'intrans' | 'inerror' = s.transactionStatus()
  const results: native.QueryResult[] = s.query('SELECT 1')
  s.setKeepAlive(false)
  console.log(status, results, s.backendPid, s.dir, s.closed)
  s.close()
}

main().catch((e: unknown) => { console.error(e) })

// stats(): a plain listener's receiver has no subscription name, and an idle one no lag age.
function describeStats (stats: QueueStats): string[] {
  return stats.receivers.map((r: ReceiverStat) => {
    const name: string | undefined = r.subscription
    const age: number | undefined = r.lagAgeMs
    return `${name ?? 'listener'} ${r.lagBytes} ${age ?? '-'} ${(r.channels ?? []).join(',')}`
  })
}
void describeStats

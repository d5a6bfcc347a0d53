// Types of require('hark-notify'): node-postgres' Client for LISTEN/NOTIFY through a queue directory.

import { EventEmitter } from 'node:events'

/** A notification, with node-postgres' fields. */
export interface Notification {
  channel: string
  payload: string
  /**
   * The backend PID of the session that sent it; compare with `client.processID` to skip your
   * own notifications (each client has its own, as each node-postgres client has its backend).
   */
  processId: number
  /** Its position in the queue: unique, increasing in commit order (ack() takes it). */
  position: number
  /** Its transaction's commit sequence number (the same for all of one transaction). */
  txn: number
  /** When its transaction committed. */
  commitTime: Date
}

/** A WARNING or NOTICE that is not an error (libpq's notice, node-postgres' field names). */
export interface Notice {
  severity: 'NOTICE' | 'WARNING' | string
  /** The SQLSTATE, e.g. '25001' for BEGIN inside a block. */
  code: string
  /** The same as `code`, under the name hark's other languages use. */
  sqlstate: string
  message: string
  detail?: string
  hint?: string
}

/** hark's own error identities: the names of the C constants, the same in every language. */
export type HarkErrorCode =
  | 'HARK_ERR_INVALID_ARGUMENT'
  | 'HARK_ERR_SYNTAX'
  | 'HARK_ERR_TRANSACTION_STATE'
  | 'HARK_ERR_IN_USE'
  | 'HARK_ERR_QUEUE_FULL'
  | 'HARK_ERR_TOO_MANY_LISTENERS'
  | 'HARK_ERR_DISK_FULL'
  | 'HARK_ERR_CORRUPTED'
  | 'HARK_ERR_INCOMPATIBLE'
  | 'HARK_ERR_PERMISSION_DENIED'
  | 'HARK_ERR_IO'
  | 'HARK_ERR_CLOSED'
  /** A receiver was cut: notifications were skipped (raised once, before those after the gap). */
  | 'HARK_ERR_GAP'
  /** A bug inside hark (a Rust panic): the client's session was closed. */
  | 'HARK_ERR_PANIC'

/**
 * Every error hark throws or rejects with, with the fields of node-postgres' DatabaseError that
 * hark has: test `err.code` against SQLSTATEs as with node-postgres.
 */
export interface HarkError extends Error {
  /**
   * PostgreSQL's SQLSTATE: '42601' syntax error, '54000' queue full, '22023' bad argument,
   * '3D000' no queue (`create: false`), '08003' closed, '25P02' aborted block, …
   */
  code: string
  /** hark's identity of the error, the C constant's name, as in every language. */
  harkCode: HarkErrorCode
  /** The same as `code`, under the name hark's other languages use. */
  sqlstate: string
  severity: 'ERROR'
  detail?: string
  hint?: string
  /** For errors in SQL text: the 1-based character position, as text (node-postgres'). */
  position?: string
}

export interface ClientConfig {
  /**
   * The queue directory (the config may also be this path alone); default $HARK_DIR, else
   * /dev/shm/hark-<uid> (/tmp/hark-<uid> without /dev/shm). A queue is created only in a missing
   * or empty directory (code '55000', harkCode HARK_ERR_PERMISSION_DENIED, for one holding other
   * files), and a connection string or URL ('dbname=app', 'postgresql://…') is refused (code
   * '22023', harkCode HARK_ERR_INVALID_ARGUMENT). So is any key not declared here
   * (node-postgres' `host`, `user`, `password`, `database`, `port`, `connectionString`, …):
   * connect() rejects, naming it.
   */
  dir?: string
  /** Fixed when the queue is created (bytes): default 8 GiB, minimum 512 KiB. */
  maxQueueSize?: number
  /** Fixed when the queue is created (bytes): default 7999, at most 1 MiB. */
  maxPayload?: number
  /** Fixed when the queue is created (bytes, a power of two). */
  segmentSize?: number
  /** Share the queue with the directory's group (02770/0660 instead of 0700/0600). */
  groupShared?: boolean
  /**
   * Create the queue if there is none (default true); false opens only an existing queue and
   * rejects with code '3D000' (`queue "…" does not exist`, harkCode HARK_ERR_IO) otherwise.
   */
  create?: boolean
  /**
   * Fixed when the queue is created: when the queue is full, cut the listeners and subscriptions
   * holding it back (each gets a 'gap' event) instead of failing commits with
   * HARK_ERR_QUEUE_FULL (PostgreSQL's behaviour, the default).
   */
  cutLaggards?: boolean
  /** Fixed when the queue is created: a lag limit for every plain listener, in bytes. */
  listenerMaxLagBytes?: number
  /** Fixed when the queue is created: a lag limit for every plain listener, in milliseconds. */
  listenerMaxLagAge?: number
}

export interface SubscribeOptions {
  /** 'explicit' (the default): only ack() acknowledges; 'auto': each notification taken acknowledges those before it (a client killed while handling one gets that one again). */
  ack?: 'explicit' | 'auto'
  /** false: attach only to an existing subscription (rejects with SQLSTATE 42704 otherwise). */
  create?: boolean
  /** Milliseconds to wait for another attached client to let go, instead of rejecting with HARK_ERR_IN_USE. */
  wait?: number
  /** Lag limits (bytes, milliseconds): past them the subscription is cut, with a 'gap' event. */
  maxLagBytes?: number
  maxLagAge?: number
}

// What stats() returns is the native layer's object as it is: its types are the generated ones.
import type { QueueStats, ReceiverStat } from '../index'
export type { QueueStats, ReceiverStat }

/** What a receiver skipped when it was cut: an error with code (SQLSTATE) 'HK001', harkCode HARK_ERR_GAP. */
export interface GapError extends HarkError {
  gap: { skipped: number, firstTxn: number, lastTxn: number, resumedAt: number }
}

/** node-postgres' description of a result column (a RowDescription field). */
export interface FieldDef {
  name: string
  /** Always 0: no column comes from a table. */
  tableID: number
  columnID: number
  /** The type's OID: 16 bool, 20 int8, 23 int4, 25 text, 114 json, 701 float8, 1700 numeric, 2278 void. */
  dataTypeID: number
  dataTypeSize: number
  dataTypeModifier: number
  format: 'text'
}

/**
 * node-postgres' query result. Values are parsed as node-postgres' default type parsers do:
 * int2/int4/oid and float4/float8 are numbers, bool a boolean, json parsed, int8 and numeric
 * strings (they may not fit a number), text strings, SQL NULL null.
 */
export interface QueryResult<R = Record<string, any>> {
  command: string | null
  rowCount: number | null
  rows: R[]
  fields: FieldDef[]
}

export interface QueryConfig {
  text: string
  values?: unknown[]
}

export interface NotificationsOptions {
  /** Ends the iteration at once when aborted. */
  signal?: AbortSignal
}

export declare class Client extends EventEmitter {
  constructor(config?: ClientConfig | string)
  /** The queue directory (after connect(): the one opened). */
  dir: string | null
  /**
   * This session's backend PID (after connect()): unique among the live sessions of the queue,
   * the process's id for its first client, another (2^22 or more) for the others.
   */
  processID: number | null

  connect(): Promise<void>
  connect(callback: (err: HarkError | null) => void): void
  /**
   * Runs SQL in hark's dialect; $1, $2, … take `values` as node-postgres parameters do. As in
   * node-postgres, a text of several statements resolves with an array of results, one per
   * statement (typed like node-postgres' own declarations, as one result: cast it), and a
   * failing statement rejects the whole call.
   */
  query<R = Record<string, any>>(text: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>
  query<R = Record<string, any>>(text: string | QueryConfig, callback: (err: HarkError | null, result?: QueryResult<R>) => void): void
  query<R = Record<string, any>>(text: string | QueryConfig, values: unknown[], callback: (err: HarkError | null, result?: QueryResult<R>) => void): void
  /** LISTEN, the channel name taken verbatim; runs at once, rejects (never throws) on failure. */
  listen(channel: string): Promise<void>
  /** UNLISTEN channel, or every channel when omitted; rejects (never throws) on failure. */
  unlisten(channel?: string): Promise<void>
  /**
   * pg_notify(channel, payload): visible to listeners when the transaction commits. A payload that
   * is not a string is sent as JSON (objects and arrays), ISO text (Date), UTF-8 (Buffer) or
   * String(value); null and undefined send ''. Runs at once; rejects (never throws) on failure.
   */
  notify(channel: string, payload?: string | number | boolean | bigint | Date | Buffer | readonly unknown[] | { [key: string]: unknown } | null): Promise<void>
  /** BEGIN … COMMIT around `fn` (a savepoint when nested); rolls back and rethrows on a throw. */
  transaction<T>(fn: (client: this) => Promise<T> | T): Promise<T>
  /**
   * Creates the durable subscription `name` on `channels` (names, or globs with * ? and \\) if
   * it does not exist and attaches this client: 'notification' events then deliver every
   * notification on its channels after its last acknowledged one, across restarts.
   */
  subscribe(name: string, channels: string | readonly string[], options?: SubscribeOptions): Promise<void>
  /** Acknowledges `msg` (or the notification at that position) and every one before it. */
  ack(msg: Notification | number): Promise<void>
  /** Ends the attachment; the subscription stays at its acknowledged position. */
  detach(): Promise<void>
  /** Drops the durable subscription `name`. */
  unsubscribe(name: string): Promise<void>
  /** The subscription this client is attached to, or null. */
  readonly subscription: string | null
  /** pg_listening_channels() */
  listeningChannels(): string[]
  /** pg_notification_queue_usage() */
  queueUsage(): number
  /** The queue's positions and sizes and each listener's and subscription's lag (`hark stat`). */
  stats(): QueueStats
  /** The queue's durable subscriptions with their lag. */
  subscriptions(): ReceiverStat[]
  /**
   * Notifications from now on, taken from the session only as the loop asks for them (a batch of
   * at most 1,024), so a slow consumer leaves the backlog in the bounded queue; an iterator that
   * is neither consumed nor ended holds the queue. Ends on abort (at once) or end() (after what
   * was already taken).
   */
  notifications(options?: NotificationsOptions): AsyncIterableIterator<Notification>
  /** Lets the process exit while this client only waits for notifications. */
  unref(): this
  /** Keeps the process alive while the client is open (the default). */
  ref(): this
  end(): Promise<void>
  end(callback: (err: HarkError | null) => void): void
  escapeLiteral(value: string): string
  escapeIdentifier(value: string): string

  on(event: 'notification', listener: (msg: Notification) => void): this
  on(event: 'gap', listener: (err: GapError) => void): this
  on(event: 'notice', listener: (notice: Notice) => void): this
  on(event: 'error', listener: (err: HarkError) => void): this
  on(event: 'end', listener: () => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once(event: 'notification', listener: (msg: Notification) => void): this
  once(event: 'gap', listener: (err: GapError) => void): this
  once(event: 'notice', listener: (notice: Notice) => void): this
  once(event: 'error', listener: (err: HarkError) => void): this
  once(event: 'end', listener: () => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
}

/** The queue directory used when none is given. */
export declare function defaultDir(): string
export declare function escapeLiteral(value: string): string
export declare function escapeIdentifier(value: string): string

# frozen_string_literal: true

module Hark
  # Every failure of a hark call. Like the pg gem's PG::Error it carries PostgreSQL's SQLSTATE
  # and message text, and the Hark::Result of the failed statement when there was one; like the
  # other languages' bindings it carries hark's error kind, named and numbered as in include/hark.h.
  class Error < StandardError
    # PostgreSQL's five-character SQLSTATE ("54000" for a full queue), or nil.
    attr_reader :sqlstate
    # The kind's number in include/hark.h (200 for HARK_ERR_QUEUE_FULL), never renumbered.
    attr_reader :code
    # The failed statement's Hark::Result (its #error_message, #sqlstate), or nil.
    attr_reader :result
    # The Hark::Connection the call was made on, or nil.
    attr_reader :connection

    def initialize(message = nil, sqlstate: nil, code: nil, result: nil, connection: nil)
      super(message)
      @sqlstate = sqlstate
      @code = code
      @result = result
      @connection = connection
    end

    # The kind's name as in include/hark.h and Node's err.harkCode: "HARK_ERR_QUEUE_FULL".
    def code_name
      code && Native.hark_result_str(code).dup.force_encoding(Encoding::UTF_8)
    end

    # pg's PG::Result#error_field: PG::PG_DIAG_SQLSTATE ('C', 67) the SQLSTATE,
    # PG::PG_DIAG_MESSAGE_PRIMARY ('M', 77) the message's first line; nil for other fields.
    def error_field(field)
      case field
      when 'C', 67 then sqlstate
      when 'M', 77 then message.lines.first&.chomp
      end
    end
  end

  # HARK_ERR_INVALID_ARGUMENT (100): an empty or too long channel, a payload too long, bad UTF-8.
  class InvalidArgumentError < Error; end
  # HARK_ERR_SYNTAX (101): SQL hark cannot parse, an unknown statement or function.
  class SqlSyntaxError < Error; end
  # HARK_ERR_TRANSACTION_STATE (102): not allowed in the transaction's state.
  class TransactionStateError < Error; end
  # HARK_ERR_IN_USE (103): SQLSTATE 55006, a durable subscription attached by another live session.
  class InUseError < Error; end
  # HARK_ERR_QUEUE_FULL (200): SQLSTATE 54000, too many notifications in the NOTIFY queue.
  class QueueFullError < Error; end
  # HARK_ERR_TOO_MANY_LISTENERS (201): every listener slot of the queue is taken.
  class TooManyListenersError < Error; end
  # HARK_ERR_DISK_FULL (202): the file system is full.
  class DiskFullError < Error; end
  # HARK_ERR_CORRUPTED (300): a file of the queue directory cannot be hark's.
  class CorruptedError < Error; end
  # HARK_ERR_INCOMPATIBLE (301): the queue was written by an incompatible version of hark.
  class IncompatibleError < Error; end
  # HARK_ERR_PERMISSION_DENIED (302): the queue directory or a file of it is not safe to use.
  class PermissionDeniedError < Error; end
  # HARK_ERR_IO (400): any other operating-system error (3D000: the queue does not exist).
  class IoError < Error; end
  # HARK_ERR_CLOSED (500): the connection was closed, or belongs to the parent of a fork.
  class ClosedError < Error; end
  # HARK_ERR_GAP (600): this receiver was cut (past its lag limit, or under the cut policy) and
  # notifications were skipped; raised once, by the receive that meets the gap, after everything
  # before the skipped range and before everything after it (receive again for those).
  class GapError < Error
    # How many notifications on the receiver's channels were skipped.
    attr_reader :skipped
    # The commit sequence numbers (Notification#txn) of the first and last skipped.
    attr_reader :first_txn, :last_txn
    # The position the receiver resumed from: the notifications after the gap are at or past it.
    attr_reader :resumed_at

    def initialize(message = nil, skipped: nil, first_txn: nil, last_txn: nil, resumed_at: nil, **rest)
      super(message, **rest)
      @skipped = skipped
      @first_txn = first_txn
      @last_txn = last_txn
      @resumed_at = resumed_at
    end
  end
  # HARK_ERR_NULL_PARAMETER (900): a NULL pointer reached the C layer (a bug in this gem).
  class NullParameterError < Error; end
  # HARK_ERR_PANIC (901): a bug inside hark; the call failed and the session was closed.
  class InternalError < Error; end

  # Raised inside Connection#transaction to roll it back without an error (Sequel's Sequel::Rollback).
  class Rollback < StandardError; end

  ERROR_CLASSES = {
    100 => InvalidArgumentError, 101 => SqlSyntaxError, 102 => TransactionStateError, 103 => InUseError,
    200 => QueueFullError, 201 => TooManyListenersError, 202 => DiskFullError,
    300 => CorruptedError, 301 => IncompatibleError, 302 => PermissionDeniedError,
    400 => IoError, 500 => ClosedError, 600 => GapError, 900 => NullParameterError, 901 => InternalError
  }.freeze
  private_constant :ERROR_CLASSES

  # The exception for a hark_result code.
  def self.error_class(code)
    ERROR_CLASSES.fetch(code, Error)
  end
end

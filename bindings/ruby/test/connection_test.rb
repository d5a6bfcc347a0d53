# frozen_string_literal: true

require_relative 'helper'

# The pg gem's shape: exec and its results, exec_params, notifies, wait_for_notify, socket_io,
# backend_pid, transactions, errors with PostgreSQL's SQLSTATE.
class ConnectionTest < Minitest::Test
  include HarkTest

  def test_connection_new_takes_a_pathname_and_reports_its_status
    require 'pathname'
    conn = Hark::Connection.new(Pathname(@dir))
    @open << conn
    assert_equal Hark::CONNECTION_OK, conn.status
    assert_equal Hark::PQTRANS_IDLE, conn.transaction_status
    assert_equal Process.pid, conn.backend_pid, "a process's first session has the process's id"
    assert_operator connect.backend_pid, :>=, 1 << 22, 'its other sessions get ids from 2^22 up'
    assert_match(/\A\d+\.\d+\.\d+/, Hark.library_version)
  end

  def test_exec_returns_pg_shaped_results
    conn = connect
    r = conn.exec("SELECT 'a' AS x, NULL AS y, 42::int AS z")
    assert_equal %w[x y z], r.fields
    assert_equal [['a', nil, '42']], r.values
    assert_equal [{ 'x' => 'a', 'y' => nil, 'z' => '42' }], r.to_a
    assert_equal 1, r.ntuples
    assert_equal 'SELECT 1', r.cmd_status
    assert r.getisnull(0, 1)
    assert_equal Encoding::UTF_8, conn.exec("SELECT 'é' AS e").getvalue(0, 0).encoding
    assert_equal 'LISTEN', conn.exec('LISTEN events') { |res| res.cmd_status }
    assert_equal ['events'], conn.listening_channels
  end

  def test_exec_params_binds_values_never_pasted_into_sql
    conn = connect
    hostile = "x'); UNLISTEN *; --$$\\"
    r = conn.exec_params('SELECT $1 AS v, $2::int AS n, $3 AS nothing', [hostile, 7, nil])
    assert_equal [hostile, '7', nil], r.values.first
    assert_equal [['ok']], conn.exec_params('SELECT $1 AS v', [{ value: 'ok', type: 0, format: 0 }]).values
    e = assert_raises(Hark::InvalidArgumentError) { conn.exec_params('SELECT $1, $2', ['only one']) }
    assert_equal '08P01', e.sqlstate
    assert_equal 'bind message supplies 1 parameters, but prepared statement "" requires 2', e.message
    e = assert_raises(Hark::Error) { conn.exec_params('SELECT $1; SELECT $1', ['a']) }
    assert_equal '42601', e.sqlstate
  end

  def test_errors_carry_kind_sqlstate_and_postgres_text
    conn = connect
    e = assert_raises(Hark::SqlSyntaxError) { conn.exec('SELEC 1') }
    assert_equal ['42601', 101, 'HARK_ERR_SYNTAX'], [e.sqlstate, e.code, e.code_name]
    assert_equal 'syntax error at or near "SELEC"', e.message
    assert_equal '42601', e.error_field('C')
    assert_equal 'syntax error at or near "SELEC"', e.error_field(77) # PG::PG_DIAG_MESSAGE_PRIMARY
    assert_same conn, e.connection
    conn.exec('BEGIN')
    assert_raises(Hark::SqlSyntaxError) { conn.exec('SELEC 1') }
    assert_equal Hark::PQTRANS_INERROR, conn.transaction_status
    e = assert_raises(Hark::TransactionStateError) { conn.exec('LISTEN x') }
    assert_equal '25P02', e.sqlstate
    conn.exec('ROLLBACK')
    e = assert_raises(Hark::IoError) { Hark.connect(File.join(@tmp, 'none'), create: false) }
    assert_equal '3D000', e.sqlstate
    e = assert_raises(Hark::InvalidArgumentError) { connect(max_payload: 3 << 30) }
    assert_equal 'HARK_ERR_INVALID_ARGUMENT', e.code_name
  end

  def test_full_queue_is_queue_full_error_54000
    conn = connect(max_queue_size: 512 * 1024, max_payload: 7999)
    conn.exec('LISTEN q') # a listener that reads nothing holds the queue
    other = connect
    warnings = []
    other.set_notice_processor { |m| warnings << m }
    e = assert_raises(Hark::QueueFullError) do
      2000.times { other.transaction { 10.times { other.notify('q', payload: 'x' * 7000) } } }
    end
    assert_equal ['54000', 200, 'HARK_ERR_QUEUE_FULL'], [e.sqlstate, e.code, e.code_name]
    assert_equal Hark::PQTRANS_IDLE, other.transaction_status # the failed COMMIT ended the block
    assert_match(/NOTIFY queue is 50% full/, warnings.first)
  end

  def test_wait_for_notify_yields_like_pg_and_returns_the_channel
    listener = connect
    notifier = connect
    refute_equal listener.backend_pid, notifier.backend_pid
    listener.exec('LISTEN events')
    notifier.exec("NOTIFY events, 'order 42'")
    notifier.exec('NOTIFY events')
    got = []
    assert_equal 'events', listener.wait_for_notify(5) { |*args| got << args }
    assert_equal 'events', listener.wait_for_notify(5) { |*args| got << args }
    # pg yields nil for an empty payload, and the notifier's backend PID.
    assert_equal [['events', notifier.backend_pid, 'order 42'], ['events', notifier.backend_pid, nil]], got
    t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_nil listener.wait_for_notify(0.2)
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - t, :>=, 0.2
    assert_nil listener.wait_for_notify(0)
  end

  def test_notifies_returns_pgs_hash_and_socket_io_selects
    listener = connect
    notifier = connect
    listener.exec('LISTEN a')
    assert_nil listener.notifies
    notifier.transaction do
      notifier.notify('a', payload: 'one')
      notifier.notify('a')
    end
    ready, = IO.select([listener.socket_io], nil, nil, 5)
    assert_equal [listener.socket_io], ready
    listener.consume_input
    one = listener.notifies
    two = listener.notifies
    pgs = %i[relname be_pid extra]
    assert_equal({ relname: 'a', be_pid: notifier.backend_pid, extra: 'one' }, one.slice(*pgs))
    assert_equal({ relname: 'a', be_pid: notifier.backend_pid, extra: '' }, two.slice(*pgs))
    assert_equal pgs + %i[position txn commit_time], one.keys, "pg's keys first, then hark's"
    assert_equal one[:txn], two[:txn]
    assert_operator one[:position], :<, two[:position]
    assert_kind_of Time, one[:commit_time]
    assert_nil listener.notifies
    assert_kind_of Integer, listener.socket
  end

  def test_transactions_deliver_at_commit_and_nest_as_savepoints
    listener = connect
    conn = connect
    listener.exec('LISTEN t')
    result = conn.transaction do |c|
      assert_same conn, c
      c.notify('t', payload: 'outer')
      assert_raises(RuntimeError) do
        c.transaction do
          c.notify('t', payload: 'inner, rolled back')
          assert_equal Hark::PQTRANS_INTRANS, c.transaction_status
          raise 'undo the savepoint'
        end
      end
      c.transaction { c.notify('t', payload: 'inner, kept') }
      assert_nil listener.wait_for_notify(0.1), 'nothing is delivered before COMMIT'
      :value
    end
    assert_equal :value, result
    assert_equal Hark::PQTRANS_IDLE, conn.transaction_status
    assert_nil(conn.transaction do
      conn.notify('t', payload: 'rolled back by Hark::Rollback')
      raise Hark::Rollback
    end)
    assert_raises(ArgumentError) do
      conn.transaction do
        conn.notify('t', payload: 'rolled back by an error')
        raise ArgumentError
      end
    end
    got = []
    nil while listener.wait_for_notify(0.2) { |_channel, _pid, payload| got << payload }
    assert_equal ['outer', 'inner, kept'], got
  end

  def test_notices_go_to_the_processor
    conn = connect
    notices = []
    assert_nil conn.set_notice_processor { |m| notices << m }
    conn.exec('COMMIT')
    assert_equal ["WARNING:  there is no transaction in progress\n"], notices
    conn.set_notice_processor { raise 'a processor that raises is reported, not unwound through hark' }
    _out, err = capture_io { conn.exec('COMMIT') }
    assert_match(/notice processor raised RuntimeError/, err)
  end

  def test_queue_usage_and_escaping
    conn = connect
    assert_in_delta 0.0, conn.queue_usage, 0.01
    assert_equal "'it''s'", conn.escape_literal("it's")
    assert_equal " E'a\\\\b'", conn.escape_literal('a\\b')
    assert_equal '"Mixed""Case"', conn.escape_identifier('Mixed"Case')
  end
end

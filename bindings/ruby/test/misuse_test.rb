# frozen_string_literal: true

require_relative 'helper'

# What a program can get wrong: a closed connection, wrong types, NUL bytes, a fork.
class MisuseTest < Minitest::Test
  include HarkTest

  def test_every_call_on_a_closed_connection_raises_closed_error
    conn = Hark.connect(@dir)
    conn.close
    assert conn.closed?
    assert_nil conn.close, 'closing twice does nothing'
    calls = {
      exec: -> { conn.exec('SELECT 1') }, exec_params: -> { conn.exec_params('SELECT $1', ['x']) },
      wait_for_notify: -> { conn.wait_for_notify(0) }, notifies: -> { conn.notifies },
      socket_io: -> { conn.socket_io }, backend_pid: -> { conn.backend_pid },
      consume_input: -> { conn.consume_input }, notify: -> { conn.notify(:a) },
      listen: -> { conn.listen(:a, timeout: 0) }, transaction: -> { conn.transaction { flunk } },
      queue_usage: -> { conn.queue_usage }, escape_literal: -> { conn.escape_literal('x') },
      receive: -> { conn.receive(0) }, subscribe: -> { conn.subscribe('s', 'c') }, ack: -> { conn.ack(0) },
      detach: -> { conn.detach }, unsubscribe: -> { conn.unsubscribe('s') }
    }
    calls.each do |name, call|
      e = assert_raises(Hark::ClosedError, name) { call.call }
      assert_equal ['08003', 'connection is closed', 'HARK_ERR_CLOSED'], [e.sqlstate, e.message, e.code_name]
    end
    assert_equal Hark::CONNECTION_BAD, conn.status
    assert_equal Hark::PQTRANS_UNKNOWN, conn.transaction_status
  end

  def test_a_block_given_to_connect_closes_the_connection_even_on_an_error
    kept = nil
    assert_raises(RuntimeError) { Hark.connect(@dir) { |c| kept = c; raise 'boom' } }
    assert kept.closed?
  end

  # The article's connection line left unchanged gets PostgreSQL's 22023 and a hint, not a queue.
  def test_a_postgresql_url_is_refused_with_a_hint
    Dir.chdir(@tmp) do
      e = assert_raises(Hark::InvalidArgumentError) { Hark.connect('postgres://user@localhost/notify-test') }
      assert_equal '22023', e.sqlstate
      assert_match(/looks like a URL, not a directory\nHINT:  hark has no server/, e.message)
      assert_empty Dir.children(@tmp), 'nothing was created'
    end
  end

  def test_wrong_types_raise_type_error_before_anything_runs
    conn = connect
    assert_raises(TypeError) { Hark.connect(42) }
    assert_raises(TypeError) { Hark.connect(@dir, create: 'no') }
    assert_raises(ArgumentError) { Hark.connect(@dir, bogus: 1) }
    assert_raises(TypeError) { conn.exec(nil) }
    assert_raises(TypeError) { conn.exec(:"SELECT 1".to_proc) }
    assert_raises(TypeError) { conn.exec_params('SELECT $1', 'not an array') }
    e = assert_raises(TypeError) { conn.exec_params('SELECT $1', [Object.new]) }
    assert_match(/parameter \$1/, e.message)
    assert_raises(TypeError) { conn.exec_params('SELECT $1', [[1, 2]]) }
    assert_raises(TypeError) { conn.wait_for_notify('1') }
    assert_raises(ArgumentError) { conn.wait_for_notify(-1) }
    assert_raises(TypeError) { conn.listen(42, timeout: 0) }
    assert_raises(TypeError) { conn.notify(nil) }
    assert_raises(TypeError) { conn.notify(:a, payload: Object.new.tap { |o| def o.to_s = 42 }) }
    assert_equal ['42'], conn.exec_params('SELECT $1', [42]).values.first
    assert_equal Hark::PQTRANS_IDLE, conn.transaction_status
    assert_empty conn.listening_channels
  end

  def test_nul_bytes_are_refused_as_ruby_refuses_them_in_c_strings
    conn = connect
    conn.exec('LISTEN a')
    e = assert_raises(ArgumentError) { conn.exec("NOTIFY a, 'x'\0; UNLISTEN *") }
    assert_match(/null byte/, e.message)
    assert_raises(ArgumentError) { conn.exec_params('SELECT pg_notify($1, $2)', ['a', "cut\0here"]) }
    assert_raises(ArgumentError) { conn.notify(:a, payload: "cut\0here") }
    assert_raises(ArgumentError) { conn.notify("a\0b") }
    assert_raises(ArgumentError) { conn.escape_literal("a\0b") }
    assert_raises(ArgumentError) { Hark.connect("#{@dir}\0x") }
    assert_nil conn.wait_for_notify(0.1), 'nothing was sent, not even a truncated payload'
    assert_equal ['a'], conn.listening_channels
  end

  def test_bad_utf8_and_empty_channel_are_postgres_errors
    conn = connect
    e = assert_raises(Hark::InvalidArgumentError) { conn.exec_params('SELECT $1', ["\xff".b]) }
    assert_equal '22021', e.sqlstate
    e = assert_raises(Hark::InvalidArgumentError) { conn.exec("SELECT pg_notify('', 'x')") }
    assert_equal '22023', e.sqlstate
    assert_equal ['é'], conn.exec_params('SELECT $1', ['é'.encode('ISO-8859-1')]).values.first
  end

  def test_a_forked_child_cannot_use_the_parents_connection_and_leaves_its_session_alone
    parent = connect
    parent.exec('LISTEN events')
    fd = parent.socket_io.fileno
    r, w = IO.pipe
    pid = fork do
      r.close
      report = []
      # The copy of the parent's socket_io descriptor is closed in the child.
      report << (File.exist?("/proc/self/fd/#{fd}") ? 'socket copy open' : 'socket copy closed')
      begin
        parent.socket_io
      rescue Hark::ClosedError
        report << 'socket_io refused'
      end
      begin
        parent.exec('SELECT 1')
      rescue Hark::ClosedError => e
        report << e.sqlstate
      end
      begin
        parent.wait_for_notify(0)
      rescue Hark::ClosedError
        report << 'wait refused'
      end
      parent.close # the parent's session must live on
      Hark.connect(@dir) { |own| own.notify(:events, payload: "from child #{own.backend_pid}") }
      w.write(report.join(','))
      w.close
      exit!(0)
    end
    w.close
    Process.wait(pid)
    assert_equal 'socket copy closed,socket_io refused,08003,wait refused', r.read
    assert $?.success?
    child_payload = nil
    assert_equal 'events', parent.wait_for_notify(5) { |_, _, p| child_payload = p }
    assert_match(/\Afrom child \d+\z/, child_payload)
    assert_equal ['events'], parent.listening_channels
    parent.exec("NOTIFY events, 'still mine'")
    assert_equal 'events', parent.wait_for_notify(5)
  end

  # Every hark_result that libhark.so names has its own Hark::Error subclass.
  def test_every_error_kind_of_the_library_has_its_class
    named = (1..999).reject { |code| Hark::Native.hark_result_str(code) == 'HARK_ERR_UNKNOWN' }
    assert_includes named, 200
    named.each do |code|
      refute_equal Hark::Error, Hark.error_class(code), "#{Hark::Native.hark_result_str(code)} (#{code}) has no class"
      assert_equal Hark::Native.hark_result_str(code), Hark.error_class(code).new('x', code: code).code_name
    end
  end
end

# frozen_string_literal: true

require_relative 'helper'
require 'timeout'

# A wait lets other threads run and can be interrupted; notifiers in other processes wake it.
class ThreadsTest < Minitest::Test
  include HarkTest

  def test_a_waiting_thread_lets_others_run
    conn = connect
    conn.exec('LISTEN a')
    waiter = Thread.new { conn.wait_for_notify(1) }
    counted = 0
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 0.5
    counted += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    assert_nil waiter.value
    assert_operator counted, :>, 1000, 'the main thread ran while the other waited'
  end

  def test_a_notify_from_another_thread_wakes_the_waiter
    conn = connect
    other = connect
    conn.exec('LISTEN a')
    waiter = Thread.new { conn.wait_for_notify(10) { |_, _, payload| payload } && conn }
    sleep 0.1
    other.notify(:a, payload: 'from a thread')
    assert_same conn, waiter.value
  end

  def test_thread_raise_kill_and_timeout_interrupt_a_wait_without_a_limit
    conn = connect
    conn.exec('LISTEN a')
    waiter = quiet_thread { conn.wait_for_notify }
    sleep 0.1 until waiter.status == 'sleep'
    waiter.raise(IOError, 'stop waiting')
    assert_raises(IOError) { waiter.join(5) || flunk('Thread#raise did not end the wait') }

    waiter = quiet_thread { conn.wait_for_notify }
    sleep 0.1 until waiter.status == 'sleep'
    waiter.kill
    refute_nil waiter.join(5), 'Thread#kill did not end the wait'

    assert_raises(Timeout::Error) { Timeout.timeout(0.2) { conn.listen(:a, loop: true) { flunk } } }
    assert_empty conn.listening_channels, 'UNLISTEN * ran as the timeout unwound listen'
  end

  def test_closing_from_another_thread_ends_the_wait_with_closed_error
    conn = Hark.connect(@dir)
    conn.exec('LISTEN a')
    waiter = quiet_thread { conn.wait_for_notify }
    sleep 0.1 until waiter.status == 'sleep'
    conn.close
    e = assert_raises(Hark::ClosedError) { waiter.join(5) }
    assert_equal '08003', e.sqlstate
  end

  def test_sigint_interrupts_a_waiting_process
    r, w = IO.pipe
    pid = spawn(RUBY, '-I', LIB, '-rhark', '-e', <<~RUBY, @dir, out: w)
      Hark.connect(ARGV[0]) do |c|
        c.exec('LISTEN a')
        begin
          puts 'READY'
          $stdout.flush
          c.wait_for_notify
        rescue Interrupt
          puts 'interrupted'
        end
      end
    RUBY
    w.close
    assert_equal "READY\n", r.gets
    sleep 0.1
    Process.kill(:INT, pid)
    Timeout.timeout(10) { Process.wait(pid) }
    assert_equal "interrupted\n", r.read
  end

  def test_a_notifier_in_another_process_wakes_a_listener
    conn = connect
    conn.exec('LISTEN events')
    out, status = ruby_child(<<~RUBY, @dir)
      Hark.connect(ARGV[0]) do |c|
        c.transaction { 3.times { |i| c.notify(:events, payload: "m-\#{i}") } }
        print c.backend_pid
      end
    RUBY
    assert status.success?, out
    got = []
    3.times { conn.wait_for_notify(5) { |*args| got << args } }
    assert_equal [0, 1, 2].map { |i| ['events', out.to_i, "m-#{i}"] }, got
  end

  # A process stopped inside its commit holds the writer lock: a Ruby thread that commits then
  # waits for it in the kernel, without the GVL, so the process's other threads go on; the
  # holder's death frees the lock and the commit completes. `member` is the hardening crate's
  # process with the core's test hooks (HARK_MEMBER, set by make test-ruby).
  def test_a_commit_waiting_for_a_stopped_process_stalls_only_its_thread
    member = ENV['HARK_MEMBER']
    unless member && File.executable?(member)
      puts 'skipped: test_a_commit_waiting_for_a_stopped_process_stalls_only_its_thread: no HARK_MEMBER ' \
           '(make test-ruby builds it)'
      skip 'no HARK_MEMBER'
    end
    connect # the queue exists before the holder opens it
    parked = File.join(@tmp, 'parked')
    holder = spawn({ 'HARK_FAULT_PARK_IN_APPEND' => parked }, member, 'notify', @dir, 'c', out: File::NULL)
    begin
      Timeout.timeout(20) { sleep 0.01 until File.exist?(parked) }
      conn = connect
      committer = quiet_thread { conn.notify(:c, payload: 'after the holder'); :committed }
      sleep 0.1 until committer.status == 'sleep' || !committer.alive?
      counted = 0
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 0.5
      counted += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
      assert committer.alive?, 'the commit went past a held writer lock'
      assert_operator counted, :>, 1000, 'the other threads stalled with the committing one'
    ensure
      Process.kill(:KILL, holder)
      Process.wait(holder)
    end
    assert_equal :committed, committer.join(10)&.value, 'the commit did not complete after the holder died'
  end

  private

  # A thread whose expected exception is not also printed to standard error.
  def quiet_thread(&block)
    Thread.new do
      Thread.current.report_on_exception = false
      block.call
    end
  end
end

# frozen_string_literal: true

require_relative 'helper'

# Durable subscriptions: subscribe, receive, ack, detach, unsubscribe, gaps, one consumer at a time.
class SubscriptionsTest < Minitest::Test
  include HarkTest

  def test_notifications_carry_position_txn_and_commit_time_and_ack_moves_the_subscription
    app = connect
    worker = connect
    worker.subscribe('mailer', ['orders.*', :refunds])
    before = Time.now
    app.transaction do
      app.notify('orders.paid', payload: '1')
      app.notify('stock', payload: 'not matched')
      app.notify('refunds', payload: '2')
    end
    app.notify('orders.new', payload: '3')
    a = worker.receive(5)
    b = worker.receive(5)
    h = worker.notifies
    assert_equal [['orders.paid', '1'], ['refunds', '2']], [a, b].map { |n| [n.channel, n.payload] }
    assert_equal ['orders.new', app.backend_pid, '3'], [h[:relname], h[:be_pid], h[:extra]]
    assert_equal a.txn, b.txn, 'one transaction, one commit number'
    assert_equal a.txn + 1, h[:txn]
    assert_operator a.position, :<, b.position
    assert_operator b.position, :<, h[:position]
    assert_kind_of Time, a.commit_time
    assert_in_delta before.to_f, a.commit_time.to_f, 5
    assert_equal [a.channel, a.pid, a.payload], [a.relname, a.be_pid, a.extra], "pg's names too"
    assert_nil worker.receive(0)

    worker.ack(b) # a and b; h stays unacknowledged
    worker.detach
    worker.subscribe('mailer', 'orders.*')
    again = worker.receive(5)
    assert_equal ['orders.new', '3', h[:position]], [again.channel, again.payload, again.position]
    worker.ack(again.position)
    worker.ack(a) # already acknowledged: accepted
    assert_raises(Hark::InvalidArgumentError) { worker.ack(again.position + 1_000_000) } # never received
    assert_nil worker.receive(0.05)
  end

  def test_auto_ack_repeats_only_the_one_in_hand
    app = connect
    worker = connect
    worker.subscribe(:jobs, 'jobs', ack: :auto)
    3.times { |i| app.notify('jobs', payload: i.to_s) }
    assert_equal %w[0 1], [worker.receive(5), worker.receive(5)].map(&:payload)
    worker.close
    again = connect
    again.subscribe(:jobs, 'jobs', ack: :auto)
    assert_equal %w[1 2], [again.receive(5), again.receive(5)].map(&:payload)
  end

  def test_a_second_attach_raises_in_use_or_waits
    first = connect
    first.subscribe('s', 'c')
    second = connect
    e = assert_raises(Hark::InUseError) { second.subscribe('s', 'c') }
    assert_equal ['55006', 103, 'HARK_ERR_IN_USE'], [e.sqlstate, e.code, e.code_name]
    assert_match(/subscription "s" is in use by the session with backend PID #{first.backend_pid}/, e.message)
    t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_raises(Hark::InUseError) { second.subscribe('s', 'c', wait: 0.3) }
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - t, :>=, 0.3
    assert_raises(Hark::InUseError) { second.unsubscribe('s') }

    closer = Thread.new { sleep 0.3; first.close }
    second.subscribe('s', 'c', wait: 10)
    closer.join
    second.unsubscribe('s')
    e = assert_raises(Hark::Error) { second.unsubscribe('s') }
    assert_equal '42704', e.sqlstate
    assert_raises(ArgumentError) { second.subscribe('t', 'c', ack: :sometimes) }
    assert_raises(TypeError) { second.subscribe('t', 'c', wait: '1') }
    assert_raises(Hark::InvalidArgumentError) { second.subscribe('t', []) }
  end

  def test_a_gap_is_raised_once_with_its_counts_then_the_rest
    app = Hark.connect(@dir, segment_size: 64 << 10, max_queue_size: 4 << 20).tap { |c| @open << c }
    worker = connect
    worker.subscribe('g', 'c', max_lag_bytes: 100_000)
    worker.detach
    total = 2000
    padding = 'x' * 200
    total.times do |i|
      app.transaction do
        app.notify('c', payload: "#{i} #{padding}")
        app.notify('noise', payload: 'n')
      end
    end
    worker.subscribe('g', 'c', max_lag_bytes: 100_000)
    gap = assert_raises(Hark::GapError) { worker.receive(5) }
    assert_equal ['HK001', 600], [gap.sqlstate, gap.code]
    assert_operator gap.skipped, :>, 0
    assert_operator gap.last_txn, :>=, gap.first_txn
    rest = []
    while (n = worker.receive(0))
      assert_operator n.position, :>=, gap.resumed_at
      rest << n.payload.split(' ').first.to_i
    end
    assert_equal (gap.skipped...total).to_a, rest, 'exactly the notifications after the gap, once'
  end

  def test_the_cut_policy_keeps_notifiers_going_past_a_listener_that_does_not_read
    opts = { segment_size: 64 << 10, max_queue_size: 512 << 10, cut_laggards: true }
    listener = connect(**opts)
    listener.exec('LISTEN c')
    app = connect(**opts)
    notices = []
    app.set_notice_processor { |m| notices << m } # PostgreSQL's warning from half full on
    total = 3000 # 3 MB of payloads through a 512 KiB queue
    total.times { |i| app.notify('c', payload: "#{i} #{'x' * 1000}") } # no QueueFullError
    gap = assert_raises(Hark::GapError) { listener.receive(5) }
    rest = []
    while (n = listener.receive(0))
      rest << n.payload.split(' ').first.to_i
    end
    assert_equal (gap.skipped...total).to_a, rest
    assert_match(/NOTIFY queue is \d+% full/, notices.first)
    assert_raises(TypeError) { connect(listener_max_lag_age: '1') }
  end

  # A consumer process killed before acknowledging: the next attach receives again what it had
  # received and not acknowledged, and nothing it had acknowledged.
  def test_a_subscriber_killed_before_acknowledging_receives_them_again
    app = connect
    connect.tap { |c| c.subscribe('k', 'c') }.close # created
    10.times { |i| app.notify('c', payload: i.to_s) }
    code = <<~RUBY
      conn = Hark.connect(ARGV[0])
      conn.subscribe('k', 'c')
      5.times do
        n = conn.receive(5)
        conn.ack(n) if n.payload.to_i < 3 # 0, 1, 2 processed; 3 and 4 not yet
        $stdout.puts n.payload
      end
      $stdout.flush
      Process.kill(:KILL, Process.pid)
    RUBY
    out, status = ruby_child(code, @dir)
    assert_equal 'KILL', Signal.signame(status.termsig), out
    assert_equal %w[0 1 2 3 4], out.split
    worker = connect
    worker.subscribe('k', 'c')
    got = []
    while (n = worker.receive(0.2))
      got << n.payload
    end
    assert_equal %w[3 4 5 6 7 8 9], got, 'the unacknowledged ones again, then the rest, in order'
  end
  def test_stats_report_each_listener_and_subscription_with_its_lag
    app = connect
    listener = connect
    listener.exec('LISTEN plain')
    worker = connect
    worker.subscribe('mailer', ['orders.*', 'exact'], max_lag_bytes: 1_000_000, max_lag_age: 60)
    worker.detach
    3.times { app.notify('orders.paid', payload: 'x') }
    app.notify('plain', payload: 'y')
    st = app.stats
    assert_operator st[:head], :>, st[:tail]
    assert_includes 0.0..1.0, st[:usage]
    assert_equal 7999, st[:max_payload]
    assert_operator st[:segment_files], :>=, 1
    assert_equal 2, st[:receivers].size
    plain = st[:receivers].find { |r| r[:subscription].nil? }
    assert_equal [listener.backend_pid, true, ['plain'], 1], plain.values_at(:backend_pid, :alive, :channels, :lag_notifications)
    assert_operator plain[:lag_bytes], :>, 0
    assert_includes 0.0..60.0, plain[:lag_age]
    sub = st[:receivers].find { |r| r[:subscription] == 'mailer' }
    assert_equal [0, false, %w[orders.* exact], 3, 1_000_000, 60.0, 0],
                 sub.values_at(:backend_pid, :alive, :channels, :lag_notifications, :max_lag_bytes, :max_lag_age, :gap_pending)
    assert_equal [['mailer', 3]], app.subscriptions.map { |r| r.values_at(:subscription, :lag_notifications) }
    app.close
    assert_raises(Hark::ClosedError) { app.stats }
  end
end

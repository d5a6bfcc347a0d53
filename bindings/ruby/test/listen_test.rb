# frozen_string_literal: true

require_relative 'helper'

# Sequel's Database#listen and #notify, option by option, as Sequel's postgres adapter defines them.
class ListenTest < Minitest::Test
  include HarkTest

  def setup
    super
    @conn = connect
    @other = connect
  end

  def test_without_loop_waits_for_one_notification_and_returns_its_channel
    got = []
    channel = @conn.listen(%i[a b], after_listen: ->(c) { @other.notify(:b, payload: 'x') }) { |*args| got << args }
    assert_equal 'b', channel
    assert_equal [['b', @other.backend_pid, 'x']], got
    assert_empty @conn.listening_channels, 'listen ends with UNLISTEN *'
  end

  def test_after_listen_gets_the_connection_once_listening
    seen = nil
    @conn.listen('Events', timeout: 0, after_listen: ->(c) { seen = [c, c.listening_channels] })
    assert_equal [@conn, ['Events']], seen, 'names are quoted identifiers: case is kept'
  end

  def test_timeout_returns_nil_and_a_callable_timeout_is_asked_before_each_wait
    t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_nil @conn.listen(:a, timeout: 0.2)
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - t, :>=, 0.2
    asked = 0
    loops = 0
    @conn.listen(:a, loop: ->(_c) { throw :stop if (loops += 1) == 3 }, timeout: -> { asked += 1; 0.01 }) { flunk }
    assert_equal [3, 3], [asked, loops], 'the loop proc is also called when the timeout expires'
  end

  def test_loop_calls_the_block_then_the_loop_proc_and_stops_on_throw_or_break
    order = []
    sent = 0
    feed = -> { @other.notify(:a, payload: (sent += 1).to_s) }
    result = @conn.listen(:a, after_listen: ->(_) { feed.call },
                              loop: lambda { |c|
                                assert_same @conn, c
                                order << :loop
                                throw :stop if sent == 3
                                feed.call
                              }) { |_ch, _pid, payload| order << payload }
    assert_nil result, 'listen with :loop returns nil'
    assert_equal ['1', :loop, '2', :loop, '3', :loop], order
    assert_empty @conn.listening_channels

    @other.notify(:a, payload: 'again')
    @conn.listen(:a, loop: true, after_listen: ->(_) { @other.notify(:a, payload: 'b') }) do |_, _, payload|
      order << payload
      break
    end
    assert_equal 'b', order.last, 'a notification sent before LISTEN is not heard'

    @conn.listen(:a, loop: true, after_listen: ->(_) { @other.notify(:a) }) do |_, _, payload|
      order << payload
      throw :stop
    end
    assert_nil order.last, 'an empty payload is nil, as pg yields it'
  end

  def test_loop_requires_a_block_and_unlistens_after_an_exception
    e = assert_raises(Hark::Error) { @conn.listen(:a, loop: true) }
    assert_equal 'calling #listen with :loop requires a block', e.message
    assert_raises(ZeroDivisionError) do
      @conn.listen(:a, loop: true, after_listen: ->(_) { @other.notify(:a) }) { 1 / 0 }
    end
    assert_empty @conn.listening_channels
    assert_raises(ArgumentError) { @conn.listen(:a, looop: true) }
  end

  def test_positional_options_hash_as_sequel_callers_pass_it
    opts = { timeout: 0, after_listen: ->(c) { @other.notify('a', payload: 'p') } }
    assert_equal 'a', @conn.listen('a', opts)
  end

  def test_notify_quotes_the_channel_and_sends_payload_to_s
    @conn.exec('LISTEN "Mixed"')
    @other.notify(:Mixed, payload: 42)
    @other.notify('Mixed', payload: nil)
    @other.notify('Mixed', payload: "it's $$ -- ;")
    got = []
    nil while @conn.wait_for_notify(0.2) { |*args| got << args.last }
    assert_equal ['42', nil, "it's $$ -- ;"], got
    @other.notify('mixed', payload: 'lower case is another channel')
    assert_nil @conn.wait_for_notify(0.1)
  end
end

# frozen_string_literal: true

module Hark
  # Durable subscriptions (README: "Durable subscriptions"): a named position in the queue that
  # outlives its consumers.
  class Connection
    SUBSCRIBE_ACK = { explicit: 'explicit', auto: 'auto' }.freeze
    private_constant :SUBSCRIBE_ACK

    # Creates the durable subscription `name` on `channels` (a name or an Array of names: exact
    # channels, or globs with `*`, `?` and `\` escapes, as Redis' PSUBSCRIBE) if it does not
    # exist, and attaches this connection to it; the channels and limits given replace the stored
    # ones, the position is kept. #receive, #notifies and #wait_for_notify then return every
    # notification on its channels after its last acknowledged one, in commit order, then new
    # ones as they commit. The subscription lives in the queue directory: it survives its
    # consumers' crashes and restarts, not a reboot.
    #
    # `ack:` :explicit (only #ack acknowledges) or :auto (each receive acknowledges what was
    # returned before it: a consumer killed while handling one gets that one again, nothing
    # earlier). `create: false` attaches only to an existing subscription (42704 otherwise).
    # Another connection attached to it raises Hark::InUseError (55006) at once, or after
    # `wait:` seconds. Past `max_lag_bytes:` of queue, or when its oldest unread commit is
    # older than `max_lag_age:` seconds, it is cut instead of holding the queue back, and its
    # next receive raises Hark::GapError. A connection that listens cannot subscribe, nor the
    # reverse. Returns nil.
    def subscribe(name, channels, ack: :explicit, create: true, wait: nil, max_lag_bytes: nil, max_lag_age: nil)
      name = Hark.c_string(name, 'name')
      channels = Array(channels).map { |c| Hark.c_string(channel_name(c), 'channel') }
      mode = SUBSCRIBE_ACK.fetch(ack) { raise ArgumentError, "ack: must be :explicit or :auto, not #{ack.inspect}" }
      raise TypeError, 'create: must be true or false' unless [true, false].include?(create)

      pairs = [['ack', mode], ['create', create ? 'on' : 'off']]
      pairs << ['max_lag_bytes', Integer(max_lag_bytes).to_s] if max_lag_bytes
      pairs << ['max_lag_age_ms', milliseconds(max_lag_age, 'max_lag_age').to_s] if max_lag_age
      keep = []
      list = c_array(channels, keep, terminate: false)
      deadline = wait && (Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds(wait, 'wait'))
      # A long wait is made of short ones, so that Ctrl-C, Thread#raise and Timeout interrupt it.
      loop do
        left = deadline ? deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC) : 0
        round = pairs + (left.positive? ? [['wait_ms', (left.clamp(0, 0.1) * 1000).ceil.to_s]] : [])
        keywords = c_array(round.map(&:first), keep)
        values = c_array(round.map(&:last), keep)
        busy = locked do |p|
          code = Native.hark_subscribe(p, name, list, channels.size, keywords, values)
          again = code == 103 && deadline && deadline > Process.clock_gettime(Process::CLOCK_MONOTONIC)
          check(code) unless again
          again
        end
        return nil unless busy
      end
    end

    # Acknowledges `notification` (a Hark::Notification, #notifies' Hash, or its position, an
    # Integer) and every one before it: a later attach does not receive them again. Positions
    # already acknowledged are accepted; one this connection did not receive raises
    # Hark::InvalidArgumentError.
    def ack(notification)
      position = case notification
                 when Integer then notification
                 when Hash then notification.fetch(:position)
                 else notification.position
                 end
      raise TypeError, 'position must be an Integer' unless position.is_a?(Integer)
      raise ArgumentError, 'position must not be negative' if position.negative?

      locked { |p| check(Native.hark_ack(p, position)) }
      nil
    end

    # Ends this connection's attachment: the subscription stays at its acknowledged position, and
    # what was received but not acknowledged comes again at the next attach. Closing does the same.
    def detach
      locked { |p| check(Native.hark_detach(p)) }
      nil
    end

    # Drops the durable subscription `name`: Hark::Error with SQLSTATE 42704 if there is none,
    # Hark::InUseError while another connection is attached to it.
    def unsubscribe(name)
      name = Hark.c_string(name, 'name')
      locked { |p| check(Native.hark_unsubscribe(p, name)) }
      nil
    end

    # The queue's state, as `hark stat` shows it (hark_stats): a Hash with :head, :tail,
    # :usage, :max_queue_size, :segment_size, :max_payload, :segment_files (a count) and
    # :receivers, one Hash per listener or durable subscription: :subscription (nil for a
    # listener), :backend_pid (0 for a subscription nobody is attached to), :os_pid, :alive,
    # :channels (nil when too long to be kept), :position, :lag_bytes, :lag_notifications,
    # :lag_age (seconds since the oldest unread notification was committed, or nil),
    # :max_lag_bytes, :max_lag_age (seconds) and :gap_pending. Advances the queue's tail first.
    def stats
      out = FFI::MemoryPointer.new(:pointer)
      locked { |p| check(Native.hark_stats(p, out)) }
      block = out.read_pointer
      begin
        st = Native::QueueStats.new(block)
        receivers = Array.new(st[:receiver_count]) do |i|
          receiver(Native::ReceiverStat.new(st[:receivers] + (i * Native::ReceiverStat.size)))
        end
        { head: st[:head], tail: st[:tail], usage: st[:usage], max_queue_size: st[:max_queue_size],
          segment_size: st[:segment_size], max_payload: st[:max_payload],
          segment_files: st[:segment_files], receivers: receivers }
      ensure
        Native.hark_freemem(block)
      end
    end

    # The queue's durable subscriptions, with their lag (the named receivers of #stats).
    def subscriptions = stats[:receivers].reject { |r| r[:subscription].nil? }

    private

    def receiver(r)
      names = r[:channel_names]
      channels = names.null? ? nil : names.get_array_of_pointer(0, r[:channel_count]).map { |c| Hark.utf8(c.read_string) }
      { subscription: r[:subscription].null? ? nil : Hark.utf8(r[:subscription].read_string),
        backend_pid: r[:backend_pid], os_pid: r[:os_pid], alive: r[:alive] == 1, channels: channels,
        position: r[:position], lag_bytes: r[:lag_bytes], lag_notifications: r[:lag_notifications],
        lag_age: r[:lag_age_ns].negative? ? nil : r[:lag_age_ns] / 1e9,
        max_lag_bytes: r[:max_lag_bytes], max_lag_age: r[:max_lag_age_ns] / 1e9, gap_pending: r[:gap_pending] }
    end

    def seconds(value, what)
      raise TypeError, "#{what}: wrong argument type #{value.class} (expected Numeric seconds)" unless value.is_a?(Numeric)
      raise ArgumentError, "#{what}: must not be negative" if value.negative?

      value
    end

    def milliseconds(value, what) = (seconds(value, what) * 1000).ceil
  end
end

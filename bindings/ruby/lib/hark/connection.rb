# frozen_string_literal: true

require 'io/wait'

module Hark
  # libpq's PQtransactionStatus values, as pg's PG::PQTRANS_* constants.
  PQTRANS_IDLE = 0
  PQTRANS_INTRANS = 2
  PQTRANS_INERROR = 3
  PQTRANS_UNKNOWN = 4
  # pg's PG::CONNECTION_OK / CONNECTION_BAD, what Connection#status returns.
  CONNECTION_OK = 0
  CONNECTION_BAD = 1

  # One session on a queue directory, in the shape of the pg gem's PG::Connection (exec,
  # exec_params, wait_for_notify, notifies, socket_io, backend_pid, transaction, close), with
  # Sequel's Database#listen and #notify. Each connection is its own session with its own backend
  # PID, as each PostgreSQL connection is. Several threads may share one (a Mutex keeps two calls
  # from running at once); a wait sleeps in IO#wait_readable, which lets other threads run and is
  # interrupted by Thread#raise, Thread#kill, Timeout and Ctrl-C. Calls that may wait for another
  # process's lock run without the GVL too, holding the connection's Mutex. After fork the child
  # must open its own connections: calls on the parent's raise Hark::ClosedError there, and
  # closing it in the child leaves the parent's session alone.
  class Connection
    OPTIONS = %i[create max_queue_size max_payload segment_size group_shared cut_laggards listener_max_lag_bytes
                 listener_max_lag_age].freeze
    FLAGS = %i[create group_shared cut_laggards].freeze
    LISTEN_OPTIONS = %i[loop after_listen timeout server].freeze
    private_constant :OPTIONS, :FLAGS, :LISTEN_OPTIONS

    # Every open connection, for the fork hook below.
    LIVE = ObjectSpace::WeakMap.new
    private_constant :LIVE

    class << self
      alias open new
      alias connect new

      # In a forked child: close the child's copies of the parent's #socket_io descriptors, as
      # hark points its own descriptors at /dev/null there, so that the child holds nothing of the
      # parent's sessions (Process._fork, Ruby >= 3.1; Process.fork, Kernel#fork and IO.popen('-')
      # all go through it).
      def after_fork_in_child
        LIVE.each_key { |conn| conn.send(:drop_socket_io) }
      end
    end

    # Opens (creating it unless `create: false`) the queue in `dir`: nil means $HARK_DIR, else
    # /dev/shm/hark-<uid>. The other options are hark_connect_params' keywords, fixed when the
    # queue is created: sizes in bytes, and the cut policy (`cut_laggards: true`: a full queue
    # cuts the readers holding it back, each then raising Hark::GapError once, instead of
    # failing commits) and plain listeners' lag limits (`listener_max_lag_bytes:`,
    # `listener_max_lag_age:` in seconds).
    def initialize(dir = nil, **options)
      unknown = options.keys - OPTIONS
      raise ArgumentError, "unknown option#{'s' if unknown.size > 1}: #{unknown.join(', ')}" unless unknown.empty?

      dir = dir.to_path if dir.respond_to?(:to_path)
      unless dir.nil? || dir.is_a?(String)
        raise TypeError, "wrong argument type #{dir.class} (expected a directory path or nil)"
      end

      pairs = []
      pairs << ['dir', dir] unless dir.nil?
      options.each do |key, value|
        next if value.nil?

        if key == :listener_max_lag_age
          unless value.is_a?(Numeric) && !value.negative?
            raise TypeError, "option #{key}: expected a number of seconds, not #{value.inspect}"
          end

          pairs << ['listener_max_lag_age_ms', (value * 1000).ceil.to_s]
          next
        end
        text = case value
               when true, false then value ? 'on' : 'off'
               when Integer then value.to_s
               else raise TypeError, "option #{key}: wrong argument type #{value.class} (expected #{FLAGS.include?(key) ? 'true or false' : 'Integer'})"
               end
        pairs << [key.to_s, text]
      end
      keep = []
      keywords = c_array(pairs.map(&:first), keep)
      values = c_array(pairs.map { |_, v| Hark.c_string(v, 'dir') }, keep)
      raw = Native.hark_connect_params(keywords, values)
      raise NoMemoryError, 'hark_connect_params failed' if raw.null?

      status = Native.hark_status(raw)
      unless status.zero?
        error = Hark.error_class(status).new(Hark.utf8(Native.hark_error_message(raw)),
                                             sqlstate: Hark.sqlstate(Native.hark_error_sqlstate(raw)), code: status)
        Native.hark_finish(raw)
        raise error
      end
      @ptr = FFI::AutoPointer.new(raw, Native.method(:hark_finish))
      @lock = Mutex.new
      @depth = 0
      @socket_io = nil
      @notice_proc = nil
      LIVE[self] = true
    end

    # --- The session ------------------------------------------------------------------------

    # Ends the session (PQfinish): the connection's LISTENs end, an open transaction is rolled
    # back, and a thread waiting on it gets Hark::ClosedError. Closing twice does nothing.
    def close
      io = nil
      @lock.synchronize do
        return nil if @ptr.nil?

        ptr = @ptr
        @ptr = nil
        io = @socket_io
        @socket_io = nil
        ptr.autorelease = false
        Native.hark_finish_blocking(ptr)
      end
      io&.close # wakes a thread waiting on it
      nil
    end
    alias finish close

    def closed? = @ptr.nil?
    alias finished? closed?

    # CONNECTION_OK while usable; CONNECTION_BAD once closed, in a forked child, or after a bug in hark.
    def status = @lock.synchronize { @ptr && Native.hark_status(@ptr).zero? ? CONNECTION_OK : CONNECTION_BAD }

    # This session's backend PID (PQbackendPID): the pid its notifications carry, its own among
    # the queue's live sessions, so `pid == conn.backend_pid` skips exactly this one's.
    def backend_pid = locked { |p| Native.hark_backend_pid(p) }

    # PQTRANS_IDLE, PQTRANS_INTRANS or PQTRANS_INERROR (PQTRANS_UNKNOWN once closed).
    def transaction_status = @lock.synchronize { @ptr ? Native.hark_transaction_status(@ptr) : PQTRANS_UNKNOWN }

    # The descriptor to wait on (PQsocket), an Integer. Prefer #socket_io.
    def socket = locked { |p| Native.hark_socket(p) }

    # An IO for IO.select / #wait_readable, readable when notifications may be waiting; then
    # call #consume_input and drain #notifies. It is this connection's (a duplicate of its
    # descriptor, closed by #close): do not close or read it.
    def socket_io
      locked do |p|
        check(Native.hark_status(p)) # a forked child's copy is closed
        # IO#dup dup(2)s the descriptor: closing the copy never closes hark's.
        @socket_io ||= IO.for_fd(Native.hark_socket(p), autoclose: false).dup
      end
    end

    # Reads what #socket_io announced (PQconsumeInput). Raises on trouble; returns nil.
    def consume_input
      locked { |p| raise_error(400) if Native.hark_consume_input(p).zero? }
      nil
    end

    # The oldest notification not yet returned, as pg's Hash { relname:, be_pid:, extra: }
    # (extra is "" when there is no payload) with hark's position:, txn: and commit_time: (a
    # Time) after pg's keys, or nil. Never waits. Outside a transaction block it reads the queue
    # when it has nothing, so a loop of #notifies alone drains. A receiver that was cut raises
    # Hark::GapError once, in place of what was skipped.
    def notifies
      n = next_notification
      n && { relname: n.channel, be_pid: n.pid, extra: n.payload,
             position: n.position, txn: n.txn, commit_time: n.commit_time }
    end

    # Waits up to `timeout` seconds (nil: for ever) for a notification and returns its channel,
    # or nil on timeout, yielding (channel, pid, payload) to the block (payload nil when empty),
    # as pg's PG::Connection#wait_for_notify.
    def wait_for_notify(timeout = nil)
      unless timeout.nil? || timeout.is_a?(Numeric)
        raise TypeError, "wrong argument type #{timeout.class} (expected Numeric or nil)"
      end
      raise ArgumentError, 'time interval must not be negative' if timeout&.negative?

      n = receive(timeout)
      return nil unless n

      yield(n.channel, n.pid, n.payload.empty? ? nil : n.payload) if block_given?
      n.channel
    end
    alias wait_for_notification wait_for_notify

    # Waits up to `timeout` seconds (nil: for ever) for the next notification and returns it as
    # a Hark::Notification (channel, pid, payload, position, txn, commit_time), or nil on
    # timeout. A receiver that was cut raises Hark::GapError once, in place of what was skipped.
    # The wait is #wait_for_notify's (other threads run; Thread#raise, Timeout and Ctrl-C
    # interrupt it).
    def receive(timeout = nil)
      unless timeout.nil? || timeout.is_a?(Numeric)
        raise TypeError, "wrong argument type #{timeout.class} (expected Numeric or nil)"
      end
      raise ArgumentError, 'time interval must not be negative' if timeout&.negative?

      deadline = timeout && (Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout)
      n = next_notification
      until n
        left = deadline && (deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC))
        break if left && left <= 0

        begin
          socket_io.wait_readable(left) # nil on timeout: the deadline ends the loop
        rescue IOError
          ptr! # closed by another thread: raises ClosedError
          raise
        end
        consume_input
        n = next_notification
      end
      n
    end

    # --- SQL --------------------------------------------------------------------------------

    # Runs SQL text in hark's dialect (PQexec) and returns the last statement's Hark::Result;
    # with a block, yields it and returns the block's value. Failures raise Hark::Error subclasses.
    def exec(sql)
      sql = Hark.c_string(sql, 'sql')
      result = locked { |p| take(Native.hark_exec(p, sql)) }
      block_given? ? yield(result) : result
    end
    alias query exec
    alias async_exec exec
    alias async_query exec

    # Runs one statement with `$1`, `$2`, … bound to `params` as values, never pasted into SQL
    # (PQexecParams). Each value is a String, Symbol, Numeric, true or false (sent as text), nil
    # (SQL NULL), or pg's Hash form { value:, type: 0, format: 0 }.
    def exec_params(sql, params = [], result_format = 0)
      raise TypeError, "wrong argument type #{params.class} (expected Array)" unless params.is_a?(Array)
      raise TypeError, 'result_format must be an Integer' unless result_format.is_a?(Integer)

      types = FFI::MemoryPointer.new(:uint, [params.size, 1].max)
      formats = FFI::MemoryPointer.new(:int, [params.size, 1].max)
      keep = []
      values = params.each_with_index.map do |param, i|
        if param.is_a?(Hash)
          types.put_uint(i * 4, Integer(param.fetch(:type, 0) || 0))
          formats.put_int(i * 4, Integer(param.fetch(:format, 0) || 0))
          param = param[:value]
        end
        param.nil? ? nil : Hark.c_string(param_text(param, i), "parameter $#{i + 1}")
      end
      ptrs = c_array(values, keep, terminate: false)
      sql = Hark.c_string(sql, 'sql')
      result = locked { |p| take(Native.hark_exec_params(p, sql, params.size, types, ptrs, nil, formats, result_format)) }
      block_given? ? yield(result) : result
    end
    alias async_exec_params exec_params

    # libpq's PQescapeLiteral: 'it''s', or  E'a\\b' when there is a backslash.
    def escape_literal(text) = escape(:hark_escape_literal, text)

    # libpq's PQescapeIdentifier: "Events".
    def escape_identifier(text) = escape(:hark_escape_identifier, text)
    alias quote_ident escape_identifier

    # pg_listening_channels(), as an Array of Strings.
    def listening_channels = exec('SELECT pg_listening_channels()').column_values(0)

    # pg_notification_queue_usage(): the fraction of the queue in use, 0.0 … 1.0.
    def queue_usage
      out = FFI::MemoryPointer.new(:double)
      locked { |p| check(Native.hark_queue_usage(p, out)) }
      out.read_double
    end

    # Sets the block that receives notices (PQsetNoticeProcessor); by default they go to
    # standard error. Returns the previous block (nil for the default).
    def set_notice_processor(&block)
      previous = @notice_proc
      # An exception must not unwind through hark's frames: it is reported, not raised.
      function = block && FFI::Function.new(:void, %i[pointer string]) do |_, message|
        block.call(Hark.utf8(message))
      rescue Exception => e # rubocop:disable Lint/RescueException
        warn "hark: the notice processor raised #{e.class}: #{e.message}"
      end
      locked { |p| Native.hark_set_notice_processor(p, function || Native::DEFAULT_NOTICE_PROCESSOR, nil) }
      @notice_function = function # kept alive while installed
      @notice_proc = block
      previous
    end

    # --- LISTEN / NOTIFY in Sequel's shape ----------------------------------------------------

    # Sequel's Database#listen, with its options and their exact meaning: LISTEN on each of
    # `channels` (a name or an Array of names, quoted as identifiers: case is kept), call
    # `after_listen` with this connection, then wait for one notification (returning its channel,
    # or nil after `timeout`) or, with `loop:`, for ever, calling `loop` (when callable) with this
    # connection after each notification and each timeout. `timeout` is in seconds (nil: no
    # limit); when callable, it is called before each wait for the number. Stop a loop with
    # `break` in the block or `throw :stop` from the block or `loop`; it returns nil. Always ends
    # with UNLISTEN *, whatever happened.
    def listen(channels, opts = nil, **kwargs, &block)
      opts = (opts || {}).merge(kwargs)
      unknown = opts.keys - LISTEN_OPTIONS
      raise ArgumentError, "unknown option#{'s' if unknown.size > 1}: #{unknown.join(', ')}" unless unknown.empty?

      begin
        Array(channels).each { |channel| exec("LISTEN #{escape_identifier(channel_name(channel))}") }
        opts[:after_listen]&.call(self)
        if (timeout = opts[:timeout])
          timeout_block = timeout.respond_to?(:call) ? timeout : proc { timeout }
        end

        if (l = opts[:loop])
          raise Error, 'calling #listen with :loop requires a block' unless block

          loop_call = l.respond_to?(:call)
          catch(:stop) do
            while true # rubocop:disable Style/InfiniteLoop: Sequel's loop, which StopIteration does not end
              t = timeout_block ? [timeout_block.call] : []
              wait_for_notify(*t, &block)
              l.call(self) if loop_call
            end
          end
          nil
        else
          t = timeout_block ? [timeout_block.call] : []
          wait_for_notify(*t, &block)
        end
      ensure
        exec('UNLISTEN *') unless closed? || transaction_status == PQTRANS_INERROR
      end
    end

    # Sequel's Database#notify: NOTIFY "channel" (case kept), with `payload:` (any object, sent
    # as its to_s) when given. Inside a transaction it is delivered at COMMIT.
    def notify(channel, opts = nil, **kwargs)
      opts = (opts || {}).merge(kwargs)
      unknown = opts.keys - %i[payload server]
      raise ArgumentError, "unknown option#{'s' if unknown.size > 1}: #{unknown.join(', ')}" unless unknown.empty?

      sql = +"NOTIFY #{escape_identifier(channel_name(channel))}"
      if (payload = opts[:payload])
        sql << ', ' << escape_literal(Hark.c_string(payload.to_s, 'payload'))
      end
      exec(sql)
      nil
    end

    # UNLISTEN `channel` (verbatim), or every channel when nil.
    def unlisten(channel = nil)
      name = channel.nil? ? nil : Hark.c_string(channel_name(channel), 'channel')
      locked { |p| check(Native.hark_unlisten(p, name)) }
      nil
    end

    # --- Transactions -------------------------------------------------------------------------

    # BEGIN, yield this connection, COMMIT; ROLLBACK and re-raise if the block raises (as pg's
    # PG::Connection#transaction; `break` and `throw` commit, as there). Inside a transaction
    # block it is a savepoint (_hark_1, _hark_2, …): an exception rolls back to it, leaving the
    # outer transaction usable. Raising Hark::Rollback rolls back without an error (returns nil).
    def transaction
      outer = transaction_status == PQTRANS_IDLE
      name = "_hark_#{@depth + 1}" unless outer
      locked { |p| check(outer ? Native.hark_begin(p) : Native.hark_savepoint(p, name)) }
      @depth += 1
      failed = false
      begin
        yield self
      rescue Exception => e # rubocop:disable Lint/RescueException: rolled back, then re-raised
        failed = true
        @lock.synchronize do
          next if @ptr.nil?

          check(outer ? Native.hark_rollback(@ptr) : Native.hark_rollback_to(@ptr, name))
          check(Native.hark_release(@ptr, name)) unless outer
        end
        raise unless e.is_a?(Rollback)

        nil
      ensure
        @depth -= 1
        locked { |p| check(outer ? Native.hark_commit(p) : Native.hark_release(p, name)) } unless failed
      end
    end

    def inspect
      closed? ? '#<Hark::Connection closed>' : "#<Hark::Connection backend_pid=#{backend_pid}>"
    end

    private

    def ptr!
      @ptr || raise(ClosedError.new('connection is closed', sqlstate: '08003', code: 500, connection: self))
    end

    # Yields this session's pointer holding its lock, so that no other thread uses or closes the
    # session meanwhile (the checks of a call's error belong inside, with the call).
    def locked
      @lock.synchronize { yield ptr! }
    end

    # Raises the error of the call that just failed: the connection's status when it is not
    # usable, a Hark::GapError when it met a gap, else `fallback`, with the connection's message
    # and SQLSTATE.
    def raise_error(fallback)
      code = Native.hark_status(@ptr)
      raise_gap if code.zero?
      check(code.zero? ? fallback : code)
    end

    # Raises Hark::GapError with what was skipped when the last call met a gap (hark_last_gap).
    def raise_gap
      gap = Native::Gap.new
      return if Native.hark_last_gap(@ptr, gap).zero?

      raise GapError.new(Hark.utf8(Native.hark_error_message(@ptr)),
                         sqlstate: Hark.sqlstate(Native.hark_error_sqlstate(@ptr)), code: 600, connection: self,
                         skipped: gap[:skipped], first_txn: gap[:first_txn], last_txn: gap[:last_txn],
                         resumed_at: gap[:resumed_at])
    end

    def drop_socket_io
      @socket_io&.close
      @socket_io = nil
    end

    # Raises the connection's error for a non-zero hark_result.
    def check(code)
      return if code.zero?

      raise_gap if code == 600

      raise Hark.error_class(code).new(Hark.utf8(Native.hark_error_message(@ptr)),
                                       sqlstate: Hark.sqlstate(Native.hark_error_sqlstate(@ptr)),
                                       code: code, connection: self)
    end

    # Copies a hark_query into a Result and releases it, or raises its error.
    def take(query)
      raise NoMemoryError, 'hark returned no result' if query.null?

      begin
        status = Native.hark_query_status(query)
        unless status.zero?
          raise Hark.error_class(status).new(Hark.utf8(Native.hark_query_error_message(query)),
                                             sqlstate: Hark.sqlstate(Native.hark_query_sqlstate(query)),
                                             code: status, connection: self)
        end
        Result.from_query(query)
      ensure
        Native.hark_query_clear(query)
      end
    end

    # A Hark::Notification, or nil. A failure, unlike an empty list, sets the connection's status
    # (closed, forked) or its message (a gap: hark_last_gap).
    def next_notification
      raw = locked do |p|
        r = Native.hark_notifies(p)
        raise_error(400) if r.null? && !(Native.hark_status(p).zero? && Native.hark_error_message(p).empty?)
        r
      end
      return nil if raw.null?

      begin
        n = Native::Notification.new(raw)
        ns = n[:commit_time_ns]
        Notification.new(channel: Hark.utf8(n[:relname].read_string), pid: n[:be_pid],
                         payload: Hark.utf8(n[:extra].read_string), position: n[:position], txn: n[:txn],
                         commit_time: Time.at(ns / 1_000_000_000, ns % 1_000_000_000, :nsec))
      ensure
        Native.hark_freemem(raw)
      end
    end

    def escape(function, text)
      s = Hark.c_string(text, 'text')
      out = locked do |p|
        r = Native.public_send(function, p, s, s.bytesize)
        raise_error(100) if r.null?
        r
      end
      begin
        Hark.utf8(out.read_string)
      ensure
        Native.hark_freemem(out)
      end
    end

    def channel_name(channel)
      case channel
      when String then channel
      when Symbol then channel.to_s
      else raise TypeError, "wrong argument type #{channel.class} (expected a channel name: String or Symbol)"
      end
    end

    def param_text(value, index)
      case value
      when String then value
      when Symbol, Numeric, true, false then value.to_s
      else raise TypeError, "parameter $#{index + 1}: wrong argument type #{value.class} " \
                            '(expected String, Symbol, Numeric, true, false or nil)'
      end
    end

    # A C array of NUL-terminated strings (NULL for nil), NULL-terminated unless told not to;
    # `keep` holds the buffers until the call is over.
    def c_array(strings, keep, terminate: true)
      array = FFI::MemoryPointer.new(:pointer, strings.size + 1)
      strings.each_with_index do |s, i|
        next if s.nil?

        buf = FFI::MemoryPointer.from_string(Hark.c_string(s, 'value'))
        keep << buf
        array.put_pointer(i * FFI::Pointer.size, buf)
      end
      array.put_pointer(strings.size * FFI::Pointer.size, nil) if terminate
      keep << array
      array
    end
  end

  # Runs Connection.after_fork_in_child in every forked child.
  module ForkHook
    def _fork
      pid = super
      Connection.after_fork_in_child if pid.zero?
      pid
    end
  end
  Process.singleton_class.prepend(ForkHook) if Process.respond_to?(:_fork)
end

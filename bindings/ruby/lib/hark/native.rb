# frozen_string_literal: true

require 'ffi'

module Hark
  # The C ABI of libhark (include/hark.h), bound with the ffi gem. Private: use Hark::Connection.
  module Native
    extend FFI::Library

    # Where libhark.so is taken from, first found wins: $HARK_LIB, the copy packaged with the
    # gem (lib/hark/libhark.so), the system's (`make install`, or the dynamic loader's path).
    def self.candidates
      [ENV['HARK_LIB'], File.expand_path('libhark.so', __dir__), 'hark'].compact.reject(&:empty?)
    end

    begin
      ffi_lib candidates.find { |c| !c.include?('/') || File.exist?(c) }
    rescue LoadError => e
      raise LoadError, "hark: cannot load libhark.so (#{e.message}); build it with `make ffi-libs` " \
                       'and set HARK_LIB to its path, or install it with `make install`'
    end


    # Calls that may wait for a lock another process holds (the writer lock at a commit, the tail
    # lock at a LISTEN, when reading crosses into another segment, or at close) or touch files
    # run without the GVL (`blocking: true`): a process stopped while holding a lock stalls only
    # the Ruby thread that waits for it. Hark::Connection keeps two threads out of one session.
    # hark_finish is also bound as it is, for the garbage collector's finalizer.
    attach_function :hark_connect_params, %i[pointer pointer], :pointer, blocking: true
    attach_function :hark_finish, [:pointer], :void
    attach_function :hark_finish_blocking, :hark_finish, [:pointer], :void, blocking: true
    attach_function :hark_status, [:pointer], :int
    attach_function :hark_error_message, [:pointer], :string
    attach_function :hark_error_sqlstate, [:pointer], :string
    attach_function :hark_socket, [:pointer], :int
    attach_function :hark_backend_pid, [:pointer], :int
    attach_function :hark_transaction_status, [:pointer], :int
    attach_function :hark_set_notice_processor, %i[pointer pointer pointer], :pointer
    attach_function :hark_escape_literal, %i[pointer pointer size_t], :pointer
    attach_function :hark_escape_identifier, %i[pointer pointer size_t], :pointer
    attach_function :hark_exec, %i[pointer string], :pointer, blocking: true
    attach_function :hark_exec_params, %i[pointer string int pointer pointer pointer pointer int], :pointer, blocking: true
    attach_function :hark_query_clear, [:pointer], :void
    attach_function :hark_query_status, [:pointer], :int
    attach_function :hark_query_sqlstate, [:pointer], :string
    attach_function :hark_query_error_message, [:pointer], :string
    attach_function :hark_query_command, [:pointer], :string
    attach_function :hark_query_ntuples, [:pointer], :int
    attach_function :hark_query_nfields, [:pointer], :int
    attach_function :hark_query_fname, %i[pointer int], :string
    attach_function :hark_query_getvalue, %i[pointer int int], :pointer
    attach_function :hark_query_getisnull, %i[pointer int int], :int
    attach_function :hark_consume_input, [:pointer], :int, blocking: true
    attach_function :hark_notifies, [:pointer], :pointer, blocking: true
    attach_function :hark_freemem, [:pointer], :void
    attach_function :hark_queue_usage, %i[pointer pointer], :int, blocking: true
    attach_function :hark_stats, %i[pointer pointer], :int, blocking: true
    attach_function :hark_result_str, [:int], :string
    attach_function :hark_version, [], :string
    attach_function :hark_listen, %i[pointer string], :int, blocking: true
    attach_function :hark_unlisten, %i[pointer string], :int, blocking: true
    attach_function :hark_notify, %i[pointer string string], :int, blocking: true
    attach_function :hark_begin, [:pointer], :int, blocking: true
    attach_function :hark_commit, [:pointer], :int, blocking: true
    attach_function :hark_rollback, [:pointer], :int, blocking: true
    attach_function :hark_savepoint, %i[pointer string], :int, blocking: true
    attach_function :hark_release, %i[pointer string], :int, blocking: true
    attach_function :hark_rollback_to, %i[pointer string], :int, blocking: true
    # Durable subscriptions: attaching, acknowledging (which may settle a cut's count under the
    # tail lock), detaching and dropping take queue locks.
    attach_function :hark_subscribe, %i[pointer string pointer int pointer pointer], :int, blocking: true
    attach_function :hark_ack, %i[pointer uint64], :int, blocking: true
    attach_function :hark_detach, [:pointer], :int, blocking: true
    attach_function :hark_unsubscribe, %i[pointer string], :int, blocking: true
    attach_function :hark_last_gap, %i[pointer pointer], :int

    DEFAULT_NOTICE_PROCESSOR = ffi_libraries.first.find_function('hark_default_notice_processor')

    # struct hark_notification { char *relname; int be_pid; char *extra; uint64_t position;
    # uint64_t txn; int64_t commit_time_ns; }
    class Notification < FFI::Struct
      layout :relname, :pointer, :be_pid, :int, :extra, :pointer,
             :position, :uint64, :txn, :uint64, :commit_time_ns, :int64
    end

    # struct hark_receiver_stat (include/hark.h)
    class ReceiverStat < FFI::Struct
      layout :subscription, :pointer, :backend_pid, :int, :os_pid, :int, :alive, :int,
             :channel_count, :int, :channel_names, :pointer, :position, :uint64, :lag_bytes, :uint64,
             :lag_notifications, :uint64, :lag_age_ns, :int64, :max_lag_bytes, :uint64,
             :max_lag_age_ns, :uint64, :gap_pending, :uint64
    end

    # struct hark_queue_stats (include/hark.h)
    class QueueStats < FFI::Struct
      layout :head, :uint64, :tail, :uint64, :usage, :double, :max_queue_size, :uint64,
             :segment_size, :uint64, :max_payload, :uint64, :segment_files, :int,
             :receiver_count, :int, :receivers, :pointer
    end

    # struct hark_gap { uint64_t skipped, first_txn, last_txn, resumed_at; }
    class Gap < FFI::Struct
      layout :skipped, :uint64, :first_txn, :uint64, :last_txn, :uint64, :resumed_at, :uint64
    end
  end
end

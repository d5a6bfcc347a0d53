# frozen_string_literal: true

module Hark
  # One notification, as Connection#receive returns it: the channel, the sender's backend PID and
  # the payload ("" when none was given), then where and when it was committed: `position`
  # (unique for the queue's life, increasing in commit order: the key for idempotent processing,
  # and what Connection#ack takes), `txn` (its transaction's commit sequence number) and
  # `commit_time` (a Time). `relname`, `be_pid` and `extra` are pg's names for the first three.
  Notification = Struct.new(:channel, :pid, :payload, :position, :txn, :commit_time, keyword_init: true) do
    alias_method :relname, :channel
    alias_method :be_pid, :pid
    alias_method :extra, :payload
  end
end

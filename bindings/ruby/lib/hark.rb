# frozen_string_literal: true

# hark: PostgreSQL's LISTEN/NOTIFY on a queue directory, with no server, in the shapes of the pg
# gem (Hark.connect, exec, exec_params, wait_for_notify, notifies, socket_io) and of Sequel
# (listen, notify, transaction). See README.md beside this gem.
require_relative 'hark/version'
require_relative 'hark/native'
require_relative 'hark/errors'
require_relative 'hark/result'
require_relative 'hark/notification'
require_relative 'hark/connection'
require_relative 'hark/subscriptions'

module Hark
  # Opens a session on the queue in `dir` (nil: $HARK_DIR, else /dev/shm/hark-<uid>), as
  # PG.connect opens one on a server. With a block, yields it and closes it afterwards.
  def self.connect(dir = nil, **options)
    conn = Connection.new(dir, **options)
    return conn unless block_given?

    begin
      yield conn
    ensure
      conn.close
    end
  end

  # The version of libhark.so in use ("0.1.0").
  def self.library_version = utf8(Native.hark_version)

  # A String as hark takes it: UTF-8 bytes with no NUL (ArgumentError, as Ruby's own C calls);
  # Symbols are their names; other types raise TypeError.
  def self.c_string(value, what)
    value = value.to_s if value.is_a?(Symbol)
    raise TypeError, "#{what}: wrong argument type #{value.class} (expected String)" unless value.is_a?(String)
    raise ArgumentError, "#{what}: string contains null byte" if value.include?("\0")

    case value.encoding
    when Encoding::UTF_8, Encoding::US_ASCII, Encoding::BINARY then value
    else value.encode(Encoding::UTF_8)
    end
  end

  # @private
  def self.utf8(s) = s && String.new(s, encoding: Encoding::UTF_8)

  # @private
  def self.sqlstate(s) = s.nil? || s.empty? ? nil : s.dup
end

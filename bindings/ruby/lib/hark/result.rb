# frozen_string_literal: true

module Hark
  # The result of one statement (the last one of a text of several), read out of hark_query at
  # once: it does not depend on its connection and needs no #clear. Shaped as the pg gem's
  # PG::Result with no type map: values are Strings (UTF-8), SQL NULL is nil.
  class Result
    include Enumerable

    # Column names, in order.
    attr_reader :fields
    # Each row as an Array of values, in column order.
    attr_reader :values
    # The command tag: "LISTEN", "NOTIFY", "SELECT 1", "COMMIT", …
    attr_reader :cmd_status

    def initialize(fields, values, cmd_status)
      @fields = fields.freeze
      @values = values.each(&:freeze).freeze
      @cmd_status = cmd_status.freeze
      freeze
    end

    def self.from_query(query)
      n = Native.hark_query_nfields(query)
      fields = Array.new(n) { |c| Hark.utf8(Native.hark_query_fname(query, c)) }
      rows = Array.new(Native.hark_query_ntuples(query)) do |r|
        Array.new(n) do |c|
          Native.hark_query_getisnull(query, r, c) == 1 ? nil : Hark.utf8(Native.hark_query_getvalue(query, r, c).read_string)
        end
      end
      new(fields, rows, Hark.utf8(Native.hark_query_command(query)))
    end

    def ntuples = @values.length
    alias num_tuples ntuples

    def nfields = @fields.length
    alias num_fields nfields

    def fname(column) = @fields.fetch(column)
    def fnumber(name) = @fields.index(name) || raise(ArgumentError, "Unknown field: #{name}")
    def getvalue(row, column) = @values.fetch(row).fetch(column)
    def getisnull(row, column) = getvalue(row, column).nil?

    # Row `n` as a Hash from column name to value.
    def [](row) = @fields.zip(@values.fetch(row)).to_h

    def each
      return enum_for(:each) unless block_given?

      @values.each_index { |i| yield self[i] }
      self
    end

    def each_row(&block) = @values.each(&block)
    def column_values(column) = @values.map { |r| r.fetch(column) }
    def field_values(name) = column_values(fnumber(name))

    # The number of rows a SELECT returned (pg counts rows affected; hark's statements affect none).
    def cmd_tuples = @cmd_status.start_with?('SELECT ') ? @cmd_status.split.last.to_i : 0

    # Nothing to release: the values were copied out (pg's #clear, kept for code that calls it).
    def clear = nil

    def inspect = "#<Hark::Result #{@cmd_status} fields=#{@fields.inspect} values=#{@values.inspect}>"
  end
end

# frozen_string_literal: true

require_relative 'helper'
require 'timeout'

# The examples in examples/ruby, run as a user runs them.
class ExamplesTest < Minitest::Test
  include HarkTest

  EXAMPLES = File.join(ROOT, 'examples', 'ruby')

  def teardown
    (@children || []).each do |pid|
      Process.kill(:KILL, pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
    super
  end

  # Starts argv with the gem on RUBYLIB and the test's queue as $HARK_DIR; returns its output.
  def start(argv)
    r, w = IO.pipe
    pid = spawn({ 'HARK_DIR' => @dir, 'RUBYLIB' => LIB }, *argv, out: w, err: %i[child out])
    w.close
    (@children ||= []) << pid
    [pid, r]
  end

  def expect_line(io, pattern, seconds = 30)
    Timeout.timeout(seconds) do
      while (line = io.gets)
        return line if line.match?(pattern)
      end
    end
    flunk "no line matching #{pattern.inspect}"
  end

  # The seed article's Sequel listener with its connection line changed prints each payload.
  def test_sequel_listener_prints_each_committed_payload
    # $stdout.sync as on a terminal: the example itself is the article's code.
    pid, out = start([RUBY, '-e', '$stdout.sync = true; load ARGV.shift', File.join(EXAMPLES, 'listener.rb')])
    assert_equal "Listening for DB events...\n", out.gets
    orders = 3.times.map { |i| %({"table" : "orders", "action" : "INSERT", "data" : {"id":#{i}}}) }
    Hark.connect(@dir) do |app|
      # Its LISTEN follows the line it printed: send until one is heard.
      Timeout.timeout(10) do
        app.notify(:events, payload: 'warm-up') until IO.select([out], nil, nil, 0.1) && out.gets == "warm-up\n"
      end
      app.transaction { orders.each { |o| app.notify(:events, payload: o) } }
      app.transaction do
        app.notify(:events, payload: 'rolled back')
        raise Hark::Rollback
      end
      app.notify(:events, payload: 'last')
    end
    lines = []
    Timeout.timeout(10) { lines << out.gets.chomp until lines.reject { |l| l == 'warm-up' }.size == 4 }
    lines.reject! { |l| l == 'warm-up' }
    assert_equal orders + ['last'], lines
    Process.kill(:INT, pid)
    Process.wait(pid)
    refute $?.success?, 'Ctrl-C ends the loop'
  end

  # The faye-websocket push: a headless Chromium opens the page, and its console logs each
  # payload committed on "events".
  def test_push_to_a_browser_console
    chromium = ENV['HARK_CHROMIUM'] || ENV['PATH'].split(':').map { |d| File.join(d, 'chromium') }.find { |f| File.executable?(f) }
    unless chromium
      puts 'skipped: test_push_to_a_browser_console: no chromium on PATH (make test-ruby installs ' \
           "Debian's chromium through cli-test-setup; it could not here)"
      skip 'no chromium'
    end
    _pid, server = start(['puma', '-b', 'tcp://127.0.0.1:0', File.join(EXAMPLES, 'push.ru')])
    url = expect_line(server, %r{Listening on http://}).split.last
    profile = File.join(@tmp, 'chromium-profile')
    _pid, browser = start([chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
                           '--disable-background-networking', '--disable-component-update', '--disable-sync',
                           '--enable-logging=stderr', '--v=0', "--user-data-dir=#{profile}", "#{url}/"])
    expect_line(server, /a browser listens on 'events'/)
    payloads = [%({"table" : "orders", "action" : "INSERT", "data" : {"id":2,"total":10000}}), 'plain <b>text</b>']
    Hark.connect(@dir) do |app|
      app.transaction { payloads.each { |p| app.notify(:events, payload: p) } }
    end
    logged = payloads.map do |p|
      expect_line(browser, /INFO:CONSOLE.*"#{Regexp.escape(p)}", source: #{Regexp.escape(url)}/)
    end
    assert_equal 2, logged.size
  end
end

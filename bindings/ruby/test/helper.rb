# frozen_string_literal: true

# Shared by every test file: minitest, the gem from this checkout, a fresh queue per test.
require 'minitest/autorun'
require 'tmpdir'
require 'rbconfig'
require 'hark'

ROOT = File.expand_path('../../..', __dir__)
RUBY = RbConfig.ruby
LIB = File.expand_path('../lib', __dir__)

module HarkTest
  def setup
    super
    @tmp = Dir.mktmpdir('hark-ruby-')
    @dir = File.join(@tmp, 'queue')
    @open = []
  end

  def teardown
    @open.each(&:close)
    FileUtils.rm_rf(@tmp)
    super
  end

  # A connection on this test's queue, closed at teardown.
  def connect(**options)
    Hark.connect(@dir, **options).tap { |c| @open << c }
  end

  # Runs Ruby code in a child process with this gem loaded; returns [stdout, status].
  def ruby_child(code, *args)
    out = IO.popen([RUBY, '-I', LIB, '-rhark', '-e', code, *args], err: %i[child out], &:read)
    [out, $?]
  end
end

# frozen_string_literal: true

# The cross-language peer in Ruby (same command line and output as core/examples/peer.rs).
#
#   peer.rb listen DIR CHANNEL COUNT [TIMEOUT_S]
#   peer.rb notify DIR CHANNEL PREFIX COUNT [PER_TXN]
require 'hark'

$stdout.sync = true
a = ARGV
if a.size >= 4 && a[0] == 'listen'
  count = Integer(a[3])
  got = 0
  heard = false
  Hark.connect(a[1]) do |conn|
    # Sequel's listen: READY once listening, the timeout per wait; the loop proc, called after
    # each notification and each timeout, stops after COUNT or a wait that heard nothing.
    conn.listen(a[2], after_listen: ->(c) { puts "READY #{c.backend_pid}" }, timeout: Float(a[4] || 30),
                      loop: lambda { |_|
                        throw :stop if got == count || !heard
                        heard = false
                      }) do |channel, pid, payload|
      puts "#{channel}\t#{payload}\t#{pid}"
      got += 1
      heard = true
    end
  end
  exit(got == count ? 0 : 2)
elsif a.size >= 5 && a[0] == 'notify'
  count = Integer(a[4])
  per_txn = Integer(a[5] || 1)
  Hark.connect(a[1]) do |conn|
    sent = 0
    while sent < count
      conn.transaction do
        [per_txn, count - sent].min.times do
          conn.notify(a[2], payload: "#{a[3]}-#{sent}")
          sent += 1
        end
      end
    end
    puts "SENT #{sent} #{conn.backend_pid}"
  end
else
  warn File.read(__FILE__).lines.grep(/^#   /).join
  exit 64
end

require 'hark'

DB = Hark.connect # the queue in $HARK_DIR (or hark's default), instead of a PostgreSQL URL

puts 'Listening for DB events...'
DB.listen(:events, loop: true) do |_channel, _pid, payload|
  puts payload
end

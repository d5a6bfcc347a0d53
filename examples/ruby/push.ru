# The Sequel + faye-websocket push to a browser, on hark: each browser that opens this page gets
# its own session LISTENing on "events", and every payload committed there is sent down its
# WebSocket; the page logs each one to the browser's console.
#
#   HARK_DIR=/tmp/q puma -b tcp://127.0.0.1:9292 examples/ruby/push.ru     (RUBYLIB: the gem's lib)
require 'faye/websocket'
require 'hark'

PAGE = <<~HTML.freeze
  <!doctype html>
  <title>hark events</title>
  <script>
  socket = new WebSocket("ws://" + location.host)
  socket.onmessage = (event) => console.log(event.data)
  </script>
HTML

App = lambda do |env|
  next [200, { 'content-type' => 'text/html; charset=utf-8' }, [PAGE]] unless Faye::WebSocket.websocket?(env)

  ws = Faye::WebSocket.new(env)
  open = true
  ws.on(:close) { open = false }
  # listen blocks, so it runs in a thread of its own; the loop proc, called after each
  # notification and each one-second timeout, ends it (and its session) once the socket closes.
  Thread.new do
    Hark.connect do |db|
      db.listen(:events, after_listen: ->(_) { puts "a browser listens on 'events'" },
                         loop: ->(_) { throw :stop unless open }, timeout: 1) do |_channel, _pid, payload|
        EM.next_tick { ws.send(payload) } # the socket belongs to EventMachine's thread
      end
    end
  end
  ws.rack_response
end

$stdout.sync = true
run App

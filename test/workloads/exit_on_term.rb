# Exits with status 0 on SIGTERM; until then its main thread sleeps and
# two threads keep a CPU busy.
Signal.trap("TERM") { exit 0 }
2.times { Thread.new { loop { 100.times.sum } } }
$stdout.puts "ready #{Process.pid}"
$stdout.flush
sleep

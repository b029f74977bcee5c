# Starts and joins short-lived threads without pause from ARGV[0] threads
# (4 by default), so new threads appear at any moment.
spawners = (ARGV[0] || 4).to_i
spawners.times do
  Thread.new { loop { Thread.new { 10.times.sum }.join } }
end
$stdout.puts "ready #{Process.pid}"
$stdout.flush
sleep

# Behaves like a threaded server for signal tests. The main thread waits
# in IO.select, as a server's accept loop does, and writes how many times
# it woke to DIR/count every 10 ms. Four threads keep a CPU busy in Ruby
# method calls, and ARGV[1] more threads (0 by default) sleep. SIGTERM
# writes DIR/term and exits with status 0. ARGV[0] is DIR.
dir = ARGV.fetch(0)
sleepers = (ARGV[1] || 0).to_i

Signal.trap("TERM") do
  File.write(File.join(dir, "term"), "term\n")
  exit 0
end

def handle(n)
  n.zero? ? 0 : 1 + handle(n - 1)
end

4.times { Thread.new { loop { handle(50) } } }
sleepers.times { Thread.new { sleep } }
reader, _writer = IO.pipe
$stdout.puts "ready #{Process.pid}"
$stdout.flush
count = 0
loop do
  IO.select([reader], nil, nil, 0.01)
  count += 1
  File.write(File.join(dir, "count.tmp"), "#{count}\n")
  File.rename(File.join(dir, "count.tmp"), File.join(dir, "count"))
end

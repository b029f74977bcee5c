# Runs a fixed amount of Ruby work each time a line arrives on stdin and
# prints the seconds it took, for measuring what sampling costs the
# target. The work is ARGV[0] calls (1800 by default) of a recursive
# Fibonacci of 20, about 22 000 method calls each, so the stack changes
# every few hundred nanoseconds. ARGV[1] threads (0 by default) sleep
# beside it, as the idle threads of a server do.
def fib(n)
  n < 2 ? n : fib(n - 1) + fib(n - 2)
end

calls = (ARGV[0] || 1800).to_i
(ARGV[1] || 0).to_i.times { Thread.new { sleep } }
$stdout.puts "ready #{Process.pid}"
$stdout.flush
while $stdin.gets
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  calls.times { fib(20) }
  $stdout.puts Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
  $stdout.flush
end

# Prints its ready line, keeps the CPU busy for ARGV[1] s (default 0.5),
# then exits with status ARGV[0].
$stdout.puts "ready #{Process.pid}"
$stdout.flush
stop = Process.clock_gettime(Process::CLOCK_MONOTONIC) + (ARGV[1] || 0.5).to_f
nil while Process.clock_gettime(Process::CLOCK_MONOTONIC) < stop
exit ARGV[0].to_i

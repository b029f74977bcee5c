# Keeps starting threads, so new threads appear at any moment. ARGV[1]
# sleeping threads (40 by default) start first: their lower thread ids
# come first in /proc, so a pauser that goes through the threads in that
# order stops the starting threads last. Then ARGV[0] threads (2 by
# default) each start a thread that sleeps for good every 5 ms, until the
# process has ARGV[2] threads (2000 by default). Ruby reuses the native
# thread of a thread that ended, so only threads that stay alive make the
# kernel create new ones.
spawners = (ARGV[0] || 2).to_i
sleepers = (ARGV[1] || 40).to_i
limit = (ARGV[2] || 2000).to_i
sleepers.times { Thread.new { sleep } }
spawners.times do
  Thread.new do
    while Thread.list.size < limit
      Thread.new { sleep }
      sleep 0.005
    end
  end
end
$stdout.puts "ready #{Process.pid}"
$stdout.flush
sleep

# Spins at the bottom of a Ruby stack of about 50 frames, for measuring
# the cost of reading one stack. ARGV[0] sets the recursion depth (45 by
# default) and ARGV[1] the number of threads that spin (1 by default):
# the main thread and ARGV[1] - 1 more.
def descend(n)
  n.zero? ? spin : descend(n - 1)
end

def spin
  loop { 200.times.sum }
end

depth = (ARGV[0] || 45).to_i
threads = (ARGV[1] || 1).to_i
(threads - 1).times { Thread.new { descend(depth) } }
$stdout.puts "ready #{Process.pid}"
$stdout.flush
descend(depth)

# Spins at the bottom of a Ruby stack of about 50 frames, for measuring
# the cost of reading one stack.
def descend(n)
  n.zero? ? spin : descend(n - 1)
end

def spin
  loop { 200.times.sum }
end

$stdout.puts "ready #{Process.pid}"
$stdout.flush
descend((ARGV[0] || 45).to_i)

# A preforking server in miniature: the parent forks WORKERS busy workers
# and then sleeps in Process.wait, as puma and unicorn masters do. When the
# file named by the second argument appears, it forks one more worker that
# runs a different method. With "spawn" as the third argument it then also
# starts a Ruby child through a shell (fork, exec of sh, exec of ruby). Prints "ready PID", then "worker PID", "late PID" or
# "spawned PID" lines as children start.
$stdout.sync = true
workers = Integer(ARGV.fetch(0, '2'))
trigger = ARGV[1]
spawn_child = ARGV[2] == 'spawn'

def spin(n)
  x = 0
  n.times { |i| x += i }
  x
end

# Workers end when the parent is gone, so a killed test leaves nothing
# spinning.
def worker_loop(parent)
  loop do
    spin(10_000)
    exit! if Process.ppid != parent
  end
end

def late_worker_loop(parent)
  loop do
    spin(10_000)
    exit! if Process.ppid != parent
  end
end

children = []
%w[TERM INT].each do |signal|
  trap(signal) do
    children.each { |pid| Process.kill(:KILL, pid) rescue nil }
    exit 0
  end
end

parent = Process.pid
puts "ready #{parent}"
workers.times do |index|
  # Like puma, each worker names itself in its process title.
  pid = fork do
    $0 = "forking worker #{index}"
    worker_loop(parent)
  end
  children << pid
  puts "worker #{pid}"
end
if trigger
  sleep 0.01 until File.exist?(trigger)
  pid = fork { late_worker_loop(parent) }
  children << pid
  puts "late #{pid}"
  if spawn_child
    code = "def spawned_loop; loop { 10_000.times { |i| i * i }; " \
           "exit! if Process.ppid != #{parent} }; end; spawned_loop"
    pid = Process.spawn('sh', '-c', "exec #{RbConfig.ruby} -e '#{code}'")
    children << pid
    puts "spawned #{pid}"
  end
end
loop { Process.wait }

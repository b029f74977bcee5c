# A preforking application whose processes, threads and stacks keep
# changing, for measuring whether a long-running profiler's memory stays
# bounded. The parent forks ARGV[0] workers (2 by default) and replaces
# each one that exits. A worker runs each job on a new Thread, in one of
# 40 methods at one of 3 call depths, and exits after ARGV[1] seconds
# (20 by default), so pids keep changing. Ruby 3.1 reuses the native
# thread of a finished Thread for the next one, so kernel thread ids
# change mostly with the workers.
$stdout.sync = true
workers = Integer(ARGV.fetch(0, '2'))
lifetime = Float(ARGV.fetch(1, '20'))

module Jobs
  40.times do |i|
    define_method(:"job_#{i}") do |depth|
      next Jobs.spin if depth.zero?

      public_send(:"job_#{i}", depth - 1)
    end
  end

  def self.spin
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 0.05
    x = 0
    x += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    x
  end
end

class Worker
  include Jobs

  def run(parent, lifetime)
    stop = Process.clock_gettime(Process::CLOCK_MONOTONIC) + lifetime
    while Process.clock_gettime(Process::CLOCK_MONOTONIC) < stop
      exit! 0 if Process.ppid != parent
      job = rand(40)
      Thread.new { public_send(:"job_#{job}", rand(3)) }.join
    end
  end
end

parent = Process.pid
%w[TERM INT].each { |signal| trap(signal) { exit 0 } }
start_worker = lambda do
  fork do
    Worker.new.run(parent, lifetime)
    exit! 0
  end
end
puts "ready #{parent}"
workers.times { start_worker.call }
loop do
  Process.wait
  start_worker.call
end

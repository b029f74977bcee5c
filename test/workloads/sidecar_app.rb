# An application for the sidecar tests that spends its CPU time in
# SidecarApp#hot_path. Options:
#   --stop-file PATH     exit once PATH exists
#   --workers N          fork N workers that do the work while the parent
#                        waits, as a preforking server does, and replace
#                        each worker that exits
#   --restart-file PATH  one worker exits when PATH appears and deletes it
# Prints "ready PID", and "worker PID" for each worker it starts.
$stdout.sync = true

class SidecarApp
  def hot_path
    x = 0
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 0.02
    x += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    x
  end

  # Works until `done` returns true, checking it every 20 ms.
  def serve(done)
    hot_path until done.call
  end
end

options = {}
args = ARGV.dup
until args.empty?
  name = args.shift
  options[name.delete_prefix('--').tr('-', '_').to_sym] = args.shift
end
stop_file = options[:stop_file]
stopped = -> { stop_file && File.exist?(stop_file) }

puts "ready #{Process.pid}"
workers = Integer(options.fetch(:workers, '0'))
if workers.zero?
  SidecarApp.new.serve(stopped)
  exit 0
end

parent = Process.pid
restart_file = options[:restart_file]
start_worker = lambda do
  pid = fork do
    leave = lambda do
      next true if Process.ppid != parent
      next false unless restart_file
      begin
        File.delete(restart_file)
        true
      rescue Errno::ENOENT
        false
      end
    end
    SidecarApp.new.serve(leave)
    exit! 0
  end
  puts "worker #{pid}"
  pid
end

%w[TERM INT].each { |signal| trap(signal) { exit 0 } }
workers.times { start_worker.call }
loop do
  break if stopped.call
  pid = Process.wait(-1, Process::WNOHANG)
  if pid
    start_worker.call
  else
    sleep 0.05
  end
end

# One named thread per way a Ruby thread waits, plus one that compresses
# without the GVL and one that resumes a fiber. The tests record with
# idle samples and check each thread's state and innermost frame.
require "zlib"

def spin_in_fiber(fiber)
  loop { fiber.resume }
end

held = Mutex.new
held.lock # the main thread keeps it, so "mutex" waits forever
queue = Queue.new
reader_pipe, _writer_pipe = IO.pipe
select_pipe, _select_writer = IO.pipe
joined = Thread.new { sleep }
data = Random.new(1).bytes(1 << 20)

threads = [
  Thread.new { Thread.current.name = "sleep"; loop { sleep 10 } },
  Thread.new { Thread.current.name = "select"; loop { IO.select([select_pipe]) } },
  Thread.new { Thread.current.name = "join"; joined.join },
  Thread.new { Thread.current.name = "queue"; queue.pop },
  Thread.new { Thread.current.name = "mutex"; held.lock },
  Thread.new { Thread.current.name = "read"; reader_pipe.read(1) },
  Thread.new { Thread.current.name = "zlib"; loop { Zlib::Deflate.deflate(data) } },
  Thread.new do
    Thread.current.name = "fiber"
    fiber = Fiber.new { loop { 2000.times.sum; Fiber.yield } }
    spin_in_fiber(fiber)
  end,
]
sleep 0.2
$stdout.puts "ready #{Process.pid}"; $stdout.flush
sleep((ARGV[0] || 3600).to_f)

# ARGV[0] threads (20 by default) besides the main thread, a third of each
# kind: spinning in Ruby, sleeping, and blocked reading an idle pipe.
count = (ARGV[0] || 20).to_i
reader, _writer = IO.pipe

def spin
  loop { 100.times.sum }
end

count.times do |i|
  case i % 3
  when 0 then Thread.new { spin }
  when 1 then Thread.new { loop { sleep 0.01 } }
  else Thread.new { reader.read(1) }
  end
end
sleep 0.2
$stdout.puts "ready #{Process.pid}"
$stdout.flush
sleep

# Two classes whose recursive methods share a name, one written as an
# endless method. Their frames change within microseconds, so a profiler
# that reads a stack while it changes gets torn frames.
class Fib
  def fib(n) = n < 2 ? n : fib(n - 1) + fib(n - 2)
end

class Fib2
  def fib(n)
    return n if n < 2

    fib(n - 1) + fib(n - 2)
  end
end

$stdout.puts "ready #{Process.pid}"
$stdout.flush
loop do
  Fib.new.fib(20)
  Fib2.new.fib(20)
end

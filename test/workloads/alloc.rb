# Allocates short-lived strings and arrays in a loop, so that a good part
# of the time goes to garbage collection.
def churn
  Array.new(2000) { |i| "item #{i}" * 3 }
end

$stdout.puts "ready #{Process.pid}"
$stdout.flush
loop { churn }

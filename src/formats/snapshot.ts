import type { Snapshot, ThreadSnapshot } from '../snapshot';
import { frameLabel } from './label';

/**
 * Formats a snapshot as text: a line about the process, then per thread a
 * header with its name, native id and state, and its frames outermost
 * first, one `name - path:line` per line:
 *
 * ```
 * Process 1234, Ruby 3.1.2, 2 threads
 *
 * Thread <unnamed> (native id 1234): blocked
 *   <main> - /app/server.rb:21
 *   Kernel#sleep - /app/server.rb:21
 *
 * Thread worker (native id 1240): running
 *   block in <main> - /app/server.rb:15
 *   Object#work - /app/server.rb:5
 * ```
 */
export function formatSnapshot(snapshot: Snapshot): string {
  const count = snapshot.threads.length;
  const lines = [
    `Process ${snapshot.pid}, Ruby ${snapshot.rubyVersion}, ${count} ${count === 1 ? 'thread' : 'threads'}`,
  ];
  for (const thread of snapshot.threads) {
    lines.push('', threadHeader(thread));
    for (const frame of thread.frames) {
      lines.push(`  ${frameLabel(frame.name, frame.path, frame.line)}`);
    }
    if (thread.error !== undefined) {
      lines.push(`  (stack not readable: ${thread.error})`);
    }
  }
  return lines.map((line) => `${line}\n`).join('');
}

function threadHeader(thread: ThreadSnapshot): string {
  const name = thread.name ?? '<unnamed>';
  const id = thread.tid > 0 ? String(thread.tid) : 'unknown';
  return `Thread ${name} (native id ${id}): ${thread.state}`;
}

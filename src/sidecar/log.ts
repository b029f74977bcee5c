// Structured logs of the sidecar: one JSON object per line on stderr, with
// repeats of the same message limited per time window.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Values of a log line besides its time, level and message. */
export type LogFields = Record<string, unknown>;

export interface LoggerOptions {
  /** Receives each line, newline included. */
  readonly write: (line: string) => void;
  /** Lines per key allowed within `windowMs`, 5 by default. */
  readonly burst?: number;
  /** The time window of `burst` in milliseconds, 60 s by default. */
  readonly windowMs?: number;
  /** Returns the current time in milliseconds since the Unix epoch. */
  readonly now?: () => number;
}

/** The state of one key: lines written in the current window, and lines
 * dropped since the last one written. */
interface KeyState {
  windowStart: number;
  written: number;
  suppressed: number;
}

/** Keys tracked at most. The oldest key is forgotten first, so a flood of
 * distinct keys costs memory up to this bound and no more. */
const MAX_KEYS = 1000;
/** Field names that a log line sets itself. */
const RESERVED = new Set(['time', 'level', 'msg', 'suppressed']);

/**
 * Writes log lines such as
 * `{"time":"2026-01-02T03:04:05.678Z","level":"info","msg":"target found","pid":12}`.
 * Each line has a key, its message unless given. Within each window, only
 * the first `burst` lines of a key are written, and the next line written
 * for that key carries `suppressed`, the number of lines dropped.
 */
export class Logger {
  readonly #write: (line: string) => void;
  readonly #burst: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #keys = new Map<string, KeyState>();

  constructor(options: LoggerOptions) {
    this.#write = options.write;
    this.#burst = options.burst ?? 5;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  info(msg: string, fields: LogFields = {}, key = msg): void {
    this.log('info', msg, fields, key);
  }

  warn(msg: string, fields: LogFields = {}, key = msg): void {
    this.log('warn', msg, fields, key);
  }

  error(msg: string, fields: LogFields = {}, key = msg): void {
    this.log('error', msg, fields, key);
  }

  log(level: LogLevel, msg: string, fields: LogFields, key: string): void {
    const now = this.#now();
    const suppressed = this.#admit(key, now);
    if (suppressed === undefined) {
      return;
    }

    const line: LogFields = {
      time: new Date(now).toISOString(),
      level,
      msg,
    };
    for (const [name, value] of Object.entries(fields)) {
      line[RESERVED.has(name) ? `field_${name}` : name] = toJsonValue(value);
    }
    if (suppressed > 0) {
      line.suppressed = suppressed;
    }
    this.#write(`${JSON.stringify(line)}\n`);
  }

  /** Counts a line of `key`. Returns undefined when the line is to be
   * dropped, else the number of lines dropped since the last one
   * written. */
  #admit(key: string, now: number): number | undefined {
    let state = this.#keys.get(key);
    if (state === undefined || now - state.windowStart >= this.#windowMs) {
      state = {
        windowStart: now,
        written: 0,
        suppressed: state?.suppressed ?? 0,
      };
    }
    // Re-inserting moves the key to the end, so the map stays ordered from
    // the least to the most recently used key.
    this.#keys.delete(key);
    this.#keys.set(key, state);
    if (this.#keys.size > MAX_KEYS) {
      const oldest = this.#keys.keys().next().value as string;
      this.#keys.delete(oldest);
    }

    if (state.written >= this.#burst) {
      state.suppressed++;
      return undefined;
    }
    state.written++;
    const suppressed = state.suppressed;
    state.suppressed = 0;
    return suppressed;
  }
}

/** Converts errors, which JSON.stringify turns into `{}`, to their
 * message, code and hint. */
function toJsonValue(value: unknown): unknown {
  if (value instanceof Error) {
    const { code, hint } = value as Error & { code?: unknown; hint?: unknown };
    return {
      message: value.message,
      ...(typeof code === 'string' ? { code } : {}),
      ...(typeof hint === 'string' ? { hint } : {}),
    };
  }
  if (typeof value === 'bigint') {
    return value.toString();
  }
  return value;
}

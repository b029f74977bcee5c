// Parsers of command-line values. Each returns the parsed value or throws
// commander's InvalidArgumentError, which commander reports with the
// option's name.

import { InvalidArgumentError } from 'commander';

export function parsePid(value: string): number {
  const pid = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(pid) || pid <= 0) {
    throw new InvalidArgumentError('Expected a positive integer.');
  }
  return pid;
}

/** Parses a rate in Hz. The core rejects rates above its maximum. */
export function parseRate(value: string): number {
  const rate = parseNumber(value);
  if (rate === undefined || rate <= 0) {
    throw new InvalidArgumentError(
      'Expected a number of samples per second above 0.',
    );
  }
  return rate;
}

export function parseDuration(value: string): number {
  const seconds = parseNumber(value);
  if (seconds === undefined || seconds <= 0) {
    throw new InvalidArgumentError('Expected a number of seconds above 0.');
  }
  return seconds;
}

export function parseTop(value: string): number {
  const rows = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(rows) || rows < 1) {
    throw new InvalidArgumentError('Expected an integer of 1 or more.');
  }
  return rows;
}

export function parseVersion(value: string): string {
  if (!/^\d+\.\d+\.\d+$/.test(value)) {
    throw new InvalidArgumentError('Expected a version such as 3.1.2.');
  }
  return value;
}

function parseNumber(value: string): number | undefined {
  const trimmed = value.trim();
  const number = Number(trimmed);
  return trimmed === '' || !Number.isFinite(number) ? undefined : number;
}

/** Parses a size in MiB, such as `512` or `0.5`. */
export function parseMegabytes(value: string): number {
  const megabytes = parseNumber(value);
  if (megabytes === undefined || megabytes <= 0) {
    throw new InvalidArgumentError('Expected a number of MiB above 0.');
  }
  return megabytes;
}

/**
 * Parses `--threads`: comma-separated thread names or kernel thread ids.
 * Each value stays a string, which matches a name or an id.
 */
export function parseThreads(value: string): string[] {
  const threads = value.split(',').map((part) => part.trim());
  if (threads.some((thread) => thread === '')) {
    throw new InvalidArgumentError(
      'Expected thread names or ids separated by commas, such as worker,1234.',
    );
  }
  return threads;
}

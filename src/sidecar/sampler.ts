// Shares samplers between requests: one recording per target and rate,
// started by the first window that needs it and stopped when the last
// one closes. Each window takes the samples of its own time span.

import {
  RbprofError,
  record,
  type Profile,
  type Recording,
  type ProcessEvent,
  type SampleBatch,
  type SamplerStats,
} from '../index';
import { isGone, type Discovery, type Target } from './discovery';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import { SampleWindow } from './window';

/** No target to sample: the reason is the message. */
export class NoTargetError extends Error {}

/** The `pid` of a request is not a target or a descendant of one. */
export class UnknownPidError extends Error {}

export interface SamplerHubOptions {
  readonly discovery: Discovery;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Milliseconds after which a recording is replaced by a new one, so
   * that its memory, which grows with the distinct stacks and threads it
   * saw, starts over. */
  readonly rotateMs: number;
}

export interface OpenOptions {
  readonly rateHz: number;
  /** Only the samples of this process, which must be a target or a
   * descendant of one. */
  readonly pid?: number;
  /** The end in `performance.now()` milliseconds, open by default. */
  readonly endMs?: number;
}

/** How long closing a window waits for the samples taken before its end
 * to arrive. A recording delivers a batch every 1.1 s or sooner: its poll
 * waits at most 1 s, then pauses 0.1 s. */
const MAX_ARRIVAL_WAIT_MS = 1500;
const NOW = () => performance.now();

/**
 * The samplers of the sidecar. Windows at the same rate share a group,
 * and a group records every current target: discovery's changes start
 * and stop recordings while windows are open.
 */
export class SamplerHub {
  readonly #options: SamplerHubOptions;
  readonly #groups = new Map<number, Group>();
  readonly #unsubscribe: () => void;
  readonly #subprocesses: SubprocessLog;

  constructor(options: SamplerHubOptions) {
    this.#options = options;
    this.#subprocesses = new SubprocessLog(options.log);
    this.#unsubscribe = options.discovery.onChange(() => this.#sync());
  }

  /**
   * Opens a window from now and starts the recordings it needs. Throws a
   * `NoTargetError` when there is nothing to sample or no target could
   * be attached, and an `UnknownPidError` for a `pid` outside the
   * targets.
   */
  async open(options: OpenOptions): Promise<SampleWindow> {
    const { discovery } = this.#options;
    let targets = discovery.targets;
    if (options.pid !== undefined) {
      const target = await discovery.targetOf(options.pid);
      if (target === undefined) {
        throw new UnknownPidError(
          `process ${options.pid} is not a Ruby target or a descendant of one`,
        );
      }
      targets = [target];
    }
    if (targets.length === 0) {
      throw new NoTargetError(discovery.problem);
    }
    const window = new SampleWindow({
      rateHz: options.rateHz,
      ...(options.pid === undefined ? {} : { pid: options.pid }),
      ...(options.endMs === undefined ? {} : { endMs: options.endMs }),
    });
    const group = this.#group(options.rateHz);
    group.windows.add(window);
    const errors = await group.start(targets);
    if (!group.serves(targets)) {
      this.#leave(group, window);
      const reason =
        errors.length > 0
          ? errors.join('; ')
          : 'every target exited while the sampler attached';
      throw new NoTargetError(reason);
    }
    group.describeTo(window);
    return window;
  }

  /**
   * Opens a window that continues `window` from `atMs`, so that together
   * they cover every sample once, for push intervals.
   */
  split(window: SampleWindow, atMs: number): SampleWindow {
    const next = new SampleWindow({
      rateHz: window.rateHz,
      startMs: atMs,
      ...(window.pid === undefined ? {} : { pid: window.pid }),
    });
    window.endMs = atMs;
    const group = this.#groups.get(window.rateHz);
    if (group !== undefined && group.windows.has(window)) {
      group.windows.add(next);
      group.describeTo(next);
    }
    return next;
  }

  /**
   * Closes a window once the samples taken before its end have arrived,
   * and returns its profile, or undefined when no recording served it.
   */
  async close(window: SampleWindow): Promise<Profile | undefined> {
    const group = this.#groups.get(window.rateHz);
    const endMs = Math.min(window.endMs, NOW());
    window.endMs = endMs;
    if (group !== undefined && group.windows.has(window)) {
      await group.arrivalsAfter(endMs, MAX_ARRIVAL_WAIT_MS);
      this.#leave(group, window);
    }
    return window.close(endMs);
  }

  /** Drops a window without its profile, as when its client left. */
  cancel(window: SampleWindow): void {
    const group = this.#groups.get(window.rateHz);
    if (group !== undefined) {
      this.#leave(group, window);
    }
    window.close(NOW());
  }

  /** Stops every recording. */
  async stop(): Promise<void> {
    this.#unsubscribe();
    const groups = [...this.#groups.values()];
    this.#groups.clear();
    await Promise.all(groups.map((group) => group.stop()));
  }

  #group(rateHz: number): Group {
    let group = this.#groups.get(rateHz);
    if (group === undefined) {
      group = new Group(rateHz, this.#options, this.#subprocesses);
      this.#groups.set(rateHz, group);
    }
    return group;
  }

  #leave(group: Group, window: SampleWindow): void {
    group.windows.delete(window);
    if (group.windows.size === 0 && this.#groups.get(group.rateHz) === group) {
      this.#groups.delete(group.rateHz);
      void group.stop();
    }
  }

  /** Starts recordings of new targets and stops those of lost targets in
   * every group with windows. A lost target's recording may still run,
   * because with subprocesses it ends only when the last of its
   * processes exits, and its workers may now be targets of their own. */
  #sync(): void {
    const targets = this.#options.discovery.targets;
    for (const group of this.#groups.values()) {
      group.retain(targets);
      void group.start(targets).then(() => {
        for (const window of group.windows) {
          group.describeTo(window);
        }
      });
    }
  }
}

/** The windows and recordings at one rate. */
class Group {
  readonly windows = new Set<SampleWindow>();
  readonly #samplers = new Map<string, TargetSampler>();
  readonly #arrivalWaiters = new Set<() => void>();
  #stopped = false;

  constructor(
    readonly rateHz: number,
    private readonly options: SamplerHubOptions,
    readonly subprocesses: SubprocessLog,
  ) {}

  /** Starts recording each target that is not recorded yet, and waits
   * for the attaches in progress. Returns the reasons of the targets that
   * could not be attached. */
  async start(targets: readonly Target[]): Promise<string[]> {
    const errors: string[] = [];
    await Promise.all(
      targets.map(async (target) => {
        if (this.#stopped) {
          return;
        }
        let sampler = this.#samplers.get(target.key);
        if (sampler === undefined) {
          sampler = new TargetSampler(target, this);
          this.#samplers.set(target.key, sampler);
          sampler.start();
        }
        const error = await sampler.started;
        if (error !== undefined) {
          if (this.#samplers.get(target.key) === sampler) {
            this.#samplers.delete(target.key);
          }
          errors.push(error);
        }
      }),
    );
    return errors;
  }

  /** Stops the recordings of targets that are not in `targets`. */
  retain(targets: readonly Target[]): void {
    const keys = new Set(targets.map((target) => target.key));
    for (const [key, sampler] of this.#samplers) {
      if (!keys.has(key)) {
        this.#samplers.delete(key);
        void sampler.stop();
      }
    }
    this.notifyArrival();
  }

  /** Returns whether a recording of one of `targets` runs. */
  serves(targets: readonly Target[]): boolean {
    return targets.some(
      (target) => this.#samplers.get(target.key)?.running === true,
    );
  }

  /** Tells a window the target of a running recording, so that even a
   * window without samples has a profile. */
  describeTo(window: SampleWindow): void {
    for (const sampler of this.#samplers.values()) {
      const info = sampler.targetInfo;
      if (info !== undefined) {
        window.noteTarget(info);
        return;
      }
    }
  }

  /** Resolves once every running recording delivered a batch after
   * `timeMs`, or after `maxWaitMs`. */
  arrivalsAfter(timeMs: number, maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const samplers = this.#samplers;
      const waiters = this.#arrivalWaiters;
      const timer = setTimeout(done, maxWaitMs);
      function check(): void {
        const waiting = [...samplers.values()].some(
          (sampler) => sampler.running && sampler.lastArrivalMs < timeMs,
        );
        if (!waiting) {
          done();
        }
      }
      function done(): void {
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      }
      waiters.add(check);
      check();
    });
  }

  /** Called by a sampler after it delivered a batch. */
  notifyArrival(): void {
    for (const check of [...this.#arrivalWaiters]) {
      check();
    }
  }

  /** Called by a sampler whose recording ended without `stop()`. */
  ended(sampler: TargetSampler, error?: unknown): void {
    if (this.#samplers.get(sampler.target.key) === sampler) {
      this.#samplers.delete(sampler.target.key);
    }
    this.notifyArrival();
    const { discovery } = this.options;
    if (error !== undefined) {
      discovery.reportFailure(sampler.target, error);
    }
    void discovery.rescan();
  }

  get hub(): SamplerHubOptions {
    return this.options;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const samplers = [...this.#samplers.values()];
    this.#samplers.clear();
    this.notifyArrival();
    await Promise.all(samplers.map((sampler) => sampler.stop()));
  }
}

/** One recording of a sampler, and the part of time it covers. */
interface Generation {
  readonly recording: Recording;
  /** `performance.now()` at the sampler's time 0, estimated from below:
   * the smallest arrival time minus sample time seen so far. */
  originMs: number;
  validFromMs: number;
  validUntilMs: number;
  lastStats: SamplerStats;
  /** True once this generation was stopped on purpose. */
  retired: boolean;
}

/** The sampling of one target at one rate: a recording, replaced by a new
 * one every `rotateMs`. */
class TargetSampler {
  lastArrivalMs = -Infinity;
  #current: Generation | undefined;
  #rotateTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    readonly target: Target,
    private readonly group: Group,
  ) {}

  get running(): boolean {
    return this.#current !== undefined && !this.#stopped;
  }

  get targetInfo(): Recording['target'] | undefined {
    return this.#current?.recording.target;
  }

  /** Resolves once the first attach is done, with the reason when it
   * failed. */
  started: Promise<string | undefined> = Promise.resolve(undefined);

  start(): void {
    this.started = this.#start();
  }

  async #start(): Promise<string | undefined> {
    const { log, metrics, discovery } = this.group.hub;
    try {
      this.#current = await this.#attach();
    } catch (error) {
      const code = error instanceof RbprofError ? error.code : 'unknown';
      metrics.attachFailures.add({ code }, 1);
      log.error(
        'cannot attach to target',
        { pid: this.target.pid, rateHz: this.group.rateHz, error },
        `cannot attach to target ${code}`,
      );
      if (!isGone(code)) {
        discovery.reportFailure(this.target, error);
      }
      void discovery.rescan();
      const hint = error instanceof RbprofError ? error.hint : undefined;
      const message = (error as Error).message;
      return `process ${this.target.pid}: ${message}${hint === undefined ? '' : `. ${hint}`}`;
    }
    if (this.#stopped) {
      await this.#retire(this.#current);
      return undefined;
    }
    metrics.recordings.add({}, 1);
    // Lifecycle lines are limited per pid, so that a restarted app's
    // lines are not lost to the limit of its predecessor's.
    log.info(
      'recording started',
      { pid: this.target.pid, rateHz: this.group.rateHz },
      `recording started ${this.target.pid}`,
    );
    this.#scheduleRotation();
    return undefined;
  }

  async stop(): Promise<void> {
    if (this.#stopped) {
      return;
    }
    this.#stopped = true;
    clearTimeout(this.#rotateTimer);
    const current = this.#current;
    if (current !== undefined) {
      this.group.hub.metrics.recordings.add({}, -1);
      await this.#retire(current);
    }
  }

  async #attach(): Promise<Generation> {
    const recording = await record({
      pid: this.target.pid,
      rateHz: this.group.rateHz,
      subprocesses: true,
    });
    // Subscribing in the same turn as the start misses no batch.
    const batches = recording.samples();
    const generation: Generation = {
      recording,
      originMs: NOW(),
      validFromMs: -Infinity,
      validUntilMs: Infinity,
      lastStats: { taken: 0, late: 0, failed: 0, threadSamples: 0 },
      retired: false,
    };
    void this.#pump(generation, batches);
    return generation;
  }

  async #pump(
    generation: Generation,
    batches: AsyncIterableIterator<SampleBatch>,
  ): Promise<void> {
    const { metrics } = this.group.hub;
    try {
      for await (const batch of batches) {
        this.#deliver(generation, batch);
      }
    } catch {
      // `done` rejects with the same error, handled below.
    }
    let error: unknown;
    let reason: string;
    try {
      reason = (await generation.recording.done).end?.reason ?? 'stopped';
    } catch (failure) {
      error = failure;
      reason = 'failed';
    }
    if (generation.retired) {
      return;
    }
    if (generation === this.#current && !this.#stopped) {
      this.#stopped = true;
      clearTimeout(this.#rotateTimer);
      metrics.recordings.add({}, -1);
      const { log } = this.group.hub;
      const fields = { pid: this.target.pid, rateHz: this.group.rateHz };
      if (error === undefined) {
        log.info(
          'recording ended',
          { ...fields, reason },
          `recording ended ${fields.pid}`,
        );
      } else {
        log.error('recording failed', { ...fields, error });
      }
      this.group.ended(this, error);
    }
  }

  #deliver(generation: Generation, batch: SampleBatch): void {
    const arrivalMs = NOW();
    const { samples } = batch;
    if (samples.length > 0) {
      const lastNs = samples[samples.length - 1].timeNs;
      generation.originMs = Math.min(
        generation.originMs,
        arrivalMs - lastNs / 1e6,
      );
    }
    const timesMs = new Float64Array(samples.length);
    for (let i = 0; i < samples.length; i++) {
      timesMs[i] = generation.originMs + samples[i].timeNs / 1e6;
    }
    this.group.subprocesses.add(this.target.pid, batch.processes);
    const delta = subtractStats(batch.stats, generation.lastStats);
    generation.lastStats = batch.stats;
    const { metrics } = this.group.hub;
    metrics.samplesTaken.add({}, delta.taken);
    metrics.samplesLate.add({}, delta.late);
    metrics.samplesFailed.add({}, delta.failed);
    metrics.threadSamples.add({}, delta.threadSamples);

    const target = generation.recording.target;
    for (const window of this.group.windows) {
      window.add(
        target,
        samples,
        timesMs,
        generation.validFromMs,
        generation.validUntilMs,
      );
      window.addStats(delta);
    }
    if (generation === this.#current) {
      this.lastArrivalMs = arrivalMs;
    }
    this.group.notifyArrival();
  }

  #scheduleRotation(): void {
    const { rotateMs } = this.group.hub;
    this.#rotateTimer = setTimeout(() => void this.#rotate(), rotateMs);
  }

  /** Replaces the recording by a new one. The old one covers the
   * samples before the switch and the new one those after, so a
   * window that spans the switch counts each tick once, give or take the
   * tick at the switch. */
  async #rotate(): Promise<void> {
    const old = this.#current;
    if (old === undefined || this.#stopped) {
      return;
    }
    let next: Generation;
    try {
      next = await this.#attach();
    } catch (error) {
      // The process is likely exiting, which the old recording reports.
      this.group.hub.log.warn('cannot restart recording', {
        pid: this.target.pid,
        error,
      });
      this.#scheduleRotation();
      return;
    }
    if (this.#stopped || this.#current !== old) {
      await this.#retire(next);
      return;
    }
    const switchMs = NOW();
    old.validUntilMs = switchMs;
    next.validFromMs = switchMs;
    this.#current = next;
    this.lastArrivalMs = -Infinity;
    this.#scheduleRotation();
    // The last batch, with the samples up to the stop, reaches the
    // windows before `stop()` resolves.
    await this.#retire(old);
    this.group.hub.log.info('recording restarted', {
      pid: this.target.pid,
      rateHz: this.group.rateHz,
    });
  }

  async #retire(generation: Generation): Promise<void> {
    generation.retired = true;
    try {
      await generation.recording.stop();
    } catch {
      // A failure at the stop loses nothing that a window still needs.
    }
  }
}

/** The maximum number of subprocesses remembered for the log; the list
 * is cleared when it is full. */
const MAX_SUBPROCESSES = 10_000;

/**
 * Logs each subprocess that the recordings follow once when it starts and
 * once when it exits, although each new recording of a target reports the
 * subprocesses that run at its start again.
 */
class SubprocessLog {
  /** The target pid of each subprocess followed, by its pid. */
  readonly #known = new Map<number, number>();

  constructor(private readonly log: Logger) {}

  add(targetPid: number, events: readonly ProcessEvent[]): void {
    for (const event of events) {
      if (event.pid === targetPid) {
        continue;
      }
      const fields = {
        pid: event.pid,
        parentPid: event.parentPid,
        targetPid,
      };
      if (event.kind === 'attached') {
        if (this.#known.get(event.pid) === targetPid) {
          continue;
        }
        if (this.#known.size >= MAX_SUBPROCESSES) {
          this.#known.clear();
        }
        this.#known.set(event.pid, targetPid);
        this.log.info(
          'subprocess attached',
          fields,
          `subprocess attached ${event.pid}`,
        );
      } else if (this.#known.delete(event.pid)) {
        this.log.info(
          'subprocess exited',
          fields,
          `subprocess exited ${event.pid}`,
        );
      }
    }
  }
}

function subtractStats(now: SamplerStats, before: SamplerStats): SamplerStats {
  return {
    taken: Math.max(0, now.taken - before.taken),
    late: Math.max(0, now.late - before.late),
    failed: Math.max(0, now.failed - before.failed),
    threadSamples: Math.max(0, now.threadSamples - before.threadSamples),
  };
}

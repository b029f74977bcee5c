// The sidecar's metrics, served at /metrics in the Prometheus text
// exposition format (version 0.0.4).

type MetricType = 'counter' | 'gauge';

/** Label values by label name. */
export type Labels = Record<string, string>;

/** One metric family: its help text, type and a value per label set. */
class Family {
  readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    /** True when every value has labels, so no value means no series. */
    readonly labeled: boolean,
    /** Computes the value when rendered, for gauges read elsewhere. */
    readonly collect?: () => number,
  ) {}

  add(labels: Labels, amount: number): void {
    const key = labelText(labels);
    const entry = this.values.get(key);
    if (entry === undefined) {
      this.values.set(key, { labels, value: amount });
    } else {
      entry.value += amount;
    }
  }

  set(labels: Labels, value: number): void {
    this.values.set(labelText(labels), { labels, value });
  }
}

/** The counter and gauge values of the sidecar. Label values come from
 * fixed sets (endpoints, status codes, results), so the number of series
 * stays bounded. */
export class Metrics {
  readonly #families = new Map<string, Family>();

  readonly samplesTaken = this.#define(
    'rbprof_sidecar_samples_taken_total',
    'Ticks at which a sampler read a target: one read of every thread.',
    'counter',
  );
  readonly samplesLate = this.#define(
    'rbprof_sidecar_samples_late_total',
    'Ticks that ran more than one sampling period late, or were skipped.',
    'counter',
  );
  readonly samplesFailed = this.#define(
    'rbprof_sidecar_samples_failed_total',
    "Ticks at which at least one thread's stack could not be read.",
    'counter',
  );
  readonly threadSamples = this.#define(
    'rbprof_sidecar_thread_samples_total',
    'Stacks recorded: one per thread on a CPU per tick.',
    'counter',
  );
  readonly targets = this.#define(
    'rbprof_sidecar_targets',
    'Ruby processes found to profile: roots of Ruby process trees.',
    'gauge',
  );
  readonly recordings = this.#define(
    'rbprof_sidecar_recordings',
    'Samplers running, one per target and sampling rate in use.',
    'gauge',
  );
  readonly attachFailures = this.#define(
    'rbprof_sidecar_attach_failures_total',
    'Failed attempts to start sampling a target, by error code.',
    'counter',
    { labeled: true },
  );
  readonly requests = this.#define(
    'rbprof_sidecar_http_requests_total',
    'HTTP requests answered, by endpoint and status code.',
    'counter',
    { labeled: true },
  );
  readonly requestsCanceled = this.#define(
    'rbprof_sidecar_profile_requests_canceled_total',
    'Profile requests whose client disconnected before the profile was sent.',
    'counter',
  );
  readonly profileRequestsInFlight = this.#define(
    'rbprof_sidecar_profile_requests_in_flight',
    'Profile requests being sampled.',
    'gauge',
  );
  readonly pushes = this.#define(
    'rbprof_sidecar_pushes_total',
    'Profiles sent to the push URL, by result (ok or failed).',
    'counter',
    { labeled: true },
  );

  constructor() {
    this.#define(
      'process_resident_memory_bytes',
      'Resident set size of the sidecar process, in bytes.',
      'gauge',
      { collect: () => process.memoryUsage.rss() },
    );
    this.#define(
      'nodejs_heap_size_used_bytes',
      'Bytes of the JavaScript heap in use.',
      'gauge',
      { collect: () => process.memoryUsage().heapUsed },
    );
  }

  /** Renders every family in the text exposition format. */
  render(): string {
    let text = '';
    for (const family of this.#families.values()) {
      text += `# HELP ${family.name} ${escapeHelp(family.help)}\n`;
      text += `# TYPE ${family.name} ${family.type}\n`;
      if (family.collect !== undefined) {
        text += `${family.name} ${formatValue(family.collect())}\n`;
        continue;
      }
      if (family.values.size === 0 && !family.labeled) {
        text += `${family.name} 0\n`;
      }
      for (const [labels, { value }] of family.values) {
        text += `${family.name}${labels} ${formatValue(value)}\n`;
      }
    }
    return text;
  }

  #define(
    name: string,
    help: string,
    type: MetricType,
    options: { labeled?: boolean; collect?: () => number } = {},
  ): Family {
    const family = new Family(
      name,
      help,
      type,
      options.labeled ?? false,
      options.collect,
    );
    this.#families.set(name, family);
    return family;
  }
}

/** Returns `{a="1",b="2"}`, or the empty string for no labels. */
function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([name, value]) => `${name}="${escapeLabelValue(value)}"`,
  );
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function escapeLabelValue(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/\n/g, '\\n')
    .replace(/"/g, '\\"');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) {
    return 'NaN';
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? '+Inf' : '-Inf';
  }
  return String(value);
}

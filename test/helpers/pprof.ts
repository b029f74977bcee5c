// A reader of the parts of pprof's profile.proto that rbprof writes, so
// tests can check a profile without other tools. Field numbers are those
// of github.com/google/pprof/proto/profile.proto.

import { gunzipSync } from 'node:zlib';

/** One sample with its stack as function names, leaf first. */
export interface DecodedSample {
  readonly functions: string[];
  readonly values: number[];
  /** Labels by key: strings for `str` labels, numbers for `num` ones. */
  readonly labels: Record<string, string | number>;
}

export interface DecodedProfile {
  readonly sampleTypes: Array<{ type: string; unit: string }>;
  readonly samples: DecodedSample[];
  readonly periodType: { type: string; unit: string };
  readonly period: number;
  readonly durationNanos: number;
  readonly timeNanos: number;
}

/** Reads varints and length-delimited fields of a protobuf message. */
class Reader {
  #offset = 0;

  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.#offset >= this.bytes.length;
  }

  varint(): number {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.#offset >= this.bytes.length) {
        throw new Error('protobuf varint runs past the end');
      }
      const byte = this.bytes[this.#offset++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) {
        return Number(BigInt.asIntN(64, result));
      }
      shift += 7n;
    }
  }

  bytesField(): Uint8Array {
    const length = this.varint();
    const start = this.#offset;
    this.#offset += length;
    if (this.#offset > this.bytes.length) {
      throw new Error('protobuf field runs past the end');
    }
    return this.bytes.subarray(start, this.#offset);
  }

  /** Yields each field's number and its value: a number for varints, the
   * bytes for length-delimited fields. */
  *fields(): IterableIterator<[number, number | Uint8Array]> {
    while (!this.done) {
      const key = this.varint();
      const field = key >>> 3;
      const wireType = key & 7;
      if (wireType === 0) {
        yield [field, this.varint()];
      } else if (wireType === 2) {
        yield [field, this.bytesField()];
      } else {
        throw new Error(`unexpected wire type ${wireType} of field ${field}`);
      }
    }
  }
}

/** Returns the numbers of a repeated field, packed or not. */
function numbers(value: number | Uint8Array): number[] {
  if (typeof value === 'number') {
    return [value];
  }
  const reader = new Reader(value);
  const result: number[] = [];
  while (!reader.done) {
    result.push(reader.varint());
  }
  return result;
}

function message(value: number | Uint8Array): Reader {
  if (typeof value === 'number') {
    throw new Error('expected a message, found a varint');
  }
  return new Reader(value);
}

/** Decodes a gzipped profile.proto, as `rbprof sidecar` serves it. */
export function decodePprof(gzipped: Uint8Array): DecodedProfile {
  const reader = new Reader(gunzipSync(gzipped));
  const strings: string[] = [];
  const rawSampleTypes: Array<[number, number]> = [];
  const rawSamples: Array<{
    locations: number[];
    values: number[];
    labels: Array<{ key: number; str: number; num: number }>;
  }> = [];
  const locationFunctions = new Map<number, number>();
  const functionNames = new Map<number, number>();
  let periodType: [number, number] = [0, 0];
  let period = 0;
  let durationNanos = 0;
  let timeNanos = 0;

  const valueType = (value: number | Uint8Array): [number, number] => {
    let type = 0;
    let unit = 0;
    for (const [field, inner] of message(value).fields()) {
      if (field === 1) type = inner as number;
      if (field === 2) unit = inner as number;
    }
    return [type, unit];
  };

  for (const [field, value] of reader.fields()) {
    switch (field) {
      case 1:
        rawSampleTypes.push(valueType(value));
        break;
      case 2: {
        const sample = {
          locations: [] as number[],
          values: [] as number[],
          labels: [] as Array<{ key: number; str: number; num: number }>,
        };
        for (const [inner, data] of message(value).fields()) {
          if (inner === 1) sample.locations.push(...numbers(data));
          if (inner === 2) sample.values.push(...numbers(data));
          if (inner === 3) {
            const label = { key: 0, str: 0, num: 0 };
            for (const [part, v] of message(data).fields()) {
              if (part === 1) label.key = v as number;
              if (part === 2) label.str = v as number;
              if (part === 3) label.num = v as number;
            }
            sample.labels.push(label);
          }
        }
        rawSamples.push(sample);
        break;
      }
      case 4: {
        let id = 0;
        let functionId = 0;
        for (const [inner, data] of message(value).fields()) {
          if (inner === 1) id = data as number;
          if (inner === 4) {
            for (const [part, v] of message(data).fields()) {
              if (part === 1) functionId = v as number;
            }
          }
        }
        locationFunctions.set(id, functionId);
        break;
      }
      case 5: {
        let id = 0;
        let name = 0;
        for (const [inner, data] of message(value).fields()) {
          if (inner === 1) id = data as number;
          if (inner === 2) name = data as number;
        }
        functionNames.set(id, name);
        break;
      }
      case 6:
        strings.push(Buffer.from(value as Uint8Array).toString('utf8'));
        break;
      case 9:
        timeNanos = value as number;
        break;
      case 10:
        durationNanos = value as number;
        break;
      case 11:
        periodType = valueType(value);
        break;
      case 12:
        period = value as number;
        break;
      default:
        break;
    }
  }

  const text = (index: number) => strings[index] ?? `<string ${index}>`;
  return {
    sampleTypes: rawSampleTypes.map(([type, unit]) => ({
      type: text(type),
      unit: text(unit),
    })),
    samples: rawSamples.map((sample) => ({
      functions: sample.locations.map((location) =>
        text(functionNames.get(locationFunctions.get(location) ?? 0) ?? 0),
      ),
      values: sample.values,
      labels: Object.fromEntries(
        sample.labels.map((label) => [
          text(label.key),
          label.str !== 0 ? text(label.str) : label.num,
        ]),
      ),
    })),
    periodType: { type: text(periodType[0]), unit: text(periodType[1]) },
    period,
    durationNanos,
    timeNanos,
  };
}

/** Sums the first value (`samples/count`) of the samples that `keep`
 * selects. */
export function countSamples(
  profile: DecodedProfile,
  keep: (sample: DecodedSample) => boolean = () => true,
): number {
  return profile.samples
    .filter(keep)
    .reduce((sum, sample) => sum + sample.values[0], 0);
}

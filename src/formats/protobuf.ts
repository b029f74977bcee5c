// A writer of the protocol buffers wire format, enough for profile.proto:
// varints, packed varints and length-delimited fields.
// https://protobuf.dev/programming-guides/encoding/

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

const UTF8 = new TextEncoder();

/**
 * Appends fields to a growing buffer. Scalar fields with the default value
 * (0, false, the empty string) are left out, as proto3 encoders do; the
 * `repeated` writers always write.
 */
export class ProtoWriter {
  #bytes = new Uint8Array(256);
  #length = 0;

  /** Writes a uint64 or non-negative int64 field; skips 0. */
  uint64(field: number, value: number | bigint): this {
    if (value === 0 || value === 0n) {
      return this;
    }
    this.#tag(field, WIRE_VARINT);
    this.#varint(value);
    return this;
  }

  /** Writes an int64 field, negative values as ten-byte two's complement;
   * skips 0. */
  int64(field: number, value: number | bigint): this {
    if (value === 0 || value === 0n) {
      return this;
    }
    this.#tag(field, WIRE_VARINT);
    this.#varint(BigInt.asUintN(64, BigInt(value)));
    return this;
  }

  /** Writes a bool field; skips false. */
  bool(field: number, value: boolean): this {
    return this.uint64(field, value ? 1 : 0);
  }

  /** Writes one element of a `repeated string` field, even if empty. */
  repeatedString(field: number, value: string): this {
    const bytes = UTF8.encode(value);
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(bytes.length);
    this.#append(bytes);
    return this;
  }

  /** Writes a packed `repeated uint64` or `repeated int64` field of
   * non-negative values; skips an empty list. */
  packed(field: number, values: ReadonlyArray<number | bigint>): this {
    if (values.length === 0) {
      return this;
    }
    const body = new ProtoWriter();
    for (const value of values) {
      body.#varint(value);
    }
    return this.message(field, body);
  }

  /** Writes an embedded message (or one element of a repeated one), even
   * if it is empty. */
  message(field: number, body: ProtoWriter): this {
    this.#tag(field, WIRE_LENGTH_DELIMITED);
    this.#varint(body.#length);
    this.#append(body.#bytes.subarray(0, body.#length));
    return this;
  }

  /** Returns the bytes written so far. */
  finish(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }

  #tag(field: number, wireType: number): void {
    this.#varint(field * 8 + wireType);
  }

  /** Writes a base-128 varint, low 7 bits first. */
  #varint(value: number | bigint): void {
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new RangeError(
          `varint value ${value} is not a non-negative safe integer`,
        );
      }
      // Numbers stay exact only below 2^53, so the shifts use division.
      while (value >= 0x80) {
        this.#byte((value % 0x80) | 0x80);
        value = Math.floor(value / 0x80);
      }
      this.#byte(value);
      return;
    }
    if (value < 0n || value >= 1n << 64n) {
      throw new RangeError(`varint value ${value} is outside uint64`);
    }
    while (value >= 0x80n) {
      this.#byte(Number(value & 0x7fn) | 0x80);
      value >>= 7n;
    }
    this.#byte(Number(value));
  }

  #byte(value: number): void {
    this.#reserve(1);
    this.#bytes[this.#length++] = value;
  }

  #append(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#bytes.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  #reserve(extra: number): void {
    if (this.#length + extra <= this.#bytes.length) {
      return;
    }
    let capacity = this.#bytes.length * 2;
    while (capacity < this.#length + extra) {
      capacity *= 2;
    }
    const grown = new Uint8Array(capacity);
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }
}

/**
 * Reader and writer of the safetensors format (https://huggingface.co/docs/safetensors):
 *   u64 little-endian N | N bytes of JSON header | data buffer
 * where the header maps tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to
 * the data buffer) plus an optional "__metadata__" string map.
 *
 * Checkpoints are large (Mixtral is ~93 GB), so opening a file reads only its header, and reads fetch
 * exactly the requested byte range with positioned reads; no file descriptor stays open between calls
 * (a WeightStore has no close(), and shard counts can exceed fd limits).
 *
 * Header validation is strict, as in the reference Rust implementation: sane length, JSON object,
 * well-formed entries, byte size = product(shape) * element size, and the entries tile the data buffer
 * exactly (no overlap, no holes, nothing trailing) so a file cannot smuggle unindexed bytes.
 *
 * One codec (reader, validator and writer of one format), so it is kept whole past the 400-line guideline.
 */

/* eslint-disable max-lines -- one codec (see above) */

import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './float16.js';
import { ModelError, RackemuError } from '../util/errors.js';

/** Dtypes rackemu reads and writes; the others of the spec are recognised (so headers validate) but rejected on use. */
export type SafetensorsDtype = 'F32' | 'BF16' | 'F16';
export const SUPPORTED_SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = ['F32', 'BF16', 'F16'];

/** Element widths in bits of every dtype the safetensors spec defines. */
const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  F64: 64,
  I64: 64,
  U64: 64,
  C64: 64,
};

/** The spec caps headers at 100 MB; a larger length is corruption, not a header. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensorInfo {
  readonly name: string;
  /** As written in the header; may be a spec dtype rackemu does not support. */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Byte offsets relative to the start of the data buffer. */
  readonly begin: number;
  readonly end: number;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

export function isSupportedDtype(dtype: string): dtype is SafetensorsDtype {
  return (SUPPORTED_SAFETENSORS_DTYPES as readonly string[]).includes(dtype);
}

function headerError(file: string, message: string, path?: string, expected?: string, got?: string): ModelError {
  return new ModelError('RACKEMU_ERR_SAFETENSORS_HEADER', `${file}: ${message}`, {
    details: { file, path, expected, got },
  });
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Fill `target` from `position`, looping over short reads; running out of file means it changed or lied. */
function readExactly(fd: number, file: string, target: Uint8Array, position: number): void {
  let done = 0;
  while (done < target.length) {
    const n = readSync(fd, target, done, target.length - done, position + done);
    if (n === 0)
      throw headerError(file, `file ended at byte ${position + done}, expected ${position + target.length} bytes`);
    done += n;
  }
}

function withFd<T>(file: string, fn: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new ModelError('RACKEMU_ERR_SAFETENSORS_HEADER', `${file}: cannot be read (${(e as Error).message})`, {
      details: { file },
      cause: e,
    });
  }
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

export class SafetensorsFile {
  private constructor(
    readonly file: string,
    /** Absolute file offset of the data buffer (8 + header length). */
    readonly dataStart: number,
    readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>,
    readonly metadata: Readonly<Record<string, string>> | null,
  ) {}

  /** Read and validate the header only. */
  static open(file: string): SafetensorsFile {
    return withFd(file, (fd) => {
      const size = fstatSync(fd).size;
      if (size < 8) throw headerError(file, `file is ${size} bytes, too short for the 8-byte header length`);
      const lenBytes = new Uint8Array(8);
      readExactly(fd, file, lenBytes, 0);
      const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
      if (headerLen < 2n || headerLen > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
        throw headerError(
          file,
          `header length ${headerLen} is not within [2, ${Math.min(MAX_HEADER_BYTES, size - 8)}] (file is ${size} bytes)`,
          undefined,
          `2..${Math.min(MAX_HEADER_BYTES, size - 8)}`,
          String(headerLen),
        );
      }
      const n = Number(headerLen);
      const headerBytes = new Uint8Array(n);
      readExactly(fd, file, headerBytes, 8);
      const dataStart = 8 + n;
      const { tensors, metadata } = parseHeader(file, headerBytes, size - dataStart);
      return new SafetensorsFile(file, dataStart, tensors, metadata);
    });
  }

  info(name: string): SafetensorsTensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) {
      throw new ModelError('RACKEMU_ERR_SAFETENSORS_MISSING', `${this.file}: no tensor ${name}`, {
        details: { file: this.file, path: name },
      });
    }
    return t;
  }

  /** Elements [start, start+count) of a tensor in row-major order, widened exactly to float32. */
  read(name: string, start: number, count: number): Float32Array {
    const t = this.info(name);
    const dtype = t.dtype;
    if (!isSupportedDtype(dtype)) throw unsupportedDtype(this.file, t);
    const total = elementCount(t.shape);
    if (
      !Number.isSafeInteger(start) ||
      !Number.isSafeInteger(count) ||
      start < 0 ||
      count < 0 ||
      start + count > total
    ) {
      throw new RangeError(`${this.file}: ${name} has ${total} elements, cannot read [${start}, ${start + count})`);
    }
    const width = DTYPE_BITS[dtype] / 8;
    const position = this.dataStart + t.begin + start * width;
    return withFd(this.file, (fd) => {
      if (dtype === 'F32') {
        const out = new Float32Array(count);
        const bytes = new Uint8Array(out.buffer);
        readExactly(fd, this.file, bytes, position);
        if (!LITTLE_ENDIAN_HOST) Buffer.from(out.buffer).swap32();
        return out;
      }
      const raw = new Uint16Array(count);
      readExactly(fd, this.file, new Uint8Array(raw.buffer), position);
      if (!LITTLE_ENDIAN_HOST) Buffer.from(raw.buffer).swap16();
      return dtype === 'BF16' ? decodeBf16(raw) : decodeF16(raw);
    });
  }

  /**
   * Columns [c0, c1) of rows [r0, r1) of a tensor viewed as [rows, rowLength], row-major, as float32:
   * one positioned read per row through a single descriptor, one decode at the end.
   */
  readColumns(name: string, rowLength: number, r0: number, r1: number, c0: number, c1: number): Float32Array {
    const t = this.info(name);
    const dtype = t.dtype;
    if (!isSupportedDtype(dtype)) throw unsupportedDtype(this.file, t);
    const total = elementCount(t.shape);
    if (
      rowLength <= 0 ||
      total % rowLength !== 0 ||
      r0 < 0 ||
      r1 < r0 ||
      r1 * rowLength > total ||
      c0 < 0 ||
      c1 < c0 ||
      c1 > rowLength
    ) {
      throw new RangeError(
        `${this.file}: ${name} cannot read rows [${r0}, ${r1}) x cols [${c0}, ${c1}) of rows of ${rowLength}`,
      );
    }
    const width = DTYPE_BITS[dtype] / 8;
    const n = (r1 - r0) * (c1 - c0);
    const bytes = new Uint8Array(n * width);
    const rowBytes = (c1 - c0) * width;
    if (rowBytes > 0) {
      withFd(this.file, (fd) => {
        for (let r = r0; r < r1; r++) {
          const position = this.dataStart + t.begin + (r * rowLength + c0) * width;
          readExactly(fd, this.file, bytes.subarray((r - r0) * rowBytes, (r - r0 + 1) * rowBytes), position);
        }
      });
    }
    if (!LITTLE_ENDIAN_HOST) {
      const b = Buffer.from(bytes.buffer);
      if (width === 4) b.swap32();
      else b.swap16();
    }
    if (dtype === 'F32') return new Float32Array(bytes.buffer);
    const raw = new Uint16Array(bytes.buffer);
    return dtype === 'BF16' ? decodeBf16(raw) : decodeF16(raw);
  }

  /** The whole tensor as float32. */
  readAll(name: string): Float32Array {
    return this.read(name, 0, elementCount(this.info(name).shape));
  }
}

export function unsupportedDtype(file: string, t: SafetensorsTensorInfo): ModelError {
  return new ModelError(
    'RACKEMU_ERR_SAFETENSORS_DTYPE',
    `${file}: tensor ${t.name} has dtype ${t.dtype}; rackemu reads ${SUPPORTED_SAFETENSORS_DTYPES.join(', ')}`,
    { details: { file, path: t.name, expected: SUPPORTED_SAFETENSORS_DTYPES.join('|'), got: t.dtype } },
  );
}

function parseHeader(
  file: string,
  bytes: Uint8Array,
  dataSize: number,
): { tensors: Map<string, SafetensorsTensorInfo>; metadata: Record<string, string> | null } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw headerError(file, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw headerError(file, 'header is not a JSON object', undefined, 'object', show(json));
  }
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, entry);
      continue;
    }
    tensors.set(name, parseEntry(file, name, entry, dataSize));
  }
  // The entries must tile [0, dataSize) exactly.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: string | null = null;
  for (const t of sorted) {
    if (t.begin < cursor) {
      throw headerError(
        file,
        `tensor ${t.name} bytes [${t.begin}, ${t.end}) overlap tensor ${previous}`,
        t.name,
        `begin >= ${cursor}`,
        String(t.begin),
      );
    }
    if (t.begin > cursor) {
      throw headerError(
        file,
        `tensor ${t.name} starts at ${t.begin}, leaving a hole after byte ${cursor} of the data`,
        t.name,
        String(cursor),
        String(t.begin),
      );
    }
    cursor = t.end;
    previous = t.name;
  }
  if (cursor !== dataSize) {
    throw headerError(
      file,
      `tensors cover ${cursor} data bytes but the file holds ${dataSize}`,
      undefined,
      String(dataSize),
      String(cursor),
    );
  }
  return { tensors, metadata };
}

function parseMetadata(file: string, entry: unknown): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw headerError(file, '__metadata__ is not an object', '__metadata__', 'object of strings', show(entry));
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
    if (typeof v !== 'string') {
      throw headerError(file, `__metadata__.${k} is not a string`, `__metadata__.${k}`, 'string', show(v));
    }
    out[k] = v;
  }
  return out;
}

function parseEntry(file: string, name: string, entry: unknown, dataSize: number): SafetensorsTensorInfo {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw headerError(
      file,
      `tensor ${name}: entry is not an object`,
      name,
      '{dtype, shape, data_offsets}',
      show(entry),
    );
  }
  const e = entry as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') {
      throw headerError(
        file,
        `tensor ${name}: unknown key ${key}`,
        `${name}.${key}`,
        'dtype, shape, data_offsets',
        key,
      );
    }
  }
  const { dtype, shape, data_offsets: offsets } = e;
  if (typeof dtype !== 'string')
    throw headerError(file, `tensor ${name}: dtype is not a string`, `${name}.dtype`, 'string', show(dtype));
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw headerError(
      file,
      `tensor ${name}: shape is not an array of non-negative integers`,
      `${name}.shape`,
      'array of non-negative integers',
      show(shape),
    );
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    throw headerError(
      file,
      `tensor ${name}: data_offsets is not [begin, end]`,
      `${name}.data_offsets`,
      '[begin, end] non-negative integers',
      show(offsets),
    );
  }
  const [begin, end] = offsets as number[];
  if (begin > end || end > dataSize) {
    throw headerError(
      file,
      `tensor ${name}: data_offsets [${begin}, ${end}] are not within the ${dataSize}-byte data buffer`,
      `${name}.data_offsets`,
      `0 <= begin <= end <= ${dataSize}`,
      show(offsets),
    );
  }
  const dims = shape as number[];
  const bits = DTYPE_BITS[dtype];
  if (bits === undefined) throw unsupportedDtype(file, { name, dtype, shape: dims, begin, end });
  const expectedBytes = (elementCount(dims) * bits) / 8;
  if (end - begin !== expectedBytes) {
    throw headerError(
      file,
      `tensor ${name}: ${end - begin} bytes for shape [${dims.join(', ')}] of ${dtype}, expected ${expectedBytes}`,
      `${name}.data_offsets`,
      String(expectedBytes),
      String(end - begin),
    );
  }
  return { name, dtype, shape: dims, begin, end };
}

export interface TensorToWrite {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

function encode(t: TensorToWrite): Uint8Array {
  let bytes: Uint8Array;
  if (t.dtype === 'F32') bytes = new Uint8Array(Float32Array.from(t.data).buffer);
  else bytes = new Uint8Array((t.dtype === 'BF16' ? encodeBf16(t.data) : encodeF16(t.data)).buffer);
  if (!LITTLE_ENDIAN_HOST) {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    if (t.dtype === 'F32') b.swap32();
    else b.swap16();
  }
  return bytes;
}

/**
 * Write tensors (float32 values, narrowed to each tensor's dtype with round-to-nearest-even) as a
 * safetensors file laid out like the reference implementation's: entries in the given order, header
 * padded with spaces so the data buffer starts 8-byte aligned.
 */
export function writeSafetensors(
  file: string,
  tensors: readonly TensorToWrite[],
  metadata?: Readonly<Record<string, string>>,
): void {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = { ...metadata };
  const payloads: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.prototype.hasOwnProperty.call(header, t.name)) {
      throw headerError(file, `tensor name ${t.name} is reserved or repeated`, t.name);
    }
    if (!isSupportedDtype(t.dtype))
      throw unsupportedDtype(file, { name: t.name, dtype: t.dtype, shape: t.shape, begin: 0, end: 0 });
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || elementCount(t.shape) !== t.data.length) {
      throw new ModelError(
        'RACKEMU_ERR_SAFETENSORS_SHAPE',
        `${file}: tensor ${t.name} has ${t.data.length} values but shape [${t.shape.join(', ')}]`,
        { details: { file, path: t.name, expected: String(elementCount(t.shape)), got: String(t.data.length) } },
      );
    }
    const bytes = encode(t);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    payloads.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  const jsonBytes = () => Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes() % 8)) % 8);
  const headerBuf = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length));
  let fd: number | null = null;
  try {
    fd = openSync(file, 'w');
    for (const chunk of [lenBuf, headerBuf, ...payloads]) {
      let done = 0;
      while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done);
    }
  } catch (e) {
    if (e instanceof RackemuError) throw e;
    throw new ModelError('RACKEMU_ERR_FILE_WRITE', `${file}: cannot be written (${(e as Error).message})`, {
      details: { file },
      cause: e,
    });
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

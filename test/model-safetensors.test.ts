import { closeSync, ftruncateSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from '../src/model/float16.js';
import { SafetensorsFile, writeSafetensors } from '../src/model/safetensors.js';
import { expectCode, tempDir } from './model-fixtures.js';

function ramp(n: number, scale = 0.37): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 1.7) * scale * (1 + i);
  return a;
}

/** Hand-build a safetensors file from a header object (or raw header text) and a data buffer. */
function rawFile(path: string, header: unknown, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): string {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(h.length));
  writeFileSync(path, Buffer.concat([len, h, data]));
  return path;
}

describe('safetensors - writer and reader round trip', () => {
  it('round-trips F32 exactly, BF16 and F16 as rounded values', () => {
    const dir = tempDir();
    const file = join(dir, 'a.safetensors');
    const data = ramp(24);
    writeSafetensors(
      file,
      [
        { name: 'f32', dtype: 'F32', shape: [4, 6], data },
        { name: 'bf16', dtype: 'BF16', shape: [24], data },
        { name: 'f16', dtype: 'F16', shape: [2, 3, 4], data },
      ],
      { format: 'pt' },
    );
    const st = SafetensorsFile.open(file);
    expect([...st.tensors.keys()]).toEqual(['f32', 'bf16', 'f16']);
    expect(st.metadata).toEqual({ format: 'pt' });
    expect(st.dataStart % 8).toBe(0);
    expect(st.info('f16').shape).toEqual([2, 3, 4]);
    expect(st.readAll('f32')).toEqual(data);
    expect(st.readAll('bf16')).toEqual(decodeBf16(encodeBf16(data)));
    expect(st.readAll('f16')).toEqual(decodeF16(encodeF16(data)));
  });

  it('writes the bf16 bit patterns little-endian at the declared offsets', () => {
    const dir = tempDir();
    const file = join(dir, 'b.safetensors');
    writeSafetensors(file, [{ name: 'x', dtype: 'BF16', shape: [2], data: Float32Array.of(1, -2) }]);
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(JSON.parse(bytes.subarray(8, 8 + n).toString())).toEqual({
      x: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] },
    });
    expect([...bytes.subarray(8 + n)]).toEqual([0x80, 0x3f, 0x00, 0xc0]);
  });

  it('reads element ranges without reading the rest, equal to parts of the whole tensor', () => {
    const dir = tempDir();
    const file = join(dir, 'c.safetensors');
    const data = ramp(7 * 5);
    for (const dtype of ['F32', 'BF16', 'F16'] as const) {
      writeSafetensors(file, [
        { name: 'pad', dtype: 'F32', shape: [3], data: ramp(3) },
        { name: 'w', dtype, shape: [7, 5], data },
      ]);
      const st = SafetensorsFile.open(file);
      const whole = st.readAll('w');
      expect(st.read('w', 10, 15)).toEqual(whole.slice(10, 25));
      expect(st.read('w', 34, 1)).toEqual(whole.slice(34));
      expect(st.read('w', 0, 0)).toEqual(new Float32Array(0));
      expect(() => st.read('w', 30, 6)).toThrow(RangeError);
    }
  });

  it('reads a slice of a 1 GiB tensor by positioned reads (sparse file, never read whole)', () => {
    const file = join(tempDir(), 'big.safetensors');
    const rows = 65536;
    const cols = 4096;
    const header = Buffer.from(
      JSON.stringify({ w: { dtype: 'F32', shape: [rows, cols], data_offsets: [0, rows * cols * 4] } }),
    );
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const fd = openSync(file, 'w');
    writeSync(fd, len);
    writeSync(fd, header);
    ftruncateSync(fd, 8 + header.length + rows * cols * 4);
    const marker = new Float32Array([1.5, -2.25]);
    writeSync(fd, new Uint8Array(marker.buffer), 0, 8, 8 + header.length + (1000 * cols + 7) * 4);
    closeSync(fd);
    const st = SafetensorsFile.open(file);
    const t0 = performance.now();
    const got = st.read('w', 1000 * cols, cols);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(got[7]).toBe(1.5);
    expect(got[8]).toBe(-2.25);
    expect(got[0]).toBe(0);
  });

  it('reads a column block equal to the same block of the whole tensor', () => {
    const file = join(tempDir(), 'cols.safetensors');
    const data = ramp(6 * 10);
    for (const dtype of ['F32', 'BF16', 'F16'] as const) {
      writeSafetensors(file, [{ name: 'w', dtype, shape: [6, 10], data }]);
      const st = SafetensorsFile.open(file);
      const whole = st.readAll('w');
      const block = st.readColumns('w', 10, 1, 5, 3, 7);
      const want: number[] = [];
      for (let r = 1; r < 5; r++) want.push(...whole.slice(r * 10 + 3, r * 10 + 7));
      expect(block).toEqual(Float32Array.from(want));
      expect(() => st.readColumns('w', 10, 0, 7, 0, 1)).toThrow(RangeError);
    }
  });

  it('reads an empty tensor and a scalar', () => {
    const dir = tempDir();
    const file = join(dir, 'd.safetensors');
    writeSafetensors(file, [
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      { name: 'scalar', dtype: 'F16', shape: [], data: Float32Array.of(0.5) },
    ]);
    const st = SafetensorsFile.open(file);
    expect(st.readAll('empty').length).toBe(0);
    expect(st.readAll('scalar')).toEqual(Float32Array.of(0.5));
  });
});

describe('safetensors - malformed files are rejected with coded errors', () => {
  const f32 = (n: number) => new Uint8Array(n * 4);

  it('rejects a file shorter than the length prefix', () => {
    const file = join(tempDir(), 'short.safetensors');
    writeFileSync(file, Buffer.from([1, 2, 3]));
    const e = expectCode(() => SafetensorsFile.open(file), 'RACKEMU_ERR_SAFETENSORS_HEADER');
    expect(e.message).toContain(file);
    expect(e.details.file).toBe(file);
  });

  it('rejects a header length beyond the file size', () => {
    const file = rawFile(
      join(tempDir(), 'len.safetensors'),
      { x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
      f32(1),
      10_000n,
    );
    const e = expectCode(() => SafetensorsFile.open(file), 'RACKEMU_ERR_SAFETENSORS_HEADER');
    expect(e.message).toContain('header length 10000');
    expect(e.message).toContain(file);
  });

  it('rejects a header that is not JSON or not an object', () => {
    const dir = tempDir();
    const bad = rawFile(join(dir, 'json.safetensors'), '{"x": {"dtype": "F32",');
    expect(expectCode(() => SafetensorsFile.open(bad), 'RACKEMU_ERR_SAFETENSORS_HEADER').message).toContain(
      'not valid UTF-8 JSON',
    );
    const arr = rawFile(join(dir, 'arr.safetensors'), [1, 2]);
    expect(expectCode(() => SafetensorsFile.open(arr), 'RACKEMU_ERR_SAFETENSORS_HEADER').message).toContain(
      'not a JSON object',
    );
  });

  it('rejects malformed entries, naming the tensor', () => {
    const dir = tempDir();
    const cases: [string, unknown, string][] = [
      ['shape', { w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 'w.shape'],
      ['offs', { w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 'w.data_offsets'],
      ['dtype', { w: { dtype: 3, shape: [1], data_offsets: [0, 4] } }, 'w.dtype'],
      ['key', { w: { dtype: 'F32', shape: [1], data_offsets: [0, 4], extra: 1 } }, 'w.extra'],
      ['meta', { __metadata__: { a: 1 }, w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, '__metadata__.a'],
    ];
    for (const [tag, header, path] of cases) {
      const file = rawFile(join(dir, `${tag}.safetensors`), header, f32(1));
      const e = expectCode(() => SafetensorsFile.open(file), 'RACKEMU_ERR_SAFETENSORS_HEADER');
      expect(e.details.path).toBe(path);
      expect(e.message).toContain(file);
    }
  });

  it('rejects offsets outside the data, sizes that disagree with the shape, overlaps, holes and trailing bytes', () => {
    const dir = tempDir();
    const cases: [string, unknown, number, string][] = [
      ['outside', { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 1, 'not within'],
      ['size', { w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 2, 'expected 12'],
      ['bf16size', { w: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 16] } }, 4, 'expected 8'],
      [
        'overlap',
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        3,
        'overlap',
      ],
      [
        'hole',
        {
          a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
          b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
        },
        3,
        'hole',
      ],
      ['trailing', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 2, 'cover 4 data bytes'],
    ];
    for (const [tag, header, n, text] of cases) {
      const file = rawFile(join(dir, `${tag}.safetensors`), header, f32(n));
      const e = expectCode(() => SafetensorsFile.open(file), 'RACKEMU_ERR_SAFETENSORS_HEADER');
      expect(e.message).toContain(text);
      expect(e.message).toContain(file);
    }
  });

  it('rejects unknown dtypes at open and spec dtypes rackemu does not read on use', () => {
    const dir = tempDir();
    const unknown = rawFile(
      join(dir, 'unknown.safetensors'),
      { w: { dtype: 'F12', shape: [1], data_offsets: [0, 4] } },
      f32(1),
    );
    const e1 = expectCode(() => SafetensorsFile.open(unknown), 'RACKEMU_ERR_SAFETENSORS_DTYPE');
    expect(e1.message).toContain(unknown);
    expect(e1.details.path).toBe('w');
    const i64 = rawFile(
      join(dir, 'i64.safetensors'),
      { w: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } },
      f32(4),
    );
    const st = SafetensorsFile.open(i64); // valid file
    const e2 = expectCode(() => st.readAll('w'), 'RACKEMU_ERR_SAFETENSORS_DTYPE');
    expect(e2.details.got).toBe('I64');
    expect(e2.message).toContain(i64);
  });

  it('rejects a file that does not exist and a writer given data of the wrong length', () => {
    const dir = tempDir();
    const missing = join(dir, 'nope.safetensors');
    expect(expectCode(() => SafetensorsFile.open(missing), 'RACKEMU_ERR_SAFETENSORS_HEADER').message).toContain(
      missing,
    );
    const out = join(dir, 'w.safetensors');
    const e = expectCode(
      () => writeSafetensors(out, [{ name: 'w', dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }]),
      'RACKEMU_ERR_SAFETENSORS_SHAPE',
    );
    expect(e.details.path).toBe('w');
  });
});

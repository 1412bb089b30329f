/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial 0xEDB88320) over a byte range.
 *
 * Node 20 has no zlib.crc32 (it arrived in 22.2), and every numeric frame is checksummed on both ends,
 * so this is a slicing-by-8 table implementation: 8 bytes per step with 8 table look-ups instead of 8
 * dependent single-byte steps, roughly 4-6x the speed of the byte-wise loop in V8.
 */
const TABLES = buildTables();
function buildTables() {
    const t = new Int32Array(256 * 8);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        t[n] = c;
    }
    // Table k advances a byte that sits k positions before the end of an 8-byte block.
    for (let n = 0; n < 256; n++) {
        let c = t[n];
        for (let k = 1; k < 8; k++) {
            c = t[c & 0xff] ^ (c >>> 8);
            t[k * 256 + n] = c;
        }
    }
    return t;
}
/**
 * CRC-32 of `data`. Pass a previous result as `crc` to continue over a further range
 * (crc32(b, crc32(a)) === crc32(a ++ b)). Returns an unsigned 32-bit integer.
 */
export function crc32(data, crc = 0) {
    const t = TABLES;
    let c = ~crc;
    let i = 0;
    const n = data.length;
    const end8 = n - (n & 7);
    while (i < end8) {
        c ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
        c =
            t[1792 + (c & 0xff)] ^
                t[1536 + ((c >>> 8) & 0xff)] ^
                t[1280 + ((c >>> 16) & 0xff)] ^
                t[1024 + (c >>> 24)] ^
                t[768 + data[i + 4]] ^
                t[512 + data[i + 5]] ^
                t[256 + data[i + 6]] ^
                t[data[i + 7]];
        i += 8;
    }
    while (i < n)
        c = t[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
    return ~c >>> 0;
}
//# sourceMappingURL=crc32.js.map
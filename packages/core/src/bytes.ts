/** Byte helpers shared inside core (not exported from the package). */

/** Whether two byte arrays are equal, in time that depends only on their length. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

/** Bytes of `value` as an unsigned varint. */
export function varintLength(value: number): number {
  let n = 1
  while (value >= 0x80) {
    value = Math.floor(value / 0x80)
    n++
  }
  return n
}

/** `value` as an unsigned varint (multiformats / protobuf). */
export function uvarint(value: number): Uint8Array {
  const out = new Uint8Array(varintLength(value))
  for (let i = 0; value >= 0x80; i++) {
    out[i] = (value % 0x80) | 0x80
    value = Math.floor(value / 0x80)
  }
  out[out.length - 1] = value
  return out
}

/**
 * protons-runtime 7 encodes a bigint uint64 in [2^31, 2^32) as zeros: its
 * LongBits keeps the low word as a signed int32, so the varint loop stops at
 * once. scripts/gen-proto.sh rewrites the generated `w.uint64(...)` calls to
 * this helper, which takes the runtime's correct number path below 2^53 and its
 * bigint path only where the high word is non-zero (which it handles right).
 */
interface Uint64Writer {
  uint64(value: bigint): unknown
  uint64Number(value: number): unknown
}

export function writeUint64(w: Uint64Writer, value: bigint): void {
  if (value < 0n || value >= 2n ** 64n) throw new RangeError(`uint64 out of range: ${value}`)
  if (value <= BigInt(Number.MAX_SAFE_INTEGER)) w.uint64Number(Number(value))
  else w.uint64(value)
}

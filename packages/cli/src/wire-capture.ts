import { appendFileSync } from 'node:fs'

/**
 * TEST ONLY: when GCN_TEST_WIRE_CAPTURE names a file, every byte the node reads
 * after Noise decryption is appended to it (the confidentiality test greps it).
 */
export function wireCaptureFromEnv(env: NodeJS.ProcessEnv = process.env): { wireCapture?: (bytes: Uint8Array) => void } {
  const file = env.GCN_TEST_WIRE_CAPTURE
  if (file === undefined || file === '') return {}
  return { wireCapture: bytes => appendFileSync(file, bytes, { mode: 0o600 }) }
}

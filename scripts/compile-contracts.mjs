#!/usr/bin/env node
/**
 * Compiles packages/registry/contracts/*.sol (solc-js, evmVersion prague,
 * optimizer 200 runs) and writes packages/registry/src/contracts.ts.
 *   node scripts/compile-contracts.mjs           write the file
 *   node scripts/compile-contracts.mjs --check   exit 1 if the file is stale
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { relative } from 'node:path'
import { generateContractsTs, OUTPUT_FILE, ROOT } from './contracts-lib.mjs'

const text = generateContractsTs()
const where = relative(ROOT, OUTPUT_FILE)
if (process.argv.includes('--check')) {
  let current = ''
  try {
    current = readFileSync(OUTPUT_FILE, 'utf8')
  } catch {}
  if (current !== text) {
    console.error(`${where} is stale: run node scripts/compile-contracts.mjs`)
    process.exit(1)
  }
  console.log(`${where} is up to date`)
} else {
  writeFileSync(OUTPUT_FILE, text)
  console.log(`wrote ${where}`)
}

#!/usr/bin/env node
// The polyfill must run before anything imports libp2p (Node 20).
import '@gcn/core/polyfill'

const { main } = await import('../dist/src/main.js')
process.exitCode = await main(process.argv.slice(2))

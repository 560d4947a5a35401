export * from '../packages/registry/src/contracts.js'
export * from '../packages/registry/src/embedded-chain.js'

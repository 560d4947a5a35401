/**
 * node:crypto where it exists (Node, looked up at run time so bundles for
 * browsers never import it), else undefined: callers then use @noble.
 */
export type NodeCrypto = typeof import('node:crypto')

export const nodeCrypto: NodeCrypto | undefined = (() => {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  try {
    return proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined
  } catch {
    return undefined
  }
})()

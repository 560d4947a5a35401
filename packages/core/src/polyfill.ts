/**
 * Node 20 lacks `Promise.withResolvers` and the ES2025 Set methods that libp2p
 * v3 internals call. Import this module before anything imports libp2p
 * (`node --import @gcn/core/polyfill`, or as the first import of an entry
 * point). It only fills what is missing, so it is a no-op on Node 22+.
 */
type AnySet = Set<unknown>
interface SetLike {
  size: number
  has(value: unknown): boolean
  keys(): Iterator<unknown>
}

function define(target: object, name: string, value: unknown): void {
  if (!(name in target)) {
    Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false })
  }
}

define(Promise, 'withResolvers', function withResolvers<T>() {
  let resolve!: (value: T | PromiseLike<T>) => void
  let reject!: (reason?: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
})

function iterate(other: SetLike): Iterable<unknown> {
  return { [Symbol.iterator]: () => other.keys() }
}

const setProto = Set.prototype as unknown as Record<string, unknown>
define(setProto, 'union', function union(this: AnySet, other: SetLike) {
  const out = new Set(this)
  for (const v of iterate(other)) out.add(v)
  return out
})
define(setProto, 'intersection', function intersection(this: AnySet, other: SetLike) {
  const out = new Set()
  for (const v of this) if (other.has(v)) out.add(v)
  return out
})
define(setProto, 'difference', function difference(this: AnySet, other: SetLike) {
  const out = new Set()
  for (const v of this) if (!other.has(v)) out.add(v)
  return out
})
define(setProto, 'symmetricDifference', function symmetricDifference(this: AnySet, other: SetLike) {
  const out = new Set(this)
  for (const v of iterate(other)) {
    if (this.has(v)) out.delete(v)
    else out.add(v)
  }
  return out
})
define(setProto, 'isSubsetOf', function isSubsetOf(this: AnySet, other: SetLike) {
  for (const v of this) if (!other.has(v)) return false
  return true
})
define(setProto, 'isSupersetOf', function isSupersetOf(this: AnySet, other: SetLike) {
  for (const v of iterate(other)) if (!this.has(v)) return false
  return true
})
define(setProto, 'isDisjointFrom', function isDisjointFrom(this: AnySet, other: SetLike) {
  for (const v of this) if (other.has(v)) return false
  return true
})

export {}

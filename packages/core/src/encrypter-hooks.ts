import type { noise } from '@chainsafe/libp2p-noise'

export type EncrypterFactory = ReturnType<typeof noise>

/** What an encrypter's secureInbound/secureOutbound resolve to: the secured connection and the remote peer. */
export type SecuredConnection = Awaited<ReturnType<ReturnType<EncrypterFactory>['secureInbound']>>

/** Wraps an encrypter so `each` sees every connection it secures, in both directions, before libp2p uses it. */
export function onSecured(inner: EncrypterFactory, each: (secured: SecuredConnection) => void): EncrypterFactory {
  return components => {
    const encrypter = inner(components)
    const after = async <T extends SecuredConnection>(securing: Promise<T>): Promise<T> => {
      const secured = await securing
      each(secured)
      return secured
    }
    return {
      ...encrypter,
      protocol: encrypter.protocol,
      secureInbound: (connection, options) => after(encrypter.secureInbound(connection, options)),
      secureOutbound: (connection, options) => after(encrypter.secureOutbound(connection, options))
    }
  }
}
